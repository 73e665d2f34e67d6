"""How long does each report take for a year of a busy branch? Builds (or reuses) the
1,000,000-ticket history of bench/history_build.py, adds what the history leaves out (survey
answers, replies, a few failed texts), then times each report in core/reports.py for the last
whole year (and, inside it, the year before as its previous period). Prints seconds; asserts nothing.

    .venv/bin/python -m bench.reports                       # SQLite, in /tmp/seed_reports_bench
    .venv/bin/python -m bench.reports --db postgresql+psycopg://postgres@127.0.0.1:5432/test_h8

The history is kept between runs (building a million tickets takes minutes): on SQLite in
--dir, on PostgreSQL in a database beside the one named, <name>_reports_bench. --rebuild drops it.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from app import create_app
from core.config import normalise_database_url
from core.database import upgrade_database
from core.extensions import db
from core.models import Branch, StaffUser, Ticket

from .history_build import _sqlite_value, fill, setup_branch

SURVEY_ANSWERED = 0.6  # of surveys sent, the share answered with a score
SCORES = (1, 2, 3, 4, 5)
SCORE_WEIGHTS = (5, 5, 15, 35, 40)
FAILED_EVERY = 50  # one text in this many failed, with one of REASONS
REASONS = ("CMS ERROR 500", "no status report", "CMS ERROR 38")


def database_url(target: str, folder: Path) -> str:
    """The bench's own database, created when missing."""
    if target == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'seed.db'}"
    given = make_url(normalise_database_url(target))
    name = f"{given.database}_reports_bench"
    admin = create_engine(given, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return given.set(database=name).render_as_string(hide_password=False)


def drop(target: str, folder: Path) -> None:
    if target == "sqlite":
        shutil.rmtree(folder, ignore_errors=True)
        return
    given = make_url(normalise_database_url(target))
    admin = create_engine(given, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{given.database}_reports_bench" WITH (FORCE)'))
    admin.dispose()


def prepare(app, size: int) -> None:
    """The history, built once: each step is skipped when a reused database has it already."""
    upgrade_database(app)
    with app.app_context():
        if not db.session.scalar(select(func.count()).select_from(Ticket)):
            started = time.perf_counter()
            _secret, layout = setup_branch("bench-only-password")
            written = fill(size, layout)
            print(f"  history of {size:,} tickets built in {time.perf_counter() - started:.0f} s: "
                  + ", ".join(f"{table} {count:,}" for table, count in written.items()), flush=True)
        db.session.commit()  # the history came on another connection: end any snapshot read before it
        if not db.session.scalar(text("SELECT count(*) FROM survey_response")):
            started = time.perf_counter()
            extras = add_replies_and_surveys()
            print(f"  surveys and replies added in {time.perf_counter() - started:.0f} s: {extras}", flush=True)
        if not db.session.scalar(text("SELECT count(*) FROM ticket_event WHERE staff_id IS NOT NULL")):
            started = time.perf_counter()
            add_staff()
            print(f"  staff on every call added in {time.perf_counter() - started:.0f} s", flush=True)
        print(f"  history: {db.session.scalar(select(func.count()).select_from(Ticket)):,} tickets", flush=True)
        db.session.commit()


def add_staff() -> None:
    """One staff member per counter, on each closing event there (the builder leaves staff out):
    the report by staff member has people to count."""
    branch = db.session.scalar(select(Branch).order_by(Branch.id))
    now = datetime.now(timezone.utc)
    for counter in branch.counters:
        person = StaffUser(username=f"bench-{counter.name}", display_name=f"Staff at {counter.name}", role="staff",
                           branch_id=branch.id, created_at=now)
        person.set_password("bench-only-password")
        db.session.add(person)
        db.session.flush()
        db.session.execute(text("UPDATE ticket_event SET staff_id = :person WHERE counter_id = :counter "
                                "AND kind IN ('called', 'started', 'completed', 'no_show')"),
                           {"person": person.id, "counter": counter.id})
    db.session.commit()
    if db.engine.dialect.name == "postgresql":  # the planner's statistics knew no staff yet
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE ticket_event"))


def add_replies_and_surveys() -> str:
    """A survey row for every survey text, most answered by a reply; one text in FAILED_EVERY failed.
    The history builder writes the texts only; reports read these too."""
    rng = random.Random(13)
    engine = db.engine
    postgres = engine.dialect.name == "postgresql"
    rows = db.session.execute(text(
        "SELECT id, branch_id, ticket_id, \"to\", sent_at FROM outbox WHERE kind = 'survey' ORDER BY id")).all()
    surveys, replies = [], []
    for index, (outbox_id, branch_id, ticket_id, phone, sent_at) in enumerate(rows, 1):
        sent_at = sent_at if isinstance(sent_at, datetime) else datetime.fromisoformat(sent_at)
        answered = rng.random() < SURVEY_ANSWERED
        score = rng.choices(SCORES, weights=SCORE_WEIGHTS)[0] if answered else None
        at = sent_at + timedelta(minutes=rng.randint(1, 120))
        state = ("followup" if score <= 3 else "done") if answered else "scheduled"
        surveys.append({"id": index, "branch_id": branch_id, "ticket_id": ticket_id, "outbox_id": outbox_id,
                        "phone": phone, "language": "en", "state": state, "score": score, "retries": 0,
                        "created_at": sent_at, "answered_at": at if answered else None})
        if answered:
            replies.append({"branch_id": branch_id, "sender": phone, "body": str(score), "received_at": at,
                            "parts": 1, "incomplete": False, "dedupe_key": f"bench-{index}", "status": "handled",
                            "outcome": f"survey score {score}", "handled_at": at})
    if not postgres:  # the format SQLAlchemy writes, so that text comparisons of moments hold
        surveys = [{k: _sqlite_value(v) for k, v in row.items()} for row in surveys]
        replies = [{k: _sqlite_value(v) for k, v in row.items()} for row in replies]
    with engine.begin() as conn:
        for start in range(0, len(surveys), 20_000):
            conn.execute(text(
                "INSERT INTO survey_response (id, branch_id, ticket_id, outbox_id, phone, language, state, score, "
                "retries, created_at, answered_at) VALUES (:id, :branch_id, :ticket_id, :outbox_id, :phone, "
                ":language, :state, :score, :retries, :created_at, :answered_at)"), surveys[start:start + 20_000])
        for start in range(0, len(replies), 20_000):
            conn.execute(text(
                "INSERT INTO inbox (branch_id, sender, body, received_at, parts, incomplete, dedupe_key, status, "
                "outcome, handled_at) VALUES (:branch_id, :sender, :body, :received_at, :parts, :incomplete, "
                ":dedupe_key, :status, :outcome, :handled_at)"), replies[start:start + 20_000])
        for number, reason in enumerate(REASONS):
            conn.execute(text(
                f"UPDATE outbox SET status = 'failed', last_error = :reason, delivered_at = NULL "
                f"WHERE id % {FAILED_EVERY * len(REASONS)} = {number * FAILED_EVERY}"), {"reason": reason})
        if postgres:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('survey_response', 'id'), "
                              "GREATEST((SELECT max(id) FROM survey_response), 1))"))
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return f"survey_response {len(surveys):,}, inbox {len(replies):,}"


def year_of(branch_id: int) -> tuple[date, date]:
    """The last 365 days the history holds (it ends the day before it was built)."""
    last = db.session.scalar(select(func.max(Ticket.service_day)).where(Ticket.branch_id == branch_id))
    return last - timedelta(days=364), last


def timed(action, repeat: int) -> list[float]:
    spent = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        spent.append(time.perf_counter() - started)
        db.session.rollback()
    return spent


def measure(repeat: int) -> tuple[dict, dict]:
    from core import reports
    from core.reports import Period, Selection
    from reports import figures, staffing, texts

    branch = db.session.scalar(select(Branch).order_by(Branch.id))
    first, last = year_of(branch.id)
    period = Period.of(branch, first, last)
    service_b = next(service.id for service in branch.services if service.code == "B")
    person = db.session.scalar(select(StaffUser.id).where(StaffUser.username == "bench-1"))
    steps = {
        "summary (year + previous year, texts, surveys)": lambda: figures.summary(period),
        "summary, service B only": lambda: figures.summary(period, Selection(service_id=service_b)),
        "summary, one staff member": lambda: figures.summary(period, Selection(staff_id=person)),
        "heatmap (weekday x hour)": lambda: reports.heatmap(period),
        "breakdown by service (+ previous)": lambda: figures.breakdown_with_previous(period, "service"),
        "breakdown by counter (+ previous)": lambda: figures.breakdown_with_previous(period, "counter"),
        "breakdown by staff (+ previous)": lambda: figures.breakdown_with_previous(period, "staff"),
        "surveys to follow up": lambda: texts.follow_up(period),
        "staffing hint (Erlang C per weekday x hour)": lambda: staffing.staffing(period),
        "reminders against no-shows": lambda: texts.reminders(period),
    }
    steps.update(_over_http(branch.id, first, last))
    found = figures.summary(period)
    about = {"period": f"{first} to {last}", "visits": found["visits"], "previous visits": found["previous"]["visits"],
             "texts written": found["texts"]["written"], "surveys sent": found["surveys"]["sent"]}
    return about, {name: timed(step, repeat) for name, step in steps.items()}


def _over_http(branch_id: int, first: date, last: date) -> dict:
    """The same through the app, as an integration or a browser asks: JSON, a page, the ticket export."""
    from flask import current_app

    from core import tokens

    _token, secret = tokens.create("reports bench", "admin")
    client = current_app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    query = {"branch": branch_id, "from": first.isoformat(), "to": last.isoformat()}

    def get(path):
        answer = client.get(path, query_string=query, headers=headers)
        body = answer.get_data()  # a streamed answer is produced while it is read
        assert answer.status_code == 200, body[:300]
        return body

    return {"GET /api/v1/reports/summary": lambda: get("/api/v1/reports/summary"),
            "GET /reports/ (the summary page)": lambda: get("/reports/"),
            "GET /api/v1/reports/staffing": lambda: get("/api/v1/reports/staffing"),
            "GET /reports/export/tickets.csv (every ticket of the year)": lambda: get("/reports/export/tickets.csv")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL URL (see above)")
    parser.add_argument("--size", type=int, default=1_000_000, help="past tickets, when the history is built")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "seed_reports_bench",
                        help="where the SQLite history is kept")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each report")
    parser.add_argument("--rebuild", action="store_true", help="drop the kept history first")
    args = parser.parse_args(argv)
    if args.rebuild:
        drop(args.db, args.dir)
    url = database_url(args.db, args.dir)
    args.dir.mkdir(parents=True, exist_ok=True)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(args.dir)})
    prepare(app, args.size)
    with app.app_context():
        about, results = measure(args.repeat)
        db.engine.dispose()
    label = "SQLite" if args.db == "sqlite" else "PostgreSQL"
    print(f"\n{label}, one branch, {about['period']}: {about['visits']:,} visits (previous year "
          f"{about['previous visits']:,}), {about['texts written']:,} texts, {about['surveys sent']:,} surveys sent")
    print(f"seconds, best / worst of {args.repeat} ({os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f})")
    print("| report | best | worst |\n|---|---|---|")
    for name, spent in results.items():
        print(f"| {name} | {min(spent):.2f} | {max(spent):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
