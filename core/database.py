"""Database plumbing: SQLite pragmas, write transactions that cannot interleave, and upgrades."""
from contextlib import contextmanager
from pathlib import Path

from flask import current_app
from sqlalchemy import event

from .extensions import db

MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")
WRITE = {"seed_write": True}


def configure_engine(engine) -> None:
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
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        # A write transaction takes SQLite's write lock before its first read, so two callers
        # never decide on the same snapshot (SQLite has no SELECT ... FOR UPDATE).
        immediate = connection.get_execution_options().get("seed_write")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction():
    """One transaction for one change of state: commit on success, roll back on any error.

    Whatever read transaction the caller had open (a view that loaded the user, say) is
    ended first: the change must decide on fresh data under the write lock.
    """
    session = db.session()  # the scoped session's current Session
    if session.in_transaction():
        session.commit()
    session.connection(execution_options=WRITE)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def upgrade_database(app=None) -> None:
    """Bring the schema to the newest migration; safe to run at every start."""
    from flask_migrate import upgrade

    app = app or current_app
    with app.app_context():
        upgrade(directory=MIGRATIONS)
