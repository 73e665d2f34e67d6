"""What a branch's queue did over a range of its own days: visits, waits, service times, service
level, arrivals by weekday and hour, and the same per service, counter or staff member.

Days are the branch's (a Berlin day in March may have 23 hours, one in October 25): a range is
turned into UTC bounds once, by the zone, and every figure counts the tickets that arrived inside
them. A period's figures are one pass over an indexed range of the branch's tickets (the
(branch_id, service_day, label) unique index; service_day is the branch-local day of arrival),
aggregated by the database without sorting; the waits and service times come back as one JSON
array of whole seconds each, sorted here for the percentiles (SQLite has no percentile function).
So a year of a busy branch is one streamed pass per period, never a million rows in Python.

Texts and surveys are messaging's (core imports no other package): reports/ puts them beside these.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Integer, and_, case, false, func, literal_column, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from .extensions import db
from .models import Branch, Counter, Service, StaffUser, Ticket, TicketEvent
from .models import TicketStatus as S

MAX_DAYS = 366
ONE_DAY = timedelta(days=1)
# The events that close a ticket at a counter: the staff member on it is the one who served it.
FINISHING = ("completed", "no_show")
STAFF_SLACK_DAYS = 7
TRANSFERRED = "transferred"
QUARTER_HOUR = 900  # seconds: every zone's offset is a multiple of it, so local hours come out whole
WEEKDAYS = 7
HOURS = 24


# --- what the engines spell differently ---------------------------------------------------------

class whole_seconds(FunctionElement):
    """(later - earlier) in whole seconds, rounded: SQLite has julianday(), PostgreSQL intervals."""
    type = Integer()
    name = "whole_seconds"
    inherit_cache = True


@compiles(whole_seconds)
def _seconds_postgresql(element, compiler, **kw):
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(ROUND(EXTRACT(EPOCH FROM ({later} - {earlier}))) AS INTEGER)"


@compiles(whole_seconds, "sqlite")
def _seconds_sqlite(element, compiler, **kw):
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(ROUND((julianday({later}) - julianday({earlier})) * 86400.0) AS INTEGER)"


class unindexed(FunctionElement):
    """A column SQLite must not pick an index by (unary +: SQLite's own way to say so), because
    another condition narrows the rows far better and its planner, without statistics, cannot
    tell. PostgreSQL has statistics: there it is the column as it is."""
    name = "unindexed"
    inherit_cache = True

    def __init__(self, column):
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed_postgresql(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element, compiler, **kw):
    return f"+{compiler.process(element.clauses, **kw)}"


class quarter_hour(FunctionElement):
    """The UTC quarter hour a moment falls in, counted from 1970: turned into the branch's weekday
    and hour in Python, where the zone's rules (DST) live; SQLite knows no zones."""
    type = Integer()
    name = "quarter_hour"
    inherit_cache = True


@compiles(quarter_hour)
def _quarter_postgresql(element, compiler, **kw):
    moment = compiler.process(element.clauses, **kw)
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {moment}) / {QUARTER_HOUR}) AS INTEGER)"


@compiles(quarter_hour, "sqlite")
def _quarter_sqlite(element, compiler, **kw):
    moment = compiler.process(element.clauses, **kw)
    return f"(CAST(strftime('%s', {moment}) AS INTEGER) / {QUARTER_HOUR})"


class json_values(FunctionElement):
    """An aggregate: the values as one JSON array (json_group_array, json_agg). One row carries a
    period's waits to Python, where they are sorted for the percentiles: SQLite has no percentile
    function, and a GROUP BY would make it sort every ticket's whole row."""
    type = JSON()
    name = "json_values"
    inherit_cache = True


@compiles(json_values)
def _values_postgresql(element, compiler, **kw):
    return f"json_agg({compiler.process(element.clauses, **kw)})"


@compiles(json_values, "sqlite")
def _values_sqlite(element, compiler, **kw):
    return f"json_group_array({compiler.process(element.clauses, **kw)})"


WAIT = whole_seconds(Ticket.called_at, Ticket.arrived_at)
SERVICE = whole_seconds(Ticket.finished_at, Ticket.started_at)
# Whose wait counts: called and seen through (served or a no-show). A ticket cancelled while
# waiting left before being called; one cancelled after a call is neither.
WAITED = and_(Ticket.status.in_((S.COMPLETED, S.NO_SHOW)), Ticket.called_at.is_not(None))
# Whose quote can be judged: told a wait at check-in, and called (the real wait is known).
QUOTED = and_(Ticket.called_at.is_not(None), Ticket.quoted_wait_minutes.is_not(None))
QUOTE_ERROR = WAIT - Ticket.quoted_wait_minutes * 60  # seconds late (+) or early (-) against the quote
CLOSE_QUOTE = 5 * 60  # seconds either side: "within ±5 minutes"
SERVED = and_(Ticket.status == S.COMPLETED, Ticket.started_at.is_not(None), Ticket.finished_at.is_not(None))


# --- the range and the selection ----------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """Branch-local days first_day..last_day, both included."""
    branch_id: int
    timezone: str
    first_day: date
    last_day: date

    @classmethod
    def of(cls, branch: Branch, first_day: date, last_day: date) -> Period:
        return cls(branch.id, branch.timezone, first_day, last_day)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def start(self) -> datetime:
        return midnight(self.first_day, self.zone)

    @property
    def end(self) -> datetime:
        """The first moment after the period: the next day's local midnight."""
        return midnight(self.last_day + ONE_DAY, self.zone)

    def previous(self) -> Period:
        """The same number of days just before."""
        return Period(self.branch_id, self.timezone, self.first_day - timedelta(days=self.days),
                      self.first_day - ONE_DAY)

    def tickets(self) -> list:
        """Conditions for the tickets that arrived in the period. service_day gives the index its
        range (a day either side: the zone may have changed since); arrived_at makes it exact."""
        return [Ticket.branch_id == self.branch_id,
                Ticket.service_day.between(self.first_day - ONE_DAY, self.last_day + ONE_DAY),
                Ticket.arrived_at >= self.start, Ticket.arrived_at < self.end]


def midnight(day: date, zone: ZoneInfo) -> datetime:
    """The start of a local day, in UTC."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(timezone.utc)


@dataclass(frozen=True)
class Selection:
    """Only one service's, counter's or staff member's tickets (any of them; None: all)."""
    service_id: int | None = None
    counter_id: int | None = None
    staff_id: int | None = None

    def conditions(self, period: Period) -> list:
        found = []
        if self.service_id is not None:
            found.append(Ticket.service_id == self.service_id)
        if self.counter_id is not None:
            found.append(Ticket.counter_id == self.counter_id)
        if self.staff_id is not None:
            # the tickets this person closed
            found.append(Ticket.id.in_(select(TicketEvent.ticket_id).where(
                *closing(period), TicketEvent.staff_id == self.staff_id)))
        return found

    @property
    def narrowed(self) -> bool:
        return any(value is not None for value in (self.service_id, self.counter_id, self.staff_id))


EVERYTHING = Selection()


def closing(period: Period, kind=TicketEvent.kind) -> list:
    """Conditions for the events that closed the period's tickets at a counter: those of the period
    and a week after it, found by the (kind, at) index. A ticket is closed the day it arrives; the
    end-of-day job closes what is left within minutes of midnight, and that is nobody's closing."""
    return [kind.in_(FINISHING), TicketEvent.at >= period.start,
            TicketEvent.at < period.end + timedelta(days=STAFF_SLACK_DAYS)]


# --- groups for the breakdowns ------------------------------------------------------------------

@dataclass(frozen=True)
class Grouping:
    """How tickets are put in groups: a key expression, and the join it needs (staff: the event
    that closed the ticket)."""
    name: str

    @property
    def key(self):
        return {"service": Ticket.service_id, "counter": Ticket.counter_id, "staff": TicketEvent.staff_id}[self.name]

    def apply(self, query, period: Period):
        if self.name == "staff":
            return query.join(TicketEvent, and_(TicketEvent.ticket_id == Ticket.id, *closing(period)))
        return query

    def of_ticket(self, ticket_id, period: Period):
        """The group of the ticket whose id is in `ticket_id` (a column of another table, surveys'),
        looked up for each row by the ticket's own indexes: a join could let the planner start
        from the ticket side and walk the other table once per ticket."""
        if self.name == "staff":
            # by the ticket's few events, not by the (kind, at) index over everyone's
            return (select(TicketEvent.staff_id)
                    .where(TicketEvent.ticket_id == ticket_id, *closing(period, unindexed(TicketEvent.kind)))
                    .limit(1).correlate_except(TicketEvent).scalar_subquery())
        return select(self.key).where(Ticket.id == ticket_id).correlate_except(Ticket).scalar_subquery()

    def labels(self, keys) -> dict:
        """{key: name} for the groups found."""
        keys = [key for key in keys if key is not None]
        if not keys:
            return {}
        if self.name == "service":
            rows = db.session.execute(select(Service.id, Service.code, Service.name).where(Service.id.in_(keys)))
            return {ident: f"{code} · {name}" for ident, code, name in rows}
        model, column = (Counter, Counter.name) if self.name == "counter" else (StaffUser, StaffUser.display_name)
        return dict(db.session.execute(select(model.id, column).where(model.id.in_(keys))).all())


GROUPINGS = ("service", "counter", "staff")


# --- the figures --------------------------------------------------------------------------------

def _targets(branch_id: int) -> dict[int, int]:
    """{service id: target wait in seconds}."""
    rows = db.session.execute(select(Service.id, Service.target_wait_minutes).where(Service.branch_id == branch_id))
    return {ident: minutes * 60 for ident, minutes in rows}


def _within_target(branch_id: int):
    """Called within the target wait of the ticket's service (after a transfer, the service that
    called it), counted from the arrival, to the second."""
    goals = _targets(branch_id)
    goal = case(goals, value=Ticket.service_id, else_=None) if goals else None
    return and_(WAITED, WAIT <= goal) if goal is not None else false()


SHOWN = ("visits", "appointments", "served", "no_shows", "cancelled", "left_before_called", "transferred")
# and the counts and sums the figures are worked out from
COUNTS = (*SHOWN, "within_target", "quoted", "quote_error", "quote_miss", "quote_close")


def _columns(period: Period) -> list:
    """Everything one pass over the tickets gathers, labelled: counts, and the waits and service
    times themselves (whole seconds, one JSON array each) for the means and percentiles."""
    transferred = select(TicketEvent.ticket_id).where(TicketEvent.kind == TRANSFERRED, TicketEvent.at >= period.start)
    # (ids of the tickets transferred since the period began: events of that kind are few and found
    # by the (kind, at) index; a ticket of the period transferred later is still counted)
    return [
        func.count().label("visits"),
        func.sum(case((Ticket.source == "appointment", 1), else_=0)).label("appointments"),
        func.sum(case((Ticket.status == S.COMPLETED, 1), else_=0)).label("served"),
        func.sum(case((Ticket.status == S.NO_SHOW, 1), else_=0)).label("no_shows"),
        func.sum(case((Ticket.status == S.CANCELLED, 1), else_=0)).label("cancelled"),
        func.sum(case((and_(Ticket.status == S.CANCELLED, Ticket.called_at.is_(None)), 1), else_=0))
        .label("left_before_called"),
        func.sum(case((Ticket.id.in_(transferred), 1), else_=0)).label("transferred"),
        func.sum(case((_within_target(period.branch_id), 1), else_=0)).label("within_target"),
        func.count(case((QUOTED, 1))).label("quoted"),
        func.sum(case((QUOTED, QUOTE_ERROR))).label("quote_error"),
        func.sum(case((QUOTED, func.abs(QUOTE_ERROR)))).label("quote_miss"),
        func.count(case((and_(QUOTED, func.abs(QUOTE_ERROR) <= CLOSE_QUOTE), 1))).label("quote_close"),
        json_values(WAIT).filter(WAITED).label("waits"),
        json_values(SERVICE).filter(SERVED).label("services"),
    ]


@dataclass
class _Tally:
    """What a pass over one group's tickets found: counts, and the sorted seconds."""
    counts: dict
    waits: list
    services: list

    @classmethod
    def of(cls, row) -> _Tally:
        return cls({name: getattr(row, name) or 0 for name in COUNTS}, sorted(row.waits or ()),
                   sorted(row.services or ()))

    def figures(self) -> dict:
        counts = self.counts
        return {
            "visits": counts["visits"],
            "walk_ins": counts["visits"] - counts["appointments"],
            **{name: counts[name] for name in SHOWN[1:]},
            "wait_minutes": minutes(self.waits),
            "service_minutes": minutes(self.services),
            "service_level": share(counts["within_target"], len(self.waits)),
            "quoted_wait": quoted_wait(counts),
        }


def quoted_wait(counts: dict) -> dict:
    """The wait told at check-in against the real one, in minutes: mean absolute error, the share
    within ±5 minutes, and the bias (mean of real minus told: above 0, people waited longer)."""
    told = counts["quoted"]
    return {"tickets": told,
            "mean_absolute_error": round(float(counts["quote_miss"]) / told / 60, 2) if told else None,
            "within_5_minutes": share(counts["quote_close"], told),
            "bias": round(float(counts["quote_error"]) / told / 60, 2) if told else None}


def plain_plans() -> None:
    """No JIT compiling on PostgreSQL for the rest of this transaction: the aggregates of a report
    look costly enough to it that it compiles them first, 0.1-0.2 s a query, more than compiling
    saves on a year of a branch (measured with bench/reports.py)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL jit = off"))


def _tallies(period: Period, selection: Selection, grouping: Grouping | None = None) -> dict:
    """{group key (None without a grouping): _Tally}: one pass over the period's tickets. Without
    a grouping it needs no sort: the database streams the range once."""
    plain_plans()
    query = select(*([grouping.key.label("key")] if grouping else []), *_columns(period)).where(
        *period.tickets(), *selection.conditions(period))
    if grouping:
        # by the label: PostgreSQL would not see two renderings of one expression as the same
        query = grouping.apply(query, period).group_by(literal_column("key"))
    return {(row.key if grouping else None): _Tally.of(row) for row in db.session.execute(query)}


def visits(period: Period, selection: Selection = EVERYTHING) -> dict:
    """The queue's figures for the period: counts, wait and service minutes, service level."""
    return _tallies(period, selection)[None].figures()


def breakdown(period: Period, by: str, selection: Selection = EVERYTHING) -> list[dict]:
    """One row per service, counter or staff member with the main figures, most visits first.
    Tickets nobody called have no counter and no staff member: they are in no row of those."""
    grouping = Grouping(by)
    tallies = {key: tally for key, tally in _tallies(period, selection, grouping).items() if key is not None}
    labels = grouping.labels(list(tallies))
    rows = [{"id": key, "name": labels.get(key, ""), **tally.figures()} for key, tally in tallies.items()]
    return sorted(rows, key=lambda row: (-row["visits"], row["name"]))


def heatmap(period: Period, selection: Selection = EVERYTHING) -> dict:
    """Arrivals and mean wait (minutes) per branch-local weekday (Monday 0) and hour, and the
    busiest hours. Counted per UTC quarter hour by the database, placed by the zone here."""
    plain_plans()
    query = (select(quarter_hour(Ticket.arrived_at).label("quarter"), func.count(), func.count(case((WAITED, 1))),
                    func.sum(case((WAITED, WAIT))))
             .where(*period.tickets(), *selection.conditions(period)).group_by(literal_column("quarter")))
    arrivals = [[0] * HOURS for _ in range(WEEKDAYS)]
    waited = [[0] * HOURS for _ in range(WEEKDAYS)]
    waiting = [[0.0] * HOURS for _ in range(WEEKDAYS)]
    zone = period.zone
    for quarter, count, called, wait_total in db.session.execute(query):
        local = datetime.fromtimestamp(quarter * QUARTER_HOUR, timezone.utc).astimezone(zone)
        day, hour = local.weekday(), local.hour
        arrivals[day][hour] += count
        waited[day][hour] += called
        waiting[day][hour] += float(wait_total or 0)
    mean_wait = [[round(waiting[d][h] / waited[d][h] / 60, 2) if waited[d][h] else None for h in range(HOURS)]
                 for d in range(WEEKDAYS)]
    cells = sorted(((arrivals[d][h], d, h) for d in range(WEEKDAYS) for h in range(HOURS) if arrivals[d][h]),
                   key=lambda cell: (-cell[0], cell[1], cell[2]))
    return {"arrivals": arrivals, "mean_wait_minutes": mean_wait, "weeks": weekday_counts(period),
            "busiest": [{"weekday": d, "hour": h, "arrivals": n} for n, d, h in cells[:5]]}


def weekday_counts(period: Period) -> list[int]:
    """How many of each weekday (Monday first) the period holds: arrivals per cell over this is a mean day."""
    counts = [0] * WEEKDAYS
    for offset in range(period.days):
        counts[(period.first_day + timedelta(days=offset)).weekday()] += 1
    return counts


# --- arithmetic ---------------------------------------------------------------------------------

def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def minutes(seconds: list) -> dict:
    """{count, mean, median, p90} in minutes of sorted whole seconds; percentiles linear between
    neighbours (as PostgreSQL's percentile_cont)."""
    if not seconds:
        return {"count": 0, "mean": None, "median": None, "p90": None}
    return {"count": len(seconds), "mean": round(sum(seconds) / len(seconds) / 60, 2),
            "median": round(percentile(seconds, 0.5) / 60, 2), "p90": round(percentile(seconds, 0.9) / 60, 2)}


def percentile(ordered: list, fraction: float) -> float:
    """The `fraction` percentile of sorted values."""
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
