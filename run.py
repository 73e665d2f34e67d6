"""Run the whole system on its embedded defaults: `python run.py [--host H] [--port P]`.

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
import logging
import os
import resource
import stat
import sys
import time
from pathlib import Path

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from app import create_app  # noqa: F401  (flask --app run finds the factory here)
from core.database import upgrade_database
from core.extensions import db
from core.security import install_log_masking
from core.seed import seed_demo
from messaging.phones import masked

PASSWORD_FILE = "first-admin-password.txt"


class Server(BaseApplication):
    """Gunicorn with one gevent worker: production-grade HTTP and WebSocket (Flask-SocketIO's
    gevent mode over simple-websocket), one process so the in-process scheduler and modem
    gateway exist once."""

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
    (/staff/inbox/+995..., ?number=...). gunicorn's loggers do not propagate to the root."""

    def setup(self, cfg):
        super().setup(cfg)
        install_log_masking(masked, self.error_log, self.access_log)


def start_in_worker(app):
    """gunicorn hooks: the modem gateway (and its virtual modem) and the scheduler live in the
    one worker process, started after the fork."""
    import hardware
    import scheduler

    def post_worker_init(_worker):
        hardware.start(app)
        scheduler.start(app)
        tune_garbage_collection()

    def worker_exit(_server, _worker):
        scheduler.stop(app)
        hardware.stop(app)

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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # two lines per job run; our jobs log what they do
    install_log_masking(masked)


def prepare(app) -> None:
    """Upgrade the schema and, on an empty database, seed the demo branch."""
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run Seed: web app, displays and console on one port.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default 5000)")
    parser.add_argument("--connections", type=int, default=4000,
                        help="open connections at most: requests, displays, consoles and status pages (default 4000)")
    args = parser.parse_args(argv)
    os.umask(0o077)  # before anything is created: the database, its -wal/-shm, the modem's folder
    configure_logging()
    allow_open_files(args.connections + 100)  # a connection is a file; the database, logs and modem too

    app = create_app({"SOCKETIO_ASYNC_MODE": "gevent"})
    prepare(app)
    configure_logging()  # again: the migrations' alembic.ini replaced the root handler and level
    print(f"  Seed is running: http://{args.host}:{args.port}/  (staff console: /staff/, health: /api/v1/health)", flush=True)
    if not app.config["MODEM_PORT"]:
        print(f"  No modem configured: texts go to the virtual modem; see them at http://{args.host}:{args.port}/virtual-phone", flush=True)
    Server(
        app,
        {
            "bind": f"{args.host}:{args.port}",
            "workers": 1,
            "worker_class": "gevent",
            "worker_connections": args.connections,
            "timeout": 60,
            "graceful_timeout": 10,
            "accesslog": "-",
            "errorlog": "-",
            "logger_class": PrivateLogger,
            # A per-user control socket would collide between two instances on one machine.
            "control_socket_disable": True,
            **start_in_worker(app),
        },
    ).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
