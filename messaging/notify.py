"""Texts from queue events: welcome after check-in, one "nearly your turn" at the branch's
threshold, "you're next", "go to counter N", a note on no-show, and a survey after the visit.
Each is written to the outbox (policy decides at send time) and sent at most once per ticket."""
from __future__ import annotations

import functools
import logging
from contextvars import ContextVar
from datetime import timedelta

from sqlalchemy import Integer, String, and_, bindparam, cast, delete, func, insert, null, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import contains_eager, joinedload

from core import clock, cooperative
from core.database import conflict_insert, write_transaction
from core.errors import SeedError
from core.extensions import db
from core.events import TicketChange
from core.models import Branch, Customer, Ticket, TicketEvent
from core.queries import estimated_wait_minutes, estimating, position, positions

from . import outbox, policy, templates
from .models import OutboxMessage, SurveyResponse, TicketNotice

log = logging.getLogger(__name__)
# The changes that owe their ticket a text of its own, and that text's kind (see _texts_for).
TEXT_OF_CHANGE = {"issued": "welcome", "called": "called", "no_show": "no_show", "completed": "survey"}
# Changes after which someone waiting may have moved closer to their turn.
MOVES_QUEUE = {"called", "cancelled", "held", "transferred", "no_show", "completed", "unheld"}
# (session, texts queued) while a change's texts are written in its own transaction.
_IN_CHANGE: ContextVar[tuple | None] = ContextVar("seed_texts_in_change", default=None)


def _recipient(ticket: Ticket):
    customer = ticket.customer
    if customer is None or not customer.phone or not customer.sms_consent or customer.opted_out_at:
        return None
    return customer


def _values(ticket: Ticket, language: str, place=None, **extra) -> dict:
    """A text's placeholders, the service named in the text's `language`; `place`: the ticket's
    position when the caller has it already."""
    place = position(ticket) if place is None else place
    return {"ticket": ticket.label, "service": ticket.service.name_in(language),
            "name": ticket.customer.name if ticket.customer else None,
            "position": place, "ahead": None if place is None else place - 1,
            "wait": None if place is None else estimated_wait_minutes(ticket, place),
            "counter": ticket.counter.name if ticket.counter else None,
            "time": templates.clock_text(ticket.branch, clock.now()), **extra}


def send_once(ticket: Ticket, kind: str, send_after=None, place=None, also=(), fresh=False, with_rows=None,
              **extra) -> int | None:
    """Queue text `kind` for this ticket unless it had it already (or nobody may be texted).
    The notice and its outbox row commit together, and the notice's key (ticket, kind) is taken
    by an insert that does nothing when it exists: two racing callers never queue it twice.
    In a change's own transaction (see on_ticket_changing) they are written in it; elsewhere in
    a transaction of their own.
    `also`: notices of other kinds taken in the same transaction when this text is queued (the
    welcome's "nearly your turn" and "next", which it makes needless).
    `fresh`: the caller knows the ticket has no notice of this kind yet (a ticket just issued).
    `with_rows(session, message)`: adds rows that must commit with the text (the survey's own row)."""
    if _recipient(ticket) is None or not _wanted(ticket, kind):
        return None
    in_change = _IN_CHANGE.get()
    if in_change is None and not fresh and db.session.get(TicketNotice, (ticket.id, kind)) is not None:
        return None  # cheap early answer, before a write transaction; the insert below is what decides
    number, body = _worded(ticket, kind, place, **extra)
    if in_change is not None:
        session, queued = in_change
        message = _write(session, ticket, kind, number, body, send_after, also, fresh, with_rows)
        if message is not None:
            queued.append(message)
    else:
        with _adding() as session:
            message = _write(session, ticket, kind, number, body, send_after, also, fresh, with_rows)
        if message is not None:
            outbox.announce(message)
    return None if message is None else message.id


def _wanted(ticket: Ticket, kind: str) -> bool:
    """The branch sends texts of this kind (its settings can turn some off)."""
    return policy.settings(ticket.branch).get(kind, True)


def _worded(ticket: Ticket, kind: str, place=None, **extra) -> tuple[str, str]:
    """(the number in E.164, the text) of `kind` for the ticket's customer, in their language; a
    bad number or body raises here, before any write."""
    customer = ticket.customer
    language = ticket.language or customer.language
    body = templates.render(ticket.branch, kind, language, **_values(ticket, language, place, **extra))
    return outbox.checked(customer.phone, body)


def _write(session, ticket, kind, number, body, send_after, also, fresh, with_rows) -> outbox.Queued | None:
    """The text, its notice and the notices `also` names, in `session`'s write transaction; None
    when the notice was taken already."""
    if session.get_bind().dialect.name == "postgresql":
        message = _written_at_once(session, ticket, kind, number, body, send_after, also)
        if message is None:
            return None
    else:
        message = outbox.add(session, number, body, kind, branch_id=ticket.branch_id, ticket_id=ticket.id,
                             send_after=send_after)
        if fresh:  # nobody can hold a notice of a ticket not yet committed: no claim to race for
            session.execute(_new_notices(), [{"ticket_id": ticket.id, "kind": kind, "outbox_id": message.id}] + [
                {"ticket_id": ticket.id, "kind": other, "outbox_id": None} for other in also])
        else:
            # The notice, naming its text, is the claim. Taken already (a race lost, a replay), the
            # text just added is removed: nobody has seen it (it was never committed).
            if not _claim(session, ticket.id, kind, message.id):
                session.execute(_unwritten(), {"id": message.id})
                return None
            for other in also:
                _claim(session, ticket.id, other)
    if with_rows is not None:
        with_rows(session, message)
    return message


def _written_at_once(session, ticket, kind, number, body, send_after, also) -> outbox.Queued | None:
    """(PostgreSQL) _write's text, its claim and the notices `also` names in one statement: each
    statement is a round trip there, and the texts of a check-in or a call are written while
    other kiosks and counters wait for the one worker. The claim decides as _claim's does; lost,
    the text just added is removed and the other notices were not taken."""
    values = outbox.row(number, body, kind, branch_id=ticket.branch_id, ticket_id=ticket.id, send_after=send_after)
    message_id, taken = session.execute(_text_with_notices(), {
        **values, "ticket": ticket.id, "notice": kind, "also": list(also)}).one()
    if not taken:
        session.execute(_unwritten(), {"id": message_id})
        return None
    return outbox.Queued(message_id, kind, values["to"], ticket.branch_id)


def _adding():
    """write_transaction() for a transaction that only adds rows (a notice, its outbox row, a
    survey): what the request loaded before it (the ticket, its customer, branch, service) stays
    loaded after the commit. Expired, the next text and the view's answer would read it all again:
    a dozen queries per call."""
    return write_transaction(keep_loaded=True, refresh=False)


# The statements of every text are built once, bound at each use (see core/queries.py).
@functools.cache
def _claiming(dialect: str):
    table = TicketNotice.__table__
    # RETURNING says whether this insert wrote the row (psycopg reports no rowcount for it).
    return (conflict_insert(dialect)(table).values(ticket_id=bindparam("ticket"), kind=bindparam("notice"),
                                 outbox_id=bindparam("outbox", required=False))
            .on_conflict_do_nothing().returning(table.c.kind))


@functools.cache
def _unwritten():
    table = OutboxMessage.__table__
    return delete(table).where(table.c.id == bindparam("id"))


@functools.cache
def _text_with_notices():
    """WITH text AS (INSERT INTO outbox ... RETURNING id), taken AS (INSERT INTO ticket_notice
    (the claim, naming the text) ... ON CONFLICT DO NOTHING RETURNING ...), also AS (INSERT INTO
    ticket_notice (the other notices, only if the claim was taken) ...) SELECT text.id, taken?"""
    texts, notices = OutboxMessage.__table__, TicketNotice.__table__
    columns = ["ticket_id", "kind", "outbox_id"]
    text = (insert(texts).values({column: bindparam(column, type_=texts.c[column].type) for column in outbox.ROW})
            .returning(texts.c.id).cte("text"))
    taken = (postgresql.insert(notices)
             .from_select(columns, select(bindparam("ticket", type_=Integer), bindparam("notice", type_=String),
                                          text.c.id))
             .on_conflict_do_nothing().returning(notices.c.ticket_id).cte("taken"))
    others = (postgresql.insert(notices)
              .from_select(columns, select(taken.c.ticket_id, func.unnest(bindparam("also", type_=ARRAY(String))),
                                           cast(null(), Integer)))
              .on_conflict_do_nothing().cte("also"))
    return select(text.c.id, select(taken.c.ticket_id).exists()).add_cte(others)


@functools.cache
def _new_notices():
    return insert(TicketNotice.__table__)


@functools.cache
def _told():
    return select(TicketNotice.ticket_id, TicketNotice.kind).where(
        TicketNotice.ticket_id.in_(bindparam("tickets", expanding=True)), TicketNotice.kind.in_(("next", "position")))


@functools.cache
def _textable():
    return (select(Ticket).join(Customer, Ticket.customer_id == Customer.id).options(contains_eager(Ticket.customer))
            .where(Ticket.id.in_(bindparam("tickets", expanding=True)), Customer.sms_consent.is_(True),
                   Customer.phone.is_not(None), Customer.opted_out_at.is_(None))
            .order_by(Ticket.id))


@functools.cache
def _ticket_with_what_texts_name():
    return (select(Ticket).where(Ticket.id == bindparam("ticket"))
            .options(joinedload(Ticket.customer), joinedload(Ticket.branch), joinedload(Ticket.service),
                     joinedload(Ticket.counter))
            .execution_options(populate_existing=True))


def _claim(session, ticket_id: int, kind: str, outbox_id: int | None = None) -> bool:
    """Take the notice (ticket, kind), naming its text, in this transaction; False if someone has
    it already."""
    statement = _claiming(session.get_bind().dialect.name)
    return session.execute(statement, {"ticket": ticket_id, "notice": kind, "outbox": outbox_id}).first() is not None


def _positions(branch_id: int) -> None:
    """After the queue moved: texts to the waiting customers it brought close to their turn.
    One positions query for the whole branch, answering only the few places within the threshold:
    the cost is the same with 1,000 texting customers waiting as with 10."""
    threshold = policy.settings(db.session.get(Branch, branch_id))["position_threshold"]
    near = positions(branch_id, up_to=threshold + 1)
    if not near:
        return
    told = set(db.session.execute(_told(), {"tickets": list(near)}).all())
    # "next" once at the front; "nearly your turn" once within the threshold, unless "next" came first.
    due = {ticket_id: "next" if place == 1 else "position" for ticket_id, place in near.items()
           if (ticket_id, "next") not in told and (place == 1 or (ticket_id, "position") not in told)}
    if not due:
        return
    textable = db.session.scalars(_textable(), {"tickets": list(due)}).all()
    # Worded first, each alone (one customer's bad number must not cost everyone after them their
    # text); then written together: one write transaction, not one per text.
    texts = []
    for ticket in textable:
        kind = due[ticket.id]
        if not _wanted(ticket, kind):
            continue
        try:
            texts.append((ticket, kind, *_worded(ticket, kind, place=near[ticket.id])))
        except SeedError as error:
            log.warning("position text for ticket %s not queued: %s", ticket.id, error.message)
    if not texts:
        return
    with _adding() as session:
        queued = [message for ticket, kind, number, body in texts
                  if (message := _write(session, ticket, kind, number, body, None, (), False, None)) is not None]
    for message in queued:
        outbox.announce(message)


def _survey(ticket: Ticket) -> None:
    customer = _recipient(ticket)
    rules = policy.settings(ticket.branch)
    if customer is None or not rules["survey"]:
        return
    since = clock.now() - timedelta(days=rules["survey_dedupe_days"])
    recent = db.session.scalar(select(OutboxMessage.id).where(
        OutboxMessage.to == customer.phone, OutboxMessage.kind == "survey",
        OutboxMessage.status.not_in(("suppressed", "cancelled", "failed")), OutboxMessage.created_at >= since))
    if recent:
        return

    def survey_row(session, message):  # in the text's transaction: a crash leaves both or neither
        session.add(SurveyResponse(branch_id=ticket.branch_id, ticket_id=ticket.id, outbox_id=message.id,
                                   phone=customer.phone, language=ticket.language or customer.language,
                                   created_at=clock.now()))

    send_once(ticket, "survey", send_after=clock.now() + timedelta(minutes=rules["survey_delay_minutes"]),
              with_rows=survey_row)


def _welcome_makes_needless(ticket: Ticket, place) -> tuple:
    """The welcome says how many are ahead: no "nearly your turn" (or "next") right after it."""
    ahead = (place or 99) - 1
    return (("position",) if ahead <= policy.settings(ticket.branch)["position_threshold"] else ()) + (
        ("next",) if ahead == 0 else ())


def _welcome(ticket: Ticket) -> None:
    if _recipient(ticket) is None:
        return
    place = position(ticket)
    # Fresh (no notice of it can exist) in its check-in's own transaction; replayed by the
    # lost-texts job, the queue may have moved and texted it "next" or "nearly your turn" since.
    send_once(ticket, "welcome", place=place, also=_welcome_makes_needless(ticket, place),
              fresh=_IN_CHANGE.get() is not None)


def on_ticket_changing(app, session, ticket, change) -> None:
    """(In the change's own transaction) the text the change owes its own ticket: the welcome, "go
    to counter", the no-show note, the survey. It commits with the change: a check-in takes one
    write transaction, the ticket is not read again after the commit, and a process that dies
    right after the commit loses no text. A text problem (a template, a number) is logged and lets
    the change through, as after the commit.
    The texts to others the change brought closer to their turn are written after the commit
    (on_ticket_changed): in the change's transaction, two counters' moves at once on PostgreSQL
    would each wait for the tickets the other holds (deadlocks, seen with 12 racing counters)."""
    if change.kind not in TEXT_OF_CHANGE:
        return
    queued = []
    change.written["texts"] = queued  # decided here, whatever comes of it
    token = _IN_CHANGE.set((session, queued))
    try:
        # A new ticket is loaded whole; a moved one with what its text names, in one query.
        changed = ticket if change.kind == "issued" else _changed_ticket(ticket.id)
        with estimating():
            _own_text(changed, change)  # (logs a SeedError of its own: a bad number, a refused body)
    except SQLAlchemyError:
        raise  # the transaction is broken: the change cannot commit
    except Exception:  # noqa: BLE001  (a text problem must never undo or block a ticket change)
        log.exception("texts for ticket %s failed", change.ticket_id)
    finally:
        _IN_CHANGE.reset(token)


def _changed_ticket(ticket_id: int) -> Ticket | None:
    """The ticket after its change, with what its texts name (customer, branch, service, counter):
    one query, where loading each after the change's commit would be one each."""
    return db.session.execute(_ticket_with_what_texts_name(), {"ticket": ticket_id}).scalar_one_or_none()


def on_ticket_changed(app, change) -> None:
    written = "texts" in change.written  # the ticket's own text, with the change: wake the gateways
    for queued in change.written.get("texts", ()):
        outbox.announce(queued)
    if written and change.kind not in MOVES_QUEUE:
        return
    # Once the request has answered: the staff member's next customer is not held up by the texts
    # to the others (a third of a call's time). Lost with the process, the lost-texts job writes them.
    cooperative.after_response(app, _owed_after_change, change, written)


def _owed_after_change(change, written: bool) -> None:
    """(After the change's commit, and its request's answer) the texts to those it brought closer,
    and its own when the change's transaction did not write it."""
    try:
        with estimating():  # the queue stands still while this change's texts are written
            if written or change.kind not in TEXT_OF_CHANGE:
                _positions(change.branch_id)
            else:
                _texts_for(change)
    except SeedError as error:
        log.warning("text for ticket %s not queued: %s", change.ticket_id, error.message)
    except Exception:  # noqa: BLE001  (a text problem must never undo or block a ticket change)
        log.exception("texts for ticket %s failed", change.ticket_id)


def _texts_for(change) -> None:
    """After the commit (the lost-texts job's replay): the change's own text and those it owes others."""
    ticket = _changed_ticket(change.ticket_id)
    if ticket is not None:
        _own_text(ticket, change)
    if change.kind in MOVES_QUEUE:
        _positions(change.branch_id)


def _own_text(ticket: Ticket, change) -> None:
    try:
        if change.kind == "issued":
            _welcome(ticket)
        elif change.kind == "called":
            send_once(ticket, "called")
        elif change.kind == "no_show":
            send_once(ticket, "no_show")
        elif change.kind == "completed":
            _survey(ticket)
    except SeedError as error:  # the ticket's own bad number must not cost those behind it their texts
        log.warning("text for ticket %s not queued: %s", ticket.id, error.message)


def moved(since, until) -> list[int]:
    """The branches whose queue moved between `since` and `until`: the texts a move owes those it
    brought closer to their turn are written after its commit, and a process that died in between
    left them unwritten (catch_up writes them). By the (kind, at) index, each ticket by key."""
    return list(db.session.scalars(
        select(Ticket.branch_id).join(TicketEvent, TicketEvent.ticket_id == Ticket.id)
        .where(TicketEvent.kind.in_(MOVES_QUEUE), TicketEvent.at >= since, TicketEvent.at <= until)
        .distinct()))


def catch_up(branch_id: int) -> None:
    """The "you're next" and "nearly your turn" texts the branch's queue owes now and did not get
    (each at most once: their notices say who had one)."""
    try:
        with estimating():
            _positions(branch_id)
    except SeedError as error:
        log.warning("position texts of branch %s not queued: %s", branch_id, error.message)


UNWRITTEN_PAGE = 200  # changes read (and checked) at a time by unwritten


def unwritten(since, until) -> list[TicketChange]:
    """Changes between `since` and `until` whose own text was never queued: the process died
    between the change's commit and on_ticket_changed. Only tickets whose customer may be texted
    and whose kind the branch sends: what on_ticket_changed would have left without a notice
    (a survey held back by survey_dedupe_days aside) is not found again and again. A range of
    the (kind, at) index with each ticket and customer looked up by key, then those tickets'
    notices by key (an anti-join would let PostgreSQL read every notice of a kind), `page`
    changes at a time with a pause between pages: a busy branch's ten minutes hold thousands
    of changes, and under gevent the scheduler's job shares the one thread with every request
    and screen (read at once, they held a check-in up for 130 ms once a minute)."""
    page = UNWRITTEN_PAGE
    lost, told, sends = [], set(), {}
    after = None  # (at, id) of the last change read
    while True:
        rows = db.session.execute(_unwritten_page(after is not None), {
            "kinds": list(TEXT_OF_CHANGE), "since": since, "until": until, "page": page,
            "after_at": after[0] if after else None, "after_id": after[1] if after else None}).all()
        if not rows:
            return lost
        told |= set(db.session.execute(_notices_of(), {
            "tickets": list({row.ticket_id for row in rows}), "texts": list(TEXT_OF_CHANGE.values())}).all())
        for row in rows:
            text_kind = TEXT_OF_CHANGE[row.kind]
            if (row.ticket_id, text_kind) in told:
                continue
            told.add((row.ticket_id, text_kind))  # a ticket called twice is replayed once
            if row.branch_id not in sends:
                sends[row.branch_id] = policy.settings(db.session.get(Branch, row.branch_id))
            if not sends[row.branch_id].get(text_kind, True):
                continue
            lost.append(TicketChange(kind=row.kind, ticket_id=row.ticket_id, branch_id=row.branch_id, label=row.label,
                                     status=row.to_status, counter_id=row.counter_id, detail=row.detail or {}))
        if len(rows) < page:
            return lost
        after = (rows[-1].at, rows[-1].id)
        cooperative.let_others_run()  # (requests and screens first, between two pages)


@functools.cache
def _unwritten_page(after: bool):
    query = (select(TicketEvent.id, TicketEvent.at, TicketEvent.ticket_id, TicketEvent.kind, TicketEvent.to_status,
                    TicketEvent.counter_id, TicketEvent.detail, Ticket.branch_id, Ticket.label)
             .join(Ticket, Ticket.id == TicketEvent.ticket_id)
             .join(Customer, Customer.id == Ticket.customer_id)
             .where(TicketEvent.kind.in_(bindparam("kinds", expanding=True)),
                    TicketEvent.at >= bindparam("since"), TicketEvent.at <= bindparam("until"),
                    Customer.phone.is_not(None), Customer.sms_consent.is_(True), Customer.opted_out_at.is_(None)))
    if after:  # the next page: after the last change read, in the same order
        at, last = bindparam("after_at", type_=TicketEvent.at.type), bindparam("after_id")
        query = query.where(or_(TicketEvent.at > at, and_(TicketEvent.at == at, TicketEvent.id > last)))
    return query.order_by(TicketEvent.at, TicketEvent.id).limit(bindparam("page"))


@functools.cache
def _notices_of():
    return select(TicketNotice.ticket_id, TicketNotice.kind).where(
        TicketNotice.ticket_id.in_(bindparam("tickets", expanding=True)),
        TicketNotice.kind.in_(bindparam("texts", expanding=True)))


def init_app(app) -> None:
    from core.events import ticket_changed, ticket_changing

    from . import router
    from .signals import sms_received

    ticket_changed.connect(on_ticket_changed, sender=app)
    ticket_changing.connect(on_ticket_changing, sender=app)
    sms_received.connect(router.on_sms_received, sender=app)
