"""JSON API /api/v1: every engine action, and reading queues and tickets. Thin: validate, call core, render."""
from flask import current_app, jsonify, request
from flask_login import current_user, login_required
from sqlalchemy import select, text

from core import clock, engine
from core.errors import NotFound, ValidationError
from core.extensions import db
from core.models import Branch, Counter, Service, Ticket, TicketStatus
from core.queries import counter_snapshot, queue_snapshot, ticket_summary
from core.web import json_object

from . import api
from .outbox import health_report

VERSION = "0.1.0"


@api.before_request
def require_json():
    if request.method in ("POST", "PUT") and not request.is_json:
        return jsonify({"error": "unsupported_media_type", "detail": "Send JSON with Content-Type: application/json."}), 415
    return None


def body() -> dict:
    return json_object(empty_ok=True)


def whole_number(data, key, default=None):
    value = data.get(key, default)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValidationError(f"{key} must be a whole number.", {key: "not a whole number"})
    return value


def user_branch(branch_id=None) -> Branch:
    """The branch a request acts on: the staff member's own, or for admins the one asked for."""
    if current_user.branch_id is not None:
        if branch_id not in (None, current_user.branch_id):
            raise NotFound(f"Branch {branch_id} does not exist.")
        branch_id = current_user.branch_id
    branch = db.session.get(Branch, branch_id) if branch_id else db.session.scalar(select(Branch).order_by(Branch.id))
    if branch is None:
        raise NotFound(f"Branch {branch_id} does not exist." if branch_id else "No branch is set up yet.")
    return branch


def _owned(model, ident, what):
    row = db.session.get(model, ident)
    if row is None or (current_user.branch_id is not None and row.branch_id != current_user.branch_id):
        raise NotFound(f"{what} {ident} does not exist.")
    return row


def service_by_code(branch: Branch, code) -> Service:
    if not isinstance(code, str) or not code.strip():
        raise ValidationError("service is required: a service code such as 'A'.", {"service": "required"})
    service = db.session.scalar(
        select(Service).where(Service.branch_id == branch.id, Service.code == code.strip().upper())
    )
    if service is None or not service.active:
        raise NotFound(f"Unknown service {code[:10]!r} at {branch.name}.", {"service": "unknown"})
    return service


def ticket_json(ticket_id, status=200):
    ticket = db.session.get(Ticket, ticket_id)
    return jsonify({"ticket": ticket_summary(ticket)}), status


@api.get("/health")
def health():
    """Public. 503 when the database is down; 200 with "degraded" and the reasons when texts are
    late or a modem needs attention: the web side is up, texting is not well."""
    now = clock.now()
    payload = {"status": "degraded", "version": VERSION, "time": now.isoformat(), "modems": []}
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001  (health must answer, whatever broke)
        current_app.logger.exception("health check: database unreachable")
        db.session.rollback()
        payload.update(database=f"error: {type(error).__name__}",
                       reasons=[{"reason": "database", "message": "The database cannot be reached."}])
        return jsonify(payload), 503
    payload["database"] = "ok"
    try:
        payload.update(health_report(now))
    except Exception as error:  # noqa: BLE001
        current_app.logger.exception("health check: could not read the outbox or the modems")
        db.session.rollback()
        payload["reasons"] = [{"reason": "texting_unknown", "message": f"Texting state unreadable: {type(error).__name__}"}]
    return jsonify(payload), 200


@api.get("/queues")
@login_required
def queues():
    branch = user_branch(request.args.get("branch", type=int))
    counters = db.session.scalars(select(Counter).where(Counter.branch_id == branch.id).order_by(Counter.id))
    return jsonify(
        {
            "branch": {"id": branch.id, "name": branch.name, "timezone": branch.timezone},
            "services": queue_snapshot(branch.id),
            "counters": [counter_snapshot(c) for c in counters],
        }
    )


@api.get("/tickets")
@login_required
def list_tickets():
    branch = user_branch(request.args.get("branch", type=int))
    query = select(Ticket).where(Ticket.branch_id == branch.id)
    status = request.args.get("status")
    if status:
        if status not in set(TicketStatus):
            raise ValidationError(f"Unknown status {status[:20]!r}.", {"status": sorted(TicketStatus)})
        query = query.where(Ticket.status == status)
    if request.args.get("service"):
        query = query.where(Ticket.service_id == service_by_code(branch, request.args["service"]).id)
    tickets = db.session.scalars(query.order_by(Ticket.arrived_at.desc(), Ticket.id.desc()).limit(500))
    return jsonify({"tickets": [ticket_summary(t) for t in tickets]})


@api.get("/tickets/<int:ticket_id>")
@login_required
def get_ticket(ticket_id):
    ticket = _owned(Ticket, ticket_id, "Ticket")
    result = ticket_summary(ticket)
    result["events"] = [
        {
            "kind": e.kind,
            "at": e.at.isoformat(),
            "from": e.from_status,
            "to": e.to_status,
            "staff": e.staff.username if e.staff else None,
            "counter": e.counter.name if e.counter else None,
            "detail": e.detail,
        }
        for e in ticket.events
    ]
    return jsonify({"ticket": result})


@api.post("/tickets")
@login_required
def issue():
    data = body()
    branch = user_branch(whole_number(data, "branch"))
    service = service_by_code(branch, data.get("service"))
    language = data.get("language", branch.default_language)
    if language not in ("en", "ja", "ka"):
        raise ValidationError("language must be en, ja or ka.", {"language": "unsupported"})
    ticket = engine.issue_ticket(
        service.id, priority=whole_number(data, "priority", 0), language=language, source="staff", staff=current_user
    )
    return ticket_json(ticket.id, 201)


@api.get("/counters")
@login_required
def counters():
    branch = user_branch(request.args.get("branch", type=int))
    rows = db.session.scalars(select(Counter).where(Counter.branch_id == branch.id).order_by(Counter.id))
    return jsonify({"counters": [counter_snapshot(c) for c in rows]})


@api.post("/counters/<int:counter_id>/call-next")
@login_required
def call_next(counter_id):
    _owned(Counter, counter_id, "Counter")
    ticket = engine.call_next(counter_id, staff=current_user)
    if ticket is None:
        return jsonify({"ticket": None, "message": "Nobody is waiting for this counter's services."})
    return ticket_json(ticket.id)


@api.post("/counters/<int:counter_id>/<any(open, close):state>")
@login_required
def open_or_close(counter_id, state):
    _owned(Counter, counter_id, "Counter")
    counter = engine.set_counter_open(counter_id, state == "open", staff=current_user)
    return jsonify({"counter": counter_snapshot(db.session.get(Counter, counter.id))})


SIMPLE_ACTIONS = {
    "recall": engine.recall,
    "start": engine.start_serving,
    "complete": engine.complete,
    "no-show": engine.no_show,
    "hold": engine.hold,
    "unhold": engine.unhold,
}


@api.post("/tickets/<int:ticket_id>/<action>")
@login_required
def ticket_action(ticket_id, action):
    ticket = _owned(Ticket, ticket_id, "Ticket")
    data = body()
    if action in SIMPLE_ACTIONS:
        SIMPLE_ACTIONS[action](ticket_id, staff=current_user)
    elif action == "cancel":
        reason = data.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 200):
            raise ValidationError("reason must be text of at most 200 characters.", {"reason": "invalid"})
        engine.cancel(ticket_id, staff=current_user, reason=reason)
    elif action == "late":
        engine.running_late(ticket_id, whole_number(data, "minutes"), staff=current_user)
    elif action == "transfer":
        target = service_by_code(ticket.branch, data.get("service"))
        engine.transfer(ticket_id, target.id, staff=current_user)
    else:
        actions = sorted([*SIMPLE_ACTIONS, "cancel", "late", "transfer"])
        raise NotFound(f"Unknown action {action[:20]!r}.", {"actions": actions})
    return ticket_json(ticket_id)
