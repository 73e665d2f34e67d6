"""The queue engine: the only code that changes ticket state.

Every function here is one transaction (core.database.write_transaction), records an
append-only TicketEvent, refuses impossible moves with a clear error, lets the receivers of
ticket_changing add what must commit with the change (its texts), and sends a domain event
after the commit.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_babel import gettext, pgettext
from sqlalchemy import String, bindparam, case, cast, func, insert, inspect, literal, null, or_, select, true
from sqlalchemy.orm import aliased, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from . import clock
from .database import conflict_insert, write_transaction
from .errors import Conflict, InvalidTransition, NotFound, ValidationError
from .events import TicketChange, counter_changed, ticket_changed, ticket_changing
from .models import OPEN_AT_COUNTER, Counter, Service, Ticket, TicketEvent, TicketSequence, new_access_token
from .models import TicketStatus as S
from .queries import QUEUE_ORDER, queue_order


@dataclass(frozen=True)
class Move:
    allowed: frozenset
    to: S
    kind: str  # the TicketEvent kind recorded
    refusal: str  # a msgid with %(ticket)s and %(status)s, translated when raised


def N_(text: str) -> str:
    """Marks a msgid for extraction where it is defined; gettext translates it where it is shown
    (a table built at import time cannot know its reader's language)."""
    return text


MOVES = {
    "recall": Move(frozenset({S.CALLED}), S.CALLED, "recalled",
                   N_("Ticket %(ticket)s is %(status)s: it cannot be recalled.")),
    "start": Move(frozenset({S.CALLED}), S.SERVING, "started",
                  N_("Ticket %(ticket)s is %(status)s: it cannot be started.")),
    "complete": Move(frozenset({S.CALLED, S.SERVING}), S.COMPLETED, "completed",
                     N_("Ticket %(ticket)s is %(status)s: it cannot be completed.")),
    "no_show": Move(frozenset({S.CALLED}), S.NO_SHOW, "no_show",
                    N_("Ticket %(ticket)s is %(status)s: it cannot be marked no-show.")),
    "hold": Move(frozenset({S.WAITING, S.CALLED, S.SERVING}), S.HELD, "held",
                 N_("Ticket %(ticket)s is %(status)s: it cannot be put on hold.")),
    "unhold": Move(frozenset({S.HELD}), S.WAITING, "unheld",
                   N_("Ticket %(ticket)s is %(status)s: it cannot be taken off hold.")),
    "transfer": Move(frozenset({S.WAITING, S.HELD, S.CALLED, S.SERVING}), S.WAITING, "transferred",
                     N_("Ticket %(ticket)s is %(status)s: it cannot be transferred.")),
    "cancel": Move(frozenset({S.WAITING, S.HELD, S.CALLED}), S.CANCELLED, "cancelled",
                   N_("Ticket %(ticket)s is %(status)s: it cannot be cancelled.")),
    "late": Move(frozenset({S.WAITING}), S.WAITING, "late",
                 N_("Ticket %(ticket)s is %(status)s: it cannot be marked running late.")),
}


def status_word(status) -> str:
    """A ticket's status as refusals say it ("Ticket A001 is <status>"), in the reader's language."""
    return {
        S.WAITING: pgettext("ticket is", "waiting"),
        S.CALLED: pgettext("ticket is", "called"),
        S.SERVING: pgettext("ticket is", "being served"),
        S.HELD: pgettext("ticket is", "on hold"),
        S.COMPLETED: pgettext("ticket is", "completed"),
        S.NO_SHOW: pgettext("ticket is", "a no-show"),
        S.CANCELLED: pgettext("ticket is", "cancelled"),
    }[S(status)]


def _staff_id(staff):
    """The staff member's id, read from the session's identity map: the write transaction has
    just expired the logged-in user, and reloading the whole row for its id is a query per change."""
    if staff is None:
        return None
    staff = staff._get_current_object() if hasattr(staff, "_get_current_object") else staff  # current_user
    state = inspect(staff, raiseerr=False)
    if state is not None and state.identity is not None:
        return state.identity[0]
    return getattr(staff, "id", None)


@functools.cache
def _new_event():
    # Nobody reads the event back in the request: written as a row, not flushed as an object
    # (SQLAlchemy's unit of work cost each change about 0.9 million instructions for it).
    return insert(TicketEvent.__table__)


def _record(session, ticket, kind, before, staff, now, counter_id=None, detail=None) -> TicketChange:
    session.execute(_new_event(), {
        "ticket_id": ticket.id,
        "at": now,
        "kind": kind,
        "from_status": before,
        "to_status": ticket.status,
        "staff_id": _staff_id(staff),
        "counter_id": counter_id if counter_id is not None else ticket.counter_id,
        "detail": detail or {},
    })
    return _change_of(ticket, kind, counter_id, detail)


def _change_of(ticket, kind, counter_id=None, detail=None) -> TicketChange:
    return TicketChange(
        kind=kind,
        ticket_id=ticket.id,
        branch_id=ticket.branch_id,
        label=ticket.label,
        status=ticket.status,
        counter_id=counter_id if counter_id is not None else ticket.counter_id,
        detail=detail or {},
    )


# A new ticket's columns, each bound at the insert (_issued gives the ones a check-in leaves out);
# the others are NULL or the table's defaults. On PostgreSQL the number and the label come from
# the number row, in the same statement.
_ISSUED = ("branch_id", "service_id", "customer_id", "service_day", "number", "label", "status", "priority",
           "language", "source", "access_token", "arrived_at", "late_until", "recall_count", "quoted_wait_minutes")
_NUMBERED = ("number", "label")


@functools.cache  # built once per dialect, bound at each use (see core/queries.py)
def _issuing(dialect: str):
    """The new ticket as a row, loaded as the session's Ticket. On PostgreSQL its number (the
    service's number row, _numbering) and its "issued" event go in the same statement (data-
    modifying WITHs): every statement is a round trip there, 32 kiosks checking in at once wait on
    one worker's turns, and each check-in of the service waits for the number row from its
    update to the commit. SQLite (in the process, no round trips, and no INSERT inside WITH) takes
    the number first (_next_number) and writes the event next (_record)."""
    table = Ticket.__table__
    if dialect != "postgresql":
        ticket = insert(table).values({column: bindparam(column, type_=table.c[column].type) for column in _ISSUED})
        return select(Ticket).from_statement(ticket.returning(*table.c))
    number = _numbering(dialect).cte("numbered").c.last_number
    digits = cast(number, String)
    # the label as f"{code}{number:03d}" writes it: at least three digits, all of a larger number
    label = bindparam("code", type_=String) + case((number < 1000, func.lpad(digits, 3, "0")), else_=digits)
    given = [column for column in _ISSUED if column not in _NUMBERED]
    ticket = insert(table).from_select(
        [*given, *_NUMBERED],
        select(*(bindparam(column, type_=table.c[column].type) for column in given), number, label))
    ticket = ticket.returning(*table.c).cte("issued")
    events = TicketEvent.__table__
    event = insert(events).from_select(
        ["ticket_id", "at", "kind", "from_status", "to_status", "staff_id", "counter_id", "detail"],
        select(ticket.c.id, bindparam("event_at", type_=events.c.at.type), literal("issued", String),
               cast(null(), String), ticket.c.status, bindparam("event_staff", type_=events.c.staff_id.type),
               ticket.c.counter_id, bindparam("event_detail", type_=events.c.detail.type)))
    return select(Ticket).from_statement(select(ticket).add_cte(event.cte("issued_event")))


def _issued(session, fields: dict, code: str, staff, now, detail: dict) -> tuple[Ticket, TicketChange]:
    """Number and write the new ticket (`code`: its service's) and its "issued" event: the ticket
    (the session's, persistent) and the change. The service's number row is locked from here to
    the commit (on PostgreSQL every check-in of the service waits for it): as few steps as can be."""
    dialect = session.get_bind().dialect.name
    row = {"customer_id": None, "late_until": None, "quoted_wait_minutes": None, "recall_count": 0,
           "access_token": new_access_token(), **fields}
    if dialect == "postgresql":
        row.update(service=fields["service_id"], day=fields["service_day"], code=code,
                   event_at=now, event_staff=_staff_id(staff), event_detail=detail)
        ticket = session.scalars(_issuing(dialect), row).one()
        return ticket, _change_of(ticket, "issued", detail=detail)
    number = _next_number(session, fields["service_id"], fields["service_day"])
    row.update(number=number, label=f"{code}{number:03d}")
    ticket = session.scalars(_issuing(dialect), row).one()
    return ticket, _record(session, ticket, "issued", None, staff, now, detail=detail)


def _changing(session, ticket: Ticket, change: TicketChange) -> None:
    """(In the change's transaction) let others add what must commit with it (core/events.py)."""
    ticket_changing.send(current_app._get_current_object(), session=session, ticket=ticket, change=change)


def _publish(change: TicketChange | None) -> None:
    if change is not None:
        ticket_changed.send(current_app._get_current_object(), change=change)


@functools.cache
def _row_for_update(model):
    return (select(model).where(model.id == bindparam("ident")).with_for_update()
            .execution_options(populate_existing=True))


def _locked(session, model, ident, missing):
    """The row locked for update; NotFound saying `missing` (a msgid with %(ident)s) if none. It is
    translated only then: the first translation of a request costs the choice of its language."""
    row = session.execute(_row_for_update(model), {"ident": ident}).scalar_one_or_none()
    if row is None:
        raise NotFound(gettext(missing, ident=ident))
    return row


@functools.cache  # built once per dialect, bound at each use (see core/queries.py)
def _numbering(dialect: str):
    # On the table, not the mapped class: an ORM-enabled INSERT goes through SQLAlchemy's bulk
    # insert path, about half the statement's cost in the one worker's CPU.
    table = TicketSequence.__table__
    return (
        conflict_insert(dialect)(table)
        .values(service_id=bindparam("service"), service_day=bindparam("day"), last_number=1)
        .on_conflict_do_update(
            index_elements=["service_id", "service_day"],
            set_={"last_number": table.c.last_number + 1},
        )
        .returning(table.c.last_number)
    )


def _next_number(session, service_id: int, day) -> int:
    statement = _numbering(session.get_bind().dialect.name)
    return session.execute(statement, {"service": service_id, "day": day}).scalar_one()


@functools.cache
def _service_with_branch():
    return (select(Service).where(Service.id == bindparam("service")).options(joinedload(Service.branch))
            .execution_options(populate_existing=True))


def issue_ticket(service_id, *, customer_id=None, priority=None, language=None, source="staff", staff=None,
                 not_before=None, customer=None, before_number=None, service=None) -> Ticket:
    """A new waiting ticket, numbered per service and branch-local day (A001, A002, ...).
    `priority`: the service's own unless given (staff may choose another).
    `not_before`: not called until then (an appointment's time), keeping its place after it.
    What a caller writes with the ticket goes in the ticket's own transaction, under one write
    lock (a kiosk's check-in took three, queuing behind each other's): `customer(session)` makes
    or finds the customer and returns it (instead of `customer_id`); `before_number(session,
    service, fields)` returns more fields for the ticket (the wait the kiosk tells), worked out
    before the ticket takes its number: the service's number row is locked from then to the commit
    (on PostgreSQL every check-in of the service waits for it), so the reads come first. Once the
    ticket is written the receivers of ticket_changing add theirs (its welcome text). The ticket
    and what the transaction loaded stay loaded after the commit: the answer and the texts read
    them without a query.
    `service`: the service (of `service_id`) as the caller read it in this request, its branch
    loaded too (the kiosk's check-in): neither is read again, and what the request loaded before
    stays loaded (a service paused in the instant between is still taken, as it would have been
    an instant earlier)."""
    if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)
                                 or not -100 <= priority <= 100):
        raise ValidationError(gettext("Priority must be a whole number from -100 to 100."),
                              {"priority": "out of range"})
    if service is not None and service.id != service_id:
        raise ValueError(f"service {service.id} given for service_id {service_id}")
    with write_transaction(keep_loaded=True, refresh=service is None) as session:
        if service is None:
            # The service with its branch in one query (loaded before the write lock, they may be stale).
            service = session.execute(_service_with_branch(), {"service": service_id}).scalar_one_or_none()
        if service is None or not service.active:
            raise NotFound(gettext("Service %(service)s does not exist or is not offered now.", service=service_id))
        branch = service.branch
        holder = customer(session) if customer is not None else None
        now = clock.now()
        day = branch.local_date(now)
        fields = {
            "branch_id": branch.id,
            "service_id": service.id,
            "customer_id": customer_id if holder is None else holder.id,
            "service_day": day,
            "status": S.WAITING,
            "priority": service.priority if priority is None else priority,
            "language": language or branch.default_language,
            "source": source,
            "arrived_at": now,
            "late_until": not_before if not_before is not None and not_before > now else None,
        }
        if before_number is not None:
            fields.update(before_number(session, service, fields) or {})
        ticket, change = _issued(session, fields, service.code, staff, now, {"service": service.code})
        # What the ticket points at is what this transaction holds: the texts read it without a query.
        set_committed_value(ticket, "branch", branch)
        set_committed_value(ticket, "service", service)
        if holder is not None:
            set_committed_value(ticket, "customer", holder)
        _changing(session, ticket, change)
    _publish(change)
    return ticket


@functools.cache
def _at_counter():
    return select(Ticket).where(Ticket.counter_id == bindparam("counter"), Ticket.status.in_(OPEN_AT_COUNTER))


def current_ticket(session, counter_id):
    return session.execute(_at_counter(), {"counter": counter_id}).scalars().first()


# How many of each service's first waiting tickets a call looks at on PostgreSQL, where tickets
# other counters are calling at the same moment are locked and skipped: more than a branch's
# counters ever lock at once (each call locks one).
CALL_DEPTH = 16


@functools.cache
def _next_waiting(front_only: bool, dialect: str):
    """The counter's next ticket: the first by QUEUE_ORDER among those of its services
    (`services`) who are waiting and not running late. `front_only`: looked for among the first
    of each service's queue, read from the front of ix_ticket_service_queue_order (sorting all
    the waiting tickets of a counter's services cost a call 1.7 ms at 1,000 waiting and 5.7 at
    5,000 on PostgreSQL, 0.9 at 100); without it, among all of them (the fallback, see call_next)."""
    now = bindparam("now")

    def eligible(tickets):
        return tickets.status == S.WAITING, or_(tickets.late_until.is_(None), tickets.late_until <= now)

    served = Service.id.in_(bindparam("services", expanding=True))
    front = aliased(Ticket)
    if not front_only:
        query = select(Ticket).where(Ticket.branch_id == bindparam("branch"), *eligible(Ticket),
                                     Ticket.service_id.in_(bindparam("services", expanding=True)))
    elif dialect == "postgresql":  # (a locked row changed since is checked again as it is locked)
        firsts = (select(front.id).where(front.service_id == Service.id, *eligible(front))
                  .order_by(*queue_order(front)).limit(bindparam("depth")).lateral("front"))
        query = select(Ticket).where(
            Ticket.id.in_(select(firsts.c.id).select_from(Service).join(firsts, true()).where(served)),
            *eligible(Ticket))
    else:  # SQLite: one writer at a time, nothing locked to skip: each service's first, read by id
        first = (select(front.id).where(front.service_id == Service.id, *eligible(front))
                 .order_by(*queue_order(front)).limit(1).correlate(Service).scalar_subquery())
        query = select(Ticket).where(Ticket.id.in_(select(first).where(served)))
    return (query.order_by(*QUEUE_ORDER).limit(1).with_for_update(skip_locked=True)
            .execution_options(populate_existing=True))


def call_next(counter_id, *, staff=None) -> Ticket | None:
    """Give the counter the next waiting ticket of a service it serves: priority first, then
    arrival. None when nobody is waiting. Two counters calling at once never get the same ticket."""
    change = None
    with write_transaction(keep_loaded=True) as session:
        counter = _locked(session, Counter, counter_id, N_("Counter %(ident)s does not exist."))
        busy = current_ticket(session, counter.id)
        if busy is not None:
            raise Conflict(
                gettext("Counter %(counter)s still has ticket %(ticket)s (%(status)s): "
                        "complete it, mark it no-show or put it on hold first.",
                        counter=counter.name, ticket=busy.label, status=status_word(busy.status)),
                {"ticket": busy.id},
            )
        service_ids = [service.id for service in counter.services if service.active]
        if not service_ids:
            raise Conflict(gettext("Counter %(counter)s serves no service: choose its services first.",
                                   counter=counter.name))
        now = clock.now()
        if not counter.is_open:
            counter.is_open = True
            counter.staff_id = _staff_id(staff)
        asked = {"branch": counter.branch_id, "services": service_ids, "now": now, "depth": CALL_DEPTH}
        dialect = session.get_bind().dialect.name
        ticket = session.execute(_next_waiting(True, dialect), asked).scalar_one_or_none()
        if ticket is None and dialect == "postgresql":
            # Every front ticket locked by other counters' calls (or none waiting): all of them.
            ticket = session.execute(_next_waiting(False, dialect), asked).scalar_one_or_none()
        if ticket is not None:
            before = ticket.status
            ticket.status = S.CALLED
            ticket.counter, ticket.counter_id = counter, counter.id  # (the loaded relation too: kept after the commit)
            ticket.called_at = now
            ticket.late_until = None
            change = _record(session, ticket, "called", before, staff, now, detail={"counter": counter.name})
            _changing(session, ticket, change)
    _publish(change)
    return ticket


def _apply(ticket_id, action, staff, change_fields=None) -> Ticket:
    move = MOVES[action]
    with write_transaction(keep_loaded=True) as session:
        ticket = _locked(session, Ticket, ticket_id, N_("Ticket %(ident)s does not exist."))
        if ticket.status not in move.allowed:
            raise InvalidTransition(
                gettext(move.refusal, ticket=ticket.label, status=status_word(ticket.status)),
                {"status": str(ticket.status), "allowed_from": sorted(str(s) for s in move.allowed)},
            )
        now = clock.now()
        before = ticket.status
        counter_id = ticket.counter_id
        ticket.status = move.to
        detail = change_fields(session, ticket, now) if change_fields else {}
        change = _record(session, ticket, move.kind, before, staff, now, counter_id=counter_id, detail=detail)
        _changing(session, ticket, change)
    _publish(change)
    return ticket


def recall(ticket_id, *, staff=None) -> Ticket:
    def fields(_session, ticket, _now):
        ticket.recall_count += 1
        return {"recall_count": ticket.recall_count}

    return _apply(ticket_id, "recall", staff, fields)


def start_serving(ticket_id, *, staff=None) -> Ticket:
    def fields(_session, ticket, now):
        ticket.started_at = now

    return _apply(ticket_id, "start", staff, fields)


def complete(ticket_id, *, staff=None) -> Ticket:
    def fields(_session, ticket, now):
        ticket.started_at = ticket.started_at or ticket.called_at
        ticket.finished_at = now

    return _apply(ticket_id, "complete", staff, fields)


def no_show(ticket_id, *, staff=None) -> Ticket:
    def fields(_session, ticket, now):
        ticket.finished_at = now

    return _apply(ticket_id, "no_show", staff, fields)


def hold(ticket_id, *, staff=None) -> Ticket:
    def fields(_session, ticket, _now):
        ticket.counter, ticket.counter_id = None, None
        ticket.called_at = ticket.started_at = None

    return _apply(ticket_id, "hold", staff, fields)


def unhold(ticket_id, *, staff=None) -> Ticket:
    """Back to waiting with its original arrival time: it keeps its place."""
    return _apply(ticket_id, "unhold", staff)


def transfer(ticket_id, service_id, *, staff=None) -> Ticket:
    """Move to another service's queue, keeping the original arrival time and ticket number."""

    def fields(session, ticket, _now):
        target = session.get(Service, service_id)
        if target is None or target.branch_id != ticket.branch_id or not target.active:
            raise NotFound(gettext("Service %(service)s does not exist at this branch or is not offered now.",
                                   service=service_id))
        if target.id == ticket.service_id:
            raise Conflict(gettext("Ticket %(ticket)s is already in %(service)s.", ticket=ticket.label,
                                   service=target.name))
        source = ticket.service.code
        ticket.service, ticket.service_id = target, target.id
        ticket.counter, ticket.counter_id = None, None
        ticket.called_at = ticket.started_at = None
        return {"from_service": source, "to_service": target.code}

    return _apply(ticket_id, "transfer", staff, fields)


def cancel(ticket_id, *, staff=None, reason=None) -> Ticket:
    def fields(_session, ticket, now):
        ticket.counter, ticket.counter_id = None, None
        ticket.finished_at = now
        return {"reason": reason} if reason else {}

    return _apply(ticket_id, "cancel", staff, fields)


def running_late(ticket_id, minutes=None, *, staff=None) -> Ticket:
    """Skip the ticket until now + minutes; after that it is called in its original place."""
    config = current_app.config
    minutes = config["LATE_DEFAULT_MINUTES"] if minutes is None else minutes
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= config["LATE_MAX_MINUTES"]:
        raise ValidationError(
            gettext("Minutes late must be a whole number from 1 to %(most)s.", most=config["LATE_MAX_MINUTES"]),
            {"minutes": "out of range"},
        )

    def fields(_session, ticket, now):
        ticket.late_until = now + timedelta(minutes=minutes)
        return {"minutes": minutes, "late_until": ticket.late_until.isoformat()}

    return _apply(ticket_id, "late", staff, fields)


def set_counter_open(counter_id, is_open: bool, *, staff=None) -> Counter:
    with write_transaction() as session:
        counter = _locked(session, Counter, counter_id, N_("Counter %(ident)s does not exist."))
        if not is_open:
            busy = current_ticket(session, counter.id)
            if busy is not None:
                raise Conflict(gettext("Counter %(counter)s still has ticket %(ticket)s: finish it before closing.",
                                       counter=counter.name, ticket=busy.label))
        counter.is_open = is_open
        counter.staff_id = _staff_id(staff) if is_open else None
        branch_id = counter.branch_id
    counter_changed.send(current_app._get_current_object(), branch_id=branch_id, counter_id=counter_id, is_open=is_open)
    return counter
