"""JSON API /api/v1: every engine action, and reading queues and tickets. Thin: validate, call core, render."""
from flask import current_app, jsonify, request
from flask_login import current_user, login_required
from sqlalchemy import select, text

from core import clock, engine, leader, scope
from core.errors import NotFound, UnsupportedMediaType, ValidationError
from core.extensions import db
from core.models import Branch, Counter, Service, Ticket, TicketStatus
from core.queries import counter_snapshot, queue_snapshot, ticket_summary
from core.openapi import (BOOLEAN, INTEGER, OBJECT, STRING, TIME, Id, Text, Whole, array, body_values, endpoint, model,
                          nullable, query_values)
from core.web import arg_number, clean_text, json_object, whole_number

from . import api
from .outbox import health_report

VERSION = "0.1.0"
LANGUAGES = ("en", "ja", "ka")

# What the answers hold (the description at /api/v1/openapi.json; core/openapi.py).
TICKET = model("Ticket", {
    "id": INTEGER, "number": {**STRING, "description": "The label on the ticket and the screens, e.g. A012"},
    "service": {**STRING, "description": "The service's code"}, "service_name": STRING,
    "status": {"type": "string", "enum": sorted(TicketStatus)}, "priority": INTEGER,
    "position": nullable({**INTEGER, "description": "Place in the service's queue (waiting tickets)"}),
    "estimated_wait_minutes": nullable(INTEGER), "counter": nullable(STRING),
    "arrived_at": TIME, "arrived_local": {**TIME, "description": "arrived_at on the branch's wall clock"},
    "called_at": nullable(TIME), "finished_at": nullable(TIME), "late_until": nullable(TIME),
    "recall_count": INTEGER,
})
TICKET_ANSWER = model("TicketAnswer", {"ticket": TICKET})
COUNTER = model("Counter", {
    "id": INTEGER, "name": STRING, "is_open": BOOLEAN, "services": array(STRING), "staff": nullable(STRING),
    "ticket": nullable(TICKET),
})
BRANCH_ID = Id("The branch (default: the caller's first)")
SERVICE_CODE = Text("A service's code, e.g. A", max_length=10)


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
    if data is None and "branch" in query_values():
        data = query_values()  # already read by the endpoint's declaration
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


HEALTH = model("Health", {
    "status": {"type": "string", "enum": ["ok", "degraded"]}, "version": STRING, "time": TIME,
    "database": STRING, "modems": array(OBJECT), "reasons": array(OBJECT), "scheduler": OBJECT, "outbox": OBJECT,
}, required=["status", "version", "time", "database", "modems"])


@api.get("/health")
@endpoint("Whether the system is up, and whether texting is well", public=True,
          responses={200: ("Up; \"degraded\" with reasons when texts are late or a modem needs attention", HEALTH),
                     503: ("The database cannot be reached", HEALTH)})
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


QUEUE = model("Queue", {
    "code": STRING, "name": STRING, "id": INTEGER, "waiting_count": INTEGER, "open_counters": INTEGER,
    "estimated_wait_minutes": INTEGER, "waiting": array(TICKET), "held": array(TICKET),
    "more": {**BOOLEAN, "description": "Whether waiting tickets follow this page"},
})


@api.get("/queues")
@login_required
@endpoint("Each service's queue: counts and the first page of waiting tickets",
          query={"branch": BRANCH_ID, "first": Whole("Waiting tickets per service in this answer", low=1, high=500),
                 "after": Whole("Start after this place", low=0)},
          responses={200: model("Queues", {
              "branch": model("BranchBrief", {"id": INTEGER, "name": STRING, "timezone": STRING}),
              "page": {"type": "object", "properties": {"first": INTEGER, "after": INTEGER}},
              "services": array(QUEUE), "counters": array(COUNTER)})})
def queues():
    """Each service's counts and the first page of its waiting tickets: a console or a script
    gets the same answer, as fast, with 5,000 waiting as with 50. `?first=` (1-500) and
    `?after=` (a place) page on; `more` says whether a service has tickets past the page."""
    branch = chosen_branch()
    first = query_values()["first"] or QUEUE_PAGE
    after = query_values()["after"] or 0
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
@endpoint("The branch's tickets, newest first (500 at most)",
          query={"branch": BRANCH_ID, "status": Text("Only tickets in this state", choices=tuple(sorted(TicketStatus))),
                 "service": SERVICE_CODE},
          responses={200: model("Tickets", {"tickets": array(TICKET)})})
def list_tickets():
    branch = chosen_branch()
    if query_values()["service"]:
        # A service's tickets are all its branch's (a transfer stays in the branch): asked by
        # service alone, they are read newest first from ix_ticket_service_arrived.
        query = select(Ticket).where(Ticket.service_id == service_by_code(branch, query_values()).id)
    else:
        query = select(Ticket).where(Ticket.branch_id == branch.id)
    if query_values()["status"]:
        query = query.where(Ticket.status == query_values()["status"])
    tickets = db.session.scalars(query.order_by(Ticket.arrived_at.desc(), Ticket.id.desc()).limit(500))
    return jsonify({"tickets": [ticket_summary(t) for t in tickets]})


EVENT = model("TicketEvent", {
    "kind": STRING, "at": TIME, "from": nullable(STRING), "to": nullable(STRING), "staff": nullable(STRING),
    "counter": nullable(STRING), "detail": nullable(OBJECT)})


@api.get("/tickets/<int:ticket_id>")
@login_required
@endpoint("One ticket with its history", responses={200: model("TicketWithEvents", {"ticket": {
    "allOf": [TICKET, {"type": "object", "properties": {"events": array(EVENT)}, "required": ["events"]}]}})})
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
@endpoint("Issue a ticket (a walk-in the staff checks in)",
          body={"branch": BRANCH_ID, "service": Text("The service's code", max_length=10, required=True),
                "language": Text("The customer's language (default: the branch's)", choices=LANGUAGES),
                "priority": Whole("Higher is called sooner", low=-100, high=100, default=0)},
          responses={201: ("Issued", TICKET_ANSWER)})
def issue():
    data = body_values()
    branch = chosen_branch(data)
    service = service_by_code(branch, data)
    language = data["language"] or branch.default_language
    priority = data["priority"]
    ticket = engine.issue_ticket(service.id, priority=priority, language=language, source="staff", staff=current_user)
    return ticket_json(ticket.id, 201)


@api.get("/counters")
@login_required
@endpoint("The branch's counters, each with the ticket it serves", query={"branch": BRANCH_ID},
          responses={200: model("Counters", {"counters": array(COUNTER)})})
def counters():
    branch = chosen_branch()
    rows = db.session.scalars(select(Counter).where(Counter.branch_id == branch.id).order_by(Counter.id))
    return jsonify({"counters": [counter_snapshot(c) for c in rows]})


@api.post("/counters/<int:counter_id>/call-next")
@login_required
@endpoint("Call the next waiting ticket to this counter", body={}, empty_body=True,
          responses={200: ("The ticket called; null ticket with a message when nobody waits", model("Called", {
              "ticket": nullable(TICKET), "message": STRING}, required=["ticket"]))})
def call_next(counter_id):
    scope.owned(Counter, counter_id, "Counter")
    ticket = engine.call_next(counter_id, staff=current_user)
    if ticket is None:
        return jsonify({"ticket": None, "message": "Nobody is waiting for this counter's services."})
    return ticket_json(ticket.id)


@api.post("/counters/<int:counter_id>/<any(open, close):state>")
@login_required
@endpoint("Open or close a counter", body={}, empty_body=True,
          responses={200: model("CounterAnswer", {"counter": COUNTER})})
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


ACTIONS = ", ".join(sorted([*SIMPLE_ACTIONS, "cancel", "late", "transfer"]))


@api.post("/tickets/<int:ticket_id>/<any(recall, start, complete, 'no-show', hold, unhold, cancel, late, transfer):action>")
@login_required
@endpoint("Move a ticket on: " + ACTIONS,
          description="`reason` goes with cancel, `minutes` with late (default: the branch's), `service` (a code) "
                      "with transfer; the others take nothing.",
          body={"reason": Text("cancel: why (kept in the ticket's history)", max_length=200),
                "minutes": Whole("late: how many minutes to keep the place (1 to LATE_MAX_MINUTES)", low=1,
                                 high=24 * 60),
                "service": Text("transfer: the code of the service to move to", max_length=10)},
          empty_body=True, responses={200: TICKET_ANSWER})
def ticket_action(ticket_id, action):
    ticket = scope.owned(Ticket, ticket_id, "Ticket")
    data = body_values()
    if action in SIMPLE_ACTIONS:
        SIMPLE_ACTIONS[action](ticket_id, staff=current_user)
    elif action == "cancel":
        engine.cancel(ticket_id, staff=current_user, reason=data["reason"])
    elif action == "late":
        minutes = whole_number(data, "minutes", high=current_app.config["LATE_MAX_MINUTES"])
        engine.running_late(ticket_id, minutes, staff=current_user)
    else:  # transfer
        target = service_by_code(ticket.branch, data)
        engine.transfer(ticket_id, target.id, staff=current_user)
    return ticket_json(ticket_id)
