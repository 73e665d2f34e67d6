"""The audit log: one entry per action with consequences, with who, when, which branch and what;
never a full phone number; append-only; managers see their branches', administrators all; a CSV
download that Excel opens."""
import csv
import io
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from core import audit, engine
from core.audit import AuditEntry
from core.extensions import db
from core.models import Appointment
from core.security import PHONE_IN_TEXT
from core.tokens import ApiToken
from messaging.models import InboxMessage
from scheduler import jobs

from .constants import START
from .helpers import NUMBER, bearer, login, make_branch, make_counter, make_service, make_staff, text


@pytest.fixture
def people(app, setup):
    """Branch 1 (setup: alice, staff) and branch 2 (bob); mona manages branch 1, root is an admin."""
    other = make_branch("Other Branch")
    service = make_service(other, "A")
    make_counter(other, "1", [service])
    make_staff("bob", branch=other)
    make_staff("mona", role="manager", branch=setup[0])
    make_staff("root", role="admin")
    db.session.commit()
    return {"one": setup[0], "two": other, "services": setup[1], "counters": setup[2]}


def enter(client, username):
    """Log in, then post forms without their CSRF tokens (tested elsewhere)."""
    client.application.config["WTF_CSRF_ENABLED"] = True
    login(client, username)
    client.application.config["WTF_CSRF_ENABLED"] = False


def new_entries(before: int) -> list[AuditEntry]:
    db.session.rollback()
    return db.session.scalars(select(AuditEntry).where(AuditEntry.id > before).order_by(AuditEntry.id)).all()


def last_id() -> int:
    db.session.rollback()
    return db.session.scalar(select(db.func.max(AuditEntry.id))) or 0


def one_new(before: int, action: str) -> AuditEntry:
    entries = new_entries(before)
    assert [e.action for e in entries] == [action], [(e.action, e.target) for e in entries]
    return entries[0]


def no_full_number():
    every = " ".join(f"{e.actor} {e.target} {json.dumps(e.detail)}" for e in db.session.scalars(select(AuditEntry)))
    assert not PHONE_IN_TEXT.search(every) and "5123456" not in every, every


def test_a_ticket_cancelled_at_the_console_or_by_the_api_is_recorded_once(client, people):
    a, c1 = people["services"][0], people["counters"][0]
    enter(client, "alice")
    client.post("/staff/counter", data={"counter_id": c1.id})
    ticket = engine.issue_ticket(a.id)
    before = last_id()
    client.post(f"/staff/tickets/{ticket.id}/cancel", data={"confirm": "1"})
    entry = one_new(before, "ticket.cancelled")
    assert (entry.actor, entry.role, entry.branch_id, entry.target) == ("alice", "staff", people["one"].id,
                                                                      f"ticket:{ticket.id}")
    assert entry.detail == {"label": ticket.label} and entry.at == START

    second = engine.issue_ticket(a.id)
    before = last_id()
    integration = client.application.test_client()  # no session: the token is who acts
    response = integration.post(f"/api/v1/tickets/{second.id}/cancel", json={"reason": "called +995555123456"},
                                headers=bearer("alice"))
    assert response.status_code == 200
    entry = one_new(before, "ticket.cancelled")
    assert (entry.actor, entry.role, entry.target) == ("token:as alice", "staff", f"ticket:{second.id}")
    assert "reason" not in entry.detail  # words typed by staff may name someone: not copied


def test_cancellations_by_no_one_in_particular_are_left_to_the_tickets_history(people, clock):
    a = people["services"][0]
    engine.cancel(engine.issue_ticket(a.id).id)  # e.g. the customer's reply CANCEL, handled by the router
    engine.issue_ticket(a.id)
    clock.advance(days=1)
    before = last_id()
    assert jobs.end_of_day() == 1
    assert new_entries(before) == []


def test_appointments_cancelled_or_moved_at_the_console(client, people, clock):
    a = people["services"][0]
    one = people["one"]
    one.opening_hours = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    booked = [Appointment(branch_id=one.id, service_id=a.id, starts_at=START + timedelta(days=1, hours=i),
                          created_at=START, status="booked") for i in (1, 2)]
    db.session.add_all(booked)
    db.session.commit()
    enter(client, "alice")
    client.post("/staff/counter", data={"counter_id": people["counters"][0].id})
    before = last_id()
    client.post(f"/staff/appointments/{booked[0].id}/cancel")
    entry = one_new(before, "appointment.cancelled")
    assert (entry.actor, entry.branch_id, entry.target) == ("alice", one.id, f"appointment:{booked[0].id}")
    before = last_id()
    client.post(f"/staff/appointments/{booked[1].id}/move", data={"starts_at": "2026-03-03T14:00"})
    entry = one_new(before, "appointment.moved")
    assert entry.target == f"appointment:{booked[1].id}" and entry.detail == {"to": "2026-03-03T14:00:00+00:00"}


def test_texts_sent_retried_and_cancelled_by_staff_name_the_number_masked(client, people):
    one = people["one"]
    db.session.add(InboxMessage(branch_id=one.id, sender=NUMBER, body="hello?", received_at=START, dedupe_key="k1",
                                status="unhandled"))
    failed = text(one, "reply", "failed", now=START)
    queued = text(one, "welcome", "queued", now=START)
    enter(client, "alice")
    before = last_id()
    client.post(f"/staff/inbox/{NUMBER}/reply", data={"body": "We open at nine."})
    entry = one_new(before, "text.sent")
    assert (entry.actor, entry.branch_id, entry.target, entry.detail) == ("alice", one.id, "phone:+99555****456",
                                                                        {"kind": "reply"})
    before = last_id()
    client.post(f"/staff/outbox/{failed.id}/retry")
    assert one_new(before, "text.retried").target == f"text:{failed.id}"
    before = last_id()
    client.post(f"/staff/outbox/{queued.id}/cancel")
    assert one_new(before, "text.cancelled").branch_id == one.id
    before = last_id()
    client.post(f"/staff/outbox/{queued.id}/cancel")  # too late now: nothing happens, nothing recorded
    assert new_entries(before) == []
    no_full_number()


def test_tokens_kiosks_and_passwords_made_on_the_web(client, people):
    enter(client, "root")
    before = last_id()
    client.post("/staff/admin/tokens", data={"name": "Booking site", "role": "staff", "branches": [people["one"].id]})
    token = db.session.scalar(select(ApiToken).where(ApiToken.name == "Booking site"))
    entry = one_new(before, "token.created")
    assert (entry.actor, entry.role, entry.target, entry.branch_id) == ("root", "admin", f"token:{token.id}",
                                                                      people["one"].id)
    assert entry.detail == {"name": "Booking site", "role": "staff", "branches": [people["one"].id]}
    before = last_id()
    client.post(f"/staff/admin/tokens/{token.id}/revoke")
    one_new(before, "token.revoked")
    before = last_id()
    client.post("/staff/admin/kiosks", data={"branch": people["two"].id, "name": "Entrance"})
    assert one_new(before, "kiosk.registered").branch_id == people["two"].id
    before = last_id()
    client.post("/staff/password", data={"current_password": "correct horse", "new_password": "a longer secret",
                                         "repeat_password": "a longer secret"})
    entry = one_new(before, "user.password_changed")
    assert (entry.actor, entry.target, entry.branch_id) == ("root", "user:root", None)


@pytest.mark.parametrize(("args", "action", "target"), [
    (["user", "create", "carol", "--password", "long enough pw"], "user.created", "user:carol"),
    (["branch", "set", "--timezone", "Asia/Tbilisi"], "settings.changed", "branch:{one}"),
    (["branch", "texts", "survey=off"], "settings.changed", "branch:{one}"),
    (["service", "set", "A", "--minutes", "7"], "settings.changed", "service:{service}"),
    (["token", "create", "--name", "Sync", "--role", "admin"], "token.created", None),
    (["kiosk", "create", "--branch", "{one}", "--name", "Door"], "kiosk.registered", None),
])
def test_the_command_line_records_what_it_changes(runner, people, args, action, target):
    ids = {"one": people["one"].id, "service": people["services"][0].id}
    before = last_id()
    result = runner.invoke(args=[arg.format(**ids) for arg in args])
    assert result.exit_code == 0, result.output
    entry = one_new(before, action)
    assert entry.actor == "cli" and entry.role is None
    if target:
        assert entry.target == target.format(**ids)
    if action == "settings.changed" and "texts" in args:
        assert entry.detail == {"texts": {"survey": False}}
    elif action == "settings.changed":
        assert entry.detail["fields"] in (["timezone"], ["avg_service_minutes"])


def test_the_command_line_records_a_password_it_sets(runner, people):
    before = last_id()
    runner.invoke(args=["user", "set-password", "bob"], input="another password\nanother password\n")
    entry = one_new(before, "user.password_set")
    assert (entry.target, entry.branch_id) == ("user:bob", people["two"].id)


def test_a_full_number_or_an_unknown_action_is_refused(app):
    with pytest.raises(ValueError, match="masked"):
        audit.record("text.sent", target=f"phone:{NUMBER}")
    with pytest.raises(ValueError, match="masked"):
        audit.record("text.sent", detail={"to": NUMBER})
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record("ticket.eaten")
    assert db.session.scalar(select(db.func.count(AuditEntry.id))) == 0


def test_entries_cannot_be_changed_or_deleted(app):
    entry = audit.record("data.anonymised", detail={"tickets": 1})
    assert (entry.actor, entry.role) == ("system", None)
    entry = db.session.get(AuditEntry, entry.id)
    entry.detail = {"tickets": 0}
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEntry, entry.id))
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    assert db.session.get(AuditEntry, entry.id).detail == {"tickets": 1}


def seed_entries(people):
    audit.record("settings.changed", target="branch:one", branch_id=people["one"].id, who=("mona", "manager"))
    audit.record("settings.changed", target="branch:two", branch_id=people["two"].id, who=("bob", "manager"))
    audit.record("user.created", target="user:nobody", who=("cli", None))


def test_a_manager_sees_the_entries_of_their_branches_an_admin_all(client, people):
    seed_entries(people)
    enter(client, "mona")
    page = client.get("/staff/audit").text
    assert "branch:one" in page and "branch:two" not in page and "user:nobody" not in page
    assert client.get("/staff/audit", query_string={"branch": people["two"].id}).status_code == 404
    assert "branch:two" not in client.get("/staff/audit.csv").text
    client.post("/staff/logout")
    enter(client, "root")
    page = client.get("/staff/audit").text
    assert all(target in page for target in ("branch:one", "branch:two", "user:nobody"))
    assert "branch:one" not in client.get("/staff/audit", query_string={"branch": people["two"].id}).text
    client.post("/staff/logout")
    enter(client, "alice")
    assert client.get("/staff/audit").status_code == 403
    assert client.get("/staff/audit.csv").status_code == 403


def test_csv_opens_in_excel_with_its_rows(client, people):
    seed_entries(people)
    audit.record("token.created", target="token:1", detail={"name": "=HYPERLINK(evil)"}, who=("root", "admin"))
    enter(client, "root")
    response = client.get("/staff/audit.csv", query_string={"action": "settings.changed"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf") and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0] == list(audit.CSV_COLUMNS)
    assert sorted(row[6] for row in rows[1:]) == ["branch:one", "branch:two"]
    every = list(csv.reader(io.StringIO(client.get("/staff/audit.csv").data.decode("utf-8-sig"))))
    assert len(every) == 5 and every[1][7] == '{"name": "=HYPERLINK(evil)"}'  # JSON starts with {: no formula


def test_filters_by_day_and_action_and_pages_back(client, people, clock):
    for _ in range(55):
        audit.record("text.retried", target="text:1", branch_id=people["one"].id, who=("alice", "staff"))
    clock.advance(days=2)
    audit.record("text.cancelled", target="text:2", branch_id=people["one"].id, who=("alice", "staff"))
    enter(client, "mona")
    first = client.get("/staff/audit").text
    assert first.count("data-entry=") == audit.PAGE_SIZE and "text:2" in first
    older = re.search(r'href="([^"]*before=\d+[^"]*)"', first).group(1).replace("&amp;", "&")
    assert client.get(older).text.count("data-entry=") == 56 - audit.PAGE_SIZE
    day = START.date().isoformat()
    assert client.get("/staff/audit", query_string={"from": day, "to": day}).text.count("data-entry=") == 50
    only = client.get("/staff/audit", query_string={"action": "text.cancelled"}).text
    assert only.count("data-entry=") == 1
    assert client.get("/staff/audit", query_string={"from": "2026-02-30"}).status_code == 400
    assert client.get("/staff/audit", query_string={"action": "x"}).status_code == 400


def test_the_command_line_lists_the_log(runner, people):
    seed_entries(people)
    listed = runner.invoke(args=["audit", "list", "--action", "settings.changed"])
    assert listed.exit_code == 0 and "branch:one" in listed.output and "user:nobody" not in listed.output
    as_csv = runner.invoke(args=["audit", "list", "--csv"])
    assert as_csv.output.startswith("\ufeff") and len(as_csv.output.strip().splitlines()) == 4


def test_every_action_has_words_in_every_language(client, people):
    from staff.audit_page import action_words

    assert set(action_words()) == set(audit.ACTIONS)
    enter(client, "root")
    audit.record("data.erased", target="phone:+99555****456", detail={"tickets": 1})
    assert "監査ログ" in client.get("/staff/audit", query_string={"lang": "ja"}).text
    page = client.get("/staff/audit", query_string={"lang": "ka"}).text
    assert "აუდიტის ჟურნალი" in page and "პერსონალური მონაცემები წაიშალა" in page
    assert "個人データ" in client.get("/staff/privacy", query_string={"lang": "ja"}).text


def test_texts_settings_broadcasts_and_api_cancellations_by_a_manager(client, people):
    one = people["one"]
    enter(client, "mona")
    wording = {"branch": one.id, "body": "{branch}: hello {ticket}"}
    before = last_id()
    assert client.put("/api/v1/templates/welcome/en", json=wording).status_code == 200
    assert one_new(before, "template.saved").target == "template:welcome/en"
    before = last_id()
    assert client.delete("/api/v1/templates/welcome/en", query_string={"branch": one.id}).status_code == 200
    one_new(before, "template.reverted")
    before = last_id()
    assert client.post("/api/v1/templates/test", json={**wording, "phone": NUMBER}).status_code == 202
    entry = one_new(before, "text.sent")
    assert (entry.target, entry.detail, entry.branch_id) == ("phone:+99555****456", {"kind": "test"}, one.id)
    text(one, "welcome", "delivered", to="+995555000001", now=START, sent_at=START)
    text(one, "welcome", "delivered", to="+995555000002", now=START, sent_at=START)
    window = {"branch": one.id, "kind": "welcome", "from": (START - timedelta(hours=1)).isoformat(),
              "to": (START + timedelta(hours=1)).isoformat(), "body": "Sorry: counter 3, not 9."}
    before = last_id()
    assert client.post("/api/v1/corrections", json=window).status_code == 202
    entry = one_new(before, "broadcast.sent")  # one entry for the whole broadcast
    assert (entry.target, entry.detail["recipients"]) == ("kind:welcome", 2)
    booked = Appointment(branch_id=one.id, service_id=people["services"][0].id, starts_at=START + timedelta(days=1),
                         created_at=START, status="booked")
    db.session.add(booked)
    db.session.commit()
    before = last_id()
    assert client.post(f"/api/v1/appointments/{booked.id}/cancel", json={}).status_code == 200
    assert one_new(before, "appointment.cancelled").branch_id == one.id
    no_full_number()


def test_the_days_to_filter_by_are_the_branchs_own(any_db_app, clock):
    """Tokyo's 3 March begins at 15:00 UTC on 2 March: an entry at 20:00 UTC is on Tokyo's 3rd."""
    tokyo = make_branch("Tokyo", timezone="Asia/Tokyo", country="JP")
    admin = make_staff("root", role="admin")
    db.session.commit()
    clock.advance(hours=11)  # 2026-03-02 20:00 UTC
    audit.record("text.retried", target="text:1", branch_id=tokyo.id, who=("alice", "staff"))
    second, third = START.date(), START.date() + timedelta(days=1)

    def found(day, **zone):
        return len(db.session.scalars(audit.query(since=day, until=day, user=admin, **zone)).all())

    assert (found(second, zone=tokyo.zone), found(third, zone=tokyo.zone)) == (0, 1)
    assert (found(second), found(third)) == (1, 0)  # without a zone: UTC days, as the command line lists


def test_the_audit_page_filters_by_the_chosen_branchs_days(client, people, clock):
    tokyo = make_branch("Tokyo", timezone="Asia/Tokyo", country="JP")
    db.session.commit()
    clock.advance(hours=11)  # 2026-03-02 20:00 UTC: 3 March in Tokyo, 2 March in London
    audit.record("text.retried", target="text:tokyo", branch_id=tokyo.id, who=("root", "admin"))
    audit.record("text.retried", target="text:one", branch_id=people["one"].id, who=("alice", "staff"))
    enter(client, "root")

    def shown(**filters):
        page = client.get("/staff/audit", query_string=filters).text
        return {name for name in ("text:tokyo", "text:one") if name in page}, page

    assert shown(branch=tokyo.id, **{"from": "2026-03-03", "to": "2026-03-03"})[0] == {"text:tokyo"}
    assert shown(branch=tokyo.id, **{"from": "2026-03-02", "to": "2026-03-02"})[0] == set()
    assert shown(branch=people["one"].id, **{"from": "2026-03-02", "to": "2026-03-02"})[0] == {"text:one"}
    page = shown(branch=tokyo.id)[1]
    assert "Asia/Tokyo" in page and "UTC days" not in page and "2026-03-03 05:00:00" in page
