"""`flask --app run backup` and `restore` (core/backups.py), and the nightly backup job.

What "consistent" means here, for a backup taken while kiosks check in and counters call:
- SQLite's integrity check says ok and no foreign key dangles;
- every service's numbers of a day are exactly 1..last_number of its ticket_sequence row: a
  ticket never without its number's bump, nor a bump without its ticket;
- every ticket's events form one chain (issued first; each event starts from the status the one
  before ended in) that ends in the ticket's status, and no event lacks its ticket;
- no counter holds two tickets at once.
A restore is "equal as of the backup's moment" when every table of the restored database holds
exactly the backup's rows (SQLite: the backup file; PostgreSQL: the rows of pg_dump's snapshot, as
pg_restore reads them out of the dump) and its events are the live ones (events never change).
"""
import re
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from core import backups, engine
from core.clock import ManualClock
from core.database import MIGRATIONS, upgrade_database
from core.extensions import db
from scheduler import jobs

from .conftest import POSTGRES_URL, build_app
from .constants import START
from .helpers import make_branch_setup

KIOSKS, COUNTERS = 2, 3


@pytest.fixture
def fresh_postgres():
    """An empty PostgreSQL database of this test's own, named after the configured one, dropped after."""
    yield from _postgres_database()


@pytest.fixture
def other_postgres():
    """A second one, for a restore target."""
    yield from _postgres_database()


def _postgres_database(template=None):
    admin_url = make_url(POSTGRES_URL)
    name = f"{admin_url.database}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# Migrating a new database costs a second or two: each engine's is migrated once here and copied.
@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory):
    folder = tmp_path_factory.mktemp("migrated")
    _migrate(f"sqlite:///{folder / 'seed.db'}", folder)
    return folder / "seed.db"


@pytest.fixture(scope="module")
def migrated_postgres(tmp_path_factory):
    for url in _postgres_database():
        _migrate(url, tmp_path_factory.mktemp("migrated"))
        yield make_url(url).database


def _migrate(url, folder):
    app = build_app(url, ManualClock(START), folder)
    upgrade_database(app)
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def live(request, tmp_path, clock):
    """A migrated installation with a branch (services A and B, three counters), on each engine."""
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("migrated_sqlite"), tmp_path / "seed.db")
        url = f"sqlite:///{tmp_path / 'seed.db'}"
        yield from _installation(url, tmp_path, clock)
    else:
        for url in _postgres_database(template=request.getfixturevalue("migrated_postgres")):
            yield from _installation(url, tmp_path, clock)


@pytest.fixture
def live_sqlite(migrated_sqlite, tmp_path, clock):
    shutil.copy(migrated_sqlite, tmp_path / "seed.db")
    yield from _installation(f"sqlite:///{tmp_path / 'seed.db'}", tmp_path, clock)


def _installation(url, tmp_path, clock):
    app = build_app(url, clock, tmp_path)
    with app.app_context():
        make_branch_setup(counters=COUNTERS)
        yield app
        db.session.remove()
        db.engine.dispose()


def invoke(app, *arguments):
    """A command of `app` (a test's own app context, if one is open, would be used instead)."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(arguments))


def empty_instance(live_app, request, tmp_path, clock):
    """A second installation of the same engine, with nothing in it: no database file, or a new database."""
    if live_app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'elsewhere' / 'seed.db'}"
    else:
        url = request.getfixturevalue("other_postgres")
    return build_app(url, clock, tmp_path / "elsewhere")


# --- what a consistent database is -----------------------------------------------------------

def assert_consistent(connection) -> int:
    """The rules in the module's docstring; the number of tickets."""
    if connection.dialect.name == "sqlite":
        assert connection.exec_driver_sql("PRAGMA integrity_check").all() == [("ok",)]
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    tickets = connection.execute(text(
        "SELECT id, service_id, service_day, number, status, counter_id FROM ticket ORDER BY id")).all()
    numbers = defaultdict(list)
    for ticket in tickets:
        numbers[(ticket.service_id, str(ticket.service_day))].append(ticket.number)
    sequences = connection.execute(text("SELECT service_id, service_day, last_number FROM ticket_sequence")).all()
    assert {key: sorted(found) for key, found in numbers.items()} == {
        (service, str(day)): list(range(1, last + 1)) for service, day, last in sequences}
    chains = defaultdict(list)
    for ticket_id, kind, before, after in connection.execute(text(
            "SELECT ticket_id, kind, from_status, to_status FROM ticket_event ORDER BY id")):
        chains[ticket_id].append((kind, before, after))
    for ticket in tickets:
        chain = chains.pop(ticket.id)
        assert chain[0][:2] == ("issued", None), chain
        assert all(earlier[2] == later[1] for earlier, later in zip(chain, chain[1:])), chain
        assert chain[-1][2] == ticket.status, (chain, ticket.status)
    assert chains == {}, "events without their ticket"
    held = Counter(t.counter_id for t in tickets if t.status in ("called", "serving"))
    assert all(count == 1 for count in held.values()), held
    return len(tickets)


def events(connection) -> list[str]:
    return [repr(tuple(row)) for row in connection.execute(text("SELECT * FROM ticket_event ORDER BY id"))]


def sqlite_rows(path) -> dict[str, list[tuple]]:
    """Every table's rows (SQLite's backup API keeps pages, so rowids match between copies)."""
    with closing(sqlite3.connect(path)) as connection:
        tables = [name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {table: connection.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall() for table in tables}


def dump_rows(dump: Path) -> dict[str, tuple[str, list[str]]]:
    """Every table's rows in a pg_dump file, as pg_restore writes them out: {table: (columns, lines)}."""
    script = subprocess.run(["pg_restore", "--data-only", "--file=-", str(dump)], check=True,
                            capture_output=True, text=True).stdout.splitlines()
    found, current = {}, None
    for line in script:
        copy = re.match(r"COPY public\.(\S+) \((.*)\) FROM stdin;$", line)
        if copy:
            current = copy.group(1).strip('"')
            found[current] = (copy.group(2), [])
        elif line == "\\.":
            current = None
        elif current is not None:
            found[current][1].append(line)
    return {table: (columns, sorted(lines)) for table, (columns, lines) in found.items()}


def postgres_rows(url: str, like: dict[str, tuple[str, list[str]]]) -> dict[str, tuple[str, list[str]]]:
    """The same, read from a live database with COPY, in the dump's column order."""
    found = {}
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        conn.execute("SET DateStyle = ISO")
        conn.execute("SET extra_float_digits = 3")  # as pg_dump sets them
        tables = [name for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            columns = like.get(table, ("*",))[0]
            with conn.cursor().copy(f'COPY public."{table}" ({columns}) TO STDOUT') as copy:
                data = b"".join(bytes(block) for block in copy).decode()
            found[table] = (columns, sorted(data.splitlines()))
    return found


# --- backing up during traffic, restoring, comparing -----------------------------------------

class Traffic:
    """Kiosks checking in and counters calling, serving and completing, each in its own thread,
    until stopped."""

    def __init__(self, app):
        self.app, self.stop, self.errors, self.done, self.serving = app, threading.Event(), [], Counter(), {}
        self.counting = threading.Lock()
        self.services = [row[0] for row in db.session.execute(text("SELECT id FROM service ORDER BY id"))]
        self.counters = [row[0] for row in db.session.execute(text("SELECT id FROM counter ORDER BY id"))]
        db.session.commit()
        self.threads = [threading.Thread(target=self._run, args=(self._kiosk, self.services[i % 2]))
                        for i in range(KIOSKS)]
        self.threads += [threading.Thread(target=self._run, args=(self._counter, c)) for c in self.counters]

    def _run(self, work, argument):
        with self.app.app_context():
            try:
                while not self.stop.is_set():
                    work(argument)
            except BaseException as error:  # noqa: BLE001  (reported by the test)
                self.errors.append(repr(error))
            finally:
                db.session.remove()

    def _kiosk(self, service_id):
        engine.issue_ticket(service_id, source="kiosk")
        self._count("issued")

    def _counter(self, counter_id):
        serving = self.serving.pop(counter_id, None)
        if serving is not None:  # some stay at the counter until its next call
            engine.complete(serving)
        ticket = engine.call_next(counter_id)
        if ticket is None:
            time.sleep(0.005)
            return
        engine.start_serving(ticket.id)
        if ticket.id % 3:
            engine.complete(ticket.id)
        else:
            self.serving[counter_id] = ticket.id
        self._count("served")

    def _count(self, what):
        with self.counting:
            self.done[what] += 1

    def wait_for(self, issued, served, seconds=20):
        deadline = time.monotonic() + seconds
        while (self.done["issued"] < issued or self.done["served"] < served) and time.monotonic() < deadline:
            assert not self.errors, self.errors
            time.sleep(0.01)
        assert self.done["issued"] >= issued and self.done["served"] >= served, self.done

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        for thread in self.threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in self.threads), "a thread hung"
        assert self.errors == []


def test_a_backup_during_traffic_is_consistent_and_restores_equal(live, request, tmp_path, clock):
    app = live
    with Traffic(app) as traffic:
        traffic.wait_for(issued=12, served=4)
        before = dict(traffic.done)
        made = backups.make(tmp_path / "backups")
        after = dict(traffic.done)
        traffic.wait_for(issued=after["issued"] + 6, served=after["served"] + 2)
    with app.app_context():
        db.session.remove()
        with db.engine.connect() as connection:
            live_tickets = assert_consistent(connection)
            live_events = events(connection)

    assert made.path.parent == tmp_path / "backups" and backups.NAME.match(made.path.name)
    assert made.path.stat().st_mode & 0o077 == 0  # it holds personal data: its owner's only
    sqlite = made.engine == "sqlite"
    if not sqlite:  # pg_dump takes long enough for check-ins to finish while it runs
        assert after["issued"] > before["issued"]
    if sqlite:
        copy = create_engine(f"sqlite:///{made.path}")
        with copy.connect() as connection:
            assert_consistent(connection)
        copy.dispose()
    target = empty_instance(app, request, tmp_path, clock)
    result = invoke(target, "restore", str(made.path))
    assert result.exit_code == 0, result.output
    if sqlite:
        restored_file = Path(make_url(target.config["SQLALCHEMY_DATABASE_URI"]).database)
        in_backup = sqlite_rows(made.path)
        assert result.output.splitlines() == [
            f"SQLite: copied {made.path} into {restored_file} with SQLite's backup API; integrity check ok.",
            f"Restored {len(in_backup) - 1} tables, "
            f"{sum(len(rows) for table, rows in in_backup.items() if table != 'alembic_version')} rows.",
            f"Schema already at this version's newest migration ({made.revision})."]
        assert sqlite_rows(restored_file) == in_backup  # every table, every row
    else:
        assert result.output.startswith(f"PostgreSQL: ran pg_restore (one transaction) of {made.path} into ")
        dumped = dump_rows(made.path)
        assert set(dumped) >= {"ticket", "ticket_event", "ticket_sequence", "branch", "alembic_version"}
        assert postgres_rows(target.config["SQLALCHEMY_DATABASE_URI"], dumped) == dumped
    with target.app_context():
        with db.engine.connect() as connection:
            restored_tickets = assert_consistent(connection)
            restored_events = events(connection)
        db.engine.dispose()
    # A moment in the middle of the traffic: all it had done before the backup began, none of what
    # it did after (a kiosk may have committed a ticket just before counting it: KIOSKS of slack).
    assert before["issued"] <= restored_tickets <= after["issued"] + KIOSKS < live_tickets
    assert set(restored_events) <= set(live_events) and len(restored_events) < len(live_events)


# --- refusals --------------------------------------------------------------------------------

def test_restore_refuses_a_database_that_holds_data_and_changes_nothing(live, tmp_path):
    made = backups.make(tmp_path)
    engine.issue_ticket(1)
    with db.engine.connect() as connection:
        before = _all_rows(connection)
    result = invoke(live, "restore", str(made.path))
    assert result.exit_code == 1
    assert "Nothing was restored" in result.output and "already holds data (" in result.output
    assert ("move " if made.engine == "sqlite" else "createdb") in result.output
    db.session.remove()
    with db.engine.connect() as connection:
        assert _all_rows(connection) == before


def _all_rows(connection) -> dict:
    return {table: sorted(map(repr, connection.execute(text(f'SELECT * FROM "{table}"'))))
            for table in inspect(connection).get_table_names()}


def test_restore_refuses_foreign_newer_or_damaged_backups_before_touching_anything(live_sqlite, tmp_path, clock):
    made = backups.make(tmp_path)
    target_dir = tmp_path / "elsewhere"
    target = build_app(f"sqlite:///{target_dir / 'seed.db'}", clock, target_dir)

    newer = tmp_path / "newer.db"
    newer.write_bytes(made.path.read_bytes())
    with closing(sqlite3.connect(newer)) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'f00dfeed1234'")
        connection.commit()
    notes = tmp_path / "notes.db"
    notes.write_text("not a database")
    dump = tmp_path / "city.dump"
    dump.write_bytes(b"PGDMP\x01\x0e\x00" + b"\x00" * 64)
    cases = {
        newer: "was made by a newer version of Seed (migration f00dfeed1234",
        notes: "is not a Seed backup: neither a SQLite database nor a pg_dump custom-format file",
        dump: "is a PostgreSQL backup and this installation's database is SQLite",
        tmp_path / "missing.db": "There is no backup at",
    }
    for path, said in cases.items():
        result = invoke(target, "restore", str(path))
        assert result.exit_code == 1 and said in result.output, result.output
        assert not target_dir.joinpath("seed.db").exists()  # not even an empty file was made

    # The database was moved aside but its -wal was not: SQLite could replay it into the new file.
    target_dir.mkdir(parents=True, exist_ok=True)
    (target_dir / "seed.db-wal").write_bytes(b"left behind")
    result = invoke(target, "restore", str(made.path))
    assert result.exit_code == 1 and f"{target_dir / 'seed.db-wal'} lie(s) where the database will go" in result.output
    assert not target_dir.joinpath("seed.db").exists()


def test_an_older_backup_is_restored_then_upgraded(tmp_path, clock):
    old = build_app(f"sqlite:///{tmp_path / 'old.db'}", clock, tmp_path)
    with old.app_context():
        upgrade(directory=MIGRATIONS, revision="d5e1a3c7f733")
        db.session.execute(text(
            "INSERT INTO branch (name, sender_name, timezone, country, default_language, opening_hours, "
            "show_names, created_at, messaging) VALUES ('Old', 'Old', 'Asia/Tokyo', 'JP', 'ja', '{}', 0, "
            "'2026-01-05 00:00:00', '{}')"))
        db.session.commit()
        made = backups.make(tmp_path)
        db.engine.dispose()
    assert made.revision == "d5e1a3c7f733"
    target = build_app(f"sqlite:///{tmp_path / 'new' / 'seed.db'}", clock, tmp_path / "new")
    result = invoke(target, "restore", str(made.path))
    assert result.exit_code == 0, result.output
    with target.app_context():
        head = db.session.scalar(text("SELECT version_num FROM alembic_version"))
        assert result.output.splitlines()[-1] == (
            f"Schema upgraded from migration d5e1a3c7f733 to {head}, this version's newest.")
        assert head != "d5e1a3c7f733"
        branch = db.session.execute(text("SELECT name, timezone, languages FROM branch")).one()
        assert tuple(branch) == ("Old", "Asia/Tokyo", '["en", "ja", "ka"]')
        db.engine.dispose()


def test_backup_problems_are_said_and_leave_no_file(migrated_sqlite, tmp_path, clock):
    missing = make_url(POSTGRES_URL).set(database=f"seed_missing_{uuid.uuid4().hex[:8]}")
    url = missing.render_as_string(hide_password=False)
    nowhere = tmp_path / "no-programs"
    nowhere.mkdir()
    for extra, said in (({"PG_BIN_DIR": str(nowhere)}, f"pg_dump was not found in PG_BIN_DIR ({nowhere})"),
                        ({}, "pg_dump failed: ")):
        app = build_app(url, clock, tmp_path, BACKUP_DIR=str(tmp_path / "backups"), **extra)
        result = invoke(app, "backup")
        assert result.exit_code == 1 and said in result.output, result.output
        assert list((tmp_path / "backups").iterdir()) == []
    assert missing.database in result.output  # pg_dump's own words: which database it could not reach

    shutil.copy(migrated_sqlite, tmp_path / "seed.db")
    sqlite_app = build_app(f"sqlite:///{tmp_path / 'seed.db'}", clock, tmp_path)
    taken = tmp_path / "taken.db"
    taken.write_text("keep me")
    result = invoke(sqlite_app, "backup", str(taken))
    assert result.exit_code == 1 and "already exists: nothing was overwritten" in result.output
    assert taken.read_text() == "keep me"


# --- the default place, and the nightly job --------------------------------------------------

def test_backup_without_a_path_goes_to_the_instance_folder_named_by_the_time(live_sqlite):
    app = live_sqlite
    result = invoke(app, "backup")
    assert result.exit_code == 0, result.output
    expected = Path(app.instance_path) / "backups" / "seed-20260302T090000Z.db"
    lines = result.output.splitlines()
    assert lines[0].startswith("SQLite: copied ") and "online backup API" in lines[0]
    assert lines[1].startswith(f"Backup: {expected} (") and lines[1].endswith(f"schema at migration {_head()}).")
    assert lines[2] == f"Restore it into an empty database with: flask --app run restore {expected}"
    again = invoke(app, "backup")  # the same second: a second name
    assert "seed-20260302T090000Z-2.db" in again.output
    assert [p.name for p in backups.ours(expected.parent)] == ["seed-20260302T090000Z.db", "seed-20260302T090000Z-2.db"]


def _head() -> str:
    return db.session.scalar(text("SELECT version_num FROM alembic_version"))


def test_the_nightly_job_backs_up_once_a_night_and_keeps_the_last_n(live_sqlite, clock, tmp_path):
    app = live_sqlite
    folder = tmp_path / "nightly"
    app.config.update(BACKUP_DIR=str(folder), BACKUP_KEEP=0, BACKUP_TIME="03:00", DEFAULT_TIMEZONE="Asia/Tokyo")
    assert jobs.nightly_backup() == 0 and not folder.exists()  # BACKUP_KEEP 0: no nightly backups
    app.config["BACKUP_KEEP"] = 3
    folder.mkdir()
    (folder / "before-upgrade.db").write_text("an operator's own copy")
    (folder / "seed-notes.txt").write_text("not a backup")

    # 09:00 UTC is 18:00 in Tokyo: no backup yet, so the one of last night is made now, once.
    assert jobs.nightly_backup() == 1 and jobs.nightly_backup() == 0
    taken = ["seed-20260302T090000Z.db"]
    for night in range(3, 8):  # five nights: at 02:59 Tokyo time nothing, at 03:00 one backup
        clock.set(datetime(2026, 3, night - 1, 17, 59, tzinfo=timezone.utc))
        assert jobs.nightly_backup() == 0
        clock.advance(minutes=1)
        assert jobs.nightly_backup() == 1
        assert jobs.nightly_backup() == 0
        taken.append(f"seed-202603{night - 1:02d}T180000Z.db")
        assert [p.name for p in backups.ours(folder)] == taken[-3:]
    assert sorted(p.name for p in folder.iterdir()) == sorted(taken[-3:] + ["before-upgrade.db", "seed-notes.txt"])
    clock.advance(days=3, hours=5)  # the box was off for three nights: one backup when it is back
    assert jobs.nightly_backup() == 1 and jobs.nightly_backup() == 0
    for path in backups.ours(folder):
        with closing(sqlite3.connect(path)) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
