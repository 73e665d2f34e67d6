"""Run the whole system on its embedded defaults: `python run.py [--host H] [--port P]`.

Scaled out (PostgreSQL and Redis): `--workers N` web processes (or WEB_CONCURRENCY), and `--role`
picks what a process does: `web` (pages, API, screens), `scheduler` (the periodic jobs; one is
active, the others wait as standbys), `gateway` (the modem of this host), or `all`, the default:
everything in one process, as a branch box runs it.

Also the target of `flask --app run ...` commands (Flask finds create_app here).

Served by gunicorn's gevent worker: a display, console or status page holds its Socket.IO
connection open all day, and under gevent an open connection is a greenlet, not one of a few
dozen threads (with threads, 64 open screens stopped every check-in). Everything in the process
is made cooperative before anything else is imported: sockets, locks, sleeps, the serial port's
select(), PostgreSQL (psycopg 3 waits through gevent by itself), Redis.
"""
if __name__ == "__main__":
    from gevent import monkey

    monkey.patch_all()

import argparse
import gc
import importlib
import os
import resource
import stat
import sys
import time
from pathlib import Path

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from app import create_app  # noqa: F401  (flask --app run finds the factory here)
from core import leader, metrics, wal
from core.config import ConfigError
from core.database import upgrade_database
from core.extensions import db
from core.security import install_log_masking
from core.seed import seed_demo
from messaging.phones import masked

PASSWORD_FILE = "first-admin-password.txt"
ROLES = ("all", "web", "scheduler", "gateway")


class Server(BaseApplication):
    """Gunicorn with gevent workers: production-grade HTTP and WebSocket (Flask-SocketIO's gevent
    mode over simple-websocket). One worker by default; with more, the scheduler and the modem
    gateway still run once (each is elected among the workers, core/leader.py)."""

    def __init__(self, app, options):
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return OffTheHub(self.application)


# Requests that compute for a second or two (a year's report) without waiting on anything.
LONG_READS = ("/reports/", "/api/v1/reports/")


class OffTheHub:
    """Under gevent every request is a greenlet of one thread: Python work that never waits
    holds every other request and screen up until it ends. A report over a year of history
    computes for one to two seconds, so report pages and their JSON run on one of gevent's
    native threads instead, sharing the interpreter with the rest as threads do (their SQL
    runs without the interpreter lock); a check-in or a call is not held up behind them."""

    def __init__(self, app, prefixes=LONG_READS):
        self.app = app
        self.prefixes = prefixes

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith(self.prefixes):
            return self.app(environ, start_response)
        import gevent

        return gevent.get_hub().threadpool.apply(self.app, (environ, start_response))


class PrivateLogger(Logger):
    """gunicorn's access and error logs with phone numbers masked: request lines carry them
    (/staff/inbox/+995..., ?number=...). gunicorn's loggers do not propagate to the root. Both
    write in the process's LOG_FORMAT (core/logs.py); an access line ends with the request's id,
    and in JSON it has the path without the query string (which can carry numbers and tokens)."""

    def setup(self, cfg):
        from core import logs

        super().setup(cfg)
        logs.dress_gunicorn(self.error_log, self.access_log)
        install_log_masking(masked, self.error_log, self.access_log)

    def access(self, resp, req, environ, request_time):
        from core import logs

        if not self.access_log_enabled:
            return
        try:
            if logs.format_in_use() == "json":
                fields = logs.access_fields(environ, resp.status, request_time.total_seconds())
                self.access_log.info("%s %s %s", fields["method"], fields["path"], fields["status"], extra=fields)
            else:  # gunicorn's line as it always was, then the id
                atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
                self.access_log.info(self.cfg.access_log_format + " request_id=%({seed.request_id}e)s", atoms)
        except Exception:  # noqa: BLE001  (a line not written must not fail the request)
            self.error_log.exception("could not write an access log line")


def start_in_worker(app, role="all"):
    """gunicorn hooks. Role `all`: the modem gateway (and its virtual modem) and the scheduler
    live in a worker process, started after the fork; with several workers, in one of them at a
    time (the others are standbys). Role `web`: neither."""
    import hardware.role
    import scheduler
    from display import realtime

    leaders = []

    def post_worker_init(_worker):
        realtime.join_message_queue(app)  # with several processes: before this worker serves anyone
        checkpointer = wal.start(app)  # (SQLite: its log copied back beside the requests, not in one)
        if checkpointer is not None:
            leaders.append(checkpointer)
        if app.config.get("PRINTER"):
            importlib.import_module("hardware.printer")  # (python-escpos: not on the first check-in's time)
        if role == "all":
            leaders.append(hardware.role.elect(app))
            leaders.append(scheduler.elect(app))
        tune_garbage_collection()

    def worker_exit(_server, worker):
        for leading in reversed(leaders):
            leading.stop()
        metrics.worker_gone(worker.pid)

    return {"post_worker_init": post_worker_init, "worker_exit": worker_exit}


def tune_garbage_collection() -> None:
    """With a thousand screens open the heap is large, and CPython's full collections (every few
    seconds at the default thresholds) took 250-390 ms each: every request and every screen
    waited. What exists once the worker is up (the app, its catalogues, the ORM's mappings) is
    moved out of the collector's sight for good, and young collections run less often, so fewer
    short-lived objects (an update's packets, queued per screen) live long enough to be
    promoted and make a full collection due."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def configure_logging() -> None:
    """The root logger as LOG_FORMAT and LOG_LEVEL say (core/logs.py): from the environment at
    first, then from the app's settings (instance/config.py too) once it is made."""
    from core import logs

    logs.configure()


def prepare(app) -> None:
    """Upgrade the schema and, on an empty database, seed the demo branch: one process at a time
    (web processes on several hosts, a scheduler and gateways may start together)."""
    with leader.exclusively(app, "upgrade"):
        upgrade_database(app)
        make_instance_private(Path(app.instance_path))
        with app.app_context():
            password = seed_demo()
            if password:
                announce_first_password(write_first_password(Path(app.instance_path), password), password)
            # No database connection may cross the fork into the worker.
            db.engine.dispose()
    # Nor a greenlet: the rate limiter's expiry timer, started with the app, runs now rather
    # than in the worker as a copy (under gevent a "thread" is a greenlet and runs only when
    # this process waits).
    time.sleep(0.05)


def make_instance_private(instance: Path) -> None:
    """instance/ 0700, its files 0600: the database, the secret key and the password file hold
    what no other account on the machine may read. The umask covers what is created later;
    this fixes what an older version, or a command run without it, left readable."""
    if not instance.is_dir():
        return
    for folder, _dirs, files in os.walk(instance):
        os.chmod(folder, 0o700)
        for name in files:
            path = Path(folder, name)
            if stat.S_ISREG(path.lstat().st_mode):  # never through a link (the modem's pty)
                os.chmod(path, 0o600)


def write_first_password(instance: Path, password: str) -> Path:
    path = instance / PASSWORD_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(password + "\n")
    return path


def announce_first_password(path: Path, password: str, out=None) -> None:
    """Only the path goes to stdout, which is often a log file; the password itself only to a
    person at a terminal."""
    out = out or sys.stdout
    shown = f"  Password: {password}\n" if out.isatty() else ""
    out.write(
        "\n  Seeded a demo branch: services A (General) and B (Appointments), counters 1-3.\n"
        f"  Admin login: admin, password in {path}\n{shown}"
        "  Change it: flask --app run user set-password admin\n\n"
    )
    out.flush()


def allow_open_files(wanted: int) -> None:
    """Raise this process's open-file limit towards `wanted` (as far as the hard limit allows):
    the usual soft limit of 1024 would refuse the 1,000th screen."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def default_workers() -> int:
    return int(os.environ.get("WEB_CONCURRENCY") or 1)  # (gunicorn itself refuses one that is not a number)


def check_workers(app, workers: int, forced: bool) -> list[str]:
    """Refuse (ConfigError) a number of web workers the installation cannot serve as one; the
    warnings for what it can serve, but less well."""
    if workers < 1:
        raise ConfigError(f"--workers is {workers}: 1 or more.")
    if workers == 1:
        return []
    problems = []
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        problems.append("SQLite lets one process write at a time: the workers would wait for each other's check-ins "
                        "and calls. Use PostgreSQL (DATABASE_URL)")
    if not app.config["SOCKETIO_MESSAGE_QUEUE"]:
        problems.append("the workers would not share the displays, consoles and status pages: a screen connected to "
                        "one worker would miss what happens in the others. Set REDIS_URL (or SOCKETIO_MESSAGE_QUEUE)")
    if problems and not forced:
        raise ConfigError(f"--workers {workers} refused: " + "; and ".join(problems)
                          + ". Or run one worker (the default), or add --force-workers to run them anyway.")
    warnings = [f"  Warning: --force-workers: {problem}." for problem in problems]
    if str(app.config["RATELIMIT_STORAGE_URI"]).startswith("memory://"):
        warnings.append("  Warning: the kiosk's rate limits are counted per worker (RATELIMIT_STORAGE_URI is memory://); "
                        "set REDIS_URL to share them.")
    return warnings


def serve_role(app, role: str) -> int:
    """A process without a web server: the scheduler or this host's modem gateway."""
    if role == "scheduler":
        from scheduler.cli import serve
    else:
        from hardware.cli import serve
    with leader.exclusively(app, "upgrade"):
        upgrade_database(app)
    configure_logging()  # again: the migrations' alembic.ini replaced the root handler and level
    serve(app, echo=lambda line: print(f"  {line}", flush=True), upgrade=False)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run Seed: web app, displays and console on one port.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default 5000)")
    parser.add_argument("--connections", type=int, default=4000,
                        help="open connections at most per worker: requests, displays, consoles and status pages "
                             "(default 4000)")
    parser.add_argument("--workers", type=int, default=None,
                        help="web processes (default: WEB_CONCURRENCY, else 1); more than 1 needs PostgreSQL and Redis")
    parser.add_argument("--force-workers", action="store_true",
                        help="run --workers N even without PostgreSQL or a message queue")
    parser.add_argument("--role", choices=ROLES, default="all",
                        help="what this process does: all (default: everything, one branch box), web, scheduler "
                             "(one active, others stand by) or gateway (this host's modem)")
    args = parser.parse_args(argv)
    os.umask(0o077)  # before anything is created: the database, its -wal/-shm, the modem's folder
    configure_logging()
    workers = default_workers() if args.workers is None else args.workers
    allow_open_files(args.connections + 100)  # a connection is a file; the database, logs and modem too

    app = create_app({"SOCKETIO_ASYNC_MODE": "gevent"})
    if args.role in ("scheduler", "gateway"):
        return serve_role(app, args.role)
    warnings = check_workers(app, workers, args.force_workers)
    metrics.share_between_workers(workers)  # before the fork: every worker's counts in one folder, added up
    prepare(app)
    configure_logging()  # again: the migrations' alembic.ini replaced the root handler and level
    for warning in warnings:
        print(warning, flush=True)
    print(f"  Seed is running: http://{args.host}:{args.port}/  (staff console: /staff/, health: /api/v1/health)"
          + (f"  [{workers} web workers]" if workers > 1 else "") + ("" if args.role == "all" else f"  [role {args.role}]"),
          flush=True)
    if args.role == "all" and not app.config["MODEM_PORT"]:
        print(f"  No modem configured: texts go to the virtual modem; see them at http://{args.host}:{args.port}/virtual-phone"
              + (" (served by the one worker that runs the gateway: with several, a reload may land elsewhere)" if workers > 1 else ""),
              flush=True)
    Server(
        app,
        {
            "bind": f"{args.host}:{args.port}",
            "workers": workers,
            "worker_class": "gevent",
            "worker_connections": args.connections,
            "timeout": 60,
            "graceful_timeout": 10,
            "accesslog": "-",
            "errorlog": "-",
            "logger_class": PrivateLogger,
            # A per-user control socket would collide between two instances on one machine.
            "control_socket_disable": True,
            **start_in_worker(app, args.role),
        },
    ).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
