"""Branches: name, zone, hours, and which texts they send."""
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from sqlalchemy import select

from .. import audit, clock
from ..extensions import db
from ..models import Branch
from ..seed import WEEKDAYS
from . import _branch, _given, _ready, branch_cli


def parse_hours(text: str) -> dict:
    """'mon-fri 09:00-17:00; sat 10:00-13:00' -> {"mon": [["09:00", "17:00"]], ...}"""
    hours: dict = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        match = re.fullmatch(r"([a-z]{3})(?:-([a-z]{3}))?\s+(\d{2}:\d{2})-(\d{2}:\d{2})", part.lower())
        if not match or match[1] not in WEEKDAYS or (match[2] and match[2] not in WEEKDAYS):
            raise click.ClickException(f"Cannot read hours {part!r}: write e.g. 'mon-fri 09:00-17:00'.")
        first, last, opens, closes = match[1], match[2] or match[1], match[3], match[4]
        if not ("00:00" <= opens < closes <= "24:00"):
            raise click.ClickException(f"{part!r}: opening must come before closing.")
        for day in WEEKDAYS[WEEKDAYS.index(first) : WEEKDAYS.index(last) + 1]:
            hours.setdefault(day, []).append([opens, closes])
    return hours


@branch_cli.command("list")
def list_branches():
    """List branches."""
    _ready()
    for b in db.session.scalars(select(Branch).order_by(Branch.id)):
        days = "; ".join(f"{d} {' '.join('-'.join(r) for r in b.opening_hours[d])}" for d in WEEKDAYS if d in b.opening_hours)
        click.echo(f"{b.id}  {b.name}  sender={b.sender_name!r}  tz={b.timezone}  country={b.country}  hours: {days or 'closed'}")


@branch_cli.command("create")
@click.argument("name")
@click.option("--sender", help="Business name every text starts with (default: the name).")
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone, e.g. Asia/Tokyo.")
@click.option("--country", default="GB", show_default=True, help="ISO code for local phone numbers.")
@click.option("--language", type=click.Choice(["en", "ja", "ka"]), default="en", show_default=True)
@click.option("--hours", default="mon-fri 09:00-17:00", show_default=True)
def create_branch(name, sender, timezone, country, language, hours):
    """Create a branch (the first start of run.py creates a demo one)."""
    _ready()
    branch = Branch(default_language=language, created_at=clock.now())
    _apply_branch_settings(branch, name=name, sender=sender or name, timezone=timezone, country=country, hours=hours)
    db.session.add(branch)
    db.session.commit()
    audit.record("settings.changed", target=f"branch:{branch.id}", branch_id=branch.id, detail={"created": True})
    click.echo(f"Created branch {branch.id}: {branch.name}.")


def _apply_branch_settings(branch, *, name=None, sender=None, timezone=None, country=None, hours=None):
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise click.ClickException(f"Unknown time zone {timezone!r}; use an IANA name like Asia/Tbilisi.")
        branch.timezone = timezone
    if country:
        if not re.fullmatch(r"[A-Za-z]{2}", country):
            raise click.ClickException("Country is a two-letter ISO code, e.g. GE.")
        branch.country = country.upper()
    for value, attr, limit in ((name, "name", 80), (sender, "sender_name", 40)):
        if value is not None:
            if not 1 <= len(value.strip()) <= limit:
                raise click.ClickException(f"{attr} needs 1-{limit} characters.")
            setattr(branch, attr, value.strip())
    if hours is not None:
        branch.opening_hours = parse_hours(hours)


@branch_cli.command("set")
@click.option("--branch", "branch_id", type=int)
@click.option("--name")
@click.option("--sender", help="Business name every text starts with.")
@click.option("--timezone", help="IANA zone, e.g. Asia/Tokyo.")
@click.option("--country", help="ISO country code for local phone numbers, e.g. JP.")
@click.option("--language", type=click.Choice(["en", "ja", "ka"]))
@click.option("--hours", help="e.g. 'mon-fri 09:00-17:00; sat 10:00-13:00'")
@click.option("--show-names/--hide-names", default=None, help="Whether displays may show customer names.")
def set_branch(branch_id, name, sender, timezone, country, language, hours, show_names):
    """Change a branch's settings."""
    _ready()
    branch = _branch(branch_id)
    _apply_branch_settings(branch, name=name, sender=sender, timezone=timezone, country=country, hours=hours)
    if language:
        branch.default_language = language
    if show_names is not None:
        branch.show_names = show_names
    db.session.commit()
    audit.record("settings.changed", target=f"branch:{branch.id}", branch_id=branch.id,
                 detail={"fields": _given(name=name, sender=sender, timezone=timezone, country=country,
                                          language=language, hours=hours, show_names=show_names)})
    click.echo(f"Saved {branch.name}.")
