"""Is a request as fast after years of history as on the first day? Builds a branch's history
(bench/history_build.py), starts the real system (run.py) on it and times what staff, customers and
screens do, over HTTP and Socket.IO. Prints p50/p99 per step and history size; asserts nothing.

    .venv/bin/python -m bench.history --sizes 0,100000,1000000 --db sqlite
    .venv/bin/python -m bench.history --sizes 0,1000000 --db postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python -m bench.history --sizes 0 --db sqlite --burst-rounds 30

--burst-rounds N times only the 32 kiosks at the same moment, N rounds in sets of ten after a warm-up,
with the CPU the server's worker spent a check-in in each set (what bounds a round on two cores).
--workers N --redis URL serves with N web workers sharing Redis (PostgreSQL only), the CPU counted
over all of them.

For PostgreSQL, --db names a server and a database to connect to for creating (and afterwards
dropping) one database per size, seed_bench_<random>. The client shares the machine's cores with
the server, as a kiosk on the same box would; the figures are for comparing sizes and versions.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from zoneinfo import ZoneInfo
from pathlib import Path

import requests
import socketio
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from core.config import normalise_database_url
from core.database import upgrade_database
from core.extensions import db

from .history_build import ZONE, fill, setup_branch

ROOT = Path(__file__).resolve().parent.parent
# The bench checks in hundreds of times a minute from one address; a real kiosk is held to 12.
INSTANCE_CONFIG = 'KIOSK_RATE_LIMIT = "100000 per minute"\n'


@contextmanager
def scratch(target: str, prefix: str = "seed_bench_", config: str = INSTANCE_CONFIG):
    """A fresh instance folder and an empty database (a file in it, or a PostgreSQL database
    seed_bench_<random> on the server `target` names); yields (folder, database URL), and drops
    both after."""
    instance = Path(tempfile.mkdtemp(prefix=prefix))
    (instance / "config.py").write_text(config)
    admin_url, name = None, None
    if target == "sqlite":
        url = f"sqlite:///{instance / 'seed.db'}"
    else:
        admin_url = make_url(normalise_database_url(target))
        name = f"seed_bench_{uuid.uuid4().hex[:8]}"
        with create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        yield instance, url
    finally:
        if name:
            with create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(instance, ignore_errors=True)


@contextmanager
def database(target: str, size: int):
    """A database with `size` past tickets; yields (url, instance folder, admin API token)."""
    with scratch(target) as (instance, url):
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(instance)})
        upgrade_database(app)
        with app.app_context():
            secret, layout = setup_branch(secrets.token_urlsafe(12))
            started = time.perf_counter()
            written = fill(size, layout)
            took = time.perf_counter() - started
            db.engine.dispose()
        # The build leaves its log behind (some 460,000 pages at a million, 1.8 GB): the server
        # would start by copying it back, seconds of its first minute. A branch meets that once
        # after a restore, not in the steady state the steps measure.
        emptied = time.perf_counter()
        if url.startswith("sqlite:"):
            connection = sqlite3.connect(make_url(url).database)
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.close()
        print(f"  history of {size:,} tickets built in {took:.0f} s (its log emptied in {time.perf_counter() - emptied:.0f} s): "
              + ", ".join(f"{table} {count:,}" for table, count in written.items()), flush=True)
        yield url, instance, secret, layout, app


class Server:
    """run.py in a subprocess, its log in the instance folder (a pipe nobody reads would fill up)."""

    def __init__(self, instance: Path, url: str, port: int, workers: int = 1, redis: str | None = None):
        self.instance, self.url, self.port, self.workers, self.redis = instance, url, port, workers, redis
        self.base = f"http://127.0.0.1:{port}"

    def __enter__(self):
        env = {**os.environ, "SEED_INSTANCE_PATH": str(self.instance), "DATABASE_URL": self.url,
               "PYTHONUNBUFFERED": "1"}
        if self.redis:
            env["REDIS_URL"] = self.redis
        self.log = open(self.instance / "server.log", "w")
        self.process = subprocess.Popen([sys.executable, "run.py", "--port", str(self.port),
                                         "--workers", str(self.workers)], cwd=ROOT, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        try:
            return self.answering()
        except BaseException:
            self.__exit__()  # a server that never answered must not keep the port for the next run
            raise

    def answering(self):
        """Wait until the started run.py answers its health check; self, or why it did not."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(self.base + "/api/v1/health", timeout=5).status_code == 200:
                    return self
            except (requests.ConnectionError, requests.Timeout):  # (a big history's first start reads a while)
                time.sleep(0.2)
        raise RuntimeError("run.py did not answer:\n" + (self.instance / "server.log").read_text()[-3000:])

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def worker_pids(self) -> list[int]:
        """gunicorn's workers (the children of run.py)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(child) for child in children] or [self.process.pid]

    def worker_cpu_seconds(self) -> float:
        """The CPU all the workers have spent."""
        spent = 0.0
        for pid in self.worker_pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            spent += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        return spent

    def worker_rss_mb(self) -> float:
        """Resident memory of gunicorn's largest worker, in MB."""
        sizes = [int(line.split()[1]) / 1024 for pid in self.worker_pids()
                 for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS:")]
        return max(sizes, default=float("nan"))


class Bench:
    def __init__(self, server: Server, token: str, layout: dict, app):
        self.server, self.base, self.layout, self.app = server, server.base, layout, app
        self.headers = {"Authorization": f"Bearer {token}"}
        self.http = requests.Session()
        self.phones = iter(range(10**6))
        self.numbers = iter(range(500, 10**5))  # direct tickets' numbers: above any the server hands out here
        self.lock = threading.Lock()
        self.display = socketio.Client()
        self.snapshot_arrived = threading.Event()
        self.display.on("snapshot", lambda _state: self.snapshot_arrived.set(), namespace="/display")
        self.display.connect(self.base, namespaces=["/display"], auth={"branch": layout["branch"]},
                             transports=["websocket"], wait_timeout=60)

    def close(self):
        self.display.disconnect()

    def _phone(self) -> str:
        with self.lock:
            return f"+995577{next(self.phones):06d}"

    def check_in_body(self, service="A") -> dict:
        """A texting customer's check-in at the kiosk, a new number each time."""
        return {"service": service, "phone": self._phone(), "sms_consent": True, "language": "en",
                "branch": self.layout["branch"]}

    def check_in(self, session=None, service="A") -> dict:
        answer = (session or self.http).post(self.base + "/api/v1/checkins", json=self.check_in_body(service))
        assert answer.status_code == 201, answer.text
        return answer.json()["ticket"]

    def post(self, path) -> dict:
        answer = self.http.post(self.base + "/api/v1" + path, json={}, headers=self.headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def get(self, path, **headers):
        answer = self.http.get(self.base + path, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer

    def resync(self):
        self.snapshot_arrived.clear()
        self.display.emit("resync", {"branch": self.layout["branch"]}, namespace="/display")
        assert self.snapshot_arrived.wait(30), "no snapshot within 30 s"

    def counter(self, name):
        return self.layout["counters"][name][0]

    def waiting(self, service: str, count: int, texting: bool) -> None:
        """`count` customers waiting for `service`, written as check-in leaves them (texting ones with
        their welcome text and its notice), straight into the database: a thousand check-ins
        through the old code would take most of an hour at a million past tickets."""
        from core.models import Customer, Ticket, TicketEvent
        from messaging.models import OutboxMessage, TicketNotice

        now = datetime.now(timezone.utc)
        today = now.astimezone(ZoneInfo(ZONE)).date()
        with self.app.app_context():
            for index in range(count):
                number = next(self.numbers)
                customer = None
                if texting:
                    customer = Customer(phone=self._phone(), language="en", sms_consent=True, consent_at=now,
                                        consent_source="kiosk", consent_text="Yes, texts.", created_at=now)
                    db.session.add(customer)
                    db.session.flush()
                ticket = Ticket(branch_id=self.layout["branch"], service_id=self.layout["services"][service],
                                customer_id=customer.id if customer else None, service_day=today,
                                number=number, label=f"{service}{number}", status="waiting",
                                source="kiosk", arrived_at=now)
                db.session.add(ticket)
                db.session.flush()
                db.session.add(TicketEvent(ticket_id=ticket.id, at=now, kind="issued", to_status="waiting",
                                           detail={"service": service}))
                if customer is not None:
                    text_row = OutboxMessage(branch_id=ticket.branch_id, to=customer.phone, body="Welcome", kind="welcome",
                                             priority=40, ticket_id=ticket.id, status="delivered", send_after=now,
                                             created_at=now, sent_at=now)
                    db.session.add(text_row)
                    db.session.flush()
                    marks = ["welcome"] + (["position"] if index <= 3 else []) + (["next"] if index == 0 else [])
                    db.session.add_all(TicketNotice(ticket_id=ticket.id, kind=k, outbox_id=text_row.id if k == "welcome" else None)
                                       for k in marks)
            db.session.commit()
            db.session.remove()

    def clear(self, service: str) -> None:
        with self.app.app_context():
            db.session.execute(text("UPDATE ticket SET status = 'cancelled' WHERE service_id = :s AND status = 'waiting'"),
                               {"s": self.layout["services"][service]})
            db.session.commit()
            db.session.remove()


def timed(action, times: int) -> list[float]:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def warm_up(bench: Bench) -> None:
    for _ in range(20):  # caches, connection pool, the modem's first texts
        bench.check_in()
        called = bench.post(f"/counters/{bench.counter('5')}/call-next")["ticket"]
        bench.post(f"/tickets/{called['id']}/complete")


def measure(bench: Bench, samples: int) -> dict:
    results = {}
    warm_up(bench)
    tickets = []
    results["check-in"] = timed(lambda: tickets.append(bench.check_in()), samples)
    tokens = [t["status_url"].rsplit("/", 1)[1] for t in tickets]
    results["status page"] = timed(lambda: bench.get(f"/t/{secrets.choice(tokens)}"), samples)
    results["/api/v1/queues"] = timed(lambda: bench.get(f"/api/v1/queues?branch={bench.layout['branch']}",
                                                        **bench.headers), samples)
    results["display snapshot"] = timed(bench.resync, samples)
    calls, completes = [], []
    for _ in range(samples):
        started = time.perf_counter()
        ticket = bench.post(f"/counters/{bench.counter('5')}/call-next")["ticket"]
        calls.append((time.perf_counter() - started) * 1000)
        completes.append(timed(lambda: bench.post(f"/tickets/{ticket['id']}/complete"), 1)[0])
    results["call next"], results["complete"] = calls, completes
    for count in (0, 100, 1000):
        # Counter 3 serves A and B; A's queue is empty now, B holds `count` texting customers
        # (or, for none, 60 walk-ins without a phone).
        bench.waiting("B", count or 60, texting=bool(count))
        spent = []
        for _ in range(min(50, samples)):
            started = time.perf_counter()
            ticket = bench.post(f"/counters/{bench.counter('3')}/call-next")["ticket"]
            spent.append((time.perf_counter() - started) * 1000)
            bench.post(f"/tickets/{ticket['id']}/complete")
        results[f"call next, {count:,} texting waiting"] = spent
        bench.clear("B")
    rounds, cpu = max(samples // 20, 5), bench.server.worker_cpu_seconds()
    results["check-in, 32 kiosks at the same moment"] = burst(bench, 32, rounds)
    # What bounds a round: the worker's core (a round lasts about 37 times this, 2026-12-01).
    results["32 at the same moment: worker's CPU a check-in, ms"] = (
        f"{(bench.server.worker_cpu_seconds() - cpu) * 1000 / (32 * rounds):.2f}")
    results["check-in, 32 kiosks back to back"], results["32 back to back: check-ins/s"] = concurrent(
        bench, 32, rounds)
    return results


class Kiosk:
    """One kiosk's check-ins over a kept-alive connection of its own (http.client), each request
    built before the clock starts. The 32 kiosks of a burst are 32 devices, but here they are
    threads of one Python process sharing the server's two cores and one interpreter lock: through
    `requests` each check-in cost the client about 3 ms of CPU (2026-12-01), and the 32nd kiosk's
    request left up to a hundred milliseconds after the first, counted in its time. This costs
    a fraction of that; `--burst-client requests` times the burst as before."""

    def __init__(self, bench: Bench):
        self.bench = bench
        self.connection = http.client.HTTPConnection(bench.base.split("//", 1)[1], timeout=60)

    def prepared(self) -> bytes:
        return json.dumps(self.bench.check_in_body()).encode()

    def check_in(self, body: bytes) -> None:
        self.connection.request("POST", "/api/v1/checkins", body, {"Content-Type": "application/json"})
        answer = self.connection.getresponse()
        text = answer.read()
        assert answer.status == 201, text[:500]


class RequestsKiosk:
    """A kiosk through `requests`, as the burst sent before 2026-12-01 (its body built on the clock)."""

    def __init__(self, bench: Bench):
        self.bench, self.session = bench, requests.Session()

    def prepared(self) -> None:
        return None

    def check_in(self, _body) -> None:
        self.bench.check_in(self.session)


def burst(bench: Bench, clients: int, rounds: int, pause: float = 0.5, client: str = "lean"):
    """`clients` kiosks each checking in at the same moment, `rounds` times, `pause` seconds apart
    (a kiosk's customer takes far longer than that to come back): every check-in's time, from
    sending the request to reading the whole answer. `client`: "lean" (Kiosk) or "requests"."""
    spent, lock = [], threading.Lock()
    kiosks = [(Kiosk if client == "lean" else RequestsKiosk)(bench) for _ in range(clients)]

    def kiosk(one, barrier):
        body = one.prepared()
        barrier.wait()
        started = time.perf_counter()
        one.check_in(body)
        with lock:
            spent.append((time.perf_counter() - started) * 1000)

    for _ in range(rounds):
        barrier = threading.Barrier(clients)
        threads = [threading.Thread(target=kiosk, args=(one, barrier)) for one in kiosks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(pause)
    return spent


def bursts(bench: Bench, server: Server, rounds: int, client: str = "lean") -> dict:
    """Only the 32 kiosks at the same moment: `rounds` rounds in sets of ten, each set's p50 / p99
    and the CPU the server's worker, and the bench's own process (the kiosks), spent a check-in
    meanwhile."""
    warm_up(bench)
    results, everything = {}, []
    for first in range(0, rounds, 10):
        count = min(10, rounds - first)
        cpu, own = server.worker_cpu_seconds(), time.process_time()
        spent = burst(bench, 32, count, client=client)
        worker_ms = (server.worker_cpu_seconds() - cpu) * 1000 / (32 * count)
        own_ms = (time.process_time() - own) * 1000 / (32 * count)
        everything += spent
        results[f"rounds {first + 1}-{first + count}: p50 / p99 ms, CPU a check-in: worker, kiosks"] = (
            f"{cell(spent)}, {worker_ms:.2f} ms, {own_ms:.2f} ms")
    results[f"all {rounds} rounds"] = cell(everything)
    return results


def concurrent(bench: Bench, clients: int, each: int, services: str = "A"):
    """`clients` kiosks checking in back to back, kiosk i for service services[i % len]; a refused
    or failed check-in counts as an error."""
    spent, errors, barrier = [], [], threading.Barrier(clients)

    def kiosk(index):
        session = requests.Session()
        barrier.wait()
        for _ in range(each):
            started = time.perf_counter()
            try:
                bench.check_in(session, service=services[index % len(services)])
            except (AssertionError, requests.RequestException) as error:
                errors.append(error)
            spent.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=kiosk, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate = (clients * each - len(errors)) / (time.perf_counter() - started)
    return spent, f"{rate:.0f}" + (f" ({len(errors)} failed)" if errors else "")


def cell(values) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered):.1f} / {p99:.0f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,100000,1000000", help="past tickets, comma-separated")
    parser.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL URL (see above)")
    parser.add_argument("--port", type=int, default=5500)
    parser.add_argument("--samples", type=int, default=200, help="requests timed per step")
    parser.add_argument("--burst-client", choices=["lean", "requests"], default="lean",
                        help="how the 32 kiosks send: a kept-alive http.client connection each, the request "
                             "built before the clock starts (lean), or requests as before 2026-12-01")
    parser.add_argument("--burst-rounds", type=int, default=0,
                        help="time only the 32 kiosks at the same moment, this many rounds")
    parser.add_argument("--workers", type=int, default=1,
                        help="web workers (run.py --workers); more than one needs PostgreSQL and --redis")
    parser.add_argument("--redis", default=None, help="REDIS_URL for the server, e.g. redis://127.0.0.1:6379/5")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    table = {}
    for size in sizes:
        with database(args.db, size) as (url, instance, token, layout, app), Server(
                instance, url, args.port, args.workers, args.redis) as server:
            idle = server.worker_rss_mb()
            bench = Bench(server, token, layout, app)
            try:
                table[size] = bursts(bench, server, args.burst_rounds, args.burst_client) if args.burst_rounds else measure(bench, args.samples)
            finally:
                bench.close()
            table[size]["server RSS MB, idle → after"] = f"{idle:.0f} → {server.worker_rss_mb():.0f}"
            with app.app_context():
                db.engine.dispose()
    label = "SQLite" if args.db == "sqlite" else "PostgreSQL"
    timed = f"{args.burst_rounds} rounds of 32" if args.burst_rounds else f"{args.samples} samples a step"
    if args.workers > 1:
        timed += f"; {args.workers} web workers"
    print(f"\n{label}, p50 / p99 ms ({timed}; {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()})")
    steps = list(next(iter(table.values())))
    print("| step | " + " | ".join(f"{size:,} past tickets" for size in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for step in steps:
        print(f"| {step} | " + " | ".join(v if isinstance(v := table[s][step], str) else cell(v) for s in sizes) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
