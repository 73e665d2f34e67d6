"""No hot request reads the whole history (issue 15): every statement that check-in, call next,
complete, the other moves, the texts they queue, the display snapshot, the status page,
/api/v1/queues, the gateway (claim, sent, status report) and the frequent scheduler jobs send is
captured as the code emits it and explained by the database itself; a plan that walks a table
growing with history fails the test. The plans are those of the schema the migrations build, on
SQLite and on PostgreSQL."""
import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, insert, text

from core import engine
from core.database import upgrade_database
from core.extensions import db, socketio
from core.models import FINISHED, Customer, Ticket, TicketEvent

from display import realtime
from messaging import outbox
from scheduler import jobs

from .conftest import build_app, database_url
from .helpers import bearer, make_branch_setup

# Tables that grow with every visit. A plan may look rows up in them, never walk them.
HISTORY = ("ticket", "ticket_event", "outbox", "ticket_notice", "customer", "survey_response")
# Looking rows up by these alone still walks years of them (every ticket a branch ever had).
# A key, a time range or a live status (waiting, called, queued) is what bounds a lookup; a status
# that only finished rows have (completed, delivered) bounds nothing.
UNBOUNDED = {"branch_id", "service_id", "counter_id", "kind"}
LIVE = {"waiting", "called", "serving", "held", "queued", "sending"}
ENDED = {*FINISHED, "sent", "delivered", "failed", "suppressed"}
SQLITE_STEP = re.compile(rf"^(SCAN|SEARCH) ({'|'.join(HISTORY)})\b(?: AS \w+)?(?: USING .*?\((.*)\))?")
PHONES = [f"+99555512{n:04d}" for n in range(12)]


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_app(request, tmp_path, clock):
    """The app on a database built by the migrations (their indexes are what production has)."""
    app = build_app(database_url(request, tmp_path), clock, tmp_path)
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    upgrade_database(app)
    with app.app_context():
        yield app
        db.session.remove()
        db.drop_all()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        db.engine.dispose()


class Capture:
    """Every statement sent to the database while active, with its parameters, from any thread
    (the display's snapshot is built by a worker thread)."""

    def __init__(self, engine):
        self.engine, self.statements, self.lock = engine, [], threading.Lock()

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, parameters, _context, executemany):
        if not executemany and re.match(r"\s*(SELECT|UPDATE|DELETE|WITH|INSERT .* SELECT)", statement, re.S | re.I):
            with self.lock:
                self.statements.append((statement, parameters))


def _bounding(compared) -> set[str]:
    """The columns of (column, operator) pairs that bound a lookup: an equality or a lower bound
    (since this morning); an upper bound alone (before today) is all of the past."""
    return {column for column, operator in compared if operator in ("=", ">", ">=")} - UNBOUNDED


def _walks(compared) -> bool:
    return not _bounding(compared)


def sqlite_scans(connection, statement, parameters):
    # SQLite's plan does not show values: a lookup by status alone is bounded when the statement
    # asks for a live status, not when it asks only for ended ones.
    live = any(value in LIVE for value in parameters if isinstance(value, str))
    found = []
    for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters):
        step = SQLITE_STEP.match(row[-1])
        compared = [(c, o) for c, o in re.findall(r"(\w+)([=<>]+)", (step and step[3]) or "") if live or c != "status"]
        if step and (step[1] == "SCAN" or _walks(compared)):
            found.append(row[-1])
    return found


def _nodes(plan):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _columns(condition: str) -> list[tuple[str, str]]:
    """(column, operator) compared in a PostgreSQL index condition: "((status)::text = 'x'::text)"
    -> (status, =); a status that only ended rows have bounds nothing, so it is left out."""
    bare = re.sub(r"'[^']*'", "''", condition)
    compared = re.findall(r"(\w+)\)?(?:::[a-z ]+?)?\s*(<>|<=|>=|=|<|>)", bare)
    statuses = re.search(r"status\)::text = (?:ANY \()?'\{?([^'}]*)", condition)
    if statuses and set(statuses[1].split(",")) <= ENDED:
        compared = [(c, o) for c, o in compared if c != "status"]
    return compared


def postgresql_scans(connection, statement, parameters):
    # A tiny table is cheaper to read whole: with sequential scans (and the hash and merge joins
    # that read a whole side) priced out, a Seq Scan left in the plan, or an index read end to end
    # without a condition, means no index serves the query.
    off = ("enable_seqscan", "enable_hashjoin", "enable_mergejoin")
    for setting in off:
        connection.exec_driver_sql(f"SET {setting} = off")
    try:
        plan = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
    finally:
        for setting in off:
            connection.exec_driver_sql(f"RESET {setting}")
    found = []
    for node in _nodes(plan[0]["Plan"]):
        table, kind = node.get("Relation Name"), node["Node Type"]
        if table not in HISTORY:
            continue
        condition = node.get("Index Cond") or node.get("Recheck Cond")
        if kind == "Seq Scan" or (kind != "Bitmap Heap Scan" and "Index" in kind and condition is None) or (
                condition is not None and _walks(_columns(condition))):
            found.append(f"{kind} on {table} {node.get('Index Name', '')} {condition or ''}".strip())
    return found


def full_scans(statements):
    """(statement, scans) for every captured statement whose plan walks a history table."""
    explain = sqlite_scans if db.engine.dialect.name == "sqlite" else postgresql_scans
    bad, seen = [], set()
    with db.engine.connect() as connection:
        for statement, parameters in statements:
            if (statement, repr(parameters)) in seen:  # (a plan may depend on the values)
                continue
            seen.add((statement, repr(parameters)))
            scans = explain(connection, statement, parameters)
            if scans and (scans, " ".join(statement.split())[:400]) not in bad:
                bad.append((scans, " ".join(statement.split())[:400]))
    return bad


def history(branch, services, counters, clock, days=3, per_day=150):
    """Finished visits of the last days with their events, texts and notices: enough rows for
    PostgreSQL's statistics to see that a branch's tickets are many and its live ones few."""
    from messaging.models import OutboxMessage, TicketNotice

    tickets, events, texts, notices, customers = [], [], [], [], []
    for day in range(1, days + 1):
        for n in range(per_day):
            at = clock.now() - timedelta(days=day, minutes=n)
            ticket_id, service = len(tickets) + 1, services[n % len(services)]
            customer_id = None
            if n % 3 == 0:
                customer_id = len(customers) + 1
                customers.append({"id": customer_id, "phone": f"+99555501{len(customers):04d}", "sms_consent": True,
                                  "created_at": at})
                texts.append({"id": len(texts) + 1, "branch_id": branch.id, "to": customers[-1]["phone"], "body": "hi",
                              "kind": "welcome", "ticket_id": ticket_id, "status": "delivered", "send_after": at,
                              "created_at": at, "sent_at": at})
                notices.append({"ticket_id": ticket_id, "kind": "welcome", "outbox_id": len(texts)})
            tickets.append({"id": ticket_id, "branch_id": branch.id, "service_id": service.id, "customer_id": customer_id,
                            "counter_id": counters[n % len(counters)].id, "service_day": at.date(), "number": n + 1,
                            "label": f"{service.code}{n + 1:03d}", "status": "completed", "arrived_at": at,
                            "called_at": at, "started_at": at, "finished_at": at + timedelta(minutes=4)})
            events += [{"ticket_id": ticket_id, "at": at, "kind": kind, "to_status": "completed", "detail": {}}
                       for kind in ("issued", "called", "completed")]
    for model, rows in ((Customer, customers), (Ticket, tickets), (TicketEvent, events), (OutboxMessage, texts),
                        (TicketNotice, notices)):
        db.session.execute(insert(model), rows)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        for table in ("customer", "ticket", "ticket_event", "outbox"):  # the ids were given above
            db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")


@pytest.fixture
def branch(migrated_app, clock):
    """(branch, services, counters) with three days of history."""
    branch, services, counters, _staff = make_branch_setup(counters=2, services="AB")
    branch.country = "GE"
    branch.show_names = True
    db.session.commit()
    history(branch, services, counters, clock)
    return branch, services, counters


def assert_no_walks(statements):
    bad = full_scans(statements)
    assert not bad, "full scans of history:\n" + "\n".join(f"{scans}: {sql}" for scans, sql in bad)


def test_hot_requests_never_walk_the_history(migrated_app, branch, clock):
    app = migrated_app
    branch, services, counters = branch
    client = app.test_client()
    headers = bearer()
    display = socketio.test_client(app, namespace="/display", auth={"branch": branch.id})

    with Capture(db.engine) as captured:
        tickets = []
        for phone in PHONES:  # check-in at the kiosk, with texts
            answer = client.post("/api/v1/checkins", json={"service": "A", "phone": phone, "sms_consent": True,
                                                            "branch": branch.id, "name": "Nino"})
            assert answer.status_code == 201, answer.json
            tickets.append(answer.json["ticket"])
            clock.advance(seconds=30)
        client.post("/api/v1/checkins", json={"service": "B", "branch": branch.id})
        token = db.session.get(Ticket, tickets[-1]["id"]).access_token
        answer = client.post(f"/api/v1/counters/{counters[0].id}/call-next", headers=headers, json={})
        assert answer.status_code == 200, answer.json
        called = answer.json["ticket"]
        client.post(f"/api/v1/tickets/{called['id']}/start", headers=headers, json={})
        client.post(f"/api/v1/tickets/{called['id']}/complete", headers=headers, json={})
        called = client.post(f"/api/v1/counters/{counters[1].id}/call-next", headers=headers, json={}).json["ticket"]
        client.post(f"/api/v1/tickets/{called['id']}/recall", headers=headers, json={})
        client.post(f"/api/v1/tickets/{called['id']}/no-show", headers=headers, json={})
        engine.running_late(tickets[5]["id"], 10)
        engine.hold(tickets[6]["id"])
        engine.unhold(tickets[6]["id"])
        engine.transfer(tickets[7]["id"], services[1].id)
        engine.cancel(tickets[8]["id"])
        client.get(f"/t/{token}")
        client.get(f"/t/{token}.json")
        client.get(f"/api/v1/queues?branch={branch.id}", headers=headers)
        client.get(f"/api/v1/counters?branch={branch.id}", headers=headers)
        display.emit("resync", {"branch": branch.id}, namespace="/display")
        # The gateway's part (every text claimed, sent, reported) and the frequent scheduler jobs.
        claimed = outbox.claim("plan-gateway")
        outbox.mark_sent(claimed["id"], "plan-gateway", [7])
        outbox.apply_status_report("plan-gateway", 7, 0)
        jobs.dispatch()
        realtime.settle()
    display.disconnect(namespace="/display")

    statements = captured.statements
    assert any("ticket_event" in s for s, _ in statements) and any("outbox" in s for s, _ in statements)
    # the cancelled ticket's welcome and the finished ones' texts: set aside in one statement
    assert any(s.startswith("UPDATE outbox") and "EXISTS" in s for s, _ in statements)
    assert_no_walks(statements)


def test_end_of_day_reads_only_open_tickets(migrated_app, branch, request):
    """The scheduler's end-of-day job runs every five minutes. Asking for service_day < today let
    SQLite take the (branch, day) index and walk every past ticket of the branch; it asks for the
    open statuses only, and compares the day in Python."""
    engine.issue_ticket(branch[1][0].id)
    with Capture(db.engine) as captured:
        jobs.end_of_day()
    assert_no_walks(captured.statements)
