"""The outbox and inbox under field conditions: lanes, stale texts, notices raced by several
callers, every text kind on PostgreSQL, replies left unhandled by a crash, what phones send."""
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import engine
from core.extensions import db
from core.models import Customer, Ticket
from hardware.modem import decode_received
from hardware.pdu import deliver_pdus
from messaging import inbox, kinds, notify, outbox
from messaging.models import InboxMessage, InboxPart, OutboxMessage, TicketNotice

from .constants import START
from .helpers import make_branch_setup
from .modem_helpers import JA, KA


def consenting(phone=KA, **fields):
    customer = Customer(phone=phone, sms_consent=True, consent_at=START, created_at=START, **fields)
    db.session.add(customer)
    db.session.commit()
    return customer


def waiting_ticket(service, phone=KA):
    customer = consenting(phone)
    return engine.issue_ticket(service.id, customer_id=customer.id)


def fresh(model, ident):
    db.session.rollback()
    return db.session.get(model, ident)


# --- lanes -------------------------------------------------------------------------------------

def test_every_kind_has_a_lane_and_fits_its_column():
    assert set(kinds.KINDS) >= {"welcome", "position", "next", "called", "no_show", "survey", "reminder", "reply",
                                "test", "correction", "appointment_confirmed", "appointment_cancelled"}
    for kind in kinds.KINDS.values():
        assert kind.lane in kinds.LANES
        assert len(kind.name) <= OutboxMessage.__table__.c.kind.type.length
        assert len(kind.name) <= TicketNotice.__table__.c.kind.type.length
    order = sorted(kinds.LANES.values(), key=lambda lane: -lane.rank)
    assert [lane.name for lane in order] == ["call", "queue", "reply", "reminder", "bulk"]


def test_go_to_counter_is_claimed_before_a_backlog_of_reminders(app, setup):
    for i in range(200):
        outbox.enqueue(f"+99555512{i:04d}", f"Reminder {i}", "reminder")
    outbox.enqueue(JA, "Reply", "reply")
    called = outbox.enqueue(KA, "Please go to counter 3", "called")
    consenting(KA)
    for i in range(200):
        consenting(f"+99555512{i:04d}")
    first, second = outbox.claim("gw"), outbox.claim("gw")
    assert (first["id"], first["kind"]) == (called.id, "called")
    assert second["kind"] == "reply"
    assert outbox.claim("gw")["kind"] == "reminder"


def test_unknown_kind_is_refused_where_it_is_written(app):
    with pytest.raises(KeyError, match="kinds.py"):
        outbox.enqueue(KA, "hello", "mystery")
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0


# --- stale texts -------------------------------------------------------------------------------

def test_a_position_text_for_a_ticket_already_called_is_cancelled_as_stale(app, setup):
    _, (a, _b), (c1, _c2), _ = setup
    ticket = waiting_ticket(a)
    welcome = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "welcome"))
    assert welcome is not None
    engine.call_next(c1.id)  # called before the modem got to the welcome
    engine.complete(ticket.id)
    claimed = outbox.claim("gw")
    assert claimed is None or claimed["kind"] not in ("welcome", "called")
    row = fresh(OutboxMessage, welcome.id)
    assert row.status == "cancelled" and row.policy_note.startswith("stale: ticket A001 is completed")
    called = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "called"))
    assert called.status == "cancelled" and "stale" in called.policy_note


def test_a_reminder_held_by_quiet_hours_past_the_appointment_is_dropped(app, setup, clock):
    from core.models import Appointment
    branch, (a, _b), _, _ = setup
    consenting(KA)
    night = START.replace(hour=21, minute=0)  # the branch is on UTC; quiet 20:00-09:00
    clock.set(night)

    def reminder_for(starts_at):
        appointment = Appointment(branch_id=branch.id, service_id=a.id, starts_at=starts_at, created_at=night)
        db.session.add(appointment)
        db.session.commit()
        return outbox.enqueue(KA, f"{branch.sender_name}: see you at {starts_at:%H:%M}", "reminder",
                              branch_id=branch.id, appointment_id=appointment.id).id

    early = reminder_for(night + timedelta(hours=10, minutes=30))  # 07:30, before quiet hours end
    later = reminder_for(night + timedelta(hours=14))  # 11:00: worth holding until 09:00
    assert outbox.claim("gw") is None
    assert (fresh(OutboxMessage, early).status, fresh(OutboxMessage, later).status) == ("cancelled", "queued")
    assert "would have begun" in fresh(OutboxMessage, early).policy_note
    assert fresh(OutboxMessage, later).policy_note.startswith("quiet hours")


# --- notices raced by several callers ----------------------------------------------------------

@pytest.mark.parametrize("callers", [8])
def test_racing_callers_queue_each_notice_once(any_db_app, callers):
    branch, (a, _b), _, _ = make_branch_setup()
    ticket_id = waiting_ticket(a).id
    db.session.execute(TicketNotice.__table__.delete())  # as if the welcome had not been decided yet
    db.session.execute(OutboxMessage.__table__.delete())
    db.session.commit()
    barrier, errors = threading.Barrier(callers), []

    def race():
        with any_db_app.app_context():
            try:
                barrier.wait()
                notify.send_once(db.session.get(Ticket, ticket_id), "next")
            except Exception as error:  # noqa: BLE001
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=race) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    db.session.rollback()
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "next")) == 1
    notice = db.session.get(TicketNotice, (ticket_id, "next"))
    assert notice.outbox_id is not None


def test_one_bad_stored_number_does_not_cost_the_others_their_text(app, setup):
    branch, (a, _b), (c1, _), _ = setup
    branch.messaging = {"position_threshold": 5}
    db.session.commit()
    tickets = [waiting_ticket(a, phone) for phone in (KA, "+995555123457", "+995555123458")]
    bad = db.session.get(Customer, tickets[1].customer_id)
    bad.phone = "+99"  # a number stored before validation was as strict as it is now
    db.session.execute(TicketNotice.__table__.delete())
    db.session.commit()
    engine.call_next(c1.id)
    db.session.rollback()
    texted = set(db.session.scalars(select(OutboxMessage.to).where(OutboxMessage.kind.in_(("next", "position")))))
    assert texted == {"+995555123458"}  # the one after the bad number still got "nearly your turn"


# --- every kind through the outbox, on PostgreSQL too ----------------------------------------

def test_every_text_kind_goes_through_the_outbox(any_db_app):
    branch, (a, _b), _, _ = make_branch_setup()
    customer = consenting(KA)
    ticket = engine.issue_ticket(a.id, customer_id=customer.id)
    db.session.execute(TicketNotice.__table__.delete())
    db.session.execute(OutboxMessage.__table__.delete())
    db.session.commit()
    for name in kinds.KINDS:
        outbox.enqueue(KA, f"{branch.sender_name}: {name}", name, branch_id=branch.id,
                       ticket_id=ticket.id if kinds.KINDS[name].ticket_states else None)
    long_gateway = "gw-" + "x" * 70
    claimed = [row["kind"] for row in iter(lambda: outbox.claim(long_gateway, lease_seconds=60), None)]
    db.session.rollback()
    rows = db.session.scalars(select(OutboxMessage)).all()
    assert {r.kind for r in rows} == set(kinds.KINDS)
    assert all(r.status in ("sending", "cancelled", "suppressed", "queued") for r in rows)
    assert {"called", "no_show", "survey"} <= {r.kind for r in rows if r.status == "cancelled"}  # not true of a waiting ticket
    assert "appointment_confirmed" in claimed and "appointment_cancelled" in claimed


# --- replies left unhandled by a crash --------------------------------------------------------

def test_a_reply_stored_before_a_crash_is_handled_once_at_start(app, setup):
    from messaging.signals import sms_received
    from messaging import router

    sms_received.disconnect(router.on_sms_received, sender=app)  # the process "dies" after storing
    try:
        inbox_id = inbox.store_received(KA, "STOP", START, gateway="gw")
    finally:
        sms_received.connect(router.on_sms_received, sender=app)
    assert fresh(InboxMessage, inbox_id).status == "new"
    assert inbox.handle_unhandled() == 1  # the scheduler's job, run at start
    message = fresh(InboxMessage, inbox_id)
    assert (message.status, message.outcome) == ("handled", "opted out")
    assert inbox.handle_unhandled() == 0
    assert router.handle(inbox_id) is None  # exactly once
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "stop_confirm")) == 1


def test_a_claim_left_by_a_dead_handler_is_taken_again_after_its_lease(app, clock):
    from messaging.signals import sms_received
    from messaging import router

    sms_received.disconnect(router.on_sms_received, sender=app)
    try:
        inbox_id = inbox.store_received(KA, "HELP", START, gateway="gw")
        assert inbox.claim_for_handling(inbox_id)  # a handler took it and died
    finally:
        sms_received.connect(router.on_sms_received, sender=app)
    assert not inbox.claim_for_handling(inbox_id) and inbox.handle_unhandled() == 0
    clock.advance(minutes=6)
    assert inbox.handle_unhandled() == 1
    assert fresh(InboxMessage, inbox_id).outcome == "help sent"


# --- what phones send -------------------------------------------------------------------------

def test_emoji_halves_are_joined_and_lone_halves_replaced():
    assert inbox.whole_characters("ok \ud83d\udc4d")[0] == "ok 👍"
    text, lone = inbox.whole_characters("a\ud83d")
    assert text == "a\ufffd" and lone == {1: 0xD83D}


def test_an_emoji_split_between_two_parts_is_whole_when_joined(app):
    first, lone_first = inbox.whole_characters("x" * 66 + "\ud83d")
    second, lone_second = inbox.whole_characters("\ude00 and the rest")
    inbox.store_received(JA, first, None, concatenation=(7, 2, 1), gateway="g", surrogates=lone_first)
    inbox.store_received(JA, second, None, concatenation=(7, 2, 2), gateway="g", surrogates=lone_second)
    db.session.rollback()
    assert db.session.scalar(select(InboxMessage.body)) == "x" * 66 + "😀 and the rest"
    assert all(part.message_id for part in db.session.scalars(select(InboxPart)))


@pytest.mark.parametrize("text", [
    "A" * 152 + "@" + "B" * 20,  # '@' ends the first part of two, on an octet boundary
    "Z" * 159 + "@",  # one part, 160 septets, ending in '@'
    "@" * 170,
    "ESC \x1b and DEL-free control \x0c",
])
def test_gsm7_at_signs_and_control_characters_survive_decoding(text):
    pieces = []
    for pdu, _length in deliver_pdus(KA, text, START, 5, "+447785016005"):
        pieces.append(decode_received(pdu)["text"])
    assert "".join(pieces) == text
