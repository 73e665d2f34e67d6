"""Reading the queue: positions, wait estimates and snapshots. Reads only; changes go through core.engine."""
from __future__ import annotations

import functools
import math
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from statistics import median

from flask import current_app
from sqlalchemy import bindparam, cast, func, literal, null, select, true, union_all
from sqlalchemy.orm import aliased

from . import clock
from .extensions import db
from .models import Counter, Service, Ticket, counter_services
from .models import TicketStatus as S
from .types import UTCDateTime

# The one rule for who goes first within a service: higher priority, then earlier arrival, then
# the lower id (two arrivals in the same instant). The engine calls by it, positions count by it.
# A ticket running late keeps its place in this order; the engine only skips it until it is back.
def queue_order(tickets) -> tuple:
    """The queue's order over `tickets` (the Ticket class, an alias of it, or a subquery's
    columns): higher priority first, then arrival, then ticket id."""
    return tickets.priority.desc(), tickets.arrived_at, tickets.id


QUEUE_ORDER = queue_order(Ticket)


# The statements of the hot paths (a check-in, a call, their texts) are built once, with bind
# parameters, and bound at each use (@functools.cache on a function that builds one): building a
# statement costs SQLAlchemy ~0.25 ms of Python, several times what SQLite takes to answer it.

# The figures already worked out in the current `estimating()` block; None outside one.
_ESTIMATES: ContextVar[dict | None] = ContextVar("seed_estimates", default=None)


@contextmanager
def estimating():
    """A block in which the queue does not change after its first change: a check-in, its welcome
    text and its answer, or the texts after one call. A ticket's place and a service's figures
    are worked out once in it however many callers ask (the check-in answer and its welcome both
    say where the ticket stands). Nested blocks share the outer one's figures."""
    if _ESTIMATES.get() is not None:
        yield
        return
    token = _ESTIMATES.set({})
    try:
        yield
    finally:
        _ESTIMATES.reset(token)


def _remembered(key, work):
    memo = _ESTIMATES.get()
    if memo is None:
        return work()
    if key not in memo:
        memo[key] = work()
    return memo[key]


def _places(branch_id: int, service_id: int | None = None):
    """(ticket id, place) of the waiting tickets, place 1 being the next to be called in its service."""
    place = func.row_number().over(partition_by=Ticket.service_id, order_by=QUEUE_ORDER).label("place")
    query = select(Ticket.id, place).where(Ticket.branch_id == branch_id, Ticket.status == S.WAITING)
    return query if service_id is None else query.where(Ticket.service_id == service_id)


def positions(branch_id: int, service_id: int | None = None, up_to: int | None = None) -> dict[int, int]:
    """{ticket id: place} for every waiting ticket of the branch (or of one of its services): one
    query however many are waiting. The kiosk, the status page, the texts and the API count by it.
    `up_to`: only the places up to this one, read from the front of each service's queue (the
    texts after every call and completion): the same work with 3,000 waiting as with 10."""
    values = {"branch": branch_id, "service": service_id, "up_to": up_to}
    dialect = db.session.get_bind().dialect.name
    return dict(db.session.execute(_places_query(service_id is not None, up_to is not None, dialect), values).all())


@functools.cache
def _places_query(of_a_service: bool, bounded: bool, dialect: str):
    if not bounded:
        return _places(bindparam("branch"), bindparam("service") if of_a_service else None)
    # Only the front of each service's queue: its first `up_to` waiting tickets, read in queue
    # order from the front of an index (ix_ticket_service_queue_order) and numbered. Numbering
    # every waiting ticket and keeping the first few read the whole queue after every call and
    # every completion (3,000 waiting: a fifth of the worker's time on those two).
    if dialect == "postgresql":  # (a correlated IN there is tried for every ticket: LATERAL)
        front = (select(Ticket.id, Ticket.service_id, Ticket.priority, Ticket.arrived_at)
                 .where(Ticket.service_id == Service.id, Ticket.status == S.WAITING)
                 .order_by(*QUEUE_ORDER).limit(bindparam("up_to")).lateral("front"))
        place = func.row_number().over(partition_by=front.c.service_id, order_by=queue_order(front.c)).label("place")
        query = select(front.c.id, place).select_from(Service).join(front, true())
    else:  # SQLite (no LATERAL): the subquery runs once a service, the tickets read by their ids
        first = aliased(Ticket)
        first_ids = (select(first.id).where(first.service_id == Service.id, first.status == S.WAITING)
                     .order_by(*queue_order(first))
                     .limit(bindparam("up_to")).correlate(Service))
        place = func.row_number().over(partition_by=Ticket.service_id, order_by=QUEUE_ORDER).label("place")
        query = select(Ticket.id, place).select_from(Service).join(Ticket, Ticket.id.in_(first_ids))
    query = query.where(Service.branch_id == bindparam("branch"))
    return query.where(Service.id == bindparam("service")) if of_a_service else query


@functools.cache
def _waiting_ahead():
    """How many of the service's waiting tickets come before one with these keys by QUEUE_ORDER, as
    three counts of ranges of ix_ticket_service_queue_order (service, status, priority, arrival,
    id): the higher priorities, the same priority's earlier arrivals, the same instant's lower
    ids. Each count steps through its range in the index alone; one condition with ORs (and
    the branch, which the service implies) read every waiting ticket's row and tested it: 0.45 us
    a waiting ticket on SQLite against 0.1, a check-in with 3,000 waiting 1.4 ms against 0.4."""
    priority, arrived, ticket = bindparam("priority"), bindparam("arrived"), bindparam("ticket")

    def waiting(*where):
        return (select(func.count()).select_from(Ticket)
                .where(Ticket.service_id == bindparam("service"), Ticket.status == S.WAITING, *where)
                .scalar_subquery())

    return select(waiting(Ticket.priority > priority)
                  + waiting(Ticket.priority == priority, Ticket.arrived_at < arrived)
                  + waiting(Ticket.priority == priority, Ticket.arrived_at == arrived, Ticket.id < ticket))


def position(ticket: Ticket) -> int | None:
    """One ticket's place by the same order, counting those ahead of it (a quarter of what numbering
    the whole queue costs, with a thousand waiting); None when not waiting."""
    if ticket.status != S.WAITING:
        return None
    arrival = ("arrival", ticket.branch_id, ticket.service_id, ticket.priority, ticket.arrived_at)

    def work():
        memo = _ESTIMATES.get()
        if memo is not None and arrival in memo:  # counted just before it was written
            return memo[arrival]
        return 1 + db.session.scalar(_waiting_ahead(), {
            "service": ticket.service_id, "priority": ticket.priority, "arrived": ticket.arrived_at,
            "ticket": ticket.id})

    return _remembered(("position", ticket.id, ticket.service_id), work)


AFTER_EVERY_TICKET = 2 ** 31 - 1  # the id column's largest: a ticket not yet written comes after its instant's


@functools.cache
def _arrival_figures():
    """The three reads of a check-in's quote as one statement: the waiting ahead (position()'s
    count, for a ticket not yet written), the open counters (open_counters()) and the recent
    completions (service_minutes()). Rows of (a count, the part: 1, 2 or 3, a completion's times)."""
    def no_time():
        return cast(null(), UTCDateTime)

    ahead = _waiting_ahead().add_columns(literal(1), no_time(), no_time(), no_time())
    counters = _open_counters_of().add_columns(literal(2), no_time(), no_time(), no_time())
    recent = _recent_completions().subquery()
    done = select(literal(0), literal(3), recent.c.started_at, recent.c.called_at, recent.c.finished_at)
    return union_all(ahead, counters, done)


def quote_on_arrival(branch_id: int, service: Service, priority: int, arrived_at) -> tuple[int, int]:
    """(place, minutes to wait) for a ticket arriving at `arrived_at` with `priority`, before it is
    written: the place counted as position() counts, the wait as wait_for() works it out, in one
    statement (a check-in works out what it tells the customer before it takes its number: see
    core.engine.issue_ticket). In an `estimating()` block the ticket's position() and the
    service's figures are then these, without another query."""
    keys = (("arrival", branch_id, service.id, priority, arrived_at), ("minutes", service.id), ("counters", service.id))
    memo = _ESTIMATES.get()
    memo = {} if memo is None else memo
    if not all(key in memo for key in keys):
        rows = db.session.execute(_arrival_figures(), {
            "service": service.id, "priority": priority, "arrived": arrived_at, "ticket": AFTER_EVERY_TICKET,
            "since": _since(), "size": current_app.config["ESTIMATE_SAMPLE_SIZE"]}).all()
        counts = {part: n for n, part, *_times in rows if part != 3}
        minutes = _minutes_from(service, [tuple(times) for _n, part, *times in rows if part == 3])
        for key, value in zip(keys, (1 + counts[1], minutes, counts[2])):
            memo.setdefault(key, value)
    place, minutes, counters = (memo[key] for key in keys)
    return place, wait_minutes(place - 1, minutes, counters)


def _minutes_from(service: Service, rows) -> float:
    config = current_app.config
    durations = [
        (finished - (started or called)).total_seconds() / 60
        for started, called, finished in rows
        if finished and (started or called)
    ]
    if len(durations) < config["ESTIMATE_MIN_SAMPLES"]:
        return float(service.avg_service_minutes)
    return max(median(durations), 0.5)


def _since():
    return clock.now() - timedelta(hours=current_app.config["ESTIMATE_WINDOW_HOURS"])


@functools.cache
def _recent_completions():
    return (select(Ticket.started_at, Ticket.called_at, Ticket.finished_at)
            .where(Ticket.service_id == bindparam("service"), Ticket.status == S.COMPLETED,
                   Ticket.finished_at >= bindparam("since"))
            .order_by(Ticket.finished_at.desc())
            .limit(bindparam("size")))


def service_minutes(service: Service) -> float:
    """Median measured service time of the service's recent completions; the configured
    average when there are too few to trust."""
    def work():
        rows = db.session.execute(_recent_completions(), {
            "service": service.id, "since": _since(), "size": current_app.config["ESTIMATE_SAMPLE_SIZE"]}).all()
        return _minutes_from(service, rows)

    return _remembered(("minutes", service.id), work)


@functools.cache
def _open_counters_of():
    return (select(func.count(Counter.id))
            .join(counter_services, counter_services.c.counter_id == Counter.id)
            .where(counter_services.c.service_id == bindparam("service"), Counter.is_open.is_(True)))


def open_counters(service: Service) -> int:
    return _remembered(("counters", service.id), lambda: db.session.scalar(
        _open_counters_of(), {"service": service.id}))


@functools.cache
def _recent_of_services():
    recent = (
        select(Ticket.service_id, Ticket.started_at, Ticket.called_at, Ticket.finished_at,
               func.row_number().over(partition_by=Ticket.service_id,
                                      order_by=(Ticket.finished_at.desc(), Ticket.id.desc())).label("newest"))
        .where(Ticket.service_id.in_(bindparam("services", expanding=True)), Ticket.status == S.COMPLETED,
               Ticket.finished_at >= bindparam("since"))
        .subquery()
    )
    return (select(recent.c.service_id, recent.c.started_at, recent.c.called_at, recent.c.finished_at)
            .where(recent.c.newest <= bindparam("size")))


@functools.cache
def _open_counters_of_services():
    return (select(counter_services.c.service_id, func.count(Counter.id))
            .join(Counter, counter_services.c.counter_id == Counter.id)
            .where(counter_services.c.service_id.in_(bindparam("services", expanding=True)), Counter.is_open.is_(True))
            .group_by(counter_services.c.service_id))


def service_figures(services) -> dict[int, tuple[float, int]]:
    """{service id: (service_minutes, open_counters)} for several services in two queries, however
    many services: the recent completions of each (ix_ticket_service_finished, one range per
    service, numbered newest first) and the open counters of each."""
    services = list(services)
    if not services:
        return {}
    ids = [service.id for service in services]
    rows = {service_id: [] for service_id in ids}
    values = {"services": ids, "since": _since(), "size": current_app.config["ESTIMATE_SAMPLE_SIZE"]}
    for service_id, started, called, finished in db.session.execute(_recent_of_services(), values):
        rows[service_id].append((started, called, finished))
    counters = dict(db.session.execute(_open_counters_of_services(), {"services": ids}).all())
    return {service.id: (_minutes_from(service, rows[service.id]), counters.get(service.id, 0)) for service in services}


def wait_minutes(people_ahead: int, minutes_each: float, counters: int) -> int:
    return math.ceil(people_ahead * minutes_each / max(counters, 1))


def estimated_wait_minutes(ticket: Ticket, place: int | None = None) -> int | None:
    """Minutes until the ticket is likely called; `place` when the caller knows it already."""
    place = position(ticket) if place is None else place
    return wait_for(ticket.service, place)


def wait_for(service: Service, place: int | None) -> int | None:
    """Minutes until the ticket at `place` in the service is likely called."""
    if place is None:
        return None
    return wait_minutes(place - 1, service_minutes(service), open_counters(service))


def ticket_summary(ticket: Ticket, place=None, wait=None) -> dict:
    now = clock.now()
    if place is None and ticket.status == S.WAITING:
        place = position(ticket)
        wait = estimated_wait_minutes(ticket, place)
    return {
        "id": ticket.id,
        "number": ticket.label,
        "service": ticket.service.code,
        "service_name": ticket.service.name,
        "status": str(ticket.status),
        "priority": ticket.priority,
        "position": place,
        "estimated_wait_minutes": wait,
        "counter": ticket.counter.name if ticket.counter else None,
        "arrived_at": _iso(ticket.arrived_at),
        # The same moment on the branch's wall clock, for screens and texts.
        "arrived_local": _iso(ticket.branch.local(ticket.arrived_at)),
        "called_at": _iso(ticket.called_at),
        "finished_at": _iso(ticket.finished_at),
        "late_until": _iso(ticket.late_until) if ticket.is_late(now) else None,
        "recall_count": ticket.recall_count,
    }


def _iso(moment):
    return moment.isoformat() if moment else None


def queue_snapshot(branch_id: int, first: int | None = None, after: int = 0) -> list[dict]:
    """Every active service of the branch with its waiting and held tickets, in call order.
    `first`: only the waiting tickets at places `after` + 1 to `after` + `first` of each service
    (the counts stay whole), so a branch with thousands waiting answers as fast as one with ten."""
    services = db.session.scalars(
        select(Service).where(Service.branch_id == branch_id, Service.active.is_(True)).order_by(Service.position, Service.code)
    ).all()
    places = _places(branch_id).subquery()
    query = select(Ticket, places.c.place).join(places, places.c.id == Ticket.id).order_by(*QUEUE_ORDER)
    if first is not None:
        query = query.where(places.c.place > after, places.c.place <= after + first)
    waiting = db.session.execute(query).all()
    held = db.session.scalars(
        select(Ticket).where(Ticket.branch_id == branch_id, Ticket.status == S.HELD).order_by(*QUEUE_ORDER)
    ).all()
    counts = dict(db.session.execute(
        select(Ticket.service_id, func.count()).where(Ticket.branch_id == branch_id, Ticket.status == S.WAITING)
        .group_by(Ticket.service_id)
    ).all())
    figures = service_figures(services)
    result = []
    for service in services:
        minutes, counters = figures[service.id]
        count = counts.get(service.id, 0)
        result.append(
            {
                "code": service.code,
                "name": service.name,
                "id": service.id,
                "waiting_count": count,
                "open_counters": counters,
                "estimated_wait_minutes": wait_minutes(count, minutes, counters),
                "waiting": [
                    ticket_summary(t, place=place, wait=wait_minutes(place - 1, minutes, counters))
                    for t, place in waiting if t.service_id == service.id
                ],
                "held": [ticket_summary(t) for t in held if t.service_id == service.id],
            }
        )
    return result


def counter_snapshot(counter: Counter) -> dict:
    from .engine import current_ticket

    ticket = current_ticket(db.session, counter.id)
    return {
        "id": counter.id,
        "name": counter.name,
        "is_open": counter.is_open,
        "services": [service.code for service in counter.services],
        "staff": counter.staff.display_name if counter.staff else None,
        "ticket": ticket_summary(ticket) if ticket else None,
    }
