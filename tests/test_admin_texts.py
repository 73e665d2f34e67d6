"""Administrators edit texts (with their cost shown) and send corrections; staff may not."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.extensions import db
from hardware.pdu import segment_info
from messaging import outbox
from messaging.models import OutboxMessage

from .constants import START
from .helpers import bearer, make_staff
from .modem_helpers import KA


def auth(username):
    return bearer(username)


@pytest.fixture
def admin(client, setup):
    make_staff("root", role="admin")
    db.session.commit()

    def call(method, path, json=None):
        return client.open(f"/api/v1{path}", method=method, json=json, headers=auth("root"))

    return call


def test_segment_counting():
    assert segment_info("a" * 160) == {"encoding": "GSM-7", "characters": 160, "units": 160, "segments": 1, "per_segment": 160}
    assert segment_info("a" * 159 + "€")["segments"] == 2  # € takes two units
    assert segment_info("ა" * 70)["segments"] == 1 and segment_info("ა" * 71)["segments"] == 2
    assert segment_info("ა" * 71)["per_segment"] == 67


def test_staff_cannot_edit_texts(client, setup):
    assert client.get("/api/v1/templates", headers=auth("alice")).status_code == 403
    assert client.get("/api/v1/templates").status_code == 401


def test_edit_preview_save_use_and_revert(admin, setup):
    listing = admin("GET", "/templates").json
    called_ka = next(t for t in listing["templates"] if (t["kind"], t["language"]) == ("called", "ka"))
    assert called_ka["custom"] is False and called_ka["preview"]["encoding"] == "UCS-2"

    preview = admin("POST", "/templates/preview", {"body": "{branch}: “{ticket}” – counter {counter}…"}).json
    assert preview["text"] == 'Test Branch: "A123" - counter 12...' and preview["encoding"] == "GSM-7"

    for bad, reason in (("ticket {ticket}", "starts with {branch}"), ("{branch} {pin}", "Unknown placeholder"),
                        ("{branch} 😀", "emoji"), ("{branch} " + "ბ" * 400, "parts")):
        response = admin("PUT", "/templates/called/en", {"body": bad})
        assert response.status_code == 400 and reason in response.json["message"], response.json

    from messaging import templates

    standard = templates.render(setup[0], "called", "en", ticket="A001", counter="2")  # (now cached)
    assert "please go to counter" in standard
    saved = admin("PUT", "/templates/called/en", {"body": "{branch}: {ticket} to desk {counter}, please."})
    assert saved.status_code == 200 and saved.json["custom"]
    db.session.expire_all()  # the next text reads the branch as a new request would
    assert templates.render(setup[0], "called", "en", ticket="A001", counter="2") == "Test Branch: A001 to desk 2, please."
    reverted = admin("DELETE", "/templates/called/en").json
    assert reverted["custom"] is False and "please go to counter" in reverted["body"]
    db.session.expire_all()
    assert templates.render(setup[0], "called", "en", ticket="A001", counter="2") == standard
    assert admin("PUT", "/templates/nonsense/en", {"body": "{branch}"}).status_code == 400


def test_test_send_goes_through_the_outbox(admin, setup):
    setup[0].country = "GE"
    db.session.commit()
    response = admin("POST", "/templates/test", {"body": "{branch}: test {ticket}", "phone": "555 12 34 56"})
    assert response.status_code == 202 and response.json["to"] == KA
    row = db.session.scalar(select(OutboxMessage))
    assert (row.kind, row.body) == ("test", "Test Branch: test A123")  # as previewed: at its longest


def test_correction_broadcast(admin, setup, clock):
    branch = setup[0]
    for number, kind in (("+995555000001", "called"), ("+995555000002", "called"), ("+995555000001", "called"),
                         ("+995555000003", "welcome")):
        ident = outbox.enqueue(number, "Test Branch: counter 9", kind, branch_id=branch.id).id
        row = db.session.get(OutboxMessage, ident)
        row.status, row.sent_at = "sent", clock.now()
    db.session.commit()
    window = {"kind": "called", "from": (START - timedelta(hours=1)).isoformat(), "to": (START + timedelta(hours=1)).isoformat()}
    assert admin("POST", "/corrections/preview", window).json["recipients"] == 2
    sent = admin("POST", "/corrections", {**window, "body": "Sorry: it is counter 3, not 9."})
    assert sent.status_code == 202 and sent.json["queued"] == 2
    corrections = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "correction")).all()
    assert sorted(m.to for m in corrections) == ["+995555000001", "+995555000002"]
    assert corrections[0].body == "Test Branch: Sorry: it is counter 3, not 9."
    bad = admin("POST", "/corrections", {**window, "to": window["from"], "body": "x"})
    assert bad.status_code == 400


def test_texts_page_for_admins_only(client, setup, admin):
    from .helpers import csrf_token

    page = client.get("/staff/login")
    client.post("/staff/login", data={"username": "root", "password": "correct horse", "csrf_token": csrf_token(page.text)})
    assert client.get("/staff/admin/texts").status_code == 200


def test_the_editor_warns_past_the_parts_planned_and_still_saves(admin, setup):
    def preview(body, kind, language):
        response = admin("POST", "/templates/preview", {"body": body, "kind": kind, "language": language})
        assert response.status_code == 200, response.json
        return response.json

    short = preview("{branch}: ticket {ticket}, counter {counter}.", "called", "en")
    assert (short["segments"], short["allowed"]) == (1, 1) and "warning" not in short
    two_parts = "{branch}: ticket {ticket}, please go to counter {counter} now. " + "Thank you for waiting. " * 5
    called = preview(two_parts, "called", "en")  # "go to counter" is planned for one part in English
    assert (called["segments"], called["allowed"]) == (2, 1) and "takes 2 parts" in called["warning"]
    assert "warning" not in preview(two_parts, "reminder", "en")  # two parts are planned for a reminder
    # Filled at its longest: the appointment's date and time, the longest service name, a 12-letter name.
    reminder = preview("{branch}: {time} {service} {code} {name}", "reminder", "ka")
    # (the date as a Georgian reader gets it: weekday, day, month, 24-hour time)
    assert re.fullmatch(r"Test Branch: \w{3} \d{1,2} \w{3} \d\d:\d\d Service [AB] \w{6} ალექსანდრინე", reminder["text"])

    georgian = "{branch}: " + "ბილეთი {ticket}, " * 10  # 143 characters
    saved = admin("PUT", "/templates/welcome/ka", {"body": georgian})
    assert saved.status_code == 200 and saved.json["custom"] and "takes 3 parts" in saved.json["warning"]
    listing = admin("GET", "/templates").json["templates"]
    warned = {(t["kind"], t["language"]) for t in listing if "warning" in t["preview"]}
    assert warned == {("welcome", "ka")}  # the branch's own text; every standard wording fits
    assert admin("POST", "/templates/preview", {"body": "{branch}", "kind": "welcome"}).status_code == 400
