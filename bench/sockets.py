"""Do open screens slow the branch down? Starts the real system (run.py), opens N Socket.IO
connections of the kinds a branch has (mostly displays, plus staff consoles and customers' status
pages where this checkout has them) and, while they are open, times check-in, call next and the
call's arrival on every display. Prints p50/p99 per step, missed calls and the server's memory;
asserts nothing.

    .venv/bin/python -m bench.sockets [--sockets 0,1000] [--calls 200] [--db sqlite]
    .venv/bin/python -m bench.sockets --db postgresql+psycopg://postgres@127.0.0.1:5432/test

Every N gets its own server and instance (for PostgreSQL a database seed_bench_<random>, dropped
afterwards). All the bench's connections live in one client thread around a selector, as many
screens on other machines would: the client costs no thread per socket, and it shares this
machine's cores with the server, so its own reading of the frames is part of what is timed.

The customers' status pages follow tickets waiting for service A; the bench's own tickets are
issued with priority 1, so counter 1 calls them ahead of those customers and every check-in and
call moves the waiting customers' places (each status page hears about two changes a cycle where a
real call brings one). Consoles are nudged but do not fetch their panels afterwards.
"""
from __future__ import annotations

import argparse
import os
import platform
import queue
import random
import re
import resource
import selectors
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import requests
import websocket
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.config import normalise_database_url

from .display_latency import free_port
from .history import Server

# The bench checks in faster than a kiosk may; it opens every socket from one address.
INSTANCE_CONFIG = 'KIOSK_RATE_LIMIT = "100000 per minute"\n'
CALLED = re.compile(rb'"kind":\s*"called",\s*"number":\s*"([^"]+)"|"number":\s*"([^"]+)"[^}]*?"kind":\s*"called"')
WAIT_SECONDS = 5  # for every display to hear a call


def namespaces() -> dict[str, str]:
    """The live namespaces this checkout has: kind -> namespace."""
    found = {"display": "/display"}
    for kind, module in (("console", "staff.live"), ("status", "kiosk.live")):
        try:
            found[kind] = __import__(module, fromlist=["NAMESPACE"]).NAMESPACE
        except (ImportError, AttributeError):
            pass
    return found


class Connection:
    """One Engine.IO/Socket.IO connection over a WebSocket whose frames the hub reads itself."""

    def __init__(self, hub: Hub, index: int, kind: str, namespace: str, auth: str, cookie: str | None):
        self.hub, self.index, self.kind, self.namespace = hub, index, kind, namespace
        self.ws = websocket.create_connection(hub.ws_url, timeout=30, cookie=cookie, header=hub.headers)
        opened = self.ws.recv()
        assert opened.startswith("0{"), opened
        self.event_prefix = f'42{namespace},["'.encode()
        self.buffer = bytearray()
        self.fragments: list[bytes] = []
        self.connected = self.refused = self.closed = False
        self.events = 0  # events received after connecting (snapshots, nudges, statuses, updates)
        self.updates = 0  # a display's "update" events
        self.ready = threading.Event()  # the namespace accepted us and sent its first event (if any)
        self.ws.send(f"40{namespace},{auth}")

    def fileno(self) -> int:
        return self.ws.sock.fileno()

    def read(self) -> None:
        try:
            data = self.ws.sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        now = time.perf_counter()
        if not data:
            self.close()
            return
        self.buffer += data
        for opcode, payload in self._frames():
            if opcode == 0x1:
                self.message(payload, now)
            elif opcode == 0x9:
                self.ws.pong(payload)
            elif opcode == 0x8:
                self.close()
                return

    def _frames(self):
        """Complete WebSocket frames in the buffer (a server's frames are not masked)."""
        buf = self.buffer
        while len(buf) >= 2:
            first, second = buf[0], buf[1]
            length, start = second & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, start = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, start = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < start + length:
                return
            payload = bytes(buf[start:start + length])
            del buf[:start + length]
            opcode = first & 0x0F
            if opcode == 0x0 or not first & 0x80:  # a fragmented message: gather until its last part
                self.fragments.append((payload, opcode) if not self.fragments else (payload, 0))
                if first & 0x80:
                    opcode = self.fragments[0][1]
                    payload = b"".join(part for part, _ in self.fragments)
                    self.fragments = []
                else:
                    continue
            yield opcode, payload

    def message(self, payload: bytes, now: float) -> None:
        if payload == b"2":  # Engine.IO ping
            self.ws.send("3")
        elif payload.startswith(self.event_prefix):
            self.events += 1
            self.ready.set()
            if self.kind == "display" and payload.startswith(b'update"', len(self.event_prefix)):
                self.updates += 1
                match = CALLED.search(payload, 0, payload.find(b'"snapshot"'))
                if match:
                    self.hub.heard((match.group(1) or match.group(2)).decode(), self.index, now)
        elif payload.startswith(b"40"):
            self.connected = True
            if self.kind == "console":  # nothing comes until the queue changes
                self.ready.set()
        elif payload.startswith(b"44") or payload.startswith(b"41"):
            self.refused = True
            self.ready.set()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub.lost(self)


class Hub:
    """Every connection of the bench, read by one thread around one selector."""

    def __init__(self, base: str, user_agent: str):
        # A console's session is bound to its browser (Flask-Login's strong session protection).
        self.headers = [f"User-Agent: {user_agent}"]
        self.ws_url = base.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.selector = selectors.DefaultSelector()
        self.connections: list[Connection] = []
        self.incoming: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self.wake_read, self.wake_write = socket.socketpair()
        self.wake_read.setblocking(False)
        self.selector.register(self.wake_read, selectors.EVENT_READ, None)
        self.lock = threading.Lock()
        self.arrivals: dict[str, dict[int, float]] = {}  # ticket number -> {display index: arrival}
        self.closed_early = 0
        self.running = True
        self.busy = 0.0  # seconds the thread spent handling frames
        self.thread = threading.Thread(target=self._run, name="sockets", daemon=True)
        self.thread.start()

    def open(self, kind: str, namespace: str, auth: str, cookie: str | None = None) -> Connection:
        connection = Connection(self, len(self.connections), kind, namespace, auth, cookie)
        self.connections.append(connection)
        self.incoming.put(connection)
        self.wake_write.send(b"x")
        return connection

    def _run(self) -> None:
        while self.running:
            for key, _ in self.selector.select(1.0):
                started = time.perf_counter()
                if key.data is None:
                    try:
                        self.wake_read.recv(4096)
                    except BlockingIOError:
                        pass
                    while not self.incoming.empty():
                        connection = self.incoming.get()
                        self.selector.register(connection.fileno(), selectors.EVENT_READ, connection)
                else:
                    key.data.read()
                self.busy += time.perf_counter() - started

    def heard(self, number: str, index: int, when: float) -> None:
        with self.lock:
            self.arrivals.setdefault(number, {}).setdefault(index, when)

    def heard_by(self, number: str) -> dict[int, float]:
        with self.lock:
            return dict(self.arrivals.get(number, {}))

    def lost(self, connection: Connection) -> None:
        if self.running:
            self.closed_early += 1
        try:
            self.selector.unregister(connection.fileno())
        except (KeyError, ValueError, OSError):
            pass

    def close(self) -> None:
        self.running = False
        self.wake_write.send(b"x")
        self.thread.join(5)
        for connection in self.connections:
            connection.closed = True
            try:
                connection.ws.close(timeout=0.2)
            except Exception:  # noqa: BLE001  (the server may have gone first)
                pass
        self.selector.close()
        self.wake_read.close()
        self.wake_write.close()


@contextmanager
def instance(target: str):
    """A fresh instance folder and database; yields (folder, database URL)."""
    folder = Path(tempfile.mkdtemp(prefix="seed_sockets_"))
    (folder / "config.py").write_text(INSTANCE_CONFIG)
    admin_url, name = None, None
    if target == "sqlite":
        url = f"sqlite:///{folder / 'seed.db'}"
    else:
        admin_url = make_url(normalise_database_url(target))
        name = f"seed_bench_{uuid.uuid4().hex[:8]}"
        with create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        yield folder, url
    finally:
        if name:
            with create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(folder, ignore_errors=True)


def signed_in(base: str, folder: Path) -> requests.Session:
    """The seeded admin, signed in like the console (a password hash per call would swamp the figures)."""
    password = (folder / "first-admin-password.txt").read_text().strip()
    session = requests.Session()
    page = session.get(base + "/staff/login").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    answer = session.post(base + "/staff/login", data={"username": "admin", "password": password, "csrf_token": token})
    answer.raise_for_status()
    assert "session" in session.cookies, "login failed"
    return session


def kinds_for(count: int, available: dict[str, str], console_share: float, status_share: float) -> dict[str, int]:
    kinds = {"console": round(count * console_share) if "console" in available else 0,
             "status": round(count * status_share) if "status" in available else 0}
    kinds["display"] = count - kinds["console"] - kinds["status"]
    return kinds


def allow_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))


def settled(hub: Hub, displays: list[int], marks: list[int]) -> None:
    """Wait until every display heard an update after `marks` (its counts then): the server's
    worker has then published the change to everyone (it runs the consoles' and status pages'
    pushes before the displays')."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and any(hub.connections[i].updates <= mark for i, mark in zip(displays, marks)):
        time.sleep(0.002)


def cycle(api: requests.Session, base: str, hub: Hub | None, displays: list[int], row: dict, spaced=False) -> None:
    """A check-in, its call and its completion, timed; with displays, each one's hearing of the call.
    Spaced: each request waits until the screens heard the one before, instead of following it at once."""
    marks = lambda: [hub.connections[i].updates for i in displays]  # noqa: E731
    before = marks() if spaced and displays else None
    started = time.perf_counter()
    api.post(base + "/api/v1/tickets", json={"service": "A", "priority": 1}).raise_for_status()
    row["check-in"].append((time.perf_counter() - started) * 1000)
    if before is not None:
        settled(hub, displays, before)
    started = time.perf_counter()
    answer = api.post(base + "/api/v1/counters/1/call-next", json={})
    row["call next"].append((time.perf_counter() - started) * 1000)
    answer.raise_for_status()
    ticket = answer.json()["ticket"]
    assert ticket and ticket["number"], answer.text
    if displays:
        deadline = time.monotonic() + WAIT_SECONDS
        heard = hub.heard_by(ticket["number"])
        while len(heard) < len(displays) and time.monotonic() < deadline:
            time.sleep(0.002)
            heard = hub.heard_by(ticket["number"])
        spent = [(when - started) * 1000 for when in heard.values()]
        row["call→display"].extend(spent)
        row["first display"].append(min(spent, default=float("nan")))
        row["last display"].append(max(spent, default=float("nan")))
        row["missed"].update(set(displays) - set(heard))
        row["missed calls"] += len(displays) - len(heard)
    before = marks() if spaced and displays else None
    api.post(base + f"/api/v1/tickets/{ticket['id']}/complete", json={}).raise_for_status()
    if before is not None:
        settled(hub, displays, before)


def new_row() -> dict:
    return {"check-in": [], "call next": [], "call→display": [], "first display": [], "last display": [],
            "missed": set(), "missed calls": 0}


def open_sockets(hub: Hub, kinds: dict[str, int], available: dict[str, str], cookie: str, tokens: list[str]) -> None:
    plan = ["display"] * kinds["display"] + ["console"] * kinds["console"] + ["status"] * kinds["status"]
    random.Random(len(plan)).shuffle(plan)  # the kinds interleaved, as screens come and go
    pages = 0
    for kind in plan:
        if kind == "status":
            hub.open(kind, available[kind], f'{{"token":"{tokens[pages % len(tokens)]}"}}')
            pages += 1
        else:  # a display, or a console with its signed-in session
            hub.open(kind, available[kind], '{"branch":1}', cookie=cookie if kind == "console" else None)
    for connection in hub.connections:
        if not connection.ready.wait(60):
            raise RuntimeError(f"{connection.kind} connection {connection.index} got no answer in 60 s")
        if connection.refused:
            raise RuntimeError(f"the server refused {connection.kind} connection {connection.index}")


def run_one(count: int, args, available: dict[str, str], status_tickets: int) -> dict[str, dict]:
    """{mode: figures} for N open sockets, on a server of its own."""
    rows = {"back to back": new_row(), "spaced": new_row()}
    with instance(args.db) as (folder, url), Server(folder, url, free_port()) as server:
        base = server.base
        api = signed_in(base, folder)
        cookie = "; ".join(f"{c.name}={c.value}" for c in api.cookies)
        # The waiting customers the status pages follow: as many for every N, so each N's database is alike.
        tokens = []
        for _ in range(status_tickets):
            answer = requests.post(base + "/api/v1/checkins", json={"service": "A", "language": "en"})
            assert answer.status_code == 201, answer.text
            tokens.append(answer.json()["ticket"]["status_url"].rsplit("/", 1)[1])
        api.headers["Content-Type"] = "application/json"
        for _ in range(20):  # caches, the connection pool, the worker's first batch
            cycle(api, base, None, [], new_row())
        memory = {"idle": server.worker_rss_mb()}
        kinds = kinds_for(count, available, args.console_share, args.status_share)
        hub = Hub(base, api.headers["User-Agent"])
        try:
            opened = time.perf_counter()
            open_sockets(hub, kinds, available, cookie, tokens)
            extra = {"opened in": f"{time.perf_counter() - opened:.1f} s"}
            time.sleep(1)
            memory["open"] = server.worker_rss_mb()
            displays = [c.index for c in hub.connections if c.kind == "display"]
            for mode, row in rows.items():
                before = {c.index: c.events for c in hub.connections}
                busy, timed_from = hub.busy, time.perf_counter()
                for _ in range(args.calls):
                    cycle(api, base, hub, displays, row, spaced=mode == "spaced")
                row["client busy"] = (hub.busy - busy) / (time.perf_counter() - timed_from)
                for kind in ("console", "status"):
                    got = [c.events - before[c.index] for c in hub.connections if c.kind == kind]
                    row[f"{kind} events"] = (min(got), statistics.mean(got)) if got else None
            memory["after"] = server.worker_rss_mb()
            extra["closed by the server"] = hub.closed_early
        finally:
            hub.close()
    for row in rows.values():
        row.update(kinds=kinds, memory=memory, extra=extra)
    return rows


def p50_p99(values) -> str:
    if not values:
        return "–"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered):.1f} / {p99:.1f}"


def p99(values) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def report(table: dict[int, dict[str, dict]], args, available: dict[str, str]) -> None:
    label = "SQLite" if args.db == "sqlite" else "PostgreSQL"
    print(f"\n{label}, {args.calls} check-in/call/complete cycles per row, p50 / p99 ms; {os.cpu_count()} cores "
          f"({platform.processor() or platform.machine()}), Python {platform.python_version()}; the bench's client "
          "shares the cores with the server")
    missing = [kind for kind in ("console", "status") if kind not in available]
    if missing:
        print(f"This checkout has no {' or '.join('/' + kind for kind in missing)} namespace: those sockets are displays.")
    print("Back to back: each request as soon as the one before answered (the call's own wait for the screens "
          "aside).\nSpaced: each request once every screen heard the one before.")
    print("| N sockets (display/console/status) | requests | check-in | call next | call→display | missed | "
          "server RSS MB idle → open → after |")
    print("|---|---|---|---|---|---|---|")
    for count, rows in table.items():
        for mode, row in rows.items():
            kinds, memory = row["kinds"], row["memory"]
            missed = f"{len(row['missed'])} sockets ({row['missed calls']} deliveries)" if count else "–"
            print(f"| {count:,} ({kinds['display']}/{kinds['console']}/{kinds['status']}) | {mode} | "
                  f"{p50_p99(row['check-in'])} | {p50_p99(row['call next'])} | {p50_p99(row['call→display'])} | "
                  f"{missed} | {memory['idle']:.0f} → {memory['open']:.0f} → {memory['after']:.0f} |")
    print("\nWhere a call's time goes (from sending call-next, p50 / p99 ms):")
    for count, rows in table.items():
        for mode, row in rows.items():
            if not count:
                continue
            extra = [f"answered {p50_p99(row['call next'])}", f"first display {p50_p99(row['first display'])}",
                     f"last display {p50_p99(row['last display'])}",
                     f"client thread busy {100 * row['client busy']:.0f}%"]
            for kind in ("console", "status"):
                if row.get(f"{kind} events"):
                    least, mean = row[f"{kind} events"]
                    extra.append(f"{kind} events a socket: min {least}, mean {mean:.1f}")
            extra += [f"{key} {value}" for key, value in row["extra"].items()]
            print(f"  {count:,} {mode}: " + "; ".join(extra))
    print("\nGoals:")
    for count, rows in table.items():
        for mode, row in rows.items():
            if not count:
                continue
            base = table.get(0, {}).get(mode)
            for step in ("check-in", "call next") if base else ():
                ratio = p99(row[step]) / p99(base[step])
                print(f"  {count:,} open, {mode}: {step} p99 {p99(row[step]):.1f} ms vs {p99(base[step]):.1f} ms with "
                      f"0 open = {ratio:.2f}x (goal <= 1.5x): {'met' if ratio <= 1.5 else 'MISSED'}")
            worst = p99(row["call→display"]) if row["call→display"] else float("inf")
            met = worst <= 100 and not row["missed"]
            print(f"  {count:,} open, {mode}: call→display p99 {worst:.1f} ms, {len(row['missed'])} sockets missed "
                  f"a call (goal <= 100 ms to every socket): {'met' if met else 'MISSED'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", default="0,1000", help="open connections, comma-separated")
    parser.add_argument("--calls", type=int, default=200, help="check-in/call/complete cycles timed per N")
    parser.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL URL to create a database through")
    parser.add_argument("--console-share", type=float, default=0.05, help="share of the sockets that are consoles")
    parser.add_argument("--status-share", type=float, default=0.15, help="share that are customers' status pages")
    args = parser.parse_args(argv)
    counts = [int(n.replace("_", "")) for n in args.sockets.split(",")]
    available = namespaces()
    allow_open_files(max(counts) * 2 + 256)
    os.environ["SOCKETS_PER_ADDRESS"] = "0"  # for the servers this starts: every socket comes from here
    status_tickets = max(1, max(kinds_for(n, available, args.console_share, args.status_share)["status"] for n in counts))
    print(f"namespaces: {', '.join(available.values())}"
          + ("" if len(available) == 3 else "  (no /console or /status here: displays only)"), flush=True)
    table = {}
    for count in counts:
        print(f"  {count:,} sockets ...", flush=True)
        table[count] = run_one(count, args, available, status_tickets if "status" in available else 0)
    report(table, args, available)
    return 0


if __name__ == "__main__":
    sys.exit(main())
