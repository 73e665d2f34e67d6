import logging
from contextlib import contextmanager
import os
import shutil
import sqlite3
import uuid

import pytest
from flask import g
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from core.clock import ManualClock
from core.database import upgrade_database
from core.extensions import db

from . import column_lengths, number_watch
from .constants import START
from .helpers import make_branch_setup

POSTGRES_URL = os.environ.get("SEED_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


column_lengths.install()
logging.getLogger().setLevel(logging.INFO)  # the app's info lines are what a branch's log holds
NUMBER_WATCH = number_watch.install()


LEAKS_FROM_WORKERS: list[str] = []


def pytest_sessionfinish(session, exitstatus):
    """No phone number in any log line written during the whole suite (issue 11, item 10). Under
    pytest-xdist each worker hands its lines to the controller, which reports them all."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker
        workeroutput["number_leaks"] = list(NUMBER_WATCH.leaks[:10])
        workeroutput["number_leak_count"] = len(NUMBER_WATCH.leaks)
        return
    leaks = [*NUMBER_WATCH.leaks, *LEAKS_FROM_WORKERS]
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"{len(leaks)} log line(s) hold an unmasked phone number, e.g.:", red=True)
            for line in leaks[:10]:
                reporter.write_line(f"  {line}", red=True)
        session.exitstatus = 1


def pytest_testnodedown(node, error):
    """(pytest-xdist, in the controller) a worker's leaked lines, for pytest_sessionfinish."""
    output = getattr(node, "workeroutput", {}) or {}
    LEAKS_FROM_WORKERS.extend(output.get("number_leaks", []))


@pytest.fixture
def clock():
    return ManualClock(START)


def build_app(database_url, clock, tmp_path, **extra):
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "tests-only",
        "CLOCK": clock,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "MODEM_RATE_PER_MINUTE": 0,  # the virtual modem answers at once; tests of the rate set it
        "INSTANCE_PATH": str(tmp_path / "instance"),
        **extra,
    }
    return create_app(config)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory):
    """A SQLite database the migrations built, once per run: each `app` starts from a copy of it
    (running the migrations costs 1-2 s, for each of a thousand tests)."""
    folder = tmp_path_factory.mktemp("migrated")
    path = folder / "seed.db"
    app = build_app(f"sqlite:///{path}", ManualClock(START), folder)
    upgrade_database(app)
    with app.app_context():
        db.engine.dispose()
    with sqlite3.connect(path) as connection:  # everything in the one file, nothing left in a -wal
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def app(tmp_path, clock, migrated_sqlite):
    shutil.copyfile(migrated_sqlite, tmp_path / "seed.db")  # the schema the migrations build, as in production
    app = build_app(f"sqlite:///{tmp_path / 'seed.db'}", clock, tmp_path)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


class RequestIsolatedClient(FlaskClient):
    """The fixtures hold one app context open for the whole test, and Flask reuses it for every
    request, so `g` (where Flask-Login keeps the logged-in user) would leak from one request to
    the next. Real requests never share it: forget it before each one."""

    def open(self, *args, **kwargs):
        g.pop("_login_user", None)
        g.pop("csrf_token", None)  # Flask-WTF keeps the token in g too
        return super().open(*args, **kwargs)


@pytest.fixture
def vm(tmp_path):
    """The virtual modem on a real pty, answering at once."""
    from hardware.virtual_modem import VirtualModem

    with VirtualModem(tmp_path / "ttyVM0", latency=0) as modem:
        yield modem


@pytest.fixture
def client(app):
    app.test_client_class = RequestIsolatedClient
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def setup(app):
    """(branch, [service A, service B], [counter 1, counter 2], staff alice)"""
    return make_branch_setup()


@contextmanager
def new_postgres_database(prefix: str = "seed_test"):
    """A PostgreSQL database of its own (its URL), dropped afterwards: for a run, or for a real
    server whose migrations build it from nothing. Never skipped: the promises must hold on
    PostgreSQL too (set SEED_TEST_POSTGRES to point elsewhere)."""
    admin_url = make_url(POSTGRES_URL)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # a clear failure, never a silent skip
        pytest.fail(f"PostgreSQL at {admin_url.render_as_string(hide_password=True)} is needed: {error}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    with new_postgres_database() as url:
        yield url


def database_url(request, tmp_path) -> str:
    """For a fixture parametrised over "sqlite" and "postgresql": the database of this run."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'seed.db'}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_app(request, tmp_path, clock):
    """The app on a file SQLite database and on PostgreSQL: for promises both must keep."""
    app = build_app(database_url(request, tmp_path), clock, tmp_path)
    with app.app_context():
        db.drop_all()
        db.create_all()
        yield app
        db.session.remove()
        db.drop_all()
        db.engine.dispose()
