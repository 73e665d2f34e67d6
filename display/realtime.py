"""The /display Socket.IO namespace: one room per branch, a full snapshot on every connect, and
an update (the change plus a fresh snapshot) after every committed ticket change."""
import logging

from flask import request
from flask_socketio import Namespace, emit, join_room

from core.extensions import db, socketio
from core.models import Counter, Ticket

from . import snapshot

log = logging.getLogger(__name__)
NAMESPACE = "/display"
ANNOUNCED = {"called", "recalled"}


def room(branch_id: int) -> str:
    return f"branch:{branch_id}"


class DisplayNamespace(Namespace):
    def on_connect(self, auth=None):
        branch_id = (auth or {}).get("branch") if isinstance(auth, dict) else None
        branch_id = branch_id or request.args.get("branch", type=int)
        state = snapshot.build(int(branch_id)) if str(branch_id or "").isdigit() else None
        if state is None:
            raise ConnectionRefusedError("unknown branch")
        join_room(room(state["branch"]["id"]))
        emit("snapshot", state)

    def on_resync(self, data=None):
        branch_id = (data or {}).get("branch") if isinstance(data, dict) else None
        state = snapshot.build(int(branch_id)) if str(branch_id or "").isdigit() else None
        if state is not None:
            emit("snapshot", state)


def broadcast(branch_id: int, event: dict | None) -> None:
    """Send one branch's displays the change and the state after it (from any process: with a
    message queue configured, the emit travels through Redis)."""
    state = snapshot.build(branch_id)
    if state is None:
        return
    socketio.emit("update", {"event": event, "snapshot": state}, to=room(branch_id), namespace=NAMESPACE)


def on_ticket_changed(app, change):
    ticket = db.session.get(Ticket, change.ticket_id)
    counter = None
    if change.counter_id is not None:
        found = db.session.get(Counter, change.counter_id)
        counter = found.name if found else None
    event = {"kind": change.kind, "number": change.label, "counter": counter, "status": change.status,
             "service": ticket.service.code if ticket else None,
             "announce": change.kind in ANNOUNCED and counter is not None}
    try:
        broadcast(change.branch_id, event)
    except Exception:  # noqa: BLE001  (a display problem must never undo or block a ticket change)
        log.exception("display update for branch %s failed", change.branch_id)


def on_counter_changed(app, branch_id, **_):
    try:
        broadcast(branch_id, None)
    except Exception:  # noqa: BLE001
        log.exception("display update for branch %s failed", branch_id)


def init_app(app) -> None:
    from core.events import counter_changed, ticket_changed

    # socketio.init_app (create_app's init_realtime) made this app's server: register on it.
    socketio.on_namespace(DisplayNamespace(NAMESPACE))
    ticket_changed.connect(on_ticket_changed, sender=app)
    counter_changed.connect(on_counter_changed, sender=app)
