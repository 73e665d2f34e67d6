"""The console's nudge: the /console Socket.IO namespace tells a branch's open consoles that its
queue changed, and each console then fetches its panel once (staff/static/console.js). Nothing
polls while the socket is up.

A room per branch; only signed-in staff who can reach the branch may join it. The nudge is sent
by the display's update worker (display/realtime.py), after the change committed, once per batch
of a branch's changes and only while a console of the branch is connected: one COUNT on the
waiting tickets (the queue index), whatever the number of consoles. The panel itself is rendered
per console, by its own request, with that person's scope."""
from __future__ import annotations

import functools

from flask import current_app, request
from flask_login import current_user
from flask_socketio import Namespace, join_room
from sqlalchemy import bindparam, func, select

from core import clock, scope
from core.extensions import db, socketio
from core.models import Branch, Ticket
from core.models import TicketStatus as S
from display import realtime

NAMESPACE = "/console"
EVENT = "changed"
EXTENSION = "seed.console_watchers"


def room(branch_id: int) -> str:
    return f"console:{branch_id}"


@functools.cache  # built once, bound at each use (see core/queries.py)
def _waiting_count():
    return (select(func.count()).select_from(Ticket)
            .where(Ticket.branch_id == bindparam("branch"), Ticket.status == S.WAITING))


def news(branch_id: int) -> dict:
    waiting = db.session.scalar(_waiting_count(), {"branch": branch_id})
    return {"branch": branch_id, "at": clock.now().isoformat(), "waiting": waiting}


class Watchers(realtime.Watchers):
    """The consoles connected to this process, per branch."""

    def publish(self, branch_id: int) -> None:
        """Called by the display's worker, in an app context, after the change committed."""
        socketio.emit(EVENT, news(branch_id), to=room(branch_id), namespace=NAMESPACE)


def watchers(app=None) -> Watchers:
    return (app or current_app).extensions[EXTENSION]


def allowed(branch_id) -> bool:
    """Signed in (the page's session cookie), active, staff or above, and the branch within reach."""
    return (isinstance(branch_id, int) and not isinstance(branch_id, bool)
            and current_user.is_authenticated and current_user.is_active and scope.has_role("staff")
            and scope.can_see(branch_id) and db.session.get(Branch, branch_id) is not None)


class ConsoleNamespace(Namespace):
    def on_connect(self, auth=None):
        branch_id = auth.get("branch") if isinstance(auth, dict) else None
        if not allowed(branch_id):
            raise ConnectionRefusedError("not allowed")
        join_room(room(branch_id))
        watchers().watch(request.sid, branch_id)

    def on_disconnect(self, reason=None):
        watchers().forget(request.sid)


def init_app(app) -> None:
    found = app.extensions[EXTENSION] = Watchers(app)
    socketio.on_namespace(ConsoleNamespace(NAMESPACE))
    realtime.follow(app, found.watched, found.publish)
