"""The modem settings page of a branch, with the real gateway on the virtual modem's pty: the
manager moves the port and the running gateway follows it, a wrong PIN is said so and never sent
again, a new PIN is tried once; bad input changes nothing; only the branch's managers may; the
PIN is never shown, returned, audited or logged."""
import logging
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from core import clock as core_clock
from core.audit import AuditEntry
from core.extensions import db
from core.models import ModemSetting
from core.settings import modem as modem_settings
from hardware.gateway import Gateway
from hardware.virtual_modem import VirtualModem
from messaging import outbox
from messaging.models import ModemStatus, OutboxMessage

from .conftest import RequestIsolatedClient
from .helpers import bearer, csrf_token, login, make_branch, make_staff, text
from .modem_helpers import KA, wait_until

FAST = {"MODEM_SWEEP_SECONDS": 0.5, "MODEM_HEALTH_SECONDS": 0.5, "MODEM_RECONNECT_MAX_SECONDS": 0.5}
SECRET_PIN = "86420975"  # the right PIN in the PIN test: it must appear nowhere
WRONG_PIN = "13579246"


@pytest.fixture
def fast_app(any_db_app):
    any_db_app.config.update(FAST)
    return any_db_app


@pytest.fixture
def system(fast_app):
    """Two branches on SQLite or PostgreSQL, a manager of each, a staff member of the first."""
    any_db_app = fast_app
    one, two = make_branch("Branch One"), make_branch("Branch Two", timezone="Asia/Tokyo")
    make_staff("mia", role="manager", branch=one)
    make_staff("bob", role="manager", branch=two)
    make_staff("alice", branch=one)
    db.session.commit()
    any_db_app.test_client_class = RequestIsolatedClient
    return {"app": any_db_app, "client": any_db_app.test_client(), "one": one, "two": two}


def running(app, modem, branch, **settings):
    gateway = Gateway(app, port=modem.port, branch_id=branch.id, **settings)
    gateway.settings_seconds = 0.2  # picks up a saved change within a fifth of a second
    return gateway.start()


def status(gateway):
    db.session.rollback()  # a fresh snapshot: the gateway commits from its own thread
    return db.session.get(ModemStatus, gateway.name)


def reported(gateway, state, port=None):
    found = status(gateway)
    return found is not None and found.state == state and (port is None or found.port == port)


def row(message_id):
    db.session.rollback()
    return db.session.get(OutboxMessage, message_id)


def setting(branch):
    db.session.rollback()
    return db.session.get(ModemSetting, branch.id)


def save(client, branch, **form):
    page = client.get(f"/admin/modem?branch={branch.id}")
    return client.post(f"/admin/modem?branch={branch.id}", data={"csrf_token": csrf_token(page.text), **form})


def page_text(client, branch):
    response = client.get(f"/admin/modem?branch={branch.id}")
    assert response.status_code == 200
    return response.text


# --- the port moves: the running gateway follows it -------------------------------------------

def test_a_new_port_saved_on_the_page_moves_the_running_gateway_and_nothing_is_lost(system):
    app, client, one = system["app"], system["client"], system["one"]
    with VirtualModem(None, latency=0) as first, VirtualModem(None, latency=0, imei="356938035643817") as second:
        assert first.port.startswith("/dev/") and first.port != second.port
        gateway = running(app, first, one)
        try:
            wait_until(lambda: reported(gateway, "ready", first.port), message="ready on the first modem")
            waiting = outbox.enqueue(KA, "Branch One: sent after the move", "test", branch_id=one.id,
                                     send_after=core_clock.now() + timedelta(minutes=1)).id
            login(client, "mia")
            before = page_text(client, one)
            assert first.port in before and "Seed Virtual" in before and 'class="sim sim-ready"' in before

            saved = save(client, one, port=second.port)
            assert saved.status_code == 302
            assert (setting(one).port, setting(one).version) == (second.port, 1)
            wait_until(lambda: reported(gateway, "ready", second.port), message="ready on the second modem")
            assert gateway.name == status(gateway).gateway  # the same gateway: its leases and sent texts stay its own

            app.extensions["seed.clock"].advance(minutes=2)  # the waiting text is due now
            wait_until(lambda: row(waiting).status == "delivered", message="the waiting text delivered")
            assert [m["body"] for m in second.messages_for(KA)] == ["Branch One: sent after the move"]
            assert first.messages_for(KA) == []
            after = page_text(client, one)
            assert second.port in after and 'id="f-port"' in after
            assert re.search(r'class="sent-today">1<', after)
            assert gateway.connections == 2 and status(gateway).reconnects == 0  # a restart, not a loss

            emptied = save(client, one, port="")  # back to the gateway's own configuration
            assert emptied.status_code == 302 and setting(one).port is None and setting(one).version == 2
            wait_until(lambda: reported(gateway, "ready", first.port), message="back on the configured modem")
        finally:
            gateway.stop()


def test_a_gateway_of_the_only_branch_follows_its_settings_and_starts_with_them(fast_app):
    """The embedded default serves every branch: with one branch, that branch's settings are its.
    A gateway that starts after they were saved uses them from its first connection."""
    app, one = fast_app, make_branch("The Only Branch")
    db.session.commit()
    with VirtualModem(None, latency=0) as configured, VirtualModem(None, latency=0, imei="356938035643817") as chosen:
        db.session.add(ModemSetting(branch_id=one.id, port=chosen.port, version=3, updated_at=core_clock.now()))
        db.session.commit()
        gateway = Gateway(app, port=configured.port).start()  # no branch: every branch's texts
        try:
            wait_until(lambda: reported(gateway, "ready", chosen.port), message="ready on the chosen modem")
            assert gateway.connections == 1
            sent = outbox.enqueue(KA, "Branch One: hello", "test", branch_id=one.id).id
            wait_until(lambda: row(sent).status == "delivered", message="delivered")
            assert configured.messages_for(KA) == [] and len(chosen.messages_for(KA)) == 1
        finally:
            gateway.stop()


def test_without_settings_the_gateway_keeps_its_configuration(system):
    app, one = system["app"], system["one"]
    with VirtualModem(None, latency=0) as vm:
        gateway = running(app, vm, one)
        try:
            wait_until(lambda: reported(gateway, "ready", vm.port), message="ready")
            time.sleep(0.6)  # several settings checks: nothing to follow
            assert gateway.connections == 1 and gateway.settings_version == 0
        finally:
            gateway.stop()


# --- the PIN: a refused one never again, a new one once -----------------------------------------

def test_a_wrong_pin_is_shown_never_sent_again_and_a_new_one_is_tried_once(system, caplog):
    caplog.set_level(logging.DEBUG)  # python-gsmmodem logs each command it writes at DEBUG
    app, client, one = system["app"], system["client"], system["one"]
    login(client, "mia")
    with VirtualModem(None, latency=0, pin=SECRET_PIN) as vm:
        gateway = running(app, vm, one)
        try:
            wait_until(lambda: reported(gateway, "pin_needed"), message="the SIM asks for its PIN")
            assert 'class="sim sim-pin_needed"' in page_text(client, one)

            assert save(client, one, pin=WRONG_PIN).status_code == 302
            wait_until(lambda: reported(gateway, "pin_rejected"), message="PIN rejected")
            time.sleep(1.5)  # several reconnect rounds at 0.5 s
            assert vm.pin_attempts == 1 and vm.pin_attempts_left == 2
            shown = page_text(client, one)
            assert 'class="sim sim-pin_rejected"' in shown and "The SIM refused the PIN" in shown
            assert "A PIN is set." in shown

            assert save(client, one, pin=WRONG_PIN).status_code == 302  # the same wrong PIN again: no change
            time.sleep(1.0)
            assert vm.pin_attempts == 1 and setting(one).version == 1

            assert save(client, one, pin=SECRET_PIN).status_code == 302  # typed anew: one try
            wait_until(lambda: reported(gateway, "ready"), message="ready with the right PIN")
            assert vm.pin_attempts == 2 and vm.pin_ok
            sent = outbox.enqueue(KA, "Branch One: the SIM works", "test", branch_id=one.id).id
            wait_until(lambda: row(sent).status == "delivered", message="delivered")
            shown = page_text(client, one)
            assert 'class="sim sim-ready"' in shown

            saved_json = client.get(f"/api/v1/admin/modem?branch={one.id}", headers=bearer("mia")).text
            refused = status(gateway).refused_pin
        finally:
            gateway.stop()
    assert refused and WRONG_PIN not in refused and SECRET_PIN not in refused
    assert '"pin_set":true' in saved_json.replace(" ", "")
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "settings.changed")).all()
    assert [entry.target for entry in audit] == ["modem:%d" % one.id] * 2
    assert [entry.detail["changed"] for entry in audit] == [["pin"], ["pin"]]
    for where, words in (("page", shown), ("JSON", saved_json), ("audit", repr([(e.target, e.detail) for e in audit])),
                         ("log", caplog.text)):
        assert SECRET_PIN not in words and WRONG_PIN not in words, f"the PIN is in the {where}"


def test_three_refused_pins_are_all_remembered(system):
    """A SIM locks after three wrong PINs: none of them is sent twice, whatever the order."""
    app, one = system["app"], system["one"]
    with VirtualModem(None, latency=0, pin="2468") as vm:
        gateway = running(app, vm, one)
        try:
            for tried, pin in enumerate(("1111", "2222"), start=1):
                modem_settings.update(one, {"pin": pin})
                wait_until(lambda: vm.pin_attempts == tried and reported(gateway, "pin_rejected"),
                           message=f"PIN {tried} refused")
            modem_settings.update(one, {"pin": "1111"})
            wait_until(lambda: gateway.settings_version == 3, message="the first wrong PIN again")
            time.sleep(1.0)
            assert vm.pin_attempts == 2 and vm.pin_attempts_left == 1  # not spent on a known wrong PIN
        finally:
            gateway.stop()


# --- bad input changes nothing -------------------------------------------------------------------

def test_bad_port_and_pin_on_the_page_are_field_errors_and_change_nothing(system):
    client, one = system["client"], system["one"]
    login(client, "mia")
    assert save(client, one, port="/dev/ttyUSB0", pin="1234").status_code == 302
    kept = (setting(one).port, setting(one).pin, setting(one).version)
    for port, pin in (("ttyUSB0", "12a4"), ("/dev/../etc/passwd", "123"), ("imei:12345", "123456789"),
                      ("/dev/" + "x" * 300, "12 34"), ("COM3; rm -rf /", "pin!")):
        refused = save(client, one, port=port, pin=pin)
        assert refused.status_code == 400, (port, pin)
        assert 'id="err-port"' in refused.text and 'id="err-pin"' in refused.text
        assert pin not in re.sub(r'name="csrf_token"[^>]*>', "", refused.text)  # never echoed
        assert (setting(one).port, setting(one).pin, setting(one).version) == kept
    assert len(db.session.scalars(select(AuditEntry)).all()) == 1
    by_id = "/dev/serial/by-id/usb-HUAWEI_Technology_HUAWEI_Mobile_" + "0123456789ABCDEF" * 10 + "-if00-port0"
    assert len(by_id) > 200
    assert save(client, one, port=by_id).status_code == 302
    assert setting(one).port == by_id and setting(one).pin == "1234" and setting(one).version == 2
    assert save(client, one, port="imei:356938035643809", pin_remove="on").status_code == 302
    assert (setting(one).port, setting(one).pin, setting(one).version) == ("imei:356938035643809", None, 3)


def test_bad_json_is_refused_per_field_and_changes_nothing(system):
    client, one = system["client"], system["one"]
    headers = bearer("mia")
    url = f"/api/v1/admin/modem?branch={one.id}"
    assert client.put(url, json={"port": "/dev/ttyACM0", "pin": "0000"}, headers=headers).status_code == 200
    for bad, fields in (({"port": "/dev/tty USB0"}, {"port"}), ({"pin": 1234}, {"pin"}),
                        ({"port": 5, "pin": "12"}, {"port", "pin"}), ({"port": "imei:3569380356438090"}, {"port"}),
                        ({"pin": "١٢٣٤"}, {"pin"})):
        response = client.put(url, json=bad, headers=headers)
        assert response.status_code == 400 and set(response.json["detail"]) == fields, (bad, response.json)
        assert (setting(one).port, setting(one).pin, setting(one).version) == ("/dev/ttyACM0", "0000", 1)
    shown = client.get(url, headers=headers).json
    assert shown["settings"] == dict(shown["settings"], branch=one.id, port="/dev/ttyACM0", pin_set=True, version=1)
    assert "0000" not in str(shown)
    unchanged = client.put(url, json={"port": "/dev/ttyACM0"}, headers=headers)
    assert unchanged.status_code == 200 and unchanged.json["settings"]["version"] == 1  # no change: no restart
    cleared = client.put(url, json={"pin": ""}, headers=headers).json["settings"]
    assert cleared["pin_set"] is False and cleared["version"] == 2


def test_the_counts_are_todays_in_the_branch(system, clock):
    """Sent today by each gateway, failed today in the branch (Tokyo's day, not UTC's)."""
    client, two = system["client"], system["two"]
    gateway = "gw-test"
    db.session.add(ModemStatus(gateway=gateway, branch_id=two.id, port="/dev/ttyUSB0", state="ready", signal=17,
                               network="Docomo", sent_total=0, updated_at=clock.now()))
    db.session.commit()
    today = clock.now()  # 18:00 in Tokyo: its day started at 15:00 UTC the day before
    text(two, status="delivered", sent_by=gateway, sent_at=today - timedelta(hours=2), now=today - timedelta(hours=3))
    text(two, status="sent", sent_by=gateway, sent_at=today - timedelta(hours=20), now=today - timedelta(hours=20))
    text(two, status="failed", failed_at=today - timedelta(hours=1), now=today - timedelta(hours=2))
    text(two, status="failed", failed_at=today - timedelta(hours=19), now=today - timedelta(hours=19))
    text(system["one"], status="failed", failed_at=today, now=today)
    shown = client.get(f"/api/v1/admin/modem?branch={two.id}", headers=bearer("bob")).json
    assert shown["failed_today"] == 1
    assert shown["gateways"] == [dict(shown["gateways"][0], gateway=gateway, sent_today=1, state="ready", signal=17,
                                      sim="ready", network="Docomo", follows_settings=True)]
    login(client, "bob")
    page = page_text(client, two)
    assert 'class="sent-today">1<' in page and "Texts of this branch that failed today: 1" in page
    assert "Asia/Tokyo" in page and re.search(r"class=\"last-seen\">Mar 2, 2026, 6:00:00\W*PM<", page)  # Tokyo time


# --- who may ---------------------------------------------------------------------------------------

def test_staff_get_403_and_another_branchs_manager_404(system):
    client, one = system["client"], system["one"]
    for username, expected in (("alice", 403), ("bob", 404)):
        login(client, username)
        assert client.get(f"/admin/modem?branch={one.id}").status_code == expected
        token = csrf_token(client.get("/staff/password").text)
        posted = client.post(f"/admin/modem?branch={one.id}", data={"csrf_token": token, "port": "/dev/ttyUSB9"})
        assert posted.status_code == expected
        headers = bearer(username)
        assert client.get(f"/api/v1/admin/modem?branch={one.id}", headers=headers).status_code == expected
        assert client.put("/api/v1/admin/modem", json={"branch": one.id, "port": "/dev/ttyUSB9"},
                          headers=headers).status_code == expected
        client.post("/staff/logout", data={"csrf_token": token})
    assert setting(one) is None
    assert db.session.scalars(select(AuditEntry)).all() == []


def test_the_command_line_changes_the_same_settings(system):
    runner, one = system["app"].test_cli_runner(), system["one"]
    changed = runner.invoke(args=["modem", "settings", str(one.id), "--port", "imei:356938035643809", "--pin"],
                            input=SECRET_PIN + "\n")
    assert changed.exit_code == 0, changed.output
    assert "port imei:356938035643809, PIN set, version 1." in changed.output and SECRET_PIN not in changed.output
    assert (setting(one).port, setting(one).pin) == ("imei:356938035643809", SECRET_PIN)
    refused = runner.invoke(args=["modem", "settings", str(one.id), "--port", "/dev/tty USB0"])
    assert refused.exit_code != 0 and "Give a device" in refused.output and setting(one).version == 1
    entry = db.session.scalars(select(AuditEntry)).one()
    assert entry.actor == "cli" and SECRET_PIN not in repr(entry.detail)
