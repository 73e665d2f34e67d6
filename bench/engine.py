"""Queue-engine throughput on SQLite and PostgreSQL. Prints figures; asserts nothing.

    .venv/bin/python -m bench.engine [--tickets 500] [--postgres URL]
"""
import argparse
import statistics
import tempfile
import threading
import time
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from core import engine
from core.database import upgrade_database
from core.extensions import db
from core.models import Branch, Counter, Service
from core.clock import SystemClock


def build(url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "INSTANCE_PATH": tempfile.mkdtemp()})
    upgrade_database(app)
    with app.app_context():
        branch = Branch(name="Bench", sender_name="Bench", created_at=SystemClock().now())
        service = Service(branch=branch, code="A", name="General")
        counters = [Counter(branch=branch, name=str(i), services=[service]) for i in range(4)]
        db.session.add_all([branch, service, *counters])
        db.session.commit()
        return app, service.id, [c.id for c in counters]


def measure(app, service_id, counter_ids, tickets, callers):
    with app.app_context():
        latencies = []
        start = time.perf_counter()
        for _ in range(tickets):
            t0 = time.perf_counter()
            engine.issue_ticket(service_id)
            latencies.append(time.perf_counter() - t0)
        issue_rate = tickets / (time.perf_counter() - start)
        issue_p50 = statistics.median(latencies) * 1000

    done = []

    def work(counter_id):
        with app.app_context():
            while (ticket := engine.call_next(counter_id)) is not None:
                engine.complete(ticket.id)
                done.append(ticket.id)
            db.session.remove()

    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(cid,)) for cid in counter_ids[:callers]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    assert len(done) == len(set(done)) == tickets, "a ticket was lost or given twice"
    return issue_rate, issue_p50, tickets / elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=500)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    targets = [("sqlite", lambda: f"sqlite:///{tempfile.mkdtemp()}/bench.db", None)]
    admin_url = make_url(args.postgres)
    name = f"seed_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    targets.append(("postgresql", lambda: admin_url.set(database=name).render_as_string(hide_password=False), name))

    print(f"{'database':<11} {'callers':>7} {'issue/s':>8} {'issue p50 ms':>12} {'call+complete/s':>16}")
    try:
        for label, url_of, _ in targets:
            for callers in (1, 4):
                app, service_id, counter_ids = build(url_of())
                rate, p50, cycle = measure(app, service_id, counter_ids, args.tickets, callers)
                print(f"{label:<11} {callers:>7} {rate:>8.0f} {p50:>12.2f} {cycle:>16.0f}")
                with app.app_context():
                    db.drop_all()
                    with db.engine.begin() as conn:
                        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
                    db.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
