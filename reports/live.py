"""Today, live: waiting now, the longest wait now, counters open, served so far today and the
service level so far, pushed to the report page of the branch's managers as the queue changes.

The /reports/live Socket.IO namespace has a room per branch; only a manager of the branch (or an
admin) may join it. The figures are built by the display's update worker (display/realtime.py),
after the change committed, once per batch of a branch's changes and only while a manager
watches it: two small queries on the waiting tickets (the queue index) and the open counters, and
one pass over today's tickets (the (branch, day) index). A check-in pays nothing for it."""
from __future__ import annotations


from flask import current_app, request
from flask_socketio import Namespace, emit, join_room
from sqlalchemy import func, select

from core import clock, reports, scope
from core.extensions import db, socketio
from core.models import Branch, Counter, Ticket
from core.models import TicketStatus as S
from core.reports import Period
from display import realtime

NAMESPACE = "/reports/live"
EVENT = "figures"
EXTENSION = "seed.live_figures"


def room(branch_id: int) -> str:
    return f"live:{branch_id}"


def figures(branch: Branch) -> dict:
    """The live figures of the branch, now."""
    now = clock.now()
    waiting, first = db.session.execute(
        select(func.count(), func.min(Ticket.arrived_at))
        .where(Ticket.branch_id == branch.id, Ticket.status == S.WAITING)).one()
    counters = db.session.scalar(select(func.count()).select_from(Counter)
                                 .where(Counter.branch_id == branch.id, Counter.is_open.is_(True)))
    today = branch.local_date(now)
    so_far = reports.visits(Period.of(branch, today, today))
    return {"branch": branch.id, "at": now.isoformat(), "waiting": waiting,
            "longest_wait_minutes": round((now - first).total_seconds() / 60, 1) if first else None,
            "counters_open": counters, "served": so_far["served"], "service_level": so_far["service_level"]}


class Watchers(realtime.Watchers):
    """The managers' pages connected to this process, per branch."""

    def publish(self, branch_id: int) -> None:
        """Called by the display's worker, in an app context, after the change committed."""
        branch = db.session.get(Branch, branch_id)
        if branch is not None:
            socketio.emit(EVENT, figures(branch), to=room(branch_id), namespace=NAMESPACE)


def watchers(app=None) -> Watchers:
    return (app or current_app).extensions[EXTENSION]


class LiveNamespace(Namespace):
    def on_connect(self, auth=None):
        """Signed in (the page's session cookie), a manager, and the branch within reach."""
        branch_id = (auth or {}).get("branch") if isinstance(auth, dict) else None
        if not isinstance(branch_id, int) or not scope.has_role("manager") or not scope.can_see(branch_id):
            raise ConnectionRefusedError("not allowed")
        branch = db.session.get(Branch, branch_id)
        if branch is None:
            raise ConnectionRefusedError("not allowed")
        join_room(room(branch_id))
        watchers().watch(request.sid, branch_id)
        emit(EVENT, figures(branch))

    def on_disconnect(self, reason=None):
        watchers().forget(request.sid)


def init_app(app) -> None:
    found = app.extensions[EXTENSION] = Watchers(app)
    socketio.on_namespace(LiveNamespace(NAMESPACE))
    realtime.follow(app, found.watched, found.publish)
