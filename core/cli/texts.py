"""`branch texts`: which texts a branch sends and the policy they obey (core/settings/texts.py)."""
import click

from ..settings import texts
from . import _branch, _call, _ready, branch_cli


def _shown(value) -> str:
    """A value as the command takes it back: lists comma-separated."""
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


@branch_cli.command("texts")
@click.argument("settings", nargs=-1)
@click.option("--branch", "branch_id", type=int)
def branch_texts(settings, branch_id):
    """Which texts a branch sends and the policy they obey, as KEY=VALUE: welcome=off,
    survey_delay_minutes=1440, quiet_start=21:00, daily_cap=5, reminder_lead_minutes=1440,120 ...
    With no arguments, show them."""
    _ready()
    branch = _branch(branch_id)
    changes = {}
    for item in settings:
        key, equals, raw = item.partition("=")
        if not equals:
            raise click.ClickException(f"Cannot read {item!r}: give KEY=VALUE. Keys: {', '.join(texts.current(branch))}.")
        changes[key.strip()] = raw
    current = _call(texts.update, branch, changes) if changes else texts.current(branch)
    for key, value in current.items():
        click.echo(f"{key:22} {_shown(value)}")
