"""`branch create|set|list` and `branch closure add|list|remove`: the same service layer as the
settings pages (core/settings/branches.py), so a value the page refuses is refused here too."""
from pathlib import Path

import click
from sqlalchemy import select

from ..extensions import db
from ..models import Branch
from ..seed import WEEKDAYS
from ..settings import branches as settings
from . import _branch, _call, _ready, branch_cli

LANGUAGE = click.Choice(settings.LANGUAGES)


def _typed(**options) -> dict:
    """The options typed on the command line, under the service layer's field names."""
    data = {key: value for key, value in options.items() if value is not None and key != "logo"}
    if options.get("logo") == "":
        data["logo"] = None
    elif options.get("logo") is not None:
        try:
            data["logo"] = Path(options["logo"]).read_bytes()
        except OSError as error:
            raise click.ClickException(f"Cannot read the logo: {error.strerror}.") from None
    return data


def _settings_options(command):
    for option in reversed([
        click.option("--sender", "sender_name", help="The name every text starts with (at most 40 characters)."),
        click.option("--timezone", help="IANA zone, e.g. Asia/Tbilisi or Asia/Tokyo."),
        click.option("--country", help="ISO code for phone numbers typed without one, e.g. GE."),
        click.option("--language", type=LANGUAGE, help="The default language."),
        click.option("--languages", help="The languages the kiosk offers, e.g. en,ja,ka."),
        click.option("--hours", "opening_hours", help="e.g. 'mon-fri 09:00-12:00 13:00-17:00; sat 10:00-13:00'"),
        click.option("--show-names/--hide-names", default=None, help="Whether displays may show customer names."),
        click.option("--primary", help="Main colour, #rrggbb."),
        click.option("--accent", help="Accent colour, #rrggbb."),
        click.option("--logo", type=click.Path(dir_okay=False), help="A PNG or JPEG logo (empty: remove it)."),
    ]):
        command = option(command)
    return command


@branch_cli.command("list")
def list_branches():
    """List branches."""
    _ready()
    for b in db.session.scalars(select(Branch).order_by(Branch.id)):
        days = "; ".join(f"{d} {' '.join('-'.join(r) for r in b.opening_hours[d])}"
                         for d in WEEKDAYS if (b.opening_hours or {}).get(d))
        click.echo(f"{b.id}  {b.name}  sender={b.sender_name!r}  tz={b.timezone}  country={b.country}  "
                   f"language={b.default_language}  kiosk={','.join(b.languages or [])}  hours: {days or 'closed'}")


@branch_cli.command("create")
@click.argument("name")
@_settings_options
def create_branch(name, **options):
    """Create a branch (the first start of run.py creates a demo one). Left out: the configured
    zone, country and language, Monday to Friday 09:00-17:00, every language."""
    _ready()
    branch = _call(settings.create, {"name": name, **_typed(**options)})
    click.echo(f"Created branch {branch.id}: {branch.name}.")


@branch_cli.command("set")
@click.option("--branch", "branch_id", type=int)
@click.option("--name")
@_settings_options
def set_branch(branch_id, name, **options):
    """Change a branch's settings: only the options given."""
    _ready()
    branch = _branch(branch_id)
    _call(settings.update, branch, _typed(name=name, **options))
    click.echo(f"Saved {branch.name}.")


@branch_cli.group("closure")
def closure_cli():
    """Holidays and closures: no bookings on these days, and the kiosk says why."""


@closure_cli.command("add")
@click.argument("first_day")
@click.argument("last_day", required=False)
@click.option("--branch", "branch_id", type=int)
@click.option("--message", default="", help="What the kiosk shows, e.g. 'Closed for the holidays'.")
def add_closure(first_day, last_day, branch_id, message):
    """Close the branch from FIRST_DAY to LAST_DAY (YYYY-MM-DD, both included; one day without LAST_DAY)."""
    _ready()
    closure = _call(settings.add_closure, _branch(branch_id), first_day, last_day, message)
    click.echo(f"Added closure {closure.id}: {closure.first_day} to {closure.last_day}.")


@closure_cli.command("list")
@click.option("--branch", "branch_id", type=int)
def list_closures(branch_id):
    """The branch's closures, by first day."""
    _ready()
    for closure in settings.closures(_branch(branch_id)):
        click.echo(f"{closure.id}  {closure.first_day} to {closure.last_day}  {closure.message}")


@closure_cli.command("remove")
@click.argument("closure_id", type=int)
@click.option("--branch", "branch_id", type=int)
def remove_closure(closure_id, branch_id):
    """Remove a closure: the branch is open on its days again."""
    _ready()
    _call(settings.remove_closure, _branch(branch_id), closure_id)
    click.echo(f"Removed closure {closure_id}.")
