"""One active holder of a role at a time, across processes and hosts: the scheduler, and each
modem's gateway. Every candidate process tries a lock; the one that holds it does the work, the
others wait as hot standbys and take over when the holder dies.

Three locks, chosen by LEADER_LOCK ("auto": the database's own):
- PostgreSQL: a session-level advisory lock on a connection of its own. The server frees it the
  moment the holder's connection closes (a killed process) and, for a host that vanished, once
  TCP keepalives give up on it (within about LEADER_LEASE_SECONDS).
- Redis ("redis", on REDIS_URL): a key with an expiry, renewed by the holder.
- SQLite: a lock file in instance/ (flock): every process of a SQLite installation is on the one
  host that holds the database file; the kernel frees it when the holder dies.

Who holds a lock is observable from any process (`holder()`): the advisory lock's connection
names its process in pg_stat_activity.application_name, the Redis key's value names it, and the
lock file holds its name while locked.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text

from .extensions import db

log = logging.getLogger(__name__)
ADVISORY_SPACE = 0x5EED  # the first key of PostgreSQL's two-key advisory locks: ours, not another program's


def identity(role: str) -> str:
    """This process, as a lock's holder is shown: role, host and pid."""
    return f"seed-{role} {socket.gethostname()[:20]}:{os.getpid()}"


def _stamp(name: str) -> str:
    return f"{name} @{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ}"


def advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "big") & 0x7FFFFFFF


class PostgresLock:
    """pg_try_advisory_lock on a dedicated connection (never the pool's: a pooled connection goes
    back to the pool and its session, with the lock, lives on in someone else's hands)."""

    def __init__(self, url, name: str, holder_name: str, lease_seconds: float):
        self.url, self.name, self.holder_name = url, name, holder_name
        self.key = advisory_key(name)
        self.lease_seconds = lease_seconds
        self.connection = None

    def _connect(self):
        import psycopg

        idle = max(1, int(self.lease_seconds / 3))
        interval = max(1, int(self.lease_seconds / 6))
        # Keepalives on both ends: the server frees the lock of a holder whose host vanished, and the
        # holder learns it lost the connection (and so the lock) instead of waiting on it for hours.
        options = (f"-c tcp_keepalives_idle={idle} -c tcp_keepalives_interval={interval} "
                   "-c tcp_keepalives_count=3")
        url = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return psycopg.connect(url, autocommit=True, connect_timeout=max(2, int(self.lease_seconds)),
                               application_name=self.holder_name[:63], keepalives=1, keepalives_idle=idle,
                               keepalives_interval=interval, keepalives_count=3, options=options)

    def acquire(self) -> bool:
        if self.connection is None or self.connection.closed:
            self.connection = self._connect()
        got = self.connection.execute("SELECT pg_try_advisory_lock(%s, %s)", (ADVISORY_SPACE, self.key)).fetchone()[0]
        if got:  # the name others read: who holds it, and since when
            self.connection.execute("SELECT set_config('application_name', %s, false)",
                                    (_stamp(self.holder_name)[:63],))
        return bool(got)

    def held(self) -> bool:
        try:
            self.connection.execute("SELECT 1")
            return True
        except Exception:  # noqa: BLE001  (the session, and with it the lock, is gone)
            self._close()
            return False

    def release(self) -> None:
        if self.connection is not None and not self.connection.closed:
            try:
                self.connection.execute("SELECT pg_advisory_unlock(%s, %s)", (ADVISORY_SPACE, self.key))
            except Exception:  # noqa: BLE001  (closing the session frees it anyway)
                pass
        self._close()

    def _close(self):
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001
                pass

    @staticmethod
    def holder(name: str) -> str | None:
        """Read with the app's own connection: the name of the session holding the lock."""
        return db.session.execute(text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :space AND l.objid = :key "
            "AND l.objsubid = 2 LIMIT 1"), {"space": ADVISORY_SPACE, "key": advisory_key(name)}).scalar()


class RedisLock:
    """SET key NX PX lease; the holder renews it, and only it may renew or delete it."""

    RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
             "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end")
    DELETE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

    def __init__(self, url: str, key: str, holder_name: str, lease_seconds: float):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=max(1.0, lease_seconds / 3),
                                           socket_connect_timeout=max(1.0, lease_seconds / 3))
        self.key, self.holder_name = key, holder_name
        self.lease_ms = int(lease_seconds * 1000)
        self.value = None

    def acquire(self) -> bool:
        value = _stamp(self.holder_name)
        if self.client.set(self.key, value, nx=True, px=self.lease_ms):
            self.value = value
            return True
        return False

    def held(self) -> bool:
        try:
            return bool(self.client.eval(self.RENEW, 1, self.key, self.value, self.lease_ms))
        except Exception:  # noqa: BLE001  (Redis unreachable: the key may expire under us; step down)
            log.exception("leader lock %s: Redis unreachable", self.key)
            return False

    def release(self) -> None:
        try:
            if self.value is not None:
                self.client.eval(self.DELETE, 1, self.key, self.value)
        except Exception:  # noqa: BLE001  (it expires by itself)
            pass
        self.value = None

    @staticmethod
    def holder(url: str, key: str) -> str | None:
        import redis

        found = redis.Redis.from_url(url, socket_timeout=2).get(key)
        return found.decode() if found else None


class FileLock:
    """flock on instance/locks/<name>.lock; the file holds the holder's name while locked."""

    def __init__(self, path: Path, holder_name: str):
        self.path, self.holder_name = path, holder_name
        self.handle = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(_stamp(self.holder_name) + "\n")
        handle.flush()
        self.handle = handle
        return True

    def held(self) -> bool:
        return self.handle is not None

    def release(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            handle.seek(0)
            handle.truncate()
            handle.close()  # closing the file gives the lock back

    @staticmethod
    def holder(path: Path) -> str | None:
        if not path.exists():
            return None
        with open(path) as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:  # someone holds it: it wrote its name
                return handle.read().strip() or "?"
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return None  # a name left by a holder that died is not a holder


def kind(app) -> str:
    chosen = app.config["LEADER_LOCK"]
    if chosen == "auto":
        with app.app_context():
            dialect = db.engine.dialect.name
        return "postgresql" if dialect == "postgresql" else "file"
    return chosen


def _lock_path(app, name: str) -> Path:
    return Path(app.instance_path) / "locks" / f"{name.replace(':', '-').replace('/', '-')}.lock"


def _redis_key(app, name: str) -> str:
    return f"{app.config['SOCKETIO_CHANNEL']}:leader:{name}"


def lock_for(app, name: str, role: str | None = None, chosen: str | None = None):
    """The lock named `name` (e.g. "scheduler") of the kind LEADER_LOCK chooses."""
    holder_name = identity(role or name.split(":")[0])
    chosen = chosen or kind(app)
    lease = float(app.config["LEADER_LEASE_SECONDS"])
    if chosen == "postgresql":
        with app.app_context():
            url = db.engine.url
        return PostgresLock(url, name, holder_name, lease)
    if chosen == "redis":
        if not app.config["REDIS_URL"]:
            from .config import ConfigError

            raise ConfigError("LEADER_LOCK is 'redis' but REDIS_URL is not set.")
        return RedisLock(app.config["REDIS_URL"], _redis_key(app, name), holder_name, lease)
    if chosen == "file":
        return FileLock(_lock_path(app, name), holder_name)
    from .config import ConfigError

    raise ConfigError(f"LEADER_LOCK is {chosen!r}: use auto, postgresql, redis or file.")


def holder(app, name: str) -> str | None:
    """Who holds the lock `name` now ("seed-scheduler host:pid @since"), or None. Needs an app
    context on PostgreSQL (it asks with the app's connection)."""
    chosen = kind(app)
    if chosen == "postgresql":
        return PostgresLock.holder(name)
    if chosen == "redis":
        return RedisLock.holder(app.config["REDIS_URL"], _redis_key(app, name))
    return FileLock.holder(_lock_path(app, name))


class Leader:
    """Run `on_elected()` while this process holds `lock`, and `on_deposed()` when it stops holding
    it. A standby tries every `retry_seconds`; the holder checks (and renews) its lock as often."""

    def __init__(self, lock, name: str, on_elected, on_deposed, retry_seconds: float):
        self.lock, self.name = lock, name
        self.on_elected, self.on_deposed = on_elected, on_deposed
        self.retry_seconds = float(retry_seconds)
        self.leading = False
        self.stopping = threading.Event()
        self.thread = None

    def start(self) -> Leader:
        """The first try happens now, so a process that is alone starts its work at once, before
        it serves anything; the thread keeps trying or keeps watch."""
        self._turn(first=True)
        self.thread = threading.Thread(target=self._run, name=f"leader:{self.name}", daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stopping.wait(self.retry_seconds):
            self._turn()

    def _turn(self, first=False) -> None:
        try:
            if not self.leading:
                if self.lock.acquire():
                    (log.info if first else log.warning)("%s: this process is now the active one%s", self.name,
                                                         "" if first else " (took over)")
                    try:
                        self.on_elected()
                    except Exception:  # noqa: BLE001  (it could not start: let another process try)
                        log.exception("%s: could not start; giving the lock back", self.name)
                        self.lock.release()
                        return
                    self.leading = True
                elif first:
                    log.info("%s: another process is active; this one waits as a standby", self.name)
            elif not self.lock.held():
                self.leading = False
                log.error("%s: lost the lock; stopping and waiting as a standby", self.name)
                self.on_deposed()
        except Exception:  # noqa: BLE001  (the database or Redis away: try again next turn)
            log.exception("%s: could not check the leader lock", self.name)

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(max(self.retry_seconds, 1) + 5)
        if self.leading:
            self.leading = False
            try:
                self.on_deposed()
            finally:
                self.lock.release()
        else:
            self.lock.release()


def elect(app, name: str, on_elected, on_deposed, role: str | None = None) -> Leader:
    return Leader(lock_for(app, name, role), name, on_elected, on_deposed, app.config["LEADER_RETRY_SECONDS"]).start()


@contextmanager
def exclusively(app, name: str, wait_seconds: float = 900):
    """Hold the lock `name` while the block runs, waiting for it first: processes started together
    (web, scheduler, gateways) upgrade the schema one after another, never at once. Always the
    database's own lock: an upgrade may outlast a Redis lease."""
    with app.app_context():
        chosen = "postgresql" if db.engine.dialect.name == "postgresql" else "file"
    lock = lock_for(app, name, "upgrade", chosen)
    deadline = time.monotonic() + wait_seconds
    while not lock.acquire():
        if time.monotonic() > deadline:
            from .config import ConfigError

            raise ConfigError(f"waited {wait_seconds:.0f} s for the {name} lock; another process holds it.")
        time.sleep(0.2)
    try:
        yield
    finally:
        lock.release()
