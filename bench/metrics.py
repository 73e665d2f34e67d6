"""What a /metrics scrape costs after years of history and on a busy day: builds a branch's history
(bench/history_build.py), adds today's load (customers waiting, texts queued, a day's texts sent),
then times scrapes in the process (Flask's test client, from loopback) and counts their
statements. Prints p50/p99 and each part's share; asserts nothing.

    .venv/bin/python -m bench.metrics --sizes 0,100000,1000000 --db sqlite
    .venv/bin/python -m bench.metrics --sizes 100000 --db postgresql://postgres@127.0.0.1:5432/test --texts-today 50000
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, insert

from core.extensions import db
from core.models import Ticket
from messaging import kinds
from messaging.models import OutboxMessage

from .history import database


def todays_load(layout: dict, waiting: int, queued: int, texts_today: int) -> None:
    """Customers waiting now, texts queued, and a busy day's texts (a city's, say) sent or
    delivered in the last 24 hours: what the scrape's bounded queries do read."""
    now = datetime.now(timezone.utc)
    services = list(layout["services"].items())
    db.session.execute(insert(Ticket), [
        {"branch_id": layout["branch"], "service_id": services[n % len(services)][1], "service_day": now.date(),
         "number": 900 + n, "label": f"{services[n % len(services)][0]}{900 + n}", "status": "waiting",
         "priority": 0, "language": "en", "source": "kiosk", "access_token": f"bench-metrics-{n}",
         "arrived_at": now - timedelta(minutes=n % 90), "recall_count": 0} for n in range(waiting)])
    rows = []
    for n in range(queued + texts_today):
        kind = ("welcome", "called", "next", "survey")[n % 4]
        at = now - timedelta(seconds=(n * 86_000) // max(texts_today, 1))
        done = n >= queued
        status = ("delivered" if n % 9 else "failed") if done else "queued"
        rows.append({"branch_id": layout["branch"], "to": f"+99557{n % 10**7:07d}", "body": "bench", "kind": kind,
                     "priority": kinds.get(kind).rank, "status": status,
                     "send_after": at, "created_at": at, "sent_at": at if done else None,
                     "sent_by": "bench-modem" if done else None, "attempts": 1 if done else 0,
                     "modem_references": [], "reports": {}, "possible_duplicate": False})
    for start in range(0, len(rows), 10_000):
        db.session.execute(insert(OutboxMessage), rows[start:start + 10_000])
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")


def scrape_cost(app, samples: int) -> dict:
    client = app.test_client()
    statements = []
    client.get("/metrics")  # (the first one warms caches)

    def seen(*_args):
        statements.append(1)

    times, parts = [], {}
    for _ in range(samples):
        statements.clear()
        event.listen(db.engine, "before_cursor_execute", seen)
        started = time.perf_counter()
        answer = client.get("/metrics")
        times.append((time.perf_counter() - started) * 1000)
        event.remove(db.engine, "before_cursor_execute", seen)
        assert answer.status_code == 200, answer.text
        for family in text_string_to_metric_families(answer.text):
            if family.name == "seed_scrape_duration_seconds":
                for sample in family.samples:
                    parts.setdefault(sample.labels["part"], []).append(sample.value * 1000)
    ordered = sorted(times)
    return {"scrape ms p50 / p99": f"{statistics.median(ordered):.1f} / {ordered[int(len(ordered) * 0.99)]:.1f}",
            "statements": str(len(statements)),
            **{f"part {name} ms p50": f"{statistics.median(values):.1f}" for name, values in parts.items()},
            "bytes": f"{len(answer.data):,}"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,100000", help="past tickets, comma-separated")
    parser.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL URL (bench/history.py)")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--waiting", type=int, default=300, help="customers waiting now")
    parser.add_argument("--queued", type=int, default=2000, help="texts queued now")
    parser.add_argument("--texts-today", type=int, default=20_000, help="texts created in the last 24 hours")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    table = {}
    for size in sizes:
        with database(args.db, size) as (_url, _instance, _token, layout, app):
            with app.app_context():
                todays_load(layout, args.waiting, args.queued, args.texts_today)
                table[size] = scrape_cost(app, args.samples)
                db.session.remove()
                db.engine.dispose()
    label = "SQLite" if args.db == "sqlite" else "PostgreSQL"
    print(f"\n{label}: {args.waiting} waiting, {args.queued} texts queued, {args.texts_today:,} texts in the last "
          f"24 h; {args.samples} scrapes ({os.cpu_count()} cores, {platform.machine()}, "
          f"Python {platform.python_version()})")
    print("| | " + " | ".join(f"{size:,} past tickets" for size in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for row in dict.fromkeys(key for figures in table.values() for key in figures):
        print(f"| {row} | " + " | ".join(table[size].get(row, "") for size in sizes) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
