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

Each N is timed twice: back to back (each request as soon as the one before answered, so it may
wait behind the server's publishing of the last change) and spaced, a branch's steady rhythm: a
request every --spacing seconds (0.4), and not before every screen heard the one before. The
rhythm is the same for every N, so "none open" is measured after the same pauses as "1,000 open":
on a virtual machine a core left idle for a few hundred milliseconds runs the next request up to
half again slower (cold caches), with or without screens, and a baseline timed back to back would
charge that to the screens. Besides the table it prints, per row, the CPU a cycle costs the server and
the bench, when the call reached the first and the last display, and with --gc log the server's
garbage collections (--gc off runs the server without a collector, to see what it costs).
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
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
import websocket

from .display_latency import free_port
from .history import ROOT, Server, scratch

CALLED = re.compile(rb'"kind":\s*"called",\s*"number":\s*"([^"]+)"|"number":\s*"([^"]+)"[^}]*?"kind":\s*"called"')
WAIT_SECONDS = 5  # for every display to hear a call
# --gc log|off: run.py started through this, which notes the server's garbage collections (and,
# for "off", turns the collector off) without touching the server's code; the worker inherits it.
GC_WRAPPER = """
import gc, os, runpy, sys, time
log, began = open(os.environ["SEED_BENCH_GC_LOG"], "a", buffering=1), {}
def note(phase, info):
    if phase == "start":
        began[os.getpid()] = time.perf_counter()
    elif os.getpid() in began:
        log.write(f"{time.time():.3f} {os.getpid()} {info['generation']} {(time.perf_counter() - began.pop(os.getpid())) * 1000:.2f}\\n")
gc.callbacks.append(note)
if os.environ.get("SEED_BENCH_GC_OFF"):
    gc.disable()
sys.path.insert(0, os.getcwd())
sys.argv = ["run.py", *sys.argv[1:]]
runpy.run_path("run.py", run_name="__main__")
"""


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
        self.hub, self.index, self.kind = hub, index, kind
        self.ws = websocket.create_connection(hub.ws_url, timeout=30, cookie=cookie, header=hub.headers)
        opened = self.ws.recv()
        assert opened.startswith("0{"), opened
        self.event_prefix = f'42{namespace},["'.encode()
        self.buffer = bytearray()
        self.parts: list[bytes] = []
        self.parts_opcode = 0x1
        self.refused = self.closed = False
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
            length, start = buf[1] & 0x7F, 2
            if length >= 126:
                start = 4 if length == 126 else 10
                if len(buf) < start:
                    return
                length = int.from_bytes(buf[2:start], "big")
            if len(buf) < start + length:
                return
            final, opcode, payload = buf[0] & 0x80, buf[0] & 0x0F, bytes(buf[start:start + length])
            del buf[:start + length]
            if opcode == 0x0 or not final:  # a message in parts (control frames never are)
                self.parts.append(payload)
                self.parts_opcode = opcode or self.parts_opcode
                if not final:
                    continue
                opcode, payload, self.parts = self.parts_opcode, b"".join(self.parts), []
            yield opcode, payload

    def message(self, payload: bytes, now: float) -> None:
        if payload == b"2":  # Engine.IO ping
            self.ws.send("3")
        elif payload.startswith(self.event_prefix):
            self.events += 1
            self.ready.set()
            if self.kind == "display" and payload.startswith(b'update"', len(self.event_prefix)):
                self.updates += 1
                self.hub.update_size = len(payload)
                # the changes only (one, or several that reached the screen in one frame), not the snapshot
                for match in CALLED.finditer(payload, 0, payload.find(b'"snapshot"') % (len(payload) + 1)):
                    self.hub.heard((match.group(1) or match.group(2)).decode(), self.index, now)
        elif payload.startswith(b"40") and self.kind == "console":  # nothing comes until the queue changes
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
        self.update_size = 0  # bytes of the last display update (the change and the branch's state)
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
                connection.ws.send_close()
                connection.ws.shutdown()
            except Exception:  # noqa: BLE001  (the server may have gone first)
                pass
        self.selector.close()
        self.wake_read.close()
        self.wake_write.close()


class System(Server):
    """run.py as the history bench starts it, with room for every socket this bench opens."""

    def __init__(self, folder: Path, url: str, connections: int, gc_mode: str = "on"):
        super().__init__(folder, url, free_port())
        self.connections, self.gc_mode = connections, gc_mode

    def __enter__(self):
        env = {**os.environ, "SEED_INSTANCE_PATH": str(self.instance), "DATABASE_URL": self.url,
               "PYTHONUNBUFFERED": "1", "SOCKETS_PER_ADDRESS": "0"}  # every socket comes from this address
        start = ["run.py"]
        if self.gc_mode != "on":
            start = ["-c", GC_WRAPPER]
            env.update(SEED_BENCH_GC_LOG=str(self.instance / "gc.log"), SEED_BENCH_GC_OFF="1" if self.gc_mode == "off" else "")
        self.log = open(self.instance / "server.log", "w")
        self.process = subprocess.Popen([sys.executable, *start, "--port", str(self.port), "--connections",
                                         str(self.connections)], cwd=ROOT, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        return self.answering()


def instance(target: str):
    """A fresh instance folder and database; yields (folder, database URL)."""
    return scratch(target, prefix="seed_sockets_")


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


def in_rhythm(spacing: float, last: list[float]) -> float:
    """Wait until `spacing` seconds after the last request was sent (last[0]); the new start."""
    if spacing:
        time.sleep(max(0.0, last[0] + spacing - time.perf_counter()))
    last[0] = time.perf_counter()
    return last[0]


def cycle(api: requests.Session, base: str, hub: Hub | None, displays: list[int], row: dict, spacing=0.0,
          last=None) -> None:
    """A check-in, its call and its completion, timed; with displays, each one's hearing of the call.
    Spaced (spacing > 0): each request once the screens heard the one before, and `spacing` seconds
    after it was sent, whichever is later."""
    marks = lambda: [hub.connections[i].updates for i in displays]  # noqa: E731
    last = last if last is not None else [0.0]
    before = marks() if spacing and displays else None
    started = in_rhythm(spacing, last)
    api.post(base + "/api/v1/tickets", json={"service": "A", "priority": 1}).raise_for_status()
    row["check-in"].append((time.perf_counter() - started) * 1000)
    if before is not None:
        settled(hub, displays, before)
    started = in_rhythm(spacing, last)
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
    before = marks() if spacing and displays else None
    in_rhythm(spacing, last)
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


def worker_pid(server: Server) -> str:
    return Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()[0]


def cpu_seconds(server: Server) -> tuple[float, float]:
    """CPU time so far of the server's worker and of this bench process (both its threads)."""
    fields = Path(f"/proc/{worker_pid(server)}/stat").read_text().rsplit(")", 1)[1].split()
    mine = resource.getrusage(resource.RUSAGE_SELF)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), mine.ru_utime + mine.ru_stime


def collections(log: Path, worker: str, since: float, until: float) -> str:
    """The worker's garbage collections in a span of time, from --gc log's notes."""
    spent = {0: [], 1: [], 2: []}
    for line in log.read_text().splitlines() if log.exists() else ():
        at, pid, generation, ms = line.split()
        if pid == worker and since <= float(at) <= until:
            spent[int(generation)].append(float(ms))
    full = spent[2]
    return (f"{len(full)} full (gen 2) taking {sum(full):.0f} ms, longest {max(full, default=0):.0f} ms; "
            f"younger ones {sum(spent[0] + spent[1]):.0f} ms in all")


def run_one(count: int, args, available: dict[str, str], status_tickets: int) -> dict[str, dict]:
    """{mode: figures} for N open sockets, on a server of its own."""
    rows = {"back to back": new_row(), "spaced": new_row()}
    with instance(args.db) as (folder, url), System(folder, url, max(4000, count + 500), args.gc) as server:
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
                busy, timed_from, cpu, since = hub.busy, time.perf_counter(), cpu_seconds(server), time.time()
                last = [0.0]
                for _ in range(args.calls):
                    cycle(api, base, hub, displays, row, args.spacing if mode == "spaced" else 0.0, last)
                if args.gc == "log":
                    row["gc"] = collections(folder / "gc.log", worker_pid(server), since, time.time())
                row["client busy"] = (hub.busy - busy) / (time.perf_counter() - timed_from)
                row["cpu"] = [(now - then) * 1000 / args.calls for now, then in zip(cpu_seconds(server), cpu)]
                for kind in ("console", "status"):
                    got = [c.events - before[c.index] for c in hub.connections if c.kind == kind]
                    row[kind] = (min(got), statistics.mean(got)) if got else None
            memory["after"] = server.worker_rss_mb()
            extra["closed by the server"] = hub.closed_early
            extra["update frame"] = f"{hub.update_size / 1024:.1f} KB"
        finally:
            hub.close()
        extra["server tracebacks"] = (folder / "server.log").read_text().count("Traceback")
    for row in rows.values():
        row.update(kinds=kinds, memory=memory, extra=extra)
    return rows


def p99(values) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


def cell(values) -> str:
    return f"{statistics.median(values):.1f} / {p99(values):.1f}" if values else "–"


def report(table: dict[int, dict[str, dict]], args, available: dict[str, str]) -> None:
    print(f"\n{'SQLite' if args.db == 'sqlite' else 'PostgreSQL'}, {args.calls} check-in/call/complete cycles a row, "
          f"p50 / p99 ms; {os.cpu_count()} cores ({platform.processor() or platform.machine()}), Python "
          f"{platform.python_version()}; the bench's client shares the cores with the server.")
    if args.gc != "on":
        print(f"The server ran with --gc {args.gc}: {'its collections timed' if args.gc == 'log' else 'no garbage collector'}.")
    missing = [f"/{kind}" for kind in ("console", "status") if kind not in available]
    if missing:
        print(f"This checkout has no {' or '.join(missing)} namespace: those sockets are displays.")
    print("Back to back: each request as soon as the one before answered (the call's own wait for the screens "
          f"aside).\nSpaced: a request every {args.spacing:g} s (for every N), and not before every screen heard the one "
          "before.\n")
    print("| N sockets (display/console/status) | requests | check-in | call next | call→display | missed | "
          "server RSS MB idle → open → after |\n|---|---|---|---|---|---|---|")
    for count, rows in table.items():
        for mode, row in rows.items():
            kinds, memory = row["kinds"], row["memory"]
            missed = f"{len(row['missed'])} sockets ({row['missed calls']} deliveries)" if count else "–"
            print(f"| {count:,} ({kinds['display']}/{kinds['console']}/{kinds['status']}) | {mode} | "
                  f"{cell(row['check-in'])} | {cell(row['call next'])} | {cell(row['call→display'])} | {missed} | "
                  f"{memory['idle']:.0f} → {memory['open']:.0f} → {memory['after']:.0f} |")
    print("\nWhere the time goes (p50 / p99 ms from sending call-next; CPU per cycle):")
    for count, rows in table.items():
        for mode, row in rows.items():
            notes = [f"CPU server {row['cpu'][0]:.0f} ms, bench {row['cpu'][1]:.0f} ms"]
            notes += [f"server's garbage collections: {row['gc']}"] if row.get("gc") else []
            if count:
                notes += [f"answered {cell(row['call next'])}", f"first display {cell(row['first display'])}",
                          f"last display {cell(row['last display'])}",
                          f"bench's socket thread busy {100 * row['client busy']:.0f}%"]
                notes += [f"{kind} events a socket min {row[kind][0]}, mean {row[kind][1]:.1f}"
                          for kind in ("console", "status") if row.get(kind)]
                notes += [f"{key} {value}" for key, value in row["extra"].items()]
            print(f"  {count:,} {mode}: " + "; ".join(notes))
    print("\nGoals:")
    for count, rows in table.items():
        for mode, row in rows.items():
            base = table.get(0, {}).get(mode)
            for step in ("check-in", "call next") if count and base else ():
                ratio = p99(row[step]) / p99(base[step])
                print(f"  {count:,} open, {mode}: {step} p99 {p99(row[step]):.1f} ms vs {p99(base[step]):.1f} ms with "
                      f"0 open = {ratio:.2f}x (goal <= 1.5x): {'met' if ratio <= 1.5 else 'MISSED'}")
            if count:
                met = p99(row["call→display"]) <= 100 and not row["missed"]
                print(f"  {count:,} open, {mode}: call→display p99 {p99(row['call→display']):.1f} ms, "
                      f"{len(row['missed'])} sockets missed a call (goal <= 100 ms to every socket): "
                      f"{'met' if met else 'MISSED'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", default="0,1000", help="open connections, comma-separated")
    parser.add_argument("--calls", type=int, default=200, help="check-in/call/complete cycles timed per N")
    parser.add_argument("--spacing", type=float, default=0.4,
                        help="spaced: seconds from one request to the next, at least (the same for every N)")
    parser.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL URL to create a database through")
    parser.add_argument("--console-share", type=float, default=0.05, help="share of the sockets that are consoles")
    parser.add_argument("--status-share", type=float, default=0.15, help="share that are customers' status pages")
    parser.add_argument("--gc", choices=["on", "log", "off"], default="on",
                        help="the server's garbage collector: as is, as is and timed, or off (to see what it costs)")
    args = parser.parse_args(argv)
    counts = [int(n.replace("_", "")) for n in args.sockets.split(",")]
    available = namespaces()
    allow_open_files(max(counts) * 2 + 256)
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
