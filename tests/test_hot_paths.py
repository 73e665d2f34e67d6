"""What keeps a check-in, a call and the gateway's claim cheap (issue 15): the same outcome, with
less work on the one thread that serves every request under gevent."""
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from core import engine
from core.database import write_transaction
from core.extensions import db
from core.models import Customer, Ticket
from core.queries import positions
from messaging import kinds, outbox, policy
from messaging.models import OutboxMessage, TicketNotice
from messaging.outbox import SET_ASIDE_PER_TRANSACTION

from .constants import START
from .helpers import make_branch, make_branch_setup, make_service
from .modem_helpers import KA

STRANGER = "+995555000009"  # never said yes to texts


class Transactions:
    """Counts the write transactions committed (SQLite's BEGIN IMMEDIATE; a commit on PostgreSQL)."""

    def __init__(self):
        self.writes = 0
        self.commits = 0

    def __enter__(self):
        event.listen(db.engine, "before_cursor_execute", self._statement)
        event.listen(db.engine, "commit", self._commit)
        return self

    def __exit__(self, *exc):
        event.remove(db.engine, "before_cursor_execute", self._statement)
        event.remove(db.engine, "commit", self._commit)

    def _statement(self, _conn, _cursor, statement, *_args):
        self.writes += statement.strip().upper() == "BEGIN IMMEDIATE"

    def _commit(self, _conn):
        self.commits += 1


def queued(to, kind, body):
    message = OutboxMessage(to=to, kind=kind, body=body, status="queued", send_after=START, created_at=START)
    db.session.add(message)
    db.session.commit()
    return message.id


def test_a_backlog_of_texts_that_may_not_go_is_set_aside_in_batches(any_db_app):
    """Forty-five welcomes to a number without consent stand before a text that may go: the claim
    suppresses them all and returns that one, as before, but never holds the write lock for more
    than a batch of them."""
    db.session.add(Customer(phone=KA, sms_consent=True, consent_at=START, created_at=START))
    db.session.commit()
    stale = [queued(STRANGER, "welcome", f"Clinic: welcome {n}") for n in range(45)]
    answer = queued(KA, "test", "Clinic: a test")  # the reply lane: after the queue lane's welcomes

    with Transactions() as transactions:
        claimed = outbox.claim("gw")

    assert claimed["id"] == answer
    db.session.rollback()
    statuses = db.session.execute(select(OutboxMessage.status).where(OutboxMessage.id.in_(stale))).scalars().all()
    assert statuses == ["suppressed"] * 45
    assert db.session.get(OutboxMessage, answer).status == "sending"
    assert transactions.commits >= -(-46 // SET_ASIDE_PER_TRANSACTION)  # 20 + 20 + (5 and the one sent)
    assert outbox.claim("gw") is None


def test_positions_up_to_a_place_are_the_front_of_the_full_answer(any_db_app):
    branch, (a, b), _counters, _staff = make_branch_setup()
    for service in (a, b, a, a, b, a, a):
        engine.issue_ticket(service.id)
    everyone = positions(branch.id)
    assert positions(branch.id, up_to=2) == {ticket: place for ticket, place in everyone.items() if place <= 2}
    assert positions(branch.id, a.id, up_to=3) == {ticket: place for ticket, place in positions(branch.id, a.id).items()
                                                   if place <= 3}


def test_a_texting_check_in_with_nobody_ahead_takes_its_notices_with_the_welcome(app, client):
    """The welcome says "you are next": its "nearly your turn" and "next" notices are taken with
    the welcome (they were two more transactions, each a BEGIN IMMEDIATE on SQLite)."""
    branch, _services, _counters, _staff = make_branch_setup()
    branch.country = "GE"
    db.session.commit()
    with Transactions() as transactions:
        answer = client.post("/api/v1/checkins", json={"service": "A", "phone": "555 12 34 56", "sms_consent": True,
                                                        "branch": branch.id})
    assert answer.status_code == 201, answer.json
    ticket_id = answer.json["ticket"]["id"]
    db.session.rollback()
    notices = dict(db.session.execute(select(TicketNotice.kind, TicketNotice.outbox_id)
                                      .where(TicketNotice.ticket_id == ticket_id)).all())
    assert set(notices) == {"welcome", "position", "next"}
    assert db.session.get(OutboxMessage, notices["welcome"]).kind == "welcome"
    assert notices["position"] is None and notices["next"] is None
    # the customer, the ticket, the wait it was told and the welcome with its notices in one (they
    # were five, each queuing for the write lock behind the other kiosks')
    assert transactions.writes == 1
    ticket = db.session.get(Ticket, ticket_id)
    assert ticket.customer.phone == "+995555123456" and ticket.customer.sms_consent
    assert ticket.quoted_wait_minutes == answer.json["ticket"]["estimated_wait_minutes"] == 0


def test_a_walk_in_check_in_is_one_write_and_keeps_the_wait_it_told(app, client):
    branch, (a, _b), _counters, _staff = make_branch_setup()
    for _ in range(3):
        engine.issue_ticket(a.id)
    with Transactions() as transactions:
        answer = client.post("/api/v1/checkins", json={"service": "A", "branch": branch.id})
    assert answer.status_code == 201 and answer.json["ticket"]["position"] == 4
    assert transactions.writes == 1
    db.session.rollback()
    told = answer.json["ticket"]["estimated_wait_minutes"]
    assert told > 0 and db.session.get(Ticket, answer.json["ticket"]["id"]).quoted_wait_minutes == told


def test_a_check_in_that_fails_leaves_no_customer_behind(app, client, monkeypatch):
    """The customer is written in the ticket's transaction: a ticket that is not issued leaves no
    customer (nor consent) of a visit that never was."""
    branch, _services, _counters, _staff = make_branch_setup()
    branch.country = "GE"
    db.session.commit()
    from kiosk import checkin

    def broken(*_args):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(checkin, "_quote", broken)
    with pytest.raises(RuntimeError):
        client.post("/api/v1/checkins", json={"service": "A", "phone": "555 12 34 56", "sms_consent": True,
                                               "branch": branch.id})
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 0
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_a_welcome_that_cannot_be_written_lets_the_ticket_through(app, client, caplog):
    """The welcome is written in the ticket's transaction, but a text problem (here a template that
    cannot render) is logged and costs the customer the text, never the ticket."""
    branch, _services, _counters, _staff = make_branch_setup()
    branch.country = "GE"
    db.session.commit()
    from messaging import templates

    def broken(*_args, **_kwargs):
        raise ValueError("a template that cannot render")

    original = templates.render
    templates.render = broken
    try:
        answer = client.post("/api/v1/checkins", json={"service": "A", "phone": "555 12 34 56", "sms_consent": True,
                                                        "branch": branch.id})
    finally:
        templates.render = original
    assert answer.status_code == 201, answer.json
    db.session.rollback()
    ticket = db.session.get(Ticket, answer.json["ticket"]["id"])
    assert ticket.status == "waiting" and ticket.customer.sms_consent
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert "texts for ticket" in caplog.text and "a template that cannot render" in caplog.text


def test_the_welcome_commits_with_its_ticket_or_not_at_all(app, client, monkeypatch):
    """A ticket and its welcome are one transaction: when something after the welcome undoes the
    check-in, no text of a visit that never was is left in the outbox."""
    branch, _services, _counters, _staff = make_branch_setup()
    branch.country = "GE"
    db.session.commit()
    from core.events import ticket_changing

    seen = []

    def fails_after(_app, session, **_kwargs):
        seen.append(session.scalar(select(func.count()).select_from(OutboxMessage)))  # the welcome, written
        raise RuntimeError("the disk is full")

    ticket_changing.connect(fails_after, sender=app)  # connected after notify's: runs after the welcome
    try:
        with pytest.raises(RuntimeError):
            client.post("/api/v1/checkins", json={"service": "A", "phone": "555 12 34 56", "sms_consent": True,
                                                   "branch": branch.id})
    finally:
        ticket_changing.disconnect(fails_after, sender=app)
    assert seen == [1]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
    assert db.session.scalar(select(func.count()).select_from(TicketNotice)) == 0


# --- a backlog of stale texts ------------------------------------------------------------------

def _texts_of_every_kind(branch, service, now):
    """A queued text of every ticket-bound kind for a ticket in every state, of every
    appointment-bound kind for appointments of every status before and after `now`, and texts
    bound to nothing: what a modem back after an outage finds."""
    from core.models import Appointment, TicketStatus
    rows = []
    for status in TicketStatus:
        ticket = engine.issue_ticket(service.id)
        ticket.status = status.value
        db.session.commit()
        for kind in kinds.KINDS.values():
            if kind.ticket_states:
                rows.append(OutboxMessage(to=KA, kind=kind.name, body=f"{kind.name} {status}", ticket_id=ticket.id,
                                          branch_id=branch.id, status="queued", send_after=now, created_at=now))
    for status in ("booked", "confirmed", "cancelled", "checked_in", "completed", "no_show"):
        for starts_at in (now - timedelta(minutes=5), now, now + timedelta(hours=2)):
            appointment = Appointment(branch_id=branch.id, service_id=service.id, starts_at=starts_at, status=status,
                                      created_at=now - timedelta(days=1))
            db.session.add(appointment)
            db.session.flush()
            for kind in kinds.KINDS.values():
                if kind.appointment_bound:
                    rows.append(OutboxMessage(to=KA, kind=kind.name, body=f"{kind.name} {status} {starts_at}",
                                              appointment_id=appointment.id, branch_id=branch.id, status="queued",
                                              send_after=now, created_at=now))
    rows += [OutboxMessage(to=KA, kind="test", body="a test", branch_id=branch.id, status="queued", send_after=now,
                           created_at=now),
             # a kind that is not ticket-bound, though the row names a (cancelled) ticket: never stale
             OutboxMessage(to=KA, kind="late_ack", body="noted", ticket_id=ticket.id,
                           branch_id=branch.id, status="queued", send_after=now, created_at=now)]
    db.session.add_all(rows)
    db.session.commit()
    return [row.id for row in rows]


def test_the_stale_rule_in_sql_says_what_the_policy_says_of_every_kind_and_state(any_db_app, clock):
    """The claim sets stale texts aside in bulk with the policy's rule written as SQL: for every
    kind, every ticket state and appointment status, before and after its start, the same
    verdict and the same words as the rule applied to one text."""
    branch, (a, _b), _counters, _staff = make_branch_setup()
    now = clock.now()
    ids = _texts_of_every_kind(branch, a, now)
    expected = {}
    for message in db.session.execute(select(OutboxMessage).where(OutboxMessage.id.in_(ids))).scalars():
        expected[message.id] = policy.stale(db.session, message, kinds.KINDS[message.kind], now)
    assert sum(why is not None for why in expected.values()) >= 20
    assert sum(why is None for why in expected.values()) >= 10
    db.session.rollback()

    with write_transaction() as session:
        set_aside = outbox._set_aside_stale(session, now, branch.id)

    assert set_aside == sum(why is not None for why in expected.values())
    got = dict(db.session.execute(select(OutboxMessage.id, OutboxMessage.policy_note)
                                  .where(OutboxMessage.id.in_(ids))).all())
    statuses = dict(db.session.execute(select(OutboxMessage.id, OutboxMessage.status)
                                       .where(OutboxMessage.id.in_(ids))).all())
    assert got == expected
    assert {ident: statuses[ident] for ident in ids} == {
        ident: "cancelled" if why else "queued" for ident, why in expected.items()}


def test_texts_not_due_of_another_branch_or_being_sent_are_not_set_aside(any_db_app, clock):
    branch, (a, _b), _counters, _staff = make_branch_setup()
    other_a = make_service(make_branch("Other Branch"), "C")
    db.session.commit()
    now = clock.now()
    gone = engine.issue_ticket(a.id)
    elsewhere = engine.issue_ticket(other_a.id)
    for ticket in (gone, elsewhere):
        engine.cancel(ticket.id)

    def text(ticket, **fields):
        row = OutboxMessage(to=KA, kind="welcome", body="welcome", ticket_id=ticket.id, branch_id=ticket.branch_id,
                            created_at=now, **{"status": "queued", "send_after": now, **fields})
        db.session.add(row)
        db.session.commit()
        return row.id

    later = text(gone, send_after=now + timedelta(minutes=1))
    sending = text(gone, status="sending", lease_owner="gw-2", lease_until=now + timedelta(minutes=1))
    theirs = text(elsewhere)
    due = text(gone)
    with write_transaction() as session:
        assert outbox._set_aside_stale(session, now, branch.id) == 1
    status = dict(db.session.execute(select(OutboxMessage.id, OutboxMessage.status)).all())
    assert (status[due], status[later], status[sending], status[theirs]) == ("cancelled", "queued", "sending", "queued")
    with write_transaction() as session:  # a gateway of every branch (branch_id None) takes the other's too
        assert outbox._set_aside_stale(session, now, None) == 1
    assert db.session.get(OutboxMessage, theirs).status == "cancelled"


def test_a_backlog_of_stale_texts_costs_the_claim_a_statement_not_a_batch_each(any_db_app):
    """Hundreds of texts of tickets cancelled while the modem was out, before one that may go:
    the claim returns that one, every stale text is cancelled with its reason, and the claim's
    statements and transactions do not grow with the backlog (they were five statements, a
    flush and a log line a text, 20 texts a transaction)."""
    branch, (a, _b), _counters, _staff = make_branch_setup()
    db.session.add(Customer(phone=KA, sms_consent=True, consent_at=START, created_at=START))
    db.session.commit()

    def backlog(size):
        tickets = [engine.issue_ticket(a.id) for _ in range(size)]
        rows = [OutboxMessage(to=KA, kind=kind, body=f"{kind} {ticket.label}", ticket_id=ticket.id,
                              branch_id=branch.id, status="queued", send_after=START, created_at=START)
                for ticket in tickets for kind in ("welcome", "position")]
        db.session.add_all(rows)
        db.session.commit()
        for ticket in tickets:
            engine.cancel(ticket.id)
        valid = queued(KA, "test", f"Clinic: a test after {size}")  # the reply lane: after the queue lane's
        return [row.id for row in rows], valid

    def claimed_with_backlog(size):
        stale, valid = backlog(size)
        statements = []
        listen = lambda _c, _cur, statement, *_a: statements.append(statement)  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listen)
        try:
            with Transactions() as transactions:
                claimed = outbox.claim("gw")
        finally:
            event.remove(db.engine, "before_cursor_execute", listen)
        assert claimed["id"] == valid
        db.session.rollback()
        notes = db.session.execute(select(OutboxMessage.status, OutboxMessage.policy_note)
                                   .where(OutboxMessage.id.in_(stale)).order_by(OutboxMessage.id)).all()
        labels = [label for label in db.session.execute(
            select(Ticket.label).join(OutboxMessage, OutboxMessage.ticket_id == Ticket.id)
            .where(OutboxMessage.id.in_(stale)).order_by(OutboxMessage.id)).scalars()]
        assert notes == [("cancelled", f"stale: ticket {label} is cancelled now") for label in labels]
        outbox.mark_sent(valid, "gw", [1])
        return len(statements), transactions.commits

    small = claimed_with_backlog(5)
    large = claimed_with_backlog(outbox.STALE_PER_STATEMENT // 2)  # two texts a ticket: a full statement's worth
    assert large == small


@pytest.mark.parametrize("any_db_app", ["postgresql"], indirect=True)
def test_a_stale_text_another_gateway_holds_is_passed_over_not_waited_for(any_db_app):
    """Several gateways (one per modem) claim from one outbox: the bulk set-aside skips a row
    another holds locked, as the claim's own FOR UPDATE SKIP LOCKED does, and takes it next time."""
    import threading

    branch, (a, _b), _counters, _staff = make_branch_setup()
    ticket = engine.issue_ticket(a.id)
    engine.cancel(ticket.id)
    held, free = (queued(KA, "welcome", f"Clinic: welcome {n}") for n in range(2))
    db.session.execute(OutboxMessage.__table__.update().values(ticket_id=ticket.id, branch_id=branch.id))
    db.session.commit()

    other = db.engine.connect()
    transaction = other.begin()
    other.execute(select(OutboxMessage.id).where(OutboxMessage.id == held).with_for_update())
    answers = []

    def claim():
        with any_db_app.app_context():
            answers.append(outbox.claim("gw"))
            db.session.remove()

    claimer = threading.Thread(target=claim)
    claimer.start()
    claimer.join(timeout=20)
    waited = claimer.is_alive()
    transaction.rollback()
    other.close()
    claimer.join()
    assert not waited, "the claim waited for another gateway's row"
    assert answers == [None]
    assert (db.session.get(OutboxMessage, held).status, db.session.get(OutboxMessage, free).status) == (
        "queued", "cancelled")
    assert outbox.claim("gw") is None
    db.session.rollback()
    assert db.session.get(OutboxMessage, held).policy_note == f"stale: ticket {ticket.label} is cancelled now"
