"""Database plumbing: SQLite pragmas, write transactions that cannot interleave, and upgrades."""
import threading
from contextlib import contextmanager
from pathlib import Path

from flask import current_app
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from . import wal
from .extensions import db

MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")
WRITE = {"seed_write": True}
HOLDS_WRITE_LOCK = "seed_holds_write_lock"
WRITE_LOCK_SECONDS = 30  # as long as SQLite's own busy timeout


WROTE = "seed_wrote"  # (connection.info) the connection's transaction has written (PostgreSQL)
CHANGES_AT_BEGIN = "seed_changes_at_begin"  # (connection.info) SQLite's count of changed rows when it began


def configure_engine(engine) -> None:
    if engine.dialect.name == "postgresql":
        _note_writes(engine)
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        # Take transaction control from pysqlite so "begin" below decides how each one starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        pages = getattr(engine, wal.ENGINE_PAGES, None)
        if pages is not None:  # a checkpointer copies the log back (the server: core/wal.py)
            cursor.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")
        cursor.close()

    # The writers of this process queue here, in Python, before they ask SQLite for its write
    # lock. SQLite's own wait is a sleep inside the driver: under gevent (run.py) it would stop
    # every greenlet, the writer it waits for included, and with threads it polls with growing
    # sleeps where a lock hands over at once. Other processes still meet SQLite's busy timeout.
    writers = threading.Lock()  # created after run.py's monkey-patching: a gevent lock there

    def release(info) -> None:
        if info.pop(HOLDS_WRITE_LOCK, False):
            writers.release()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        # A write transaction takes SQLite's write lock before its first read, so two callers
        # never decide on the same snapshot (SQLite has no SELECT ... FOR UPDATE).
        if not connection.get_execution_options().get("seed_write"):
            connection.exec_driver_sql("BEGIN")
            connection.info[CHANGES_AT_BEGIN] = connection.connection.driver_connection.total_changes
            return
        if not writers.acquire(timeout=WRITE_LOCK_SECONDS):
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked (waited for this process's writers)"))
        connection.info[HOLDS_WRITE_LOCK] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            connection.info[CHANGES_AT_BEGIN] = connection.connection.driver_connection.total_changes
        except BaseException:
            release(connection.info)
            raise

    # The transaction's end gives the lock back; the pool's events are the safety net for a
    # connection returned, reset or dropped without one.
    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _end(connection):
        release(connection.info)

    @event.listens_for(engine, "reset")
    def _reset(_dbapi_connection, record, _state):
        release(record.info)

    @event.listens_for(engine, "checkin")
    @event.listens_for(engine, "close")
    def _returned(_dbapi_connection, record):
        if record is not None:
            release(record.info)

    @event.listens_for(engine, "invalidate")
    def _invalidated(_dbapi_connection, record, _exception):
        release(record.info)


def conflict_insert(dialect: str):
    """The dialect's insert() that takes ON CONFLICT (both databases Seed runs on have one)."""
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise RuntimeError(f"Seed needs SQLite or PostgreSQL, not {dialect}")
    return insert


def _note_writes(engine) -> None:
    """Mark a connection whose transaction has sent anything but a SELECT (an INSERT, UPDATE or
    DELETE, a savepoint, a lock), until its transaction ends: see _reads_only()."""

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(connection, _cursor, statement, _parameters, _context, _many):
        if not statement.lstrip()[:6].upper() == "SELECT":
            connection.info[WROTE] = True

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _ended(connection):
        connection.info.pop(WROTE, None)


def _reads_only(session) -> bool:
    """The session's open transaction has only read, and can go on as the write transaction. On
    PostgreSQL, any: at READ COMMITTED (PostgreSQL's, and ours) every statement reads what is
    committed when it starts, so ending the reads and beginning anew (a COMMIT and a BEGIN, two
    round trips in every request that reads, then writes) would decide on nothing fresher; no
    lock is taken by a read. On SQLite, whose writer must begin with its write lock, one begun
    with it (begin_writing): what it read, nobody else could have changed since."""
    if session.new or session.dirty or session.deleted:
        return False
    connection = session.connection()
    if session.get_bind().dialect.name == "postgresql":
        return not connection.info.get(WROTE)
    return connection.info.get(HOLDS_WRITE_LOCK, False) and not _sqlite_wrote(connection)


def _sqlite_wrote(connection) -> bool:
    """The SQLite connection's transaction has changed rows (SQLite counts them; a listener on
    every statement, as PostgreSQL's, cost each statement more than this)."""
    return connection.connection.driver_connection.total_changes != connection.info.get(CHANGES_AT_BEGIN)


def begin_writing() -> None:
    """For a request that reads what it will decide on, then changes (a check-in): on SQLite, it
    reads under the write lock it then writes with, in one transaction (write_transaction goes
    on with it): with nothing open before, a COMMIT and a BEGIN fewer. A transaction that has only
    read (a registered kiosk's token) is ended first, what it loaded kept; one that wrote is left
    to write_transaction. On PostgreSQL, nothing to do (see _reads_only)."""
    session = db.session()
    if session.get_bind().dialect.name != "sqlite":
        return
    if session.in_transaction():
        connection = session.connection()
        if connection.info.get(HOLDS_WRITE_LOCK) or session.new or session.dirty or session.deleted \
                or _sqlite_wrote(connection):
            return
        keep = session.expire_on_commit
        session.expire_on_commit = False
        try:
            session.commit()
        finally:
            session.expire_on_commit = keep
    session.connection(execution_options=WRITE)


@contextmanager
def write_transaction(keep_loaded=False, refresh=True):
    """One transaction for one change of state: commit on success, roll back on any error.

    Whatever read transaction the caller had open (a view that loaded the user, say) is
    ended first, and what it loaded expired: the change must decide on fresh data under the
    write lock.
    `keep_loaded`: what the session holds stays loaded after the commit, as the transaction left
    it, for a caller that goes on to read what it just wrote (expired, each object would cost a
    query again: on the one thread that serves every request under gevent).
    `refresh=False`: what the caller loaded before is not expired either (a transaction that
    only adds rows, deciding nothing on what was loaded).
    """
    session = db.session()  # the scoped session's current Session
    keep = session.expire_on_commit
    try:
        if session.in_transaction() and _reads_only(session):
            if keep and refresh:
                session.expire_all()  # as the commit would have: decide on what is committed now
        else:
            if session.in_transaction():
                session.expire_on_commit = keep and refresh
                session.commit()
            session.connection(execution_options=WRITE)
        session.expire_on_commit = keep and not keep_loaded
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
    finally:
        session.expire_on_commit = keep


def upgrade_database(app=None) -> None:
    """Bring the schema to the newest migration; safe to run at every start. A database that a
    newer version of Seed upgraded is refused, untouched (ConfigError)."""
    from flask_migrate import upgrade

    app = app or current_app
    with app.app_context():
        refuse_newer_database()
        upgrade(directory=MIGRATIONS)


def refuse_newer_database() -> None:
    """Stop with a clear message when the database is at a migration this code does not have:
    an older Seed would otherwise run on a schema it does not know (or fail deep in alembic)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from .config import ConfigError

    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    known = ScriptDirectory(MIGRATIONS)
    for revision in current:
        try:
            found = known.get_revision(revision)
        except CommandError:
            found = None
        if found is None:
            head = known.get_current_head()
            raise ConfigError(
                f"the database is at migration {revision}, which this version of Seed does not have "
                f"(its newest is {head}): a newer version of Seed upgraded it. Run that version, or "
                "restore a backup taken before the upgrade. Nothing was changed.")
