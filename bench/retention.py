"""What the retention job (core/privacy.py, the scheduler's `anonymise`) costs on years of history,
and how long it holds the worker at a time: under gevent every request and screen waits for each
of its steps, so the longest step is the figure that matters, the whole run's time the other.

    .venv/bin/python -m bench.retention [--sizes 1000000] [--db sqlite|postgresql://USER@HOST/DB] [--runs 4]

Builds bench/history.py's history (its customers all created in one instant, as an import makes
them; most of them came back in the last 90 days), then runs the job `--runs` times in this
process, back to back, as the scheduler would after a long pause: the backlog of years first.
A step is the work between two of the job's pauses (core.cooperative.let_others_run), timed on
the wall clock. On SQLite the log is left to a checkpointer on a thread of its own, as in the
server (core/wal.py): outside it, SQLite checkpointed inside whichever commit took the log past
1,000 pages, and that step took 20-30 ms where the others took 2-5 (2026-12-01). Prints a table;
not a timed test.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from contextlib import contextmanager

from core import cooperative, privacy, wal
from core.extensions import db

from .history import database


def run_once(app) -> dict:
    marks = [time.perf_counter()]
    original = cooperative.let_others_run
    cooperative.let_others_run = lambda *a, **k: marks.append(time.perf_counter())
    try:
        with app.app_context():
            done = privacy.anonymise()
            db.session.remove()
    finally:
        cooperative.let_others_run = original
    marks.append(time.perf_counter())
    steps = [(b - a) * 1000 for a, b in zip(marks, marks[1:])]
    return {"done": done, "total": (marks[-1] - marks[0]) * 1000, "steps": steps}


@contextmanager
def checkpointed_as_in_the_server(app):
    """On SQLite, the app's connections never checkpoint and a thread checkpoints every
    wal.CHECKPOINT_SECONDS, as run.py's worker does (there on one of gevent's native threads)."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "sqlite":
        yield
        return
    wal.leave_the_log(engine)
    checkpointer, stopping = wal.Checkpointer(engine.url.database), threading.Event()

    def run():
        while not stopping.wait(wal.CHECKPOINT_SECONDS):
            checkpointer.checkpoint_here()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        thread.join()
        checkpointer.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000", help="past tickets, comma-separated")
    parser.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL URL")
    parser.add_argument("--runs", type=int, default=4, help="runs of the job, back to back")
    args = parser.parse_args(argv)
    rows = []
    for size in [int(s.replace("_", "")) for s in args.sizes.split(",")]:
        with database(args.db, size) as (_url, _instance, _token, _layout, app), checkpointed_as_in_the_server(app):
            app.config["TESTING"] = False
            for number in range(1, args.runs + 1):
                result = run_once(app)
                steps = result["steps"]
                done = ", ".join(f"{section} {count:,}" for section, count in result["done"].items()) or "nothing"
                rows.append((f"{size:,}", number, done, f"{result['total']:.0f}", len(steps),
                             f"{statistics.median(steps):.1f}", f"{max(steps):.1f}"))
            with app.app_context():
                db.engine.dispose()
    label = "SQLite" if args.db == "sqlite" else "PostgreSQL"
    print(f"\n{label}, the retention job run after run ({os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()})")
    print("| past tickets | run | anonymised | whole run ms | steps | step p50 ms | longest step ms |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
