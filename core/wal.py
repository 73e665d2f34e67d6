"""SQLite's write-ahead log copied back into the database beside the requests, not inside one.

By itself SQLite checkpoints inside whichever commit takes the log past 1,000 pages (4 MB): about
once every hundred check-ins one of them waited 19-23 ms more, where a commit takes 0.35 ms
(2026-12-01, the 2-core machine), and under gevent (run.py) the whole worker waited with it,
every request and every screen. A server started on a log left big by a bulk write (a restore,
the bench's history) checkpointed it in its first write, for seconds.

In the server a checkpointer does it instead: every CHECKPOINT_SECONDS, and once at its start,
on one of gevent's native threads, over a connection of its own. The sqlite3 module lets go of
the interpreter lock while SQLite copies, so the requests go on meanwhile, on the other core.
A passive checkpoint takes no lock a writer needs. The server's own connections never
checkpoint (wal_autocheckpoint=0): with a fallback of 10,000 pages, a server started on a log of
460,000 pages (the bench's history build) had a commit check that log through, 3 s on the hub,
between two of the checkpointer's turns (each 3-4 s on its thread, until the log restarted).
The checkpointer's loop outlives any error of a turn (logged, tried again a turn later); it ends
only with the worker.
"""
from __future__ import annotations

import logging
import sqlite3

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 1.0
SERVER_PAGES = 0  # the server's connections' wal_autocheckpoint: never, the checkpointer does it
ENGINE_PAGES = "seed_wal_autocheckpoint"  # (engine attribute) the pages each new connection is given

current: "Checkpointer | None" = None  # this process's, once started (start())


class Checkpointer:
    """Checkpoints the SQLite database at `path` every `every` seconds from a greenlet, the work
    itself on gevent's thread pool (a native thread). `checkpoints` counts the runs that copied
    something; `last` is SQLite's answer to the latest: (busy, pages in the log, pages copied)."""

    def __init__(self, path: str, every: float = CHECKPOINT_SECONDS):
        self.path, self.every = path, every
        self.checkpoints, self.last = 0, None
        self._connection = None
        self._loop = None

    def start(self, engine=None) -> "Checkpointer":
        """Begin; `engine`'s connections (made from now on: the pool is emptied) leave the log
        to this checkpointer."""
        import gevent

        if engine is not None:
            leave_the_log(engine)
        self._loop = gevent.spawn(self._run)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.kill()
            self._loop = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def checkpoint(self):
        """One checkpoint, off the hub: the calling greenlet waits, the others run."""
        import gevent

        return gevent.get_hub().threadpool.apply(self.checkpoint_here)

    def _run(self) -> None:
        import gevent

        while True:
            try:
                self.checkpoint()
            except Exception:  # noqa: BLE001  (a locked or vanished file now: the next turn tries again)
                log.exception("the database's log could not be checkpointed; trying again in %s s", self.every)
                self._reconnect()
            gevent.sleep(self.every)

    def checkpoint_here(self):
        """One checkpoint on the calling thread (the server's loop runs it on a native thread,
        one at a time: the loop waits for each)."""
        if self._connection is None:
            self._connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        busy, pages, copied = self.last = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if copied > 0:
            self.checkpoints += 1
        return busy, pages, copied

    def _reconnect(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except sqlite3.Error:
                pass
            self._connection = None


def leave_the_log(engine) -> None:
    """`engine`'s connections, made from now on (its pool is emptied), never checkpoint: a
    checkpointer does."""
    setattr(engine, ENGINE_PAGES, SERVER_PAGES)
    engine.dispose()


def start(app) -> Checkpointer | None:
    """The checkpointer of this server process, when its database is an SQLite file (None else)."""
    from .extensions import db

    with app.app_context():
        engine = db.engine
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:" or path.startswith("file:"):
        return None
    global current
    current = Checkpointer(path).start(engine)
    return current
