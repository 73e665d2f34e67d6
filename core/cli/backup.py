"""`backup [PATH]` and `restore PATH`: a consistent copy while Seed runs, and a restore into an
empty database (core/backups.py)."""
from pathlib import Path

import click
from flask.cli import with_appcontext

from .. import backups
from . import _told


def _size(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


@click.command("backup")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@with_appcontext
def backup_command(path):
    """Back the database up while Seed runs. PATH: a new file (seed.db, city.dump) or a folder
    for a dated name (default: BACKUP_DIR, else backups/ in the instance folder)."""
    made = _told(backups.make, path)
    if made.engine == "sqlite":
        click.echo(f"SQLite: copied {made.database} with SQLite's online backup API "
                   "(one consistent snapshot; Seed kept running).")
    else:
        click.echo(f"PostgreSQL: ran pg_dump (custom format, one consistent snapshot) on {made.database}.")
    click.echo(f"Backup: {made.path} ({_size(made.size)}, schema at migration {made.revision}).")
    click.echo(f"Restore it into an empty database with: flask --app run restore {made.path}")


@click.command("restore")
@click.argument("path", type=click.Path(path_type=Path))
@with_appcontext
def restore_command(path):
    """Restore the backup at PATH into this installation's database, which must hold no data
    (stop Seed first), then upgrade its schema to this version's newest."""
    done = _told(backups.restore, path)
    if done.engine == "sqlite":
        click.echo(f"SQLite: copied {done.source} into {done.database} with SQLite's backup API; integrity check ok.")
    else:
        click.echo(f"PostgreSQL: ran pg_restore (one transaction) of {done.source} into {done.database}.")
    click.echo(f"Restored {done.tables} tables, {done.rows} rows.")
    if done.revision != done.head:
        click.echo(f"Schema upgraded from migration {done.revision} to {done.head}, this version's newest.")
    else:
        click.echo(f"Schema already at this version's newest migration ({done.head}).")
