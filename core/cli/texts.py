"""`branch texts`: which texts a branch sends and the policy they obey."""
import re

import click
from flask import current_app

from .. import audit
from ..extensions import db
from . import _branch, _ready, branch_cli


@branch_cli.command("texts")
@click.argument("settings", nargs=-1)
@click.option("--branch", "branch_id", type=int)
def branch_texts(settings, branch_id):
    """Which texts a branch sends and the policy they obey, as KEY=VALUE: welcome=off,
    survey_delay_minutes=1440, quiet_start=21:00, daily_cap=5 ... With no arguments, show them."""
    _ready()
    branch = _branch(branch_id)
    defaults = current_app.config["MESSAGING_DEFAULTS"]
    current = {**defaults, **(branch.messaging or {})}
    changes = {}
    for item in settings:
        key, _, raw = item.partition("=")
        if key not in defaults or not raw:
            raise click.ClickException(f"Cannot read {item!r}. Keys: {', '.join(defaults)}.")
        kind = type(defaults[key])
        if kind is bool:
            if raw.lower() not in ("on", "off", "true", "false", "yes", "no"):
                raise click.ClickException(f"{key} is on or off.")
            value = raw.lower() in ("on", "true", "yes")
        elif kind is int:
            if not raw.isdigit():
                raise click.ClickException(f"{key} is a whole number.")
            value = int(raw)
        else:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", raw):
                raise click.ClickException(f"{key} is a time like 20:00.")
            value = raw
        changes[key] = value
    if changes:
        branch.messaging = {**(branch.messaging or {}), **changes}
        db.session.commit()
        audit.record("settings.changed", target=f"branch:{branch.id}", branch_id=branch.id, detail={"texts": changes})
        current.update(changes)
    for key, value in current.items():
        click.echo(f"{key:22} {value}")
