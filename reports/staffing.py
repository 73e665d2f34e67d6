"""The staffing hint: how many counters each branch-local hour needed to call people within their
service's target wait (Erlang C), beside how many were calling then.

For each weekday and hour of the period: arrivals per hour (λ, averaged over the days anyone came
in that hour's weekday), the mean service time of the tickets that arrived then, and the services'
target waits weighted by their arrivals. Erlang C treats arrivals as random and counters as
interchangeable: a hint for a rota, not a promise. The figures come from one pass over the
period's tickets (the same (branch, day) index range as every report), grouped by quarter hour.
"""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timezone

from sqlalchemy import case, func, literal_column, select

from core.extensions import db
from core.models import Service, Ticket
from core.reports import (EVERYTHING, QUARTER_HOUR, SERVED, SERVICE, Period, Selection, plain_plans,
                          quarter_hour)

TARGET_SHARE = 0.8  # the usual service level goal: 80 % called within the target wait
HOUR = 3600
MOST_COUNTERS = 500  # a bound for the search: no branch has more


# --- Erlang C -----------------------------------------------------------------------------------

def erlang_c(servers: int, traffic: float) -> float:
    """The probability that an arrival has to wait, with `servers` counters and `traffic` Erlangs
    (arrivals per hour × service hours). Worked out through the Erlang B recurrence, which stays
    exact where factorials of many counters would overflow."""
    if traffic <= 0:
        return 0.0
    if servers <= traffic:
        return 1.0  # the queue grows without end
    blocked = 1.0
    for k in range(1, servers + 1):
        blocked = traffic * blocked / (k + traffic * blocked)
    return servers * blocked / (servers - traffic * (1 - blocked))


def service_level(servers: int, traffic: float, service_seconds: float, target_seconds: float) -> float:
    """The share called within `target_seconds`: 1 - C * e^(-(N - A) t / S)."""
    if traffic <= 0:
        return 1.0
    if servers <= traffic:
        return 0.0
    return 1 - erlang_c(servers, traffic) * math.exp(-(servers - traffic) * target_seconds / service_seconds)


def counters_needed(arrivals_per_hour: float, service_seconds: float, target_seconds: float,
                    target_share: float = TARGET_SHARE) -> int:
    """The fewest counters whose service level reaches `target_share`."""
    if arrivals_per_hour <= 0 or service_seconds <= 0:
        return 0
    traffic = arrivals_per_hour * service_seconds / HOUR
    servers = math.floor(traffic) + 1
    while servers < MOST_COUNTERS and service_level(servers, traffic, service_seconds, target_seconds) < target_share:
        servers += 1
    return servers


# --- the period's hours -------------------------------------------------------------------------

def _cells(period: Period, selection: Selection):
    """(local date, hour) -> what arrived then: per service the arrivals, and the service seconds
    and count of those served; and -> the counters that called someone then."""
    plain_plans()
    zone = period.zone
    arrived = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))  # cell -> service -> [arrivals, seconds, served]
    query = (select(quarter_hour(Ticket.arrived_at).label("quarter"), Ticket.service_id.label("service"),
                    func.count(), func.sum(case((SERVED, SERVICE))), func.count(case((SERVED, 1))))
             .where(*period.tickets(), *selection.conditions(period))
             .group_by(literal_column("quarter"), literal_column("service")))
    for quarter, service, count, seconds, served in db.session.execute(query):
        tally = arrived[_local(quarter, zone)][service]
        tally[0] += count
        tally[1] += int(seconds or 0)
        tally[2] += served
    calling = defaultdict(set)
    query = (select(quarter_hour(Ticket.called_at).label("quarter"), Ticket.counter_id.label("counter"))
             .where(*period.tickets(), *selection.conditions(period), Ticket.called_at.is_not(None),
                    Ticket.counter_id.is_not(None))
             .group_by(literal_column("quarter"), literal_column("counter")))
    for quarter, counter in db.session.execute(query):
        calling[_local(quarter, zone)].add(counter)
    return arrived, calling


def _local(quarter: int, zone) -> tuple:
    local = datetime.fromtimestamp(quarter * QUARTER_HOUR, timezone.utc).astimezone(zone)
    return local.date(), local.hour


def staffing(period: Period, selection: Selection = EVERYTHING, target_share: float = TARGET_SHARE) -> dict:
    """One row per weekday (Monday 0) and hour anyone arrived in: arrivals per hour, mean service
    minutes, target wait, counters needed and counters that were calling (both per day, averaged)."""
    arrived, calling = _cells(period, selection)
    targets = dict(db.session.execute(select(Service.id, Service.target_wait_minutes)
                                      .where(Service.branch_id == period.branch_id)).all())
    days_open = defaultdict(set)  # weekday -> the dates anyone arrived on
    slots = defaultdict(list)  # (weekday, hour) -> the cells of that slot
    for day, hour in arrived:
        days_open[day.weekday()].add(day)
    for day, hour in {*arrived, *calling}:  # (a call may fall in the hour after the arrival's)
        slots[(day.weekday(), hour)].append((day, hour))
    overall = [sum(tally[i] for cell in arrived.values() for tally in cell.values()) for i in (1, 2)]
    rows = [_row(weekday, hour, cells, len(days_open[weekday]) or 1, arrived, calling, targets, overall, target_share)
            for (weekday, hour), cells in sorted(slots.items())]
    return {"target_share": target_share, "rows": rows}


def _row(weekday, hour, cells, days, arrived, calling, targets, overall, target_share) -> dict:
    """One weekday-and-hour: its cells (one per date) summed, then per day."""
    by_service = defaultdict(lambda: [0, 0, 0])
    for cell in cells:
        for service, tally in arrived.get(cell, {}).items():
            for i, value in enumerate(tally):
                by_service[service][i] += value
    arrivals, seconds, served = (sum(tally[i] for tally in by_service.values()) for i in range(3))
    opened = round(sum(len(calling.get(cell, ())) for cell in cells) / days, 2)
    row = {"weekday": weekday, "hour": hour, "days": days, "arrivals_per_hour": round(arrivals / days, 2),
           "service_minutes": None, "target_wait_minutes": None, "needed": 0, "open": opened}
    if not arrivals:  # only calls of people who came the hour before
        return row
    if not served:  # nobody who came then was served: the period's mean
        seconds, served = overall
    target = sum(tally[0] * targets.get(service, 0) * 60 for service, tally in by_service.items()) / arrivals
    row["target_wait_minutes"] = round(target / 60, 2)
    if served:
        mean_service = seconds / served
        row["service_minutes"] = round(mean_service / 60, 2)
        row["needed"] = counters_needed(arrivals / days, mean_service, target, target_share)
    else:
        row["needed"] = None  # no service time to go by
    return row
