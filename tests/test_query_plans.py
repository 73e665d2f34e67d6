"""No hot request reads the whole history (issue 15): every statement that check-in, call next,
complete, the other moves, the texts they queue, the display snapshot, the status page,
/api/v1/queues, the gateway (claim, sent, status report) and the frequent scheduler jobs send is
captured as the code emits it and explained by the database itself; a plan that walks a table
growing with history fails the test. Every page is held to the same rule: the walk opens every GET
route of the URL map (a route added later too) as an administrator would. The plans are those of
the schema the migrations build, on SQLite and on PostgreSQL."""
import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, insert, select, text

from core import engine
from core.database import upgrade_database
from core.extensions import db, socketio
from core.models import FINISHED, Customer, Ticket, TicketEvent

from display import realtime
from messaging import outbox
from scheduler import jobs

from .conftest import RequestIsolatedClient, build_app, database_url
from .helpers import bearer, csrf_token, login, make_branch_setup

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


def _outside_brackets(statement: str) -> str:
    """The statement without what its brackets hold: its subqueries, function arguments, lists."""
    while True:
        shorter = re.sub(r"\([^()]*\)", "", statement)
        if shorter == statement:
            return statement
        statement = shorter


def _limited(statement: str) -> bool:
    """Whether the statement's own LIMIT may stop its first read: nothing outside brackets (a
    GROUP BY, a DISTINCT, an aggregate) needs every row before the first one comes out."""
    top = _outside_brackets(statement)
    return bool(re.search(r"\bLIMIT\b", top, re.I)) and not re.search(
        r"\b(GROUP BY|DISTINCT|count|sum|min|max|avg|total|group_concat|json_group_array)\b", top, re.I)


def sqlite_scans(connection, statement, parameters):
    # SQLite's plan does not show values: a lookup by status alone is bounded when the statement
    # asks for a live status, not when it asks only for ended ones.
    live = any(value in LIVE for value in parameters if isinstance(value, str))
    plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
    # The first loop of a page read in the index's order (newest first, keyset): the LIMIT stops it
    # when no sort comes between and no condition is left for the rows read to fail, in its own
    # table or in one joined to it (a left join keeps every row).
    loops = [row for row in plan if row[1] == 0 and re.match(r"(SCAN|SEARCH) ", row[-1])]
    first = loops[0] if loops else None
    stops = _limited(statement) and all(row[-1].endswith("LEFT-JOIN") for row in loops[1:]) and not any(
        row[1] == 0 and "TEMP B-TREE" in row[-1] for row in plan)
    found = []
    for row in plan:
        step = SQLITE_STEP.match(row[-1])
        if not step:
            continue
        used = re.findall(r"(\w+)([=<>]+)", step[3] or "")
        compared = [(c, o) for c, o in used if live or c != "status"]
        if row is first and stops and not _left_to_filter(statement, row[-1], {c for c, _ in used}):
            continue
        if step[1] == "SCAN" or _walks(compared):
            found.append(row[-1])
    return found


def _left_to_filter(statement: str, detail: str, used: set[str]) -> set[str]:
    """The columns of the step's table the statement compares that its index does not: rows read
    that may fail them (over-counted: any comparison anywhere in the statement)."""
    table = re.match(r"(?:SCAN|SEARCH) (\w+)(?: AS (\w+))?", detail)
    name = table[2] or table[1]
    compared = re.findall(rf'\b{name}\."?(\w+)"?\s*(?:=|!=|<>|<=|>=|<|>|IN\b|NOT\b|IS\b|LIKE\b|BETWEEN\b)',
                          statement, re.I)
    return set(compared) - used - ({"id"} if "rowid" in used else set())


def _nodes(plan, stopped=False):
    """Each node of a PostgreSQL plan, and whether a LIMIT stops its read: the Limit's child, or
    the outer side of a left join's nested loop under it (each outer row comes out; each inner read
    is a lookup of its own)."""
    yield plan, stopped
    for child in plan.get("Plans", ()):
        yield from _nodes(child, plan["Node Type"] == "Limit" or (
            stopped and plan["Node Type"] == "Nested Loop" and plan.get("Join Type") == "Left"
            and child.get("Parent Relationship") == "Outer"))


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
    for node, stopped in _nodes(plan[0]["Plan"]):
        table, kind = node.get("Relation Name"), node["Node Type"]
        if table not in HISTORY:
            continue
        if stopped and kind in ("Index Scan", "Index Only Scan") and "Filter" not in node:
            continue  # read in the index's order (newest first, keyset) until the LIMIT has its rows
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

    # ids go on from those already there: a second branch may have its history too
    first = {model: db.session.scalar(select(func.max(model.id))) or 0 for model in (Customer, Ticket, OutboxMessage)}
    tickets, events, texts, notices, customers = [], [], [], [], []
    for day in range(1, days + 1):
        for n in range(per_day):
            at = clock.now() - timedelta(days=day, minutes=n)
            ticket_id, service = first[Ticket] + len(tickets) + 1, services[n % len(services)]
            customer_id = None
            if n % 3 == 0:
                customer_id = first[Customer] + len(customers) + 1
                customers.append({"id": customer_id, "phone": f"+995555{branch.id:02d}{len(customers):04d}",
                                  "sms_consent": True, "created_at": at})
                # one text in ten failed, as a real history has them: a plan for today's failed
                # texts must not take a branch's failed ones for so few that any index will do
                failed = len(texts) % 10 == 9
                texts.append({"id": first[OutboxMessage] + len(texts) + 1, "branch_id": branch.id,
                              "to": customers[-1]["phone"], "body": "hi", "kind": "welcome", "ticket_id": ticket_id,
                              "status": "failed" if failed else "delivered", "send_after": at, "created_at": at,
                              "sent_at": None if failed else at, "failed_at": at if failed else None})
                notices.append({"ticket_id": ticket_id, "kind": "welcome", "outbox_id": texts[-1]["id"]})
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


# --- every page: the walk --------------------------------------------------------------------

# Routes whose job is to read everything they are asked for, and why (as test_isolation's PUBLIC).
# Walked too, their plans not held to the rule. None so far: the reports and their exports read the
# range of days asked for, and the audit log is not history. Keep it short.
ALLOWED: dict[str, str] = {}
# Routes that still walk history, what walks and why it is not fixed yet. Walked too (they must
# answer), their plans not held to the rule until mended.
NOT_YET: dict[str, str] = {}
# The same for one filter of a route: (endpoint, "name=value" as the walk writes it) -> why. The
# route's own page, and its other filters, are still held to the rule.
FILTERS_NOT_YET: dict[tuple[str, str], str] = {}
# Filters on a value most rows have, for which PostgreSQL rightly reads the branch's rows newest
# first and skips the few others (cheaper than its own index, ix_outbox_branch_status or
# ix_ticket_branch_status_arrived, which serves the rare values): the LIMIT stops the read after
# a page, whatever the history, but the rule cannot tell a filter most rows pass from one few do.
COMMON_VALUES = {
    ("staff.outbox_page", "status=delivered"): "most texts end delivered",
    ("api.outbox_json", "status=delivered"): "most texts end delivered",
    ("api.list_tickets", "status=completed"): "most tickets end completed",
    ("api.list_tickets", "status=completed&service=A"): "most of a service's tickets end completed",
}

# What a page shows, not which rows: the next or previous page, its size, every branch.
PAGING = {"before", "after", "limit", "first", "branch"}


def common_value(endpoint: str, picked: dict) -> bool:
    """A filter on a value most rows have (COMMON_VALUES), alone or with paging."""
    return (endpoint, _label(picked)) in COMMON_VALUES or any((endpoint, f"{name}={value}") in COMMON_VALUES and set(picked) - {name} <= PAGING
               for name, value in picked.items())


@pytest.fixture
def everything(migrated_app, clock, vm):
    """A branch with months of history and a little of everything the pages show (tickets in every
    state today, texts in every state, replies, appointments, surveys, a closure, a kiosk, a logo),
    beside another branch with its own history; alice is an administrator."""
    from core import tokens
    from core.models import Appointment, Closure, StaffUser
    from core.settings import branding
    from messaging import inbox
    from messaging.models import InboxQuarantine, OutboxMessage, SurveyResponse

    from .helpers import make_branch, make_counter, make_service
    from .helpers import text as a_text

    branch, services, counters, _staff = make_branch_setup(counters=2, services="AB")
    other = make_branch("Other Branch")
    other_service = make_service(other, "A")
    other_counter = make_counter(other, "1", [other_service])
    db.session.commit()
    # Months of it: a report's or a list's range must leave most of the history out, as it does
    # after years, the four weeks a report opens on too (with 40 days, they were most of it and
    # PostgreSQL rightly read the branch's every ticket); and a second branch, so that a
    # branch's rows are not the whole table.
    history(branch, services, counters, clock, days=150, per_day=10)
    history(other, [other_service], [other_counter], clock, days=150, per_day=10)
    alice = db.session.scalar(select(StaffUser).where(StaffUser.username == "alice"))
    alice.role = "admin"
    customers = [Customer(phone=phone, name=f"Nino {n}", sms_consent=True, consent_at=clock.now(),
                          created_at=clock.now()) for n, phone in enumerate(PHONES[:6])]
    db.session.add_all(customers)
    db.session.commit()
    tickets = [engine.issue_ticket(services[n % 2].id, customer_id=customer.id) for n, customer in enumerate(customers)]
    tickets += [engine.issue_ticket(services[0].id) for _ in range(4)]
    first = engine.call_next(counters[0].id)
    engine.start_serving(first.id)
    engine.complete(first.id)
    engine.call_next(counters[0].id)
    second = engine.call_next(counters[1].id)
    engine.no_show(second.id)
    engine.start_serving(engine.call_next(counters[1].id).id)
    engine.hold(tickets[5].id)
    engine.cancel(tickets[6].id)
    engine.running_late(tickets[7].id, 10)
    engine.transfer(tickets[8].id, services[1].id)
    for n, status in enumerate(("queued", "sending", "sent", "delivered", "failed", "suppressed", "cancelled")):
        sent = status in ("sent", "delivered")
        a_text(branch, "welcome", status, to=PHONES[n % 6], now=clock.now() - timedelta(hours=n),
               ticket_id=tickets[n % 6].id, sent_at=clock.now() - timedelta(minutes=n) if sent else None,
               sent_by="gw" if sent else None)
    a_text(None, "test", "delivered", to=PHONES[0], now=clock.now() - timedelta(days=3))  # `seed modem test`: no branch
    reply = inbox.store_received(PHONES[0], "thank you", clock.now(), gateway="gw")
    inbox.store_received(PHONES[1], "when is my turn?", clock.now() - timedelta(days=1), gateway="gw")
    db.session.add(InboxQuarantine(branch_id=branch.id, pdu="00", error="undecodable", received_at=clock.now()))
    appointments = [Appointment(branch_id=branch.id, service_id=services[0].id, customer_id=customers[n].id,
                                starts_at=clock.now() + timedelta(days=n - 2, hours=2), status=status,
                                created_at=clock.now() - timedelta(days=5))
                    for n, status in enumerate(("checked_in", "cancelled", "booked", "confirmed"))]
    db.session.add_all(appointments)
    db.session.add_all([SurveyResponse(branch_id=branch.id, ticket_id=n + 1, phone=f"+99555501{n:04d}", state=state,
                                       score=score, created_at=clock.now() - timedelta(days=1, hours=n))
                        for n, (state, score) in enumerate((("done", 5), ("done", 2), ("asked", None)))])
    closure = Closure(branch_id=branch.id, first_day=clock.now().date() + timedelta(days=30),
                      last_day=clock.now().date() + timedelta(days=31), message="Holiday", created_at=clock.now())
    db.session.add(closure)
    db.session.commit()
    kiosk, _secret = tokens.create_kiosk(branch.id, "Entrance")
    logo = branding.folder() / f"branch-{branch.id}-00000000.png"
    logo.parent.mkdir(parents=True, exist_ok=True)
    logo.write_bytes(b"\x89PNG")
    migrated_app.extensions["seed.virtual_modem"] = vm
    # a text in the middle of the branch's: an older and a newer page of the outbox start from it
    middle = db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.branch_id == branch.id)
                               .order_by(OutboxMessage.id.desc()).offset(3).limit(1))
    yield {"branch": branch, "service": services[0], "counter": counters[0], "alice": alice.id, "text": middle,
           "ticket": tickets[4], "appointment": appointments[2], "reply": reply, "number": PHONES[0],
           "kiosk": kiosk.id, "closure": closure.id}
    migrated_app.extensions.pop("seed.virtual_modem")


def arguments_for(rule, data) -> dict:
    """The walked branch's object for each argument of `rule`."""
    per_argument = {
        "ticket_id": data["ticket"].id, "appointment_id": data["appointment"].id, "counter_id": data["counter"].id,
        "message_id": data["reply"], "number": data["number"], "branch_id": data["branch"].id,
        "token": data["ticket"].access_token, "service_id": data["service"].id, "user_id": data["alice"],
        "closure_id": data["closure"], "token_id": data["kiosk"], "rest": f"{data['ticket'].access_token}/more",
        "kind": "welcome", "language": "en", "action": "cancel", "state": "close",
        "filename": f"branch-{data['branch'].id}-00000000.png",
    }
    if rule.endpoint == "booking.manage":
        per_argument["token"] = data["appointment"].access_token
    missing = set(rule.arguments) - set(per_argument)
    assert not missing, (f"{rule.rule}: the plan walker has no value for {sorted(missing)}; "
                         f"add one in tests/test_query_plans.py")
    return {name: per_argument[name] for name in rule.arguments}


# --- every filter of every page ---------------------------------------------------------------

# Query parameters the walk always sends (the branch, a range of days, what a route needs), or
# that choose no rows: not filters.
NOT_FILTERS = {"branch", "from", "to", "number", "services", "languages", "layout", "rotate", "names"}


def filter_values(data, today) -> dict:
    """A value for each filter of the API that declares no choices: the walked branch's objects,
    a place in a list to page on from."""
    return {"service": data["service"].code, "counter": data["counter"].id, "staff": data["alice"],
            "before": data["text"], "after": data["text"], "limit": 5, "first": 1, "date": today.isoformat()}


def page_filters(data) -> dict[str, list[dict]]:
    """The HTML pages' filter forms (their templates) and the links that narrow them: per endpoint,
    each choice a user may make, as the form sends it (a report's range left empty is its default
    four weeks; an empty branch is every branch, for admins)."""
    from core.reports import GROUPINGS
    from messaging.kinds import LANES
    from messaging.models import OutboxStatus
    from staff.calendar import VIEWS

    report = [{"service": data["service"].code}, {"counter": data["counter"].id}, {"staff": data["alice"]},
              {"from": "", "to": ""}]
    found = {f"reports.{name}": report for name in ("summary_page", "staffing_page", "summary_csv", "heatmap_csv",
                                                    "staffing_csv", "tickets_csv", "texts_csv")}
    found.update({f"reports.{name}": report + [{"by": by} for by in GROUPINGS]
                  for name in ("breakdown_page", "breakdown_csv")})
    found["staff.outbox_page"] = [*({"status": status} for status in OutboxStatus), *({"lane": lane} for lane in LANES),
                                  {"today": "1"}, {"branch": ""}, {"before": data["text"]}, {"after": data["text"]}]
    found["staff.calendar_page"] = [*({"view": view} for view in VIEWS), {"service": data["service"].id}]
    return found


def filters_for(rule, spec, data, today) -> list[dict]:
    """The queries the walk sends to a route besides its plain one: one per filter value, the
    others left as they open. An API route's are its declared query parameters (core/openapi.py),
    every one of its choices, so a filter added later is walked too; an HTML page's are listed in
    page_filters."""
    if spec is None:
        return page_filters(data).get(rule.endpoint, [])
    values, found = filter_values(data, today), []
    for name, declared in spec.query.items():
        if name in NOT_FILTERS:
            continue
        choices = getattr(declared, "choices", None) or declared.schema().get("enum")
        if choices:
            found += [{name: str(choice)} for choice in choices]
        elif declared.schema().get("type") == "boolean":
            found.append({name: "true"})
        else:
            assert name in values, (f"{rule.rule}: the plan walker has no value for its filter {name!r}; add one "
                                    f"in filter_values (tests/test_query_plans.py)")
            found.append({name: values[name]})
    return found


def combined(filters: list[dict]) -> list[dict]:
    """Each filter value alone, then each two of different filters together (a service's
    cancelled tickets, a lane's failed texts, the next page of them): an index that serves each
    filter alone may leave the two together to walk the rows of one of them."""
    pairs = [{**first, **second} for n, first in enumerate(filters) for second in filters[n + 1:]
             if not set(first) & set(second)]
    return filters + pairs


def _label(picked: dict) -> str:
    return "&".join(f"{name}={value}" for name, value in picked.items())


def test_no_page_walks_the_history(migrated_app, everything, clock):
    """Every GET route of the URL map, a route added later too (but static files and the logout),
    opened by an administrator at a counter of a branch with a little of everything, an API route
    a session may not open with an API token, as it opens, once with each value of each filter a
    user may pick on it (filters_for) and once with each two of them (combined): no statement any
    of them sends walks history."""
    app, data = migrated_app, everything
    branch = data["branch"]
    app.test_client_class = RequestIsolatedClient
    client = app.test_client()
    login(client)
    page = client.get("/staff/counter")  # the console and its panel are a counter's
    client.post("/staff/counter", data={"counter_id": data["counter"].id, "csrf_token": csrf_token(page.text)})
    token = bearer()
    today = branch.local_date(clock.now())
    # Yesterday and today: a report's range that leaves most of the history out, as a real one does.
    asked = {"branch": branch.id, "from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}
    tomorrow_at_ten = (clock.now() + timedelta(days=1)).replace(hour=10, minute=0)
    needs = {"staff.calendar_book_form": {"service": data["service"].id, "starts_at": tomorrow_at_ten.isoformat()},
             "virtual_phone_api.messages": {"number": data["number"]}}
    walked, failures = set(), []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint.rpartition(".")[2] == "static" or rule.endpoint == "staff.logout":
            continue  # (the logout would end the walk's own session)
        url = app.url_map.bind("localhost").build(rule.endpoint, arguments_for(rule, data))
        spec = getattr(app.view_functions[rule.endpoint], "openapi", None)
        # The page as it opens, then once with each value of each filter a user may pick on it.
        for picked in [{}, *combined(filters_for(rule, spec, data, today))]:
            query = {**asked, **needs.get(rule.endpoint, {}), **picked}
            if spec is not None:  # what the endpoint takes (core/openapi.py refuses the rest with a 400)
                query = {key: value for key, value in query.items() if key in spec.query}
            with Capture(db.engine) as captured:
                response = client.get(url, query_string=query)
                if response.status_code in (401, 403) and rule.rule.startswith("/api/"):
                    response = app.test_client().get(url, query_string=query, headers=token)
                response.get_data()  # an export is streamed: its rows are read as it is sent
            db.session.rollback()
            label = _label(picked)
            where = f"GET {rule.rule}{'?' + label if picked else ''} ({rule.endpoint}) -> {response.status_code}"
            walked.add((rule.endpoint, label) if picked else rule.endpoint)
            if response.status_code >= 400:  # a refusal runs none of the page's queries
                failures.append(f"{where}: refused, so not checked")
            exempt = (rule.endpoint, label) in FILTERS_NOT_YET or common_value(rule.endpoint, picked)
            if rule.endpoint not in ALLOWED and rule.endpoint not in NOT_YET and not exempt:
                failures += [f"{where}\n  {scans}: {sql}" for scans, sql in full_scans(captured.statements)]
    assert not failures, "pages that walk history:\n" + "\n".join(failures)
    assert {"staff.console", "staff.outbox_page", "reports.tickets_csv", "virtual_phone.phone",
            ("staff.outbox_page", "status=failed"), ("api.outbox_json", "lane=call"),
            ("api.list_tickets", "status=completed"), ("reports.summary_page", f"counter={data['counter'].id}"),
            ("reports_api.breakdown", "by=staff")} <= walked
    assert set(ALLOWED) | set(NOT_YET) | set(FILTERS_NOT_YET) | set(COMMON_VALUES) <= walked, \
        "ALLOWED, NOT_YET, FILTERS_NOT_YET and COMMON_VALUES name routes or filters that are gone"


# --- rows the app deletes -----------------------------------------------------------------------

# Tables whose rows the app deletes, and where. For each deleted row SQLite and PostgreSQL look
# through every table whose foreign key names it (their own check, in no plan the tests above can
# see): without an index led by the referencing column that is a walk of the whole table, a
# million events behind one counter removed in the settings.
DELETED = {
    "counter": "core/settings/counters.py delete(): a counter that never served",
    "outbox": "messaging/notify.py _unwritten(): a text whose notice another writer took first",
    "closure": "core/settings/branches.py: a closure of the calendar",
    "message_template": "staff/admin.py revert_template(): a wording taken back",
    "login_failure": "core/throttle.py: failed logins, once old or after a success",
    "inbox_part": "core/privacy.py: parts of a text past retention",
    "inbox_quarantine": "core/privacy.py: unreadable texts past retention",
}


def test_every_row_the_app_deletes_is_looked_for_through_an_index(migrated_app):
    """The migrated schema, as the database itself reports it (SQLAlchemy's inspector): every
    foreign key naming a table of DELETED has an index led by its column (or is one's first)."""
    from sqlalchemy import inspect

    inspector = inspect(db.engine)
    missing = []
    for table in inspector.get_table_names():
        leading = {index["column_names"][0] for index in inspector.get_indexes(table) if index["column_names"]}
        leading |= {constraint["column_names"][0] for constraint in inspector.get_unique_constraints(table)}
        primary = inspector.get_pk_constraint(table)["constrained_columns"]
        leading |= set(primary[:1])
        for key in inspector.get_foreign_keys(table):
            if key["referred_table"] in DELETED and key["constrained_columns"][0] not in leading:
                missing.append(f"{table}.{key['constrained_columns'][0]} -> {key['referred_table']}")
    assert not missing, "deleting a row walks these tables: " + ", ".join(missing)
    assert {"ticket_event", "ticket_notice", "survey_response"} <= set(inspector.get_table_names())
