"""Upgrades: a database made by the first migration, holding data, is upgraded one migration at a
time to the newest, on SQLite and on PostgreSQL. After every step every row is still there with
every value it had (in the columns that still exist); at the end the schema is exactly the
models' and the queue engine carries on where the old data left off.

Rows are written with raw SQL in the shape of the schema of the migration that made their table
(the data an installation had when it ran that version), right after that migration ran. The
chain walked is whatever chain migrations/versions holds: a new migration is covered as it comes.
"""
from datetime import date, datetime, timedelta, timezone

import pytest
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from core import engine
from core.database import MIGRATIONS, upgrade_database
from core.extensions import db
from core.models import Branch, Customer, Service, StaffUser, Ticket

from .conftest import build_app
from .helpers import schema_differences
from .test_backup import fresh_postgres  # noqa: F401  (a fixture: a database of this test's own)

DAY = "2026-11-23"
AT = "2026-11-23 08:00:00"  # naive UTC, as the schema stores it
LATER = "2026-11-23 08:05:00"
PHONE = "+995555000001"


def insert(table: str, **row):
    columns = ", ".join(f'"{name}"' for name in row)
    values = ", ".join(f":{name}" for name in row)
    return f'INSERT INTO "{table}" ({columns}) VALUES ({values})', row


def update(table: str, where: str, **values):
    assigns = ", ".join(f'"{name}" = :{name}' for name in values)
    return f'UPDATE "{table}" SET {assigns} WHERE {where}', values


# What an installation held at each version. Ids are left to the database: 1, 2, ... in order.
DATA = {
    # The first schema: a branch, its services, counters and staff, customers, tickets and their events.
    "54737598b7b5": [
        insert("branch", name="Rustaveli", sender_name="Rustaveli", timezone="Asia/Tbilisi", country="GE",
               default_language="ka", opening_hours='{"mon": [["09:00", "18:00"]]}', show_names=True, created_at=AT),
        insert("customer", phone=PHONE, name="Nino", language="ka", sms_consent=True, consent_at=AT,
               consent_source="kiosk", consent_text="Texts about my visit", opted_out_at=None, created_at=AT),
        insert("customer", phone="+819012345678", name=None, language="ja", sms_consent=False, consent_at=None,
               consent_source=None, consent_text=None, opted_out_at=LATER, created_at=AT),
        insert("service", branch_id=1, code="A", name="General", avg_service_minutes=5, active=True),
        insert("service", branch_id=1, code="B", name="Appointments", avg_service_minutes=10, active=True),
        insert("staff_user", username="manager", display_name="Manager", password_hash="pbkdf2:sha256:1000$s$h",
               role="admin", active=True, branch_id=1, created_at=AT),
        insert("counter", branch_id=1, name="1", is_open=True, staff_id=1),
        insert("counter", branch_id=1, name="2", is_open=False, staff_id=None),
        insert("counter_service", counter_id=1, service_id=1),
        insert("counter_service", counter_id=1, service_id=2),
        insert("counter_service", counter_id=2, service_id=1),
        insert("ticket_sequence", service_id=1, service_day=DAY, last_number=3),
        insert("ticket_sequence", service_id=2, service_day=DAY, last_number=1),
        *(insert("ticket", branch_id=1, service_id=service, customer_id=customer, counter_id=counter,
                 service_day=DAY, number=number, label=label, status=status, priority=0, language=language,
                 source="kiosk", access_token=f"token-{label}".ljust(24, "x"), arrived_at=AT,
                 called_at=called, started_at=called, finished_at=finished, late_until=None, recall_count=0)
          for service, customer, counter, number, label, status, language, called, finished in (
              (1, 1, 1, 1, "A001", "completed", "ka", AT, LATER),
              (1, None, None, 2, "A002", "waiting", "ka", None, None),
              (1, None, 2, 3, "A003", "no_show", "en", AT, LATER),
              (2, 2, None, 1, "B001", "waiting", "ja", None, None))),
        *(insert("ticket_event", ticket_id=ticket, at=AT, kind=kind, from_status=before, to_status=after,
                 staff_id=staff, counter_id=counter, detail=detail)
          for ticket, kind, before, after, staff, counter, detail in (
              (1, "issued", None, "waiting", None, None, '{"service": "A"}'),
              (1, "called", "waiting", "called", 1, 1, '{"counter": "1"}'),
              (1, "started", "called", "serving", 1, 1, "{}"),
              (1, "completed", "serving", "completed", 1, 1, "{}"),
              (2, "issued", None, "waiting", None, None, '{"service": "A"}'),
              (3, "issued", None, "waiting", None, None, '{"service": "A"}'),
              (3, "no_show", "called", "no_show", None, 2, "{}"),
              (4, "issued", None, "waiting", None, None, '{"service": "B"}'))),
    ],
    # Texts: the outbox, a long reply in two parts, a modem.
    "421c8e597340": [
        insert("outbox", branch_id=1, to=PHONE, body="A001: you are number 1", kind="welcome", priority=2,
               ticket_id=1, appointment_id=None, status="delivered", send_after=AT, attempts=1, last_error=None,
               lease_owner=None, lease_until=None, possible_duplicate=False, encoding="GSM7", parts=1,
               modem_references="[17]", reports='[{"status": 0}]', sent_by="gw-1", created_at=AT, sent_at=AT,
               delivered_at=LATER, failed_at=None),
        insert("outbox", branch_id=1, to="+819012345678", body="B001 の方", kind="welcome", priority=2,
               ticket_id=4, appointment_id=None, status="queued", send_after=LATER, attempts=0, last_error=None,
               lease_owner=None, lease_until=None, possible_duplicate=False, encoding=None, parts=None,
               modem_references="[]", reports="[]", sent_by=None, created_at=AT, sent_at=None,
               delivered_at=None, failed_at=None),
        insert("inbox", branch_id=1, sender=PHONE, body="LATE 10", sent_at=AT, received_at=LATER,
               received_by="gw-1", parts=2, incomplete=False, dedupe_key="reply-1", status="handled",
               outcome="late", handled_at=LATER, error=None),
        *(insert("inbox_part", branch_id=1, sender=PHONE, reference=7, total=2, sequence=sequence, body=body,
                 sent_at=AT, received_at=LATER, received_by="gw-1", dedupe_key=f"part-{sequence}", message_id=1)
          for sequence, body in ((1, "LATE"), (2, " 10"))),
        insert("modem_status", gateway="gw-1", branch_id=1, port="/dev/ttyUSB0", state="ready", signal=21,
               network="MagtiCom", last_error=None, sent_total=5, updated_at=LATER),
    ],
    "2b5305a03351": [
        update("branch", "id = 1", messaging='{"survey": false}'),
        update("outbox", "id = 2", policy_note="waits for quiet hours"),
        insert("message_template", branch_id=1, kind="welcome", language="ka", body="{label}: გთხოვთ დაელოდოთ",
               updated_at=AT),
        insert("ticket_notice", ticket_id=1, kind="welcome", outbox_id=1),
        insert("ticket_notice", ticket_id=4, kind="welcome", outbox_id=2),
    ],
    "188b53be8580": [
        insert("survey_response", branch_id=1, ticket_id=1, outbox_id=1, phone=PHONE, language="ka",
               state="answered", score=5, comment="good", retries=0, created_at=LATER, answered_at=LATER),
    ],
    "3009a8d1a779": [update("inbox", "id = 1", read_at=LATER)],
    "6ff0c82a3441": [
        insert("appointment", branch_id=1, service_id=2, customer_id=1, starts_at="2026-11-24 07:00:00",
               status="booked", booking_code="K7Q2M9", late_minutes=None, reminders_sent="[1440]",
               ticket_id=None, source="staff", created_at=AT),
        update("service", "id = 2", slot_minutes=20, slot_capacity=2),
    ],
    "96d00c786a7d": [
        insert("reschedule_offer", appointment_id=1, phone=PHONE, slots='["2026-11-25T07:00:00"]', status="open",
               created_at=LATER, expires_at="2026-11-23 08:35:00"),
    ],
    "9650f0e2e9f1": [
        insert("inbox_quarantine", branch_id=1, gateway="gw-1", memory="SM", sender=PHONE, pdu="07914400000000F0",
               error="undecodable", received_at=LATER),
        update("modem_status", "gateway = 'gw-1'", imei="356938035643809", failed_in_a_row=1),
    ],
    "b7c1e0a4d511": [
        insert("api_token", name="crm", role="staff", secret_hash="f" * 64, hint="abcd", created_at=AT,
               created_by="manager", expires_at=None, revoked_at=None, last_used_at=LATER),
        insert("api_token_branch", token_id=1, branch_id=1),
        insert("login_failure", username="manager", address="192.0.2.7", at=AT),
        update("staff_user", "id = 1", session_epoch="epoch-1"),
    ],
    "c3d9f2b8e622": [insert("staff_user_branch", user_id=1, branch_id=1)],
    "d5e1a3c7f733": [
        insert("audit_entry", at=LATER, actor="manager", role="admin", branch_id=1, action="ticket.called",
               target="A001", detail='{"counter": "1"}'),
        update("survey_response", "id = 1", phone=None),  # anonymised: numbers may go now
    ],
    "1499b3e21d9d": [
        insert("closure", branch_id=1, first_day="2026-12-31", last_day="2027-01-02", message="New Year",
               created_at=AT),
        insert("modem_setting", branch_id=1, port="/dev/ttyUSB0", pin="1234", version=2, updated_at=AT),
        update("service", "id = 1", names='{"ka": "ზოგადი"}', position=1),
        update("staff_user", "id = 1", language="ja"),
    ],
    "0ceac7ca0b77": [update("ticket", "id = 2", quoted_wait_minutes=12)],
    "a3f1c9d2e7b4": [update("appointment", "id = 1", language="ja")],
    "f4b8d2c6a915": [update("staff_user", "id = 1", shortcuts=False)],
}
# Migrations that rewrite existing values on purpose: {revision: {(table, column), ...}}.
REWRITES: dict[str, set[tuple[str, str]]] = {}


def chain() -> list[str]:
    """Every migration from the first to the newest, in the order they run; one line, no forks."""
    scripts = ScriptDirectory(MIGRATIONS)
    heads = scripts.get_heads()
    assert len(heads) == 1, f"the migrations fork into heads {heads}: give the newest a down_revision"
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


def snapshot(connection) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every table's column names and rows, by primary key."""
    inspector = inspect(connection)
    columns = inspector.get_multi_columns()
    keys = inspector.get_multi_pk_constraint()
    found = {}
    for (_schema, table), described in columns.items():
        if table == "alembic_version":
            continue
        order = ", ".join(f'"{name}"' for name in keys[(_schema, table)]["constrained_columns"])
        rows = connection.execute(text(f'SELECT * FROM "{table}" ORDER BY {order}')).all()
        found[table] = ([column["name"] for column in described], [tuple(row) for row in rows])
    return found


def assert_kept(before, after, revision) -> None:
    """Nothing the step had may be lost: every table, row and value of a column still there."""
    rewritten = REWRITES.get(revision, set())
    for table, (columns, rows) in before.items():
        assert table in after, f"{revision} dropped table {table} and its {len(rows)} row(s)"
        new_columns, new_rows = after[table]
        assert len(new_rows) == len(rows), f"{revision}: {table} had {len(rows)} rows, now {len(new_rows)}"
        kept = [c for c in columns if c in new_columns and (table, c) not in rewritten]
        old = [tuple(row[columns.index(c)] for c in kept) for row in rows]
        new = [tuple(row[new_columns.index(c)] for c in kept) for row in new_rows]
        assert new == old, f"{revision} changed values of {table}"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return request.getfixturevalue("fresh_postgres")


def test_every_migration_from_the_first_keeps_the_data(empty_database, tmp_path, clock):
    revisions = chain()
    assert revisions[0] == "54737598b7b5", "the first migration is the one the data starts from"
    assert set(DATA) <= set(revisions), f"data for migrations that no longer exist: {set(DATA) - set(revisions)}"
    app = build_app(empty_database, clock, tmp_path)
    held, applied = {}, []  # what the database holds before the next step; the steps taken

    def after_each_step(ctx, step, heads, run_args):
        """Alembic calls this after each migration, in its transaction, on its connection."""
        revision = step.up_revision_id
        now = snapshot(ctx.connection)
        assert_kept(held, now, revision)
        if revision in DATA:
            for statement, values in DATA[revision]:
                ctx.connection.execute(text(statement), values)
            now = snapshot(ctx.connection)
        held.clear()
        held.update(now)
        applied.append(revision)

    app.extensions["migrate"].configure_args["on_version_apply"] = after_each_step
    upgrade_database(app)  # what every start does: here from nothing, one migration at a time
    assert applied == revisions
    with app.app_context():
        with db.engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_heads() == (revisions[-1],)
            diff = schema_differences(connection)
        assert diff == [], f"the upgraded schema is not the models': {diff}"
        _assert_values_at_head()
        _assert_the_queue_carries_on(clock)
        db.session.remove()
        db.engine.dispose()


def _assert_values_at_head() -> None:
    at = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    branch = db.session.get(Branch, 1)
    assert (branch.name, branch.timezone, branch.default_language) == ("Rustaveli", "Asia/Tbilisi", "ka")
    assert branch.opening_hours == {"mon": [["09:00", "18:00"]]} and branch.messaging == {"survey": False}
    assert branch.languages == ["en", "ja", "ka"] and branch.created_at == at
    general, booked = db.session.get(Service, 1), db.session.get(Service, 2)
    assert (general.names, general.position, general.slot_minutes) == ({"ka": "ზოგადი"}, 1, 15)
    assert (booked.slot_minutes, booked.slot_capacity, booked.target_wait_minutes) == (20, 2, 15)
    manager = db.session.scalar(select(StaffUser))
    assert (manager.username, manager.language, manager.shortcuts, manager.session_epoch) == ("manager", "ja", False, "epoch-1")
    assert [b.id for b in manager.other_branches] == [1]
    nino = db.session.scalar(select(Customer).where(Customer.phone == PHONE))
    assert (nino.name, nino.sms_consent, nino.consent_text, nino.consent_at) == ("Nino", True, "Texts about my visit", at)
    tickets = db.session.scalars(select(Ticket).order_by(Ticket.id)).all()
    assert [(t.label, t.status, t.service_day, t.customer_id) for t in tickets] == [
        ("A001", "completed", date(2026, 11, 23), 1), ("A002", "waiting", date(2026, 11, 23), None),
        ("A003", "no_show", date(2026, 11, 23), None), ("B001", "waiting", date(2026, 11, 23), 2)]
    assert tickets[0].finished_at == at + timedelta(minutes=5) and tickets[1].quoted_wait_minutes == 12
    events = db.session.execute(text("SELECT ticket_id, count(*) FROM ticket_event GROUP BY ticket_id ORDER BY ticket_id"))
    assert [tuple(row) for row in events] == [(1, 4), (2, 1), (3, 2), (4, 1)]
    rows = db.session.execute(text(
        'SELECT o."to", o.kind, o.status, o.policy_note, n.ticket_id FROM outbox o '
        "JOIN ticket_notice n ON n.outbox_id = o.id ORDER BY o.id")).all()
    assert [tuple(r) for r in rows] == [(PHONE, "welcome", "delivered", None, 1),
                                         ("+819012345678", "welcome", "queued", "waits for quiet hours", 4)]
    assert db.session.execute(text("SELECT message_id, body FROM inbox_part ORDER BY sequence")).all() == [
        (1, "LATE"), (1, " 10")]
    appointment = db.session.execute(text(
        "SELECT booking_code, status, language, customer_id FROM appointment")).one()
    assert tuple(appointment) == ("K7Q2M9", "booked", "ja", 1)
    assert db.session.scalar(text("SELECT score FROM survey_response WHERE phone IS NULL")) == 5
    assert db.session.scalar(text("SELECT body FROM message_template")) == "{label}: გთხოვთ დაელოდოთ"


def _assert_the_queue_carries_on(clock) -> None:
    """The engine works on the upgraded rows: the day's numbering goes on, the waiting are called."""
    clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))  # 13:00 in Tbilisi, the same day
    assert engine.issue_ticket(1).label == "A004"
    assert engine.call_next(2).label == "A002"
