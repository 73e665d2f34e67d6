"""/api/v1/health tells the truth: each reason for "degraded", made with rows and the clock."""
from datetime import timedelta

import pytest

from core.extensions import db
from messaging.models import InboxQuarantine, ModemStatus

from .constants import START
from .helpers import text


def health(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200, response.json
    return response.json


def reasons(client) -> list[str]:
    return [reason["reason"] for reason in health(client)["reasons"]]


def modem(clock, gateway="g1", state="ready", **fields) -> ModemStatus:
    now = clock.now()
    row = ModemStatus(gateway=gateway, port="/dev/ttyUSB0", state=state, state_since=now, updated_at=now, **fields)
    db.session.add(row)
    db.session.commit()
    return row


def still_reporting(row, clock):
    """The gateway publishes every MODEM_HEALTH_SECONDS: its row stays fresh."""
    row.updated_at = clock.now()
    db.session.commit()


def test_healthy_says_ok_and_keeps_its_keys(client, setup, clock):
    modem(clock, signal=20, network="MAGTI")
    text(setup[0], "called", now=clock.now())  # due this instant: not late
    text(setup[0], "reminder", now=clock.now() - timedelta(minutes=30))  # a reminder may wait an hour
    text(setup[0], "welcome", status="delivered", now=clock.now())
    body = health(client)
    assert body["status"] == "ok" and body["reasons"] == [] and body["database"] == "ok"
    assert {"status", "version", "database", "time", "modems", "outbox"} <= set(body)
    assert body["modems"][0] == dict(body["modems"][0], gateway="g1", state="ready", signal=20, network="MAGTI")
    assert body["outbox"]["by_status"] == dict(body["outbox"]["by_status"], queued=2, delivered=1, failed=0)
    assert body["outbox"]["by_lane"]["call"]["queued"] == 1 and body["outbox"]["by_lane"]["queue"]["delivered"] == 1
    call = body["outbox"]["backlog"][0]
    assert (call["lane"], call["queued"], call["due"], call["over"]) == ("call", 1, 1, False)


def test_nothing_at_all_is_ok(client, app):
    assert health(client)["status"] == "ok"


def test_modem_not_ready_for_longer_than_allowed(client, app, clock):
    row = modem(clock, state="no_network")
    assert reasons(client) == []  # a gateway reconnecting briefly is normal
    clock.advance(seconds=181)
    still_reporting(row, clock)
    body = health(client)
    assert body["status"] == "degraded" and [r["reason"] for r in body["reasons"]] == ["modem_not_ready"]
    assert body["reasons"][0]["gateway"] == "g1" and "no mobile network" in body["reasons"][0]["message"]
    app.config["MODEM_DEGRADED_AFTER_SECONDS"] = 600
    assert reasons(client) == []


@pytest.mark.parametrize(("state", "words"), [
    ("pin_rejected", "PIN rejected — fix MODEM_PIN"), ("puk_required", "SIM needs PUK"), ("no_sim", "no SIM")])
def test_a_sim_that_needs_a_person_degrades_at_once(client, app, clock, state, words):
    modem(clock, state=state)
    body = health(client)
    assert [r["reason"] for r in body["reasons"]] == ["modem_not_ready"] and words in body["reasons"][0]["message"]


def test_a_silent_gateway_is_degraded_but_a_stopped_one_is_not(client, app, clock):
    modem(clock, "quiet")
    modem(clock, "retired", state="stopped")
    clock.advance(seconds=app.config["MODEM_HEALTH_SECONDS"] * 3 + 1)
    body = health(client)
    assert [(r["reason"], r["gateway"]) for r in body["reasons"]] == [("modem_silent", "quiet")]
    assert {m["gateway"]: m["state"] for m in body["modems"]} == {"quiet": "silent", "retired": "stopped"}


def test_texts_waiting_longer_than_their_lane_allows(client, setup, clock):
    modem(clock)
    row = db.session.get(ModemStatus, "g1")
    text(setup[0], "called", now=clock.now())
    text(setup[0], "survey", now=clock.now(), send_after=clock.now() + timedelta(hours=1))  # not due yet
    clock.advance(minutes=2)
    still_reporting(row, clock)
    assert reasons(client) == []  # exactly the 2 minutes a call may wait
    clock.advance(seconds=61)
    still_reporting(row, clock)
    body = health(client)
    assert [r["reason"] for r in body["reasons"]] == ["lane_overdue"]
    assert body["reasons"][0] == dict(body["reasons"][0], lane="call", queued=1, oldest_wait_minutes=3, max_wait_minutes=2)
    assert "Calls to the counter: the oldest text has waited 3 min" in body["reasons"][0]["message"]


def test_no_gateway_running_with_late_texts(client, setup, clock):
    text(setup[0], "welcome", now=clock.now())
    assert reasons(client) == []
    clock.advance(minutes=6)
    assert reasons(client) == ["no_gateway", "lane_overdue"]
    message = health(client)["reasons"][0]["message"]
    assert message == "No modem gateway is running: texts are not going out."


@pytest.mark.parametrize(("fields", "words"), [
    ({"failed_in_a_row": 3}, "Modem g1: 3 sends failed in a row."),
    ({"state": "cooling", "cooling_until": START + timedelta(minutes=5)}, "cooling down until 09:05"),
])
def test_sends_failing_repeatedly(client, app, clock, fields, words):
    modem(clock, **fields)
    body = health(client)
    assert [r["reason"] for r in body["reasons"]] == ["sends_failing"] and words in body["reasons"][0]["message"]


def test_reconnecting_in_a_loop(client, app, clock):
    modem(clock, reconnects=4)
    assert reasons(client) == []
    db.session.get(ModemStatus, "g1").reconnects = 5
    db.session.commit()
    body = health(client)
    assert [r["reason"] for r in body["reasons"]] == ["reconnect_loop"]
    assert body["reasons"][0]["message"] == "Modem g1 lost its connection 5 times in the last hour."


def test_quarantined_text_in_the_last_day(client, setup, clock):
    db.session.add(InboxQuarantine(branch_id=setup[0].id, pdu="00", error="cannot decode", received_at=clock.now()))
    db.session.commit()
    body = health(client)
    assert [r["reason"] for r in body["reasons"]] == ["quarantine"] and body["reasons"][0]["count"] == 1
    clock.advance(hours=24, seconds=1)
    assert reasons(client) == []


def test_database_down_is_503(client, app, monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionError("database is gone")

    monkeypatch.setattr(db.session, "execute", refuse)
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json["status"] == "degraded" and response.json["database"] == "error: ConnectionError"


def test_the_health_answer_says_which_process_runs_the_scheduler(client, app):
    from core import leader

    assert health(client)["scheduler"] == {"active": None}  # nobody holds the lock: said, not judged
    lock = leader.lock_for(app, "scheduler")
    assert lock.acquire()
    try:
        body = health(client)
        assert body["scheduler"]["active"].startswith(leader.identity("scheduler")) and body["status"] == "ok"
    finally:
        lock.release()
    assert health(client)["scheduler"] == {"active": None}
