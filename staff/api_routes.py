"""JSON API /api/v1: every engine action, and reading queues and tickets. Thin: validate, call core, render."""
from flask import current_app, jsonify, request
from flask_login import current_user, login_required
from sqlalchemy import select, text

from core import clock, engine, leader, scope
from core.errors import NotFound, UnsupportedMediaType, ValidationError
from core.extensions import db
from core.models import Branch, Counter, Service, Ticket, TicketStatus
from core.queries import counter_snapshot, queue_snapshot, ticket_summary
from core.web import arg_number, clean_text, json_object, whole_number

from . import api
from .outbox import health_report

VERSION = "0.1.0"


@api.before_request
def require_json():
    if request.method in ("POST", "PUT") and not request.is_json:
        raise UnsupportedMediaType("Send JSON with Content-Type: application/json.", {"body": "not JSON"})
    return None


def body() -> dict:
    return json_object(empty_ok=True)


def chosen_branch(data: dict | None = None) -> Branch:
    """The branch the body's "branch" names (the query's when there is no body), within reach;
    without one, the caller's first branch."""
    ident = arg_number("branch") if data is None else whole_number(data, "branch")
    try:
        return scope.branch(ident)
    except NotFound as error:
        raise NotFound(error.message, {"branch": "unknown"} if ident is not None else error.detail) from None


def service_by_code(branch: Branch, source: dict) -> Service:
    """The active service whose code is source["service"] (a body or the query arguments)."""
    code = clean_text(source, "service", max_length=10)
    if code is None:
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
    try:  # which process runs the scheduler's jobs now (README, "Deploying"): reported, not judged
        payload["scheduler"] = {"active": leader.holder(current_app._get_current_object(), "scheduler")}
    except Exception:  # noqa: BLE001
        current_app.logger.exception("health check: could not ask who runs the scheduler")
        payload["scheduler"] = {"active": None}
    try:
        payload.update(health_report(now))
    except Exception as error:  # noqa: BLE001
        current_app.logger.exception("health check: could not read the outbox or the modems")
        db.session.rollback()
        payload["reasons"] = [{"reason": "texting_unknown", "message": f"Texting state unreadable: {type(error).__name__}"}]
    return jsonify(payload), 200


QUEUE_PAGE = 50  # waiting tickets per service in one answer of /queues; ?after= asks for the next


@api.get("/queues")
@login_required
def queues():
    """Each service's counts and the first page of its waiting tickets: a console or a script
    gets the same answer, as fast, with 5,000 waiting as with 50. `?first=` (1-500) and
    `?after=` (a place) page on; `more` says whether a service has tickets past the page."""
    branch = chosen_branch()
    first = arg_number("first", low=1, high=500) or QUEUE_PAGE
    after = arg_number("after", low=0) or 0
    counters = db.session.scalars(select(Counter).where(Counter.branch_id == branch.id).order_by(Counter.id))
    services = queue_snapshot(branch.id, first=first, after=after)
    for service in services:
        service["more"] = service["waiting_count"] > after + first
    return jsonify(
        {
            "branch": {"id": branch.id, "name": branch.name, "timezone": branch.timezone},
            "page": {"first": first, "after": after},
            "services": services,
            "counters": [counter_snapshot(c) for c in counters],
        }
    )


@api.get("/tickets")
@login_required
def list_tickets():
    branch = chosen_branch()
    query = select(Ticket).where(Ticket.branch_id == branch.id)
    status = request.args.get("status")
    if status:
        if status not in set(TicketStatus):
            raise ValidationError(f"Unknown status {status[:20]!r}.", {"status": sorted(TicketStatus)})
        query = query.where(Ticket.status == status)
    if request.args.get("service"):
        query = query.where(Ticket.service_id == service_by_code(branch, request.args).id)
    tickets = db.session.scalars(query.order_by(Ticket.arrived_at.desc(), Ticket.id.desc()).limit(500))
    return jsonify({"tickets": [ticket_summary(t) for t in tickets]})


@api.get("/tickets/<int:ticket_id>")
@login_required
def get_ticket(ticket_id):
    ticket = scope.owned(Ticket, ticket_id, "Ticket")
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
    branch = chosen_branch(data)
    service = service_by_code(branch, data)
    language = data.get("language", branch.default_language)
    if language not in ("en", "ja", "ka"):
        raise ValidationError("language must be en, ja or ka.", {"language": "unsupported"})
    priority = whole_number(data, "priority", 0, low=-100, high=100)
    ticket = engine.issue_ticket(service.id, priority=priority, language=language, source="staff", staff=current_user)
    return ticket_json(ticket.id, 201)


@api.get("/counters")
@login_required
def counters():
    branch = chosen_branch()
    rows = db.session.scalars(select(Counter).where(Counter.branch_id == branch.id).order_by(Counter.id))
    return jsonify({"counters": [counter_snapshot(c) for c in rows]})


@api.post("/counters/<int:counter_id>/call-next")
@login_required
def call_next(counter_id):
    scope.owned(Counter, counter_id, "Counter")
    ticket = engine.call_next(counter_id, staff=current_user)
    if ticket is None:
        return jsonify({"ticket": None, "message": "Nobody is waiting for this counter's services."})
    return ticket_json(ticket.id)


@api.post("/counters/<int:counter_id>/<any(open, close):state>")
@login_required
def open_or_close(counter_id, state):
    scope.owned(Counter, counter_id, "Counter")
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
    ticket = scope.owned(Ticket, ticket_id, "Ticket")
    data = body()
    if action in SIMPLE_ACTIONS:
        SIMPLE_ACTIONS[action](ticket_id, staff=current_user)
    elif action == "cancel":
        reason = clean_text(data, "reason", max_length=200)
        engine.cancel(ticket_id, staff=current_user, reason=reason)
    elif action == "late":
        minutes = whole_number(data, "minutes", high=current_app.config["LATE_MAX_MINUTES"])
        engine.running_late(ticket_id, minutes, staff=current_user)
    elif action == "transfer":
        target = service_by_code(ticket.branch, data)
        engine.transfer(ticket_id, target.id, staff=current_user)
    else:
        actions = sorted([*SIMPLE_ACTIONS, "cancel", "late", "transfer"])
        raise NotFound(f"Unknown action {action[:20]!r}.", {"actions": actions})
    return ticket_json(ticket_id)
