"""The gateway against modems as the field has them, over the virtual modem's real pty: every
modem profile on SQLite and PostgreSQL, emoji and poison texts, SIMs that refuse their PIN,
ports that move, long device paths, a failing modem set aside while another sends, the rate."""
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from core.extensions import db
from hardware.gateway import Gateway
from hardware.virtual_modem import PROFILES, VirtualModem
from hardware.vmodem.memories import Stored
from messaging import outbox
from messaging.models import InboxMessage, InboxQuarantine, ModemStatus, OutboxMessage

from .modem_helpers import JA, KA, RawPort, wait_until

FAST = {"MODEM_SWEEP_SECONDS": 0.5, "MODEM_HEALTH_SECONDS": 0.5, "MODEM_RECONNECT_MAX_SECONDS": 0.5,
        "OUTBOX_RETRY_SECONDS": 0.1}


@pytest.fixture
def fast_db_app(any_db_app):
    any_db_app.config.update(FAST)
    return any_db_app


@pytest.fixture
def fast(app):
    app.config.update(FAST)
    return app


def row(message_id):
    db.session.rollback()
    return db.session.get(OutboxMessage, message_id)


def status(gateway):
    db.session.rollback()
    return db.session.get(ModemStatus, gateway.name)


def inbox_bodies():
    db.session.rollback()
    return [m.body for m in db.session.scalars(select(InboxMessage).order_by(InboxMessage.id))]


def running(app, modem, **settings):
    return Gateway(app, port=modem.port, **settings).start()


# --- every profile, both databases ---------------------------------------------------------

@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_sends_receives_and_survives_an_emoji(fast_db_app, tmp_path, profile):
    with VirtualModem(tmp_path / "ttyVM0", latency=0, profile=profile) as vm:
        gateway = running(fast_db_app, vm)
        try:
            texts = ["Seed Clinic: ticket A012, 3 ahead.", "Seed Clinic: 受付番号 A012 です。",
                     "Seed Clinic: " + "ბილეთი A012, თქვენამდე 3 ადამიანია. " * 3]
            ids = [outbox.enqueue(KA, text, "test").id for text in texts]
            final = ("sent", "delivered")
            wait_until(lambda: all(row(i).status in final for i in ids), timeout=20, message="all sent")
            assert [m["body"] for m in vm.messages_for(KA)] == texts
            vm.inject(KA, "Thanks 👍")
            vm.inject(JA, "少し遅れます🙏" * 12)  # UCS-2, two parts, emoji as surrogate pairs
            wait_until(lambda: len(inbox_bodies()) == 2, timeout=20, message="both replies stored")
            assert sorted(inbox_bodies()) == sorted(["Thanks 👍", "少し遅れます🙏" * 12])
            after = outbox.enqueue(KA, "Seed Clinic: please go to counter 3.", "test").id
            wait_until(lambda: row(after).status in final, timeout=20, message="texting goes on")
            assert status(gateway).state == "ready" and gateway.connections == 1
            wait_until(lambda: not any(vm.storage[m] for m in ("SM", "ME")), message="modem memory emptied")
        finally:
            gateway.stop()


@pytest.mark.parametrize("profile", ["huawei", "default"])
def test_a_status_line_before_a_stored_text_is_not_taken_for_it(fast_db_app, tmp_path, profile, monkeypatch):
    """A line the modem sends just before its answer to AT+CMGR (a Huawei stick's ^RSSI when the
    signal changes) lands among the answer's lines: the text is still the line after +CMGR's
    header, stored, not quarantined, and the modem's memory emptied."""
    # The text must come by its +CMTI and be read with +CMGR: not picked up by the sweep that
    # reads the modem's memories (+CMGL) as the gateway connects (on a loaded machine the text
    # came before that first sweep, which read it), nor by a later one.
    monkeypatch.setitem(fast_db_app.config, "MODEM_SWEEP_SECONDS", 3600)
    with VirtualModem(tmp_path / "ttyVM0", latency=0, profile=profile) as vm:
        gateway = running(fast_db_app, vm)
        try:
            wait_until(lambda: status(gateway) is not None and status(gateway).state == "ready", timeout=20,
                       message="gateway ready")
            wait_until(lambda: gateway._next_sweep > 0, timeout=20, message="the first sweep done")
            vm.status_line_before_next_answer("+CMGR", "^RSSI: 14")
            vm.inject(KA, "Running late 🙏")
            wait_until(lambda: inbox_bodies() == ["Running late 🙏"], timeout=20, message="the reply stored")
            db.session.rollback()
            assert db.session.scalar(select(InboxQuarantine.id)) is None
            assert vm._line_before_answer is None  # the line was sent, before a +CMGR's answer
            wait_until(lambda: not any(vm.storage[m] for m in ("SM", "ME")), message="modem memory emptied")
        finally:
            gateway.stop()


# --- nothing received can stop the gateway ---------------------------------------------------

def test_a_poison_text_is_quarantined_deleted_and_texting_goes_on(fast, tmp_path):
    with VirtualModem(tmp_path / "ttyVM0", latency=0, profile="sim800") as vm:
        poison = "07914477580106F5" "04" "0C91995555214365" "0000" "FFFFFF"  # cut short: no timestamp, no text
        vm.storage["SM"][5] = Stored(0, poison, 20, KA, "", datetime.now(timezone.utc))
        gateway = running(fast, vm)
        try:
            wait_until(lambda: db.session.scalar(select(InboxQuarantine)) is not None or db.session.rollback(),
                       message="quarantined")
            kept = db.session.scalar(select(InboxQuarantine))
            assert kept.pdu == poison and kept.memory == "SM" and kept.sender == KA and kept.error
            wait_until(lambda: 5 not in vm.storage["SM"], message="deleted from the modem")
            vm.inject(KA, "C")
            sent = outbox.enqueue(KA, "Seed Clinic: still texting", "test").id
            wait_until(lambda: row(sent).status == "delivered", message="texting goes on")
            wait_until(lambda: "C" in inbox_bodies(), message="next reply stored")
            assert gateway.connections == 1  # never reconnected over it
        finally:
            gateway.stop()


# --- SIMs ---------------------------------------------------------------------------------------

def test_a_refused_pin_is_never_sent_again_not_even_after_a_restart(fast, tmp_path):
    with VirtualModem(tmp_path / "ttyVM0", latency=0, pin="1234") as vm:
        gateway = running(fast, vm, pin="0000")
        try:
            wait_until(lambda: status(gateway) and status(gateway).state == "pin_rejected", message="pin rejected")
            time.sleep(2.5)  # several reconnect rounds at 0.5 s
            assert vm.pin_attempts == 1 and vm.pin_attempts_left == 2
            assert "MODEM_PIN" in status(gateway).last_error
        finally:
            gateway.stop()
        again = running(fast, vm, pin="0000")  # restarted with the same wrong PIN
        try:
            time.sleep(1.5)
            assert vm.pin_attempts == 1 and status(again).state == "pin_rejected"
        finally:
            again.stop()
        fixed = running(fast, vm, pin="1234")  # the configuration changed: one try
        try:
            wait_until(lambda: status(fixed).state == "ready", message="ready with the right PIN")
            assert vm.pin_attempts == 2
        finally:
            fixed.stop()


def test_a_sim_that_needs_its_puk_or_is_missing_is_said_so(fast, tmp_path):
    with VirtualModem(tmp_path / "ttyVM0", latency=0, pin="1234") as vm:
        port = RawPort(vm.port)
        for _ in range(3):
            port.command('AT+CPIN="9999"')
        port.close()
        gateway = running(fast, vm, pin="1234")
        try:
            wait_until(lambda: status(gateway) and status(gateway).state == "puk_required", message="PUK")
            assert vm.pin_attempts == 3  # the gateway sent nothing to a locked SIM
        finally:
            gateway.stop()
    with VirtualModem(tmp_path / "ttyVM1", latency=0, no_sim=True) as vm:
        gateway = running(fast, vm)
        try:
            wait_until(lambda: status(gateway) and status(gateway).state == "no_sim", message="no SIM")
        finally:
            gateway.stop()


# --- ports -----------------------------------------------------------------------------------

def test_a_modem_that_comes_back_on_another_port_is_found_by_its_imei(fast, tmp_path):
    fast.config["MODEM_SEARCH_PATHS"] = [str(tmp_path / "ttyUSB*")]
    with VirtualModem(tmp_path / "other-ttyUSB", latency=0, imei="490154203237518"):  # another modem nearby
        with VirtualModem(tmp_path / "ttyUSB0", latency=0, imei="356938035643809") as vm:
            gateway = running(fast, vm)
            try:
                first = outbox.enqueue(KA, "Seed: one", "test").id
                wait_until(lambda: row(first).status == "delivered", message="first text")
                vm.move(tmp_path / "ttyUSB2")  # a USB reset: the same modem, another name
                second = outbox.enqueue(KA, "Seed: two", "test").id
                wait_until(lambda: row(second).status == "delivered", timeout=20, message="found again")
                assert gateway.port == str(tmp_path / "ttyUSB2") and status(gateway).imei == "356938035643809"
            finally:
                gateway.stop()


def test_a_modem_named_by_imei_is_found_wherever_it_is(fast, tmp_path):
    fast.config["MODEM_SEARCH_PATHS"] = [str(tmp_path / "tty*")]
    with VirtualModem(tmp_path / "ttyACM3", latency=0, imei="356938035643809") as vm:
        gateway = Gateway(fast, port="imei:356938035643809").start()
        try:
            sent = outbox.enqueue(KA, "Seed: hello", "test").id
            wait_until(lambda: row(sent).status == "delivered", message="sent through the modem found")
            assert gateway.port == vm.port
        finally:
            gateway.stop()


def test_a_200_character_device_path_works_on_both_databases(fast_db_app, tmp_path):
    deep = tmp_path / "serial" / "by-id"
    name = "usb-HUAWEI_Technology_HUAWEI_Mobile_" + "0123456789ABCDEF" * 12 + "-if00-port0"
    link = deep / name[: 200 - len(str(deep)) - 1]
    assert len(str(link)) == 200
    with VirtualModem(link, latency=0) as vm:
        gateway = running(fast_db_app, vm)
        try:
            sent = outbox.enqueue(KA, "Seed: long path", "test").id
            wait_until(lambda: row(sent).status == "delivered", message="sent")
            assert len(gateway.name) <= 40 and row(sent).sent_by == gateway.name
            assert status(gateway).port == str(link)
        finally:
            gateway.stop()


# --- several modems, rate ---------------------------------------------------------------------

def test_a_modem_failing_three_sends_is_set_aside_while_the_other_sends(fast, tmp_path, clock):
    with VirtualModem(tmp_path / "ttyA", latency=0, imei="356938035643809") as bad, \
            VirtualModem(tmp_path / "ttyB", latency=0, imei="490154203237518") as good:
        bad.fail_next_sends(100, code=500)
        failing = running(fast, bad)
        ids = [outbox.enqueue(KA, f"Seed: text {i}", "test").id for i in range(6)]
        wait_until(lambda: status(failing) and status(failing).state == "cooling", message="set aside")
        assert status(failing).failed_in_a_row == 3 and status(failing).cooling_until is not None
        clock.advance(minutes=1)  # the refused texts' retry time comes
        helper = running(fast, good)
        try:
            wait_until(lambda: all(row(i).status == "delivered" for i in ids), timeout=20,
                       message=lambda: f"all delivered: {[(row(i).status, row(i).last_error, row(i).policy_note) for i in ids]}")
            assert len(good.messages_for(KA)) == 6 and bad.messages_for(KA) == []
            assert {row(i).sent_by for i in ids} == {helper.name}
        finally:
            failing.stop()
            helper.stop()


def test_the_modem_rate_paces_sends(fast, tmp_path):
    with VirtualModem(tmp_path / "ttyVM0", latency=0) as vm:
        ids = [outbox.enqueue(KA, f"Seed: paced {i}", "test").id for i in range(4)]
        started = time.monotonic()
        gateway = running(fast, vm, rate_per_minute=120)  # one part every 0.5 s
        try:
            wait_until(lambda: all(row(i).status == "delivered" for i in ids), timeout=20, message="all sent")
            assert time.monotonic() - started >= 1.5
        finally:
            gateway.stop()


def test_an_emoji_reply_gets_the_normal_answer_and_texting_goes_on(fast, setup, vm):
    gateway = running(fast, vm)
    try:
        vm.inject(KA, "😀")
        wait_until(lambda: inbox_bodies() == ["😀"], message="stored as the emoji")

        def answered():
            db.session.rollback()
            return db.session.scalar(select(OutboxMessage).where(OutboxMessage.to == KA))

        answer = wait_until(answered, message="the router's answer")  # handled right after the store
        assert answer.kind == "unknown_ack"  # what any text staff must read gets
        wait_until(lambda: row(answer.id).status == "delivered", message="the answer went out")
        db.session.rollback()
        stored = db.session.scalar(select(InboxMessage))
        assert (stored.status, stored.outcome) == ("unhandled", "to staff")
    finally:
        gateway.stop()


def test_a_long_text_whose_later_part_failed_is_resent_whole_and_flagged(fast, vm, clock):
    gateway = running(fast, vm)
    try:
        wait_until(lambda: gateway.state == "ready", message="ready")
        vm.fail_next_sends(1, code=500, after=1)  # part 1 goes, part 2 is refused
        long = "Seed Clinic: " + "your appointment details follow. " * 8  # GSM-7, two parts
        sent = outbox.enqueue(KA, long, "test").id
        wait_until(lambda: row(sent).attempts == 1 and row(sent).status == "queued", message="refused once")
        assert row(sent).possible_duplicate and "1 of 2 parts had gone out" in row(sent).last_error
        clock.advance(minutes=1)
        wait_until(lambda: row(sent).status == "delivered", message="resent whole")
        vm.fail_next_sends(1, code=500)  # refused before anything went: no duplicate possible
        short = outbox.enqueue(KA, "Seed Clinic: short", "test").id
        wait_until(lambda: row(short).last_error is not None, message="short refused")
        assert not row(short).possible_duplicate
    finally:
        gateway.stop()


@pytest.mark.parametrize("profile", ["default", "sim800"])
def test_an_empty_slot_is_nothing_there_not_a_lost_modem(tmp_path, profile):
    """A notification for a text the sweep already took points at an empty slot: +CMS ERROR 321
    (or its words) means "nothing there"; reading it gives nothing, deleting it is no error."""
    import queue

    from hardware import modem as modem_io

    with VirtualModem(tmp_path / "ttyVM0", latency=0, profile=profile) as vm:
        modem = modem_io.connect(vm.port, 115200, None, queue.Queue())
        try:
            memory = modem.memories[0]
            assert modem.read(42, memory) is None
            modem.delete(42, memory)
            assert modem.alive and modem.memories == (["SM"] if profile == "sim800" else ["SM", "ME", "SR"])
        finally:
            modem_io.close(modem)
