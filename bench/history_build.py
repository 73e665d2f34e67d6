"""Years of a branch's history, written straight into the tables (the engine would take hours for a
million tickets): tickets spread over three years, several services and counters, their events,
the texts texting customers got and the notices that keep each text to once, as the real system
leaves them. SQLite gets executemany in one transaction, PostgreSQL gets COPY."""
from __future__ import annotations

import json
import random
import secrets
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import text

from core import tokens
from core.extensions import db
from core.models import Branch, Counter, Service, StaffUser
from messaging import kinds

ZONE = "Asia/Tbilisi"
DAYS = 3 * 365
SERVICES = (("A", "General", 5), ("B", "Payments", 8), ("C", "Appointments", 10))
# counter name -> the services it serves
COUNTERS = {"1": "ABC", "2": "ABC", "3": "AB", "4": "AB", "5": "A", "6": "A"}
TEXTING_SHARE = 0.3  # of tickets whose customer gave a number and said yes to texts
BODIES = {
    "welcome": "Bench: ticket {label}, {ahead} ahead of you, about {wait} min. Follow your place: https://q.example/t/x",
    "next": "Bench: ticket {label}, you are next. Please come to the waiting area.",
    "called": "Bench: ticket {label}, please go to counter {counter}.",
    "survey": "Bench: how was your visit today? Reply 1 (poor) to 5 (great).",
}


def setup_branch(password: str) -> tuple[str, dict]:
    """The branch, its services and counters, an administrator and an admin API token."""
    now = datetime.now(timezone.utc)
    branch = Branch(name="Bench Branch", sender_name="Bench", timezone=ZONE, country="GE", default_language="en",
                    opening_hours={d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat")},
                    created_at=now - timedelta(days=DAYS + 1))
    services = {code: Service(branch=branch, code=code, name=name, avg_service_minutes=minutes)
                for code, name, minutes in SERVICES}
    counters = [Counter(branch=branch, name=name, services=[services[c] for c in codes])
                for name, codes in COUNTERS.items()]
    admin = StaffUser(username="admin", display_name="Administrator", role="admin", created_at=now)
    admin.set_password(password)
    db.session.add_all([branch, *services.values(), *counters, admin])
    db.session.commit()
    _token, secret = tokens.create("bench", "admin")
    layout = {"branch": branch.id, "services": {c: s.id for c, s in services.items()},
              "counters": {c.name: (c.id, [s.code for s in c.services]) for c in counters}}
    return secret, layout


def _rows(size: int, layout: dict, seed: int = 15):
    """Yield (table, row) for `size` past tickets, oldest first, ending yesterday."""
    rng = random.Random(seed)
    zone = ZoneInfo(ZONE)
    today = datetime.now(zone).date()
    customers = max(1000, size // 20)
    for index in range(customers):
        yield "customer", (index + 1, f"+995555{index:06d}", None, "en", True, _utc(datetime(2020, 1, 1, tzinfo=zone)),
                           "kiosk", "Yes, texts.", None, _utc(datetime(2020, 1, 1, tzinfo=zone)))
    codes = [code for code, _n, _m in SERVICES]
    serving = {code: [(cid, name) for name, (cid, served) in layout["counters"].items() if code in served]
               for code in codes}
    ticket_id = event_id = outbox_id = 0
    per_day = size / DAYS if size else 0
    carry = 0.0
    for offset in range(DAYS, 0, -1):
        day = today - timedelta(days=offset)
        carry += per_day
        count, carry = int(carry), carry - int(carry)
        numbers = dict.fromkeys(codes, 0)
        opening = datetime.combine(day, time(9), tzinfo=zone)
        for n in range(count):
            code = rng.choices(codes, weights=(6, 3, 1))[0]
            numbers[code] += 1
            ticket_id += 1
            arrived = opening + timedelta(seconds=int(9 * 3600 * n / max(count, 1)))
            called = arrived + timedelta(seconds=rng.randint(30, 1800))
            started = called + timedelta(seconds=rng.randint(20, 90))
            finished = started + timedelta(seconds=rng.randint(120, 900))
            fate = rng.random()
            status = "completed" if fate < 0.9 else "no_show" if fate < 0.95 else "cancelled"
            counter_id, counter = rng.choice(serving[code])
            customer = rng.randint(1, customers) if rng.random() < TEXTING_SHARE else None
            label = f"{code}{numbers[code]:03d}"
            if status == "completed":
                moments = [("issued", arrived, None, "waiting"), ("called", called, "waiting", "called"),
                           ("started", started, "called", "serving"), ("completed", finished, "serving", "completed")]
                row_times = (called, started, finished)
            elif status == "no_show":
                finished = called + timedelta(minutes=5)
                moments = [("issued", arrived, None, "waiting"), ("called", called, "waiting", "called"),
                           ("no_show", finished, "called", "no_show")]
                row_times = (called, None, finished)
            else:
                finished = arrived + timedelta(minutes=rng.randint(5, 40))
                moments = [("issued", arrived, None, "waiting"), ("cancelled", finished, "waiting", "cancelled")]
                row_times, counter_id = (None, None, finished), None
            yield "ticket", (ticket_id, layout["branch"], layout["services"][code], customer, counter_id, day,
                             numbers[code], label, status, 0, "en", "kiosk", secrets.token_urlsafe(18), _utc(arrived),
                             *(_utc(m) if m else None for m in row_times), None, 0)
            for kind, at, before, after in moments:
                event_id += 1
                detail = {"service": code} if kind == "issued" else {"counter": counter} if kind == "called" else {}
                yield "ticket_event", (event_id, ticket_id, _utc(at), kind, before, after, None,
                                       counter_id if kind != "issued" else None, json.dumps(detail))
            if customer is None:
                continue
            texts = [("welcome", arrived)]
            if status != "cancelled":
                texts += [("next", called - timedelta(minutes=2)), ("called", called)]
            if status == "completed" and rng.random() < 0.3:
                texts.append(("survey", finished + timedelta(minutes=60)))
            for kind, at in texts:
                outbox_id += 1
                body = BODIES[kind].format(label=label, ahead=rng.randint(0, 9), wait=rng.randint(0, 40), counter=counter)
                sent = at + timedelta(seconds=5)
                yield "outbox", (outbox_id, layout["branch"], f"+995555{customer - 1:06d}", body, kind,
                                 kinds.get(kind).rank, ticket_id, "delivered", _utc(at), 1, "GSM-7", 1, "[]", "{}",
                                 "bench-modem", _utc(at), _utc(sent), _utc(sent + timedelta(seconds=3)), False)
                yield "ticket_notice", (ticket_id, kind, outbox_id)
        for code, last in numbers.items():
            if last:
                yield "ticket_sequence", (layout["services"][code], day, last)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


COLUMNS = {
    "customer": ("id", "phone", "name", "language", "sms_consent", "consent_at", "consent_source", "consent_text",
                 "opted_out_at", "created_at"),
    "ticket": ("id", "branch_id", "service_id", "customer_id", "counter_id", "service_day", "number", "label",
               "status", "priority", "language", "source", "access_token", "arrived_at", "called_at", "started_at",
               "finished_at", "late_until", "recall_count"),
    "ticket_event": ("id", "ticket_id", "at", "kind", "from_status", "to_status", "staff_id", "counter_id", "detail"),
    "outbox": ("id", "branch_id", "to", "body", "kind", "priority", "ticket_id", "status", "send_after", "attempts",
               "encoding", "parts", "modem_references", "reports", "sent_by", "created_at", "sent_at", "delivered_at",
               "possible_duplicate"),
    "ticket_notice": ("ticket_id", "kind", "outbox_id"),
    "ticket_sequence": ("service_id", "service_day", "last_number"),
}
# Filled in the order foreign keys need.
ORDER = ("customer", "ticket", "ticket_event", "outbox", "ticket_notice", "ticket_sequence")
BATCH = 50_000


def _sqlite_value(value):
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DATETIME format
    if isinstance(value, date):
        return value.isoformat()
    return value


def fill(size: int, layout: dict) -> dict:
    """Write the history; returns rows written per table."""
    engine = db.engine
    postgres = engine.dialect.name == "postgresql"
    batches = {table: [] for table in ORDER}
    written = dict.fromkeys(ORDER, 0)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if not postgres:
            cursor.execute("BEGIN")

        def flush(table):
            rows = batches[table]
            if not rows:
                return
            names = COLUMNS[table]
            quoted = ", ".join(f'"{n}"' for n in names)
            if postgres:
                with cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(names))
                cursor.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({marks})",
                                   [tuple(_sqlite_value(v) for v in row) for row in rows])
            written[table] += len(rows)
            rows.clear()

        for table, row in _rows(size, layout):
            batches[table].append(row)
            if len(batches[table]) >= BATCH:
                # Parents first: a ticket's events may not land before the ticket.
                for name in ORDER[: ORDER.index(table) + 1]:
                    flush(name)
        for table in ORDER:
            flush(table)
        raw.commit()
        if postgres:
            for table in ("customer", "ticket", "ticket_event", "outbox"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"GREATEST((SELECT max(id) FROM {table}), 1))")
            raw.commit()
    finally:
        raw.close()
    if postgres:  # as autovacuum would have done long before a branch had years of history
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return written
