"""`flask --app run ...` commands: the groups and what every command shares. The commands live
by subject in this package's modules and call the same service layer as the web pages."""
import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from ..database import upgrade_database
from ..errors import SeedError, ValidationError
from ..extensions import db
from ..models import Branch

user_cli = AppGroup("user", help="Staff accounts.")
service_cli = AppGroup("service", help="Services customers queue for.")
counter_cli = AppGroup("counter", help="Counters staff call tickets to.")
branch_cli = AppGroup("branch", help="Branch settings: name, time zone, hours.")
token_cli = AppGroup("token", help="API tokens for other systems: shown once, kept hashed.")
kiosk_cli = AppGroup("kiosk", help="Registered kiosks: each has its own check-in rate limit.")
privacy_cli = AppGroup("privacy", help="Everything held about one phone number: export it, erase it.")
audit_cli = AppGroup("audit", help="The audit log: who did what, when, in which branch.")


def init_app(app) -> None:
    from . import access, backup, branches, records, services, texts, users  # noqa: F401  (they add their commands)

    for group in (user_cli, service_cli, counter_cli, branch_cli, token_cli, kiosk_cli, privacy_cli, audit_cli):
        app.cli.add_command(group)
    app.cli.add_command(backup.backup_command)
    app.cli.add_command(backup.restore_command)


def _ready():
    upgrade_database(current_app._get_current_object())


def _branch(branch_id):
    branch = db.session.get(Branch, branch_id) if branch_id else db.session.scalar(select(Branch).order_by(Branch.id))
    if branch is None:
        raise click.ClickException("No such branch. Start the system once (python run.py) or create one.")
    return branch


def _call(function, *args, **kwargs):
    """A service-layer call from a command: a refusal becomes the command's error, a line per
    refused field (the same words the settings pages show); another SeedError (not found, a
    conflict) its message."""
    try:
        return function(*args, **kwargs)
    except ValidationError as error:
        fields = error.detail if isinstance(error.detail, dict) else {}
        lines = "\n".join(f"{field}: {message}" for field, message in fields.items())
        raise click.ClickException(lines or error.message) from None
    except SeedError as error:
        raise click.ClickException(error.message) from None


def _told(function, *args, **kwargs):
    """A call whose errors say everything in their message (tokens, personal data: their detail
    holds codes for programs, not words for people): the command's error is that message."""
    try:
        return function(*args, **kwargs)
    except SeedError as error:
        raise click.ClickException(error.message) from None


def _services(branch, codes: str):
    wanted = [code.strip().upper() for code in codes.split(",") if code.strip()]
    found = {s.code: s for s in branch.services}
    unknown = [code for code in wanted if code not in found]
    if unknown:
        raise click.ClickException(f"Unknown service code(s) at {branch.name}: {', '.join(unknown)}")
    return [found[code] for code in wanted]


def _given(**options) -> list[str]:
    """The settings a command changed, for the audit log (their names: values may be personal)."""
    return sorted(key for key, value in options.items() if value is not None)
