"""What keeps a check-in, a call and the gateway's claim cheap (issue 15): the same outcome, with
less work on the one thread that serves every request under gevent."""
import pytest
from sqlalchemy import event, func, select

from core import engine
from core.extensions import db
from core.models import Customer, Ticket
from core.queries import positions
from messaging import outbox
from messaging.models import OutboxMessage, TicketNotice
from messaging.outbox import SET_ASIDE_PER_TRANSACTION

from .constants import START
from .helpers import make_branch_setup
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
