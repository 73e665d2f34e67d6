"""The texts settings of a branch (issue 12, "Texts"): one service layer beneath the page, the JSON
API and `flask branch texts`; bad values get an error per field and change nothing; reminder lead
times can be set at all; a test send goes through the outbox; managers reach only their branches."""
import logging

import pytest
from flask import current_app
from sqlalchemy import func, select

from core import audit
from core.errors import ValidationError
from core.extensions import db
from core.models import Branch
from core.settings import texts
from messaging import policy, templates
from messaging.models import MessageTemplate, OutboxMessage

from .conftest import RequestIsolatedClient
from .constants import START
from .helpers import bearer, csrf_token, login, make_branch, make_service, make_staff

LOCAL = "555 12 34 56"
NUMBER = "+995555123456"


@pytest.fixture
def both(any_db_app):
    """A client of the app on SQLite and on PostgreSQL."""
    any_db_app.test_client_class = RequestIsolatedClient
    return any_db_app.test_client()


def two_branches():
    """Branch One (Georgia) with its manager "mona"; Branch Two; staff "sam" of Branch One."""
    one = make_branch("Branch One", country="GE", languages=["en", "ja"])
    two = make_branch("Branch Two")
    make_service(one, "A")
    make_staff("mona", role="manager", branch=one)
    make_staff("sam", branch=one)
    db.session.commit()
    return one, two


def entries(action="settings.changed") -> list:
    db.session.rollback()
    return db.session.scalars(select(audit.AuditEntry).where(audit.AuditEntry.action == action)).all()


def stored(branch_id) -> dict:
    db.session.rollback()
    return dict(db.session.get(Branch, branch_id).messaging or {})


def outbox_rows() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count(OutboxMessage.id)))


# --- the service layer and the command line --------------------------------------------------

def test_every_default_has_a_rule(app):
    assert set(texts.RULES) == set(current_app.config["MESSAGING_DEFAULTS"])


def test_values_as_the_command_line_and_json_give_them(app):
    read = texts.validate({"welcome": "Off", "survey": True, "daily_cap": " 12 ", "position_threshold": 5,
                           "quiet_start": "7:05", "reminder_lead_minutes": "120, 2880 60", "survey_delay_minutes": 0})
    assert read == {"welcome": False, "survey": True, "daily_cap": 12, "position_threshold": 5,
                    "quiet_start": "07:05", "reminder_lead_minutes": [2880, 120, 60], "survey_delay_minutes": 0}
    assert texts.validate({"reminder_lead_minutes": ""}) == {"reminder_lead_minutes": []}  # no reminders
    assert texts.validate({"reminder_lead_minutes": [60, 1440]}) == {"reminder_lead_minutes": [1440, 60]}


@pytest.mark.parametrize("key, value", [
    ("welcome", "maybe"), ("welcome", 1), ("daily_cap", 0), ("daily_cap", 101), ("daily_cap", 2.0), ("daily_cap", True),
    ("daily_cap", "-3"), ("position_threshold", 21), ("survey_delay_minutes", 7 * 24 * 60 + 1),
    ("quiet_start", "24:00"), ("quiet_end", "9"), ("quiet_end", 900), ("reminder_lead_minutes", [5]),
    ("reminder_lead_minutes", "1440,1440"), ("reminder_lead_minutes", [60, 120, 180, 240, 300]),
    ("reminder_lead_minutes", 1440.5), ("reminder_lead_minutes", "a day"), ("no such thing", 1),
])
def test_bad_values_are_refused_by_field(app, key, value):
    with pytest.raises(ValidationError) as refused:
        texts.validate({key: value})
    assert list(refused.value.detail) == [key] and refused.value.detail[key]


def test_the_command_line_sets_reminder_lead_minutes(runner, app):
    branch = make_branch()
    db.session.commit()
    done = runner.invoke(args=["branch", "texts", "reminder_lead_minutes=2880,60", "quiet_end=08:30"])
    assert done.exit_code == 0, done.output
    assert "reminder_lead_minutes  2880, 60" in done.output and "quiet_end              08:30" in done.output
    assert policy.settings(db.session.get(Branch, branch.id))["reminder_lead_minutes"] == [2880, 60]
    assert entries()[-1].detail == {"texts": {"reminder_lead_minutes": [2880, 60], "quiet_end": "08:30"}}

    refused = runner.invoke(args=["branch", "texts", "daily_cap=3", "reminder_lead_minutes=soon"])
    assert refused.exit_code != 0 and "reminder_lead_minutes:" in refused.output
    assert stored(branch.id) == {"reminder_lead_minutes": [2880, 60], "quiet_end": "08:30"}  # daily_cap neither
    assert runner.invoke(args=["branch", "texts", "welcome"]).exit_code != 0
    shown = runner.invoke(args=["branch", "texts"])
    assert shown.exit_code == 0 and "daily_cap              10" in shown.output


# --- the JSON API, on SQLite and PostgreSQL -----------------------------------------------------

def test_api_bad_values_get_field_errors_and_change_nothing(both):
    one, _two = two_branches()
    headers = bearer("mona")
    before = stored(one.id)
    bad = {"survey": False, "welcome": "maybe", "daily_cap": 0, "quiet_start": "25:00", "reminder_lead_minutes": [5],
           "position_threshold": True}
    refused = both.put("/api/v1/admin/texts", headers=headers, query_string={"branch": one.id},
                       json={**bad, "bogus": 1})
    assert refused.status_code == 400
    assert set(refused.json["detail"]) == {"bogus"}  # an unknown setting first: a typo must not pass silently
    refused = both.put("/api/v1/admin/texts", headers=headers, query_string={"branch": one.id}, json=bad)
    assert refused.status_code == 400
    assert set(refused.json["detail"]) == {"welcome", "daily_cap", "quiet_start", "reminder_lead_minutes",
                                           "position_threshold"}
    assert stored(one.id) == before and entries() == []  # survey=false, the good one, was not saved either


def test_api_saves_all_and_audits_only_what_changed(both):
    one, _two = two_branches()
    headers = bearer("mona")
    change = {"branch": one.id, "reminder_lead_minutes": [60, 2880], "quiet_start": "21:30", "survey": False,
              "daily_cap": 10}
    saved = both.put("/api/v1/admin/texts", headers=headers, json=change)
    assert saved.status_code == 200, saved.json
    assert saved.json["settings"]["reminder_lead_minutes"] == [2880, 60] and saved.json["settings"]["survey"] is False
    rules = policy.settings(db.session.get(Branch, one.id))
    assert (rules["reminder_lead_minutes"], rules["quiet_start"], rules["survey"]) == ([2880, 60], "21:30", False)
    [entry] = entries()
    assert (entry.actor, entry.branch_id, entry.target) == ("token:as mona", one.id, f"branch:{one.id}")
    assert entry.detail == {"texts": {"reminder_lead_minutes": [2880, 60], "quiet_start": "21:30", "survey": False}}
    assert both.put("/api/v1/admin/texts", headers=headers, json=change).status_code == 200
    assert len(entries()) == 1  # nothing changed the second time: nothing to record
    shown = both.get("/api/v1/admin/texts", headers=headers, query_string={"branch": one.id})
    assert shown.json == {"branch": one.id, "settings": saved.json["settings"]}


def test_staff_get_403_and_a_manager_of_branch_one_404_for_branch_two(both):
    one, two = two_branches()
    staff, manager = bearer("sam"), bearer("mona")
    for method, path in (("GET", "/api/v1/admin/texts"), ("PUT", "/api/v1/admin/texts"),
                         ("POST", "/api/v1/admin/texts/test")):
        body = {"welcome": False} if method == "PUT" else ({"kind": "welcome", "language": "en", "phone": LOCAL}
                                                           if method == "POST" else None)
        assert both.open(path, method=method, headers=staff, json=body, query_string={"branch": one.id}).status_code == 403
        assert both.open(path, method=method, headers=manager, json=body,
                         query_string={"branch": two.id}).status_code == 404
        if body is not None:
            assert both.open(path, method=method, headers=manager, json={**body, "branch": two.id}).status_code == 404
    assert stored(two.id) == {} and outbox_rows() == 0 and entries() == []


# --- the page -------------------------------------------------------------------------------------

def form_of(page_text, **values) -> dict:
    """The texts form as the browser would send it: ticked boxes only, every other field."""
    current = texts.current(db.session.get(Branch, 1))
    data = {"csrf_token": csrf_token(page_text)}
    for key, rule in texts.RULES.items():
        value = values.get(key, current[key])
        if rule.kind == texts.SWITCH:
            if value:
                data[key] = "on"
        else:
            data[key] = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return data


def test_the_page_saves_all_or_nothing_with_an_error_beside_each_field(client, app):
    one, _two = two_branches()
    login(client, "mona")
    page = client.get("/admin/texts", query_string={"branch": one.id})
    assert page.status_code == 200
    assert "Remind this many minutes before the appointment" in page.text and 'value="1440, 120"' in page.text
    assert "Quiet hours start (branch time, UTC)" in page.text

    bad = client.post(f"/admin/texts?branch={one.id}",
                      data=form_of(page.text, welcome=False, daily_cap="lots", reminder_lead_minutes="1440, 2"))
    assert bad.status_code == 400
    assert 'id="err-daily_cap"' in bad.text and 'id="err-reminder_lead_minutes"' in bad.text
    assert 'value="lots"' in bad.text  # what was typed stays, to be corrected
    assert stored(one.id) == {} and entries() == []

    good = client.post(f"/admin/texts?branch={one.id}",
                       data=form_of(page.text, welcome=False, reminder_lead_minutes="30, 1440", quiet_start="21:00"))
    assert good.status_code == 302
    assert stored(one.id) == {"welcome": False, "reminder_lead_minutes": [1440, 30], "quiet_start": "21:00"}
    again = client.get(good.headers["Location"])
    assert "The text settings are saved." in again.text and 'value="1440, 30"' in again.text


def test_the_page_shows_the_survey_question_per_language_and_links_the_editor(client, app):
    one, _two = two_branches()
    db.session.add(MessageTemplate(branch_id=one.id, kind="survey", language="ja", body="{branch}: いかがでしたか？ 1-5",
                                   updated_at=START))
    templates.changed(one)  # as the editor does
    db.session.commit()
    login(client, "mona")
    page = client.get("/admin/texts", query_string={"branch": one.id}).text
    assert "Branch One: いかがでしたか？ 1-5" in page
    assert "Branch One: thank you for your visit. How was it?" in page  # en: the standard wording
    assert 'data-survey-language="ka"' not in page  # the branch texts in en and ja
    assert f"/staff/admin/texts?branch={one.id}&amp;kind=survey&amp;language=ja" in page
    editor = client.get(f"/staff/admin/texts?branch={one.id}&kind=survey&language=ja")
    assert editor.status_code == 200 and f'data-branch="{one.id}"' in editor.text and 'data-kind="survey"' in editor.text


def test_staff_get_403_on_the_page_and_managers_404_for_another_branch(client, app):
    one, two = two_branches()
    login(client, "sam")
    assert client.get("/admin/texts", query_string={"branch": one.id}).status_code == 403
    client.post("/staff/logout", data={"csrf_token": csrf_token(client.get("/staff/inbox").text)})
    login(client, "mona")
    page = client.get("/admin/texts", query_string={"branch": one.id})
    assert client.get("/admin/texts", query_string={"branch": two.id}).status_code == 404
    posted = client.post(f"/admin/texts?branch={two.id}", data=form_of(page.text, welcome=False))
    assert posted.status_code == 404 and stored(two.id) == {}
    test = client.post(f"/admin/texts/test?branch={two.id}",
                       data={"kind": "welcome", "language": "en", "phone": NUMBER, "csrf_token": csrf_token(page.text)})
    assert test.status_code == 404 and outbox_rows() == 0


# --- a test send ----------------------------------------------------------------------------------

def test_a_test_send_goes_through_the_outbox_and_the_audit_log_keeps_no_number(client, app, caplog):
    one, _two = two_branches()
    login(client, "mona")
    page = client.get("/admin/texts", query_string={"branch": one.id})
    refused = client.post(f"/admin/texts/test?branch={one.id}", data={
        "kind": "nonsense", "language": "fr", "phone": "12", "csrf_token": csrf_token(page.text)})
    assert refused.status_code == 400 and outbox_rows() == 0
    assert all(f'id="err-{field}"' in refused.text for field in ("kind", "language", "phone"))

    caplog.set_level(logging.INFO)
    sent = client.post(f"/admin/texts/test?branch={one.id}", data={
        "kind": "survey", "language": "ja", "phone": LOCAL, "csrf_token": csrf_token(page.text)})
    assert sent.status_code == 302
    row = db.session.scalar(select(OutboxMessage))
    assert (row.to, row.kind, row.status, row.branch_id) == (NUMBER, "test", "queued", one.id)
    branch = db.session.get(Branch, one.id)
    assert row.body == templates.render(branch, "survey", "ja") and row.body.startswith("Branch One")
    [entry] = entries("text.sent")
    assert entry.target == "template:survey/ja" and entry.detail == {"kind": "test", "template": "survey", "language": "ja"}
    assert "5123456" not in f"{entry.target} {entry.detail}"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"outbox {row.id}: test text to" in logged and "5123456" not in logged


def test_a_test_send_by_api_obeys_the_policy_like_every_text(both):
    one, _two = two_branches()
    sent = both.post("/api/v1/admin/texts/test", headers=bearer("mona"),
                     json={"branch": one.id, "kind": "welcome", "language": "en", "phone": LOCAL})
    assert sent.status_code == 202
    row = db.session.get(OutboxMessage, sent.json["queued"])
    assert row.kind == "test" and "A012" in row.body  # filled with sample values
    decision = policy.decide(db.session, row, START)
    assert decision.action == "send"
    texts.update(db.session.get(Branch, one.id), {"daily_cap": 1})
    row.status, row.sent_at = "sent", START
    db.session.commit()
    again = both.post("/api/v1/admin/texts/test", headers=bearer("mona"),
                      json={"branch": one.id, "kind": "welcome", "language": "en", "phone": LOCAL})
    second = db.session.get(OutboxMessage, again.json["queued"])
    assert policy.decide(db.session, second, START).action == "suppress"  # the daily cap of 1 applies to tests too
