"""Backups while Seed runs, and restores into an empty database.

SQLite: SQLite's online backup API copies the database as one read snapshot (writers go on, the
WAL keeps them apart) into a single self-contained file. PostgreSQL: pg_dump's custom format,
also one snapshot, read back by pg_restore. A restore refuses a database that holds any row,
changing nothing, then brings the schema up to this version's newest migration.

Backups hold personal data: files are made readable by their owner only.
"""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from . import clock
from .database import MIGRATIONS, upgrade_database
from .errors import SeedError
from .extensions import db

# Backups this module names (and the nightly job may delete): seed-20261201T020000Z.db, -2 if taken
# twice in one second. Other files in the folder are never touched.
NAME = re.compile(r"^seed-(\d{8}T\d{6}Z)(?:-(\d+))?\.(db|dump)$")
STAMP = "%Y%m%dT%H%M%SZ"
SUFFIX = {"sqlite": "db", "postgresql": "dump"}
MAGIC = {"sqlite": b"SQLite format 3\x00", "postgresql": b"PGDMP"}
ENGINE_WORDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


class BackupError(SeedError):
    code = "backup"


@dataclass
class Backup:
    path: Path
    engine: str  # "sqlite" or "postgresql"
    database: str  # the file or "name on host:port", for people
    size: int
    revision: str


@dataclass
class Restored:
    source: Path
    engine: str
    database: str
    revision: str  # the backup's migration
    head: str  # the migration the database is at now
    tables: int
    rows: int


# --- where backups go ------------------------------------------------------------------------

def folder() -> Path:
    """BACKUP_DIR, or backups/ in the instance folder."""
    configured = current_app.config["BACKUP_DIR"]
    return Path(configured) if configured else Path(current_app.instance_path) / "backups"


def taken_at(path: Path) -> datetime | None:
    """When a backup this module named was taken (UTC); None for any other file."""
    match = NAME.match(path.name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), STAMP).replace(tzinfo=timezone.utc)


def ours(where: Path) -> list[Path]:
    """The backups this module named in `where`, oldest first."""
    if not where.is_dir():
        return []
    found = [path for path in where.iterdir() if path.is_file() and NAME.match(path.name)]
    return sorted(found, key=lambda path: (taken_at(path), int(NAME.match(path.name).group(2) or 0)))


def _new_name(where: Path, engine: str) -> Path:
    stamp = clock.now().astimezone(timezone.utc).strftime(STAMP)
    path, count = where / f"seed-{stamp}.{SUFFIX[engine]}", 1
    while path.exists():
        count += 1
        path = where / f"seed-{stamp}-{count}.{SUFFIX[engine]}"
    return path


def prune(where: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups this module named (0 or less: delete nothing)."""
    if keep <= 0:
        return []
    gone = ours(where)[:-keep]
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


def due(where: Path, now: datetime, at: str = "03:00", zone: str = "UTC") -> bool:
    """Whether the night's backup is still to be made: none since `at` (HH:MM in `zone`) last came.
    A box that was off at that time makes it when it is back; a second run finds it made."""
    try:
        hour, minute = (int(part) for part in str(at).split(":"))
        datetime(2000, 1, 1, hour, minute)
    except ValueError:
        raise BackupError(f"BACKUP_TIME is {at!r}: give a time of day as HH:MM, e.g. 03:00.") from None
    local = now.astimezone(ZoneInfo(zone))
    last = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if last > local:
        last -= timedelta(days=1)
    made = [taken_at(path) for path in ours(where)]
    return not made or max(made) < last.astimezone(timezone.utc)


# --- backing up ------------------------------------------------------------------------------

def make(target: str | Path | None = None) -> Backup:
    """Back the database up into `target`: a new file's path (with a suffix: .db, .dump, ...), a
    folder (made if need be; a dated name in it) or None (a dated name in folder()). Nothing is
    left behind when it fails."""
    engine = _engine_name()
    where = Path(target) if target is not None else folder()
    if target is None or where.is_dir() or not where.suffix:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = _new_name(where, engine)
    else:
        path = where
        if path.exists():
            raise BackupError(f"{path} already exists: nothing was overwritten. Give a new file or a folder.")
        if not path.parent.is_dir():
            raise BackupError(f"There is no folder {path.parent}.")
    partial = path.with_name(f".{path.name}.partial")
    _private_file(partial)
    try:
        if engine == "sqlite":
            source = _sqlite_file()
            if not source.is_file():
                raise BackupError(f"There is no database at {source} yet: nothing to back up.")
            revision = _sqlite_backup(source, partial)
            described = str(source)
        else:
            _run("pg_dump", "--format=custom", f"--file={partial}", "--no-password", f"--dbname={_libpq_url()}")
            revision = _dump_revision(partial)
            described = _described_postgres()
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return Backup(path=path, engine=engine, database=described, size=path.stat().st_size, revision=revision)


def _sqlite_backup(source: Path, destination: Path) -> str:
    # One step (pages=-1): the whole copy is one read snapshot. In steps, every write by another
    # connection would restart it, and on a busy box it might never finish.
    with closing(sqlite3.connect(source)) as database, closing(sqlite3.connect(destination)) as copy:
        database.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one file: no -wal beside it to lose
        checked = copy.execute("PRAGMA quick_check").fetchall()
        if checked != [("ok",)]:
            raise BackupError(f"The copy of {source} fails SQLite's check ({_first(checked)}): the database "
                              "itself may be damaged. Nothing was kept; run PRAGMA integrity_check on it.")
        revision = _sqlite_revision(copy)
    if revision is None:
        raise BackupError(f"{source} is not a Seed database (it has no migration): nothing was kept.")
    return revision


# --- restoring -------------------------------------------------------------------------------

def restore(source: str | Path) -> Restored:
    """Restore the backup at `source` into this installation's database, which must hold no row
    (an empty schema an earlier start made is fine); then upgrade the schema to the newest."""
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"There is no backup at {source}.")
    engine, kind = _engine_name(), _kind(source)
    if kind is None:
        raise BackupError(f"{source} is not a Seed backup: neither a SQLite database nor a pg_dump "
                          "custom-format file. Nothing was changed.")
    if kind != engine:
        raise BackupError(f"{source} is a {ENGINE_WORDS[kind]} backup and this installation's database is "
                          f"{ENGINE_WORDS[engine]}: restore it into a {ENGINE_WORDS[kind]} database "
                          "(DATABASE_URL). Nothing was changed.")
    revision = _sqlite_source_revision(source) if kind == "sqlite" else _dump_revision(source)
    _refuse_unknown(revision, source)
    db.session.remove()
    if engine == "sqlite":
        target = _sqlite_file()
        described = str(target)
        orphans = [f"{target}{end}" for end in ("-wal", "-shm") if Path(f"{target}{end}").exists()]
        if orphans and not target.is_file():  # SQLite could replay an old -wal into the new file
            raise BackupError(f"Nothing was restored: {', '.join(orphans)} lie(s) where the database will go, "
                              "left from a database moved away: move it (them) aside too.")
        _refuse_held(target.is_file())
        db.engine.dispose()  # no pooled connection keeps the empty database's pages
        _sqlite_restore(source, target)
    else:
        described = _described_postgres()
        _drop_empty_schema()
        _run("pg_restore", "--single-transaction", "--no-owner", "--no-privileges", "--no-password",
             f"--dbname={_libpq_url()}", str(source))
    db.engine.dispose()
    try:
        upgrade_database(current_app._get_current_object())
    except Exception as error:  # noqa: BLE001  (said whole: the restore itself is done)
        raise BackupError(f"The backup was restored into {described}, but upgrading its schema from migration "
                          f"{revision} failed: {error}. Start Seed to try the upgrade again.") from error
    tables, rows = _count()
    return Restored(source=source, engine=engine, database=described, revision=revision, head=_current_revision(),
                    tables=tables, rows=rows)


def _sqlite_restore(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Through SQLite's own backup API, not a file copy: it writes under the target's locks, and a
    # -wal file left beside an old database can never be replayed over the restored one.
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as backup, \
            closing(sqlite3.connect(target)) as database:
        backup.backup(database)
        database.execute("PRAGMA journal_mode=WAL")
        checked = database.execute("PRAGMA integrity_check").fetchall()
    if checked != [("ok",)]:
        raise BackupError(f"The restored database {target} fails SQLite's integrity check ({_first(checked)}).")
    os.chmod(target, 0o600)


def _sqlite_source_revision(source: Path) -> str:
    try:
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as backup:
            checked = backup.execute("PRAGMA integrity_check").fetchall()
            if checked != [("ok",)]:
                raise BackupError(f"{source} fails SQLite's integrity check ({_first(checked)}): it cannot be "
                                  "restored. Nothing was changed; try an older backup.")
            revision = _sqlite_revision(backup)
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{source} cannot be read as a SQLite database ({error}). Nothing was changed.") from None
    if revision is None:
        raise BackupError(f"{source} is not a Seed backup (it has no migration). Nothing was changed.")
    return revision


def _refuse_unknown(revision: str, source: Path) -> None:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    scripts = ScriptDirectory(MIGRATIONS)
    try:
        known = scripts.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise BackupError(f"{source} was made by a newer version of Seed (migration {revision}; this version's "
                          f"newest is {scripts.get_current_head()}): restore it with that version. "
                          "Nothing was changed.")


def _refuse_held(exists: bool = True) -> None:
    """Refuse, changing nothing, when the target holds any row (alembic's own table aside)."""
    if not exists:
        return
    try:
        with db.engine.connect() as connection:
            held = [table for table in inspect(connection).get_table_names() if table != "alembic_version"
                    and connection.execute(text(f'SELECT 1 FROM "{table}" LIMIT 1')).first() is not None]
    except DBAPIError as error:
        raise BackupError(f"Nothing was restored: the database {_described()} cannot be read "
                          f"({error.orig}).") from None
    if held:
        shown = ", ".join(sorted(held)[:6]) + (", ..." if len(held) > 6 else "")
        if _engine_name() == "sqlite":
            way = f"stop Seed, move {_sqlite_file()} aside (with any -wal and -shm file beside it)"
        else:
            way = "create a new, empty database (createdb) and point DATABASE_URL at it"
        raise BackupError(f"Nothing was restored: the database {_described()} already holds data ({shown}). "
                          f"A backup is restored into an empty database only: {way}, then run restore again.")


def _drop_empty_schema() -> None:
    """The empty tables an earlier start made would stop pg_restore: dropped, after a check under
    lock that they are still empty (a target holding data is refused, changing nothing)."""
    _refuse_held()
    with db.engine.begin() as connection:
        tables = inspect(connection).get_table_names()
        if not tables:
            return
        names = ", ".join(f'"{table}"' for table in tables)
        connection.execute(text(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE"))
        for table in tables:
            if table != "alembic_version" and connection.execute(text(f'SELECT 1 FROM "{table}" LIMIT 1')).first():
                raise BackupError(f"Nothing was restored: {table} in {_described()} received data meanwhile.")
        connection.execute(text(f"DROP TABLE {names} CASCADE"))


# --- PostgreSQL's programs -------------------------------------------------------------------

def _program(name: str) -> str:
    where = current_app.config["PG_BIN_DIR"]
    found = shutil.which(name, path=where) if where else shutil.which(name)
    if found is None:
        place = f"in PG_BIN_DIR ({where})" if where else "on the PATH"
        raise BackupError(
            f"{name} was not found {place}. Install PostgreSQL's client programs, of the server's version or "
            f"newer (Debian: apt install postgresql-client), or set PG_BIN_DIR to their folder. "
            "Nothing was changed.")
    return found


def _run(name: str, *arguments: str) -> str:
    environment = dict(os.environ)
    password = db.engine.url.password
    if password:
        environment["PGPASSWORD"] = str(password)  # not on the command line, where ps shows it
    result = subprocess.run([_program(name), *arguments], env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        said = result.stderr.strip() or f"exit status {result.returncode}"
        raise BackupError(f"{name} failed: {said}")
    return result.stdout


def _libpq_url() -> str:
    url = db.engine.url.set(drivername="postgresql", password=None)
    return url.render_as_string(hide_password=False)


def _dump_revision(dump: Path) -> str:
    """The migration a pg_dump custom-format file was taken at (pg_restore reads it out)."""
    listing = _run("pg_restore", "--data-only", "--table=alembic_version", "--file=-", str(dump))
    lines = listing.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and index + 1 < len(lines):
            if lines[index + 1] != "\\.":
                return lines[index + 1].strip()
    raise BackupError(f"{dump} is not a Seed backup (it has no migration). Nothing was changed.")


# --- small helpers ---------------------------------------------------------------------------

def _engine_name() -> str:
    name = db.engine.dialect.name
    if name not in SUFFIX:
        raise BackupError(f"Backups need SQLite or PostgreSQL, not {name}.")
    return name


def _sqlite_file() -> Path:
    database = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"]).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError("The database is in memory (or named by a URI): there is no file to back up or restore.")
    return Path(database).resolve()


def _described_postgres() -> str:
    url = db.engine.url
    return f"{url.database} on {url.host or 'the local socket'}" + (f":{url.port}" if url.port else "")


def _described() -> str:
    return str(_sqlite_file()) if _engine_name() == "sqlite" else _described_postgres()


def _kind(path: Path) -> str | None:
    with open(path, "rb") as handle:
        start = handle.read(16)
    return next((engine for engine, magic in MAGIC.items() if start.startswith(magic)), None)


def _sqlite_revision(connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


def _current_revision() -> str:
    with db.engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def _count() -> tuple[int, int]:
    with db.engine.connect() as connection:
        tables = [table for table in inspect(connection).get_table_names() if table != "alembic_version"]
        rows = sum(connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one() for table in tables)
    return len(tables), rows


def _private_file(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _first(checked) -> str:
    return checked[0][0] if checked else "no answer"
