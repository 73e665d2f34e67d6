"""Reading the queue: positions, wait estimates and snapshots. Reads only; changes go through core.engine."""
from __future__ import annotations

import math
from datetime import timedelta
from statistics import median

from flask import current_app
from sqlalchemy import and_, func, or_, select

from . import clock
from .extensions import db
from .models import Counter, Service, Ticket, counter_services
from .models import TicketStatus as S

QUEUE_ORDER = (Ticket.priority.desc(), Ticket.arrived_at, Ticket.id)


def position(ticket: Ticket) -> int | None:
    """1 for the next to be called in its service; None when the ticket is not waiting.
    A ticket running late keeps its place in this count."""
    if ticket.status != S.WAITING:
        return None
    ahead = db.session.scalar(
        select(func.count(Ticket.id)).where(
            Ticket.branch_id == ticket.branch_id,
            Ticket.service_id == ticket.service_id,
            Ticket.status == S.WAITING,
            Ticket.id != ticket.id,
            or_(
                Ticket.priority > ticket.priority,
                and_(
                    Ticket.priority == ticket.priority,
                    or_(
                        Ticket.arrived_at < ticket.arrived_at,
                        and_(Ticket.arrived_at == ticket.arrived_at, Ticket.id < ticket.id),
                    ),
                ),
            ),
        )
    )
    return ahead + 1


def service_minutes(service: Service) -> float:
    """Median measured service time of the service's recent completions; the configured
    average when there are too few to trust."""
    config = current_app.config
    since = clock.now() - timedelta(hours=config["ESTIMATE_WINDOW_HOURS"])
    rows = db.session.execute(
        select(Ticket.started_at, Ticket.called_at, Ticket.finished_at)
        .where(Ticket.service_id == service.id, Ticket.status == S.COMPLETED, Ticket.finished_at >= since)
        .order_by(Ticket.finished_at.desc())
        .limit(config["ESTIMATE_SAMPLE_SIZE"])
    ).all()
    durations = [
        (finished - (started or called)).total_seconds() / 60
        for started, called, finished in rows
        if finished and (started or called)
    ]
    if len(durations) < config["ESTIMATE_MIN_SAMPLES"]:
        return float(service.avg_service_minutes)
    return max(median(durations), 0.5)


def open_counters(service: Service) -> int:
    return db.session.scalar(
        select(func.count(Counter.id))
        .join(counter_services, counter_services.c.counter_id == Counter.id)
        .where(counter_services.c.service_id == service.id, Counter.is_open.is_(True))
    )


def wait_minutes(people_ahead: int, minutes_each: float, counters: int) -> int:
    return math.ceil(people_ahead * minutes_each / max(counters, 1))


def estimated_wait_minutes(ticket: Ticket) -> int | None:
    place = position(ticket)
    if place is None:
        return None
    return wait_minutes(place - 1, service_minutes(ticket.service), open_counters(ticket.service))


def ticket_summary(ticket: Ticket, place=None, wait=None) -> dict:
    now = clock.now()
    if place is None and ticket.status == S.WAITING:
        place = position(ticket)
        wait = estimated_wait_minutes(ticket)
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


def queue_snapshot(branch_id: int) -> list[dict]:
    """Every active service of the branch with its waiting and held tickets, in call order."""
    services = db.session.scalars(
        select(Service).where(Service.branch_id == branch_id, Service.active.is_(True)).order_by(Service.code)
    ).all()
    tickets = db.session.scalars(
        select(Ticket)
        .where(Ticket.branch_id == branch_id, Ticket.status.in_((S.WAITING, S.HELD)))
        .order_by(*QUEUE_ORDER)
    ).all()
    result = []
    for service in services:
        minutes, counters = service_minutes(service), open_counters(service)
        waiting = [t for t in tickets if t.service_id == service.id and t.status == S.WAITING]
        held = [t for t in tickets if t.service_id == service.id and t.status == S.HELD]
        result.append(
            {
                "code": service.code,
                "name": service.name,
                "id": service.id,
                "waiting_count": len(waiting),
                "open_counters": counters,
                "estimated_wait_minutes": wait_minutes(len(waiting), minutes, counters),
                "waiting": [
                    ticket_summary(t, place=i + 1, wait=wait_minutes(i, minutes, counters))
                    for i, t in enumerate(waiting)
                ],
                "held": [ticket_summary(t) for t in held],
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
