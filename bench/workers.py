"""Check-in throughput and latency with 1, 2 and 4 web workers (`run.py --workers N --role web`) on
PostgreSQL, the workers sharing displays and rate limits through Redis. Prints check-ins per second
and p50/p99 for kiosks checking in at once; asserts nothing.

    .venv/bin/python -m bench.workers --db postgresql://postgres@127.0.0.1:5432/test [--redis redis://127.0.0.1:6379/0]

--db names a server and a database to connect to for creating (and afterwards dropping) one
database per run (bench/history.py's scratch()). Each run starts from an empty branch (six
counters, an administrator's token) with a display connected. The kiosks run in this process, on
the same cores as the server: read the figures against each other, not as a capacity.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import uuid


from core.extensions import db

from .history import ROOT, Bench, Server, cell, concurrent, database


class Workers(Server):
    """run.py with N web workers and nothing else (no scheduler, no gateway), on Redis."""

    def __init__(self, instance, url: str, port: int, workers: int, redis: str):
        super().__init__(instance, url, port)
        self.workers, self.redis = workers, redis

    def __enter__(self):
        env = {**os.environ, "SEED_INSTANCE_PATH": str(self.instance), "DATABASE_URL": self.url, "PYTHONUNBUFFERED": "1",
               "REDIS_URL": self.redis, "SOCKETIO_CHANNEL": f"seed-bench-{uuid.uuid4().hex[:8]}"}
        self.log = open(self.instance / "server.log", "w")
        self.process = subprocess.Popen([sys.executable, "run.py", "--port", str(self.port), "--role", "web",
                                         "--workers", str(self.workers)],
                                        cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        return self.answering()


def kiosks(bench: Bench, clients: int, each: int, services: str):
    """`clients` kiosks checking in back to back, spread over `services`: each check-in takes its
    service's next number, one at a time per service (bench/history.py's concurrent())."""
    return concurrent(bench, clients, each, services)


def run_one(args, workers: int) -> dict:
    with database(args.db, 0) as (url, instance, token, layout, app), \
            Workers(instance, url, args.port, workers, args.redis) as server:
        bench = Bench(server, token, layout, app)
        try:
            for _ in range(20):  # warm up every worker's connection pool and caches
                bench.check_in()
            spent, rate = kiosks(bench, args.clients, args.each, args.services)
        finally:
            bench.close()
            with app.app_context():
                db.engine.dispose()
    return {"spent": spent, "rate": rate}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="a PostgreSQL URL (see above)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="the Redis the workers share")
    parser.add_argument("--workers", default="1,2,4", help="web workers per run, comma-separated")
    parser.add_argument("--clients", type=int, default=32, help="kiosks checking in at once")
    parser.add_argument("--each", type=int, default=25, help="check-ins per kiosk")
    parser.add_argument("--services", default="A", help="the services the kiosks check in for, e.g. ABC "
                                                         "(default A: every check-in takes the one service's numbers)")
    parser.add_argument("--port", type=int, default=5501)
    args = parser.parse_args(argv)
    if not args.db.startswith(("postgres://", "postgresql")):
        parser.error("--db: a PostgreSQL URL; several web workers need PostgreSQL")
    load_before = os.getloadavg()[0]
    table = {n: run_one(args, n) for n in (int(w) for w in args.workers.split(","))}
    print(f"\nCheck-ins for service(s) {args.services}, {args.clients} kiosks at once x {args.each} each, "
          "PostgreSQL + Redis "
          f"({os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)")
    print("| web workers | check-ins/s | p50 / p99 ms |")
    print("|---|---|---|")
    for workers, row in table.items():
        print(f"| {workers} | {row['rate']} | {cell(row['spent'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
