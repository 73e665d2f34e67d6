"""What a waiting-room display shows, as one snapshot: a screen that reconnects needs nothing else."""
import functools
from datetime import datetime, time, timedelta

from sqlalchemy import bindparam, select

from core import clock, storefront
from core.extensions import db
from core.models import OPEN_AT_COUNTER, Branch, Counter, Customer, Service, Ticket, TicketEvent
from core.models import TicketStatus as S
from core.queries import service_figures, wait_minutes

RECENT_CALLS = 8
CALLS = ("called", "recalled")


def _start_of_local_day(branch: Branch, now: datetime) -> datetime:
    local = branch.local(now)
    return datetime.combine(local.date(), time.min, tzinfo=branch.zone)


def _name(branch, ticket):
    # Names only where the branch has chosen to show them; otherwise they never leave the server.
    if branch.show_names and ticket.customer is not None and ticket.customer.name:
        return ticket.customer.name
    return None


# The statements are built once and bound at each build (see core/queries.py): a snapshot is
# built after every change of a branch with a screen open, and building them cost more than
# running them.
@functools.cache
def _serving():
    return (select(Ticket)
            .where(Ticket.branch_id == bindparam("branch"), Ticket.status.in_(OPEN_AT_COUNTER))
            .order_by(Ticket.called_at.desc(), Ticket.id.desc()))


@functools.cache
def _calls():
    # Today's calls only, newest first, found by moment (ix_ticket_event_kind_at). The day bound on
    # the ticket too (its unique (branch, day, label) index) keeps either join order away from the
    # branch's years of tickets; tickets left from an earlier day are closed just after midnight.
    # The values shown, not the rows as objects: up to 32 rows of three objects each cost a
    # snapshot more than all its other statements together. The service's code and the customer's
    # name are looked up by key for each row: as joins, SQLite's planner began from the day's
    # tickets and looked through the day's calls for each (tickets x calls).
    service = select(Service.code).where(Service.id == Ticket.service_id).scalar_subquery()
    name = select(Customer.name).where(Customer.id == Ticket.customer_id).scalar_subquery()
    return (select(TicketEvent.at, Ticket.id, Ticket.label, Ticket.status, service, Counter.name, name)
            .join(Ticket, TicketEvent.ticket_id == Ticket.id)
            .outerjoin(Counter, TicketEvent.counter_id == Counter.id)
            .where(TicketEvent.kind.in_(CALLS), TicketEvent.at >= bindparam("since"),
                   Ticket.branch_id == bindparam("branch"), Ticket.service_day >= bindparam("day"))
            .order_by(TicketEvent.at.desc(), TicketEvent.id.desc())
            .limit(RECENT_CALLS * 4))


@functools.cache
def _waiting_counts():
    return (select(Ticket.service_id, db.func.count())
            .where(Ticket.branch_id == bindparam("branch"), Ticket.status == S.WAITING)
            .group_by(Ticket.service_id))


def build(branch_id: int) -> dict | None:
    branch = db.session.get(Branch, branch_id)
    if branch is None:
        return None
    now = clock.now()
    day_start = _start_of_local_day(branch, now)
    serving = db.session.scalars(_serving(), {"branch": branch.id}).all()
    calls = db.session.execute(_calls(), {"branch": branch.id, "since": day_start,
                                          "day": day_start.date() - timedelta(days=1)}).all()
    recent, seen = [], set()
    for at, ticket_id, label, status, service, counter, name in calls:
        if ticket_id in seen:
            continue
        seen.add(ticket_id)
        recent.append({"number": label, "counter": counter, "service": service, "at": at.isoformat(),
                       "status": str(status), "name": name if branch.show_names and name else None})
        if len(recent) == RECENT_CALLS:
            break
    counts = dict(db.session.execute(_waiting_counts(), {"branch": branch.id}).all())
    languages = storefront.offered_languages(branch)
    offered = [service for service in storefront.kiosk_services(branch) if service.active]
    figures = service_figures(offered)  # two queries for all the services, not two per service
    services = []
    for service in offered:
        count = counts.get(service.id, 0)
        minutes, counters = figures[service.id]
        # Every offered language's name: each screen picks the one it is showing as it rotates.
        services.append({"code": service.code, "name": service.name,
                         "names": {language: service.name_in(language) for language in languages}, "waiting": count,
                         "estimated_wait_minutes": wait_minutes(count, minutes, counters)})
    return {
        "branch": {"id": branch.id, "name": branch.name, "timezone": branch.timezone},
        "time": now.isoformat(),
        "serving": [{"number": t.label, "counter": t.counter.name if t.counter else None, "service": t.service.code,
                     "status": str(t.status), "called_at": t.called_at.isoformat() if t.called_at else None,
                     "name": _name(branch, t)} for t in serving],
        "recent": recent,
        "services": services,
    }


