"""`flask --app run ...` commands for setting up a branch without a web browser."""
import json
import re
import secrets
from types import SimpleNamespace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from . import audit, auth, clock, privacy, tokens
from .database import upgrade_database
from .errors import SeedError
from .extensions import db
from .models import Branch, Counter, Service, StaffUser
from .seed import WEEKDAYS

user_cli = AppGroup("user", help="Staff accounts.")
service_cli = AppGroup("service", help="Services customers queue for.")
counter_cli = AppGroup("counter", help="Counters staff call tickets to.")
branch_cli = AppGroup("branch", help="Branch settings: name, time zone, hours.")
token_cli = AppGroup("token", help="API tokens for other systems: shown once, kept hashed.")
kiosk_cli = AppGroup("kiosk", help="Registered kiosks: each has its own check-in rate limit.")
privacy_cli = AppGroup("privacy", help="Everything held about one phone number: export it, erase it.")
audit_cli = AppGroup("audit", help="The audit log: who did what, when, in which branch.")


def init_app(app) -> None:
    for group in (user_cli, service_cli, counter_cli, branch_cli, token_cli, kiosk_cli, privacy_cli, audit_cli):
        app.cli.add_command(group)


def _ready():
    upgrade_database(current_app._get_current_object())


def _branch(branch_id):
    branch = db.session.get(Branch, branch_id) if branch_id else db.session.scalar(select(Branch).order_by(Branch.id))
    if branch is None:
        raise click.ClickException("No such branch. Start the system once (python run.py) or create one.")
    return branch


def _services(branch, codes: str):
    wanted = [code.strip().upper() for code in codes.split(",") if code.strip()]
    found = {s.code: s for s in branch.services}
    unknown = [code for code in wanted if code not in found]
    if unknown:
        raise click.ClickException(f"Unknown service code(s) at {branch.name}: {', '.join(unknown)}")
    return [found[code] for code in wanted]


@user_cli.command("create")
@click.argument("username")
@click.option("--name", "display_name", help="Name shown in the console (default: the username).")
@click.option("--role", type=click.Choice(StaffUser.ROLES), default="staff", show_default=True)
@click.option("--password", help="Leave out to have one generated and printed once.")
@click.option("--branch", "branch_ids", type=int, multiple=True,
              help="Branch id; repeat for someone working in several (default: the first branch). "
                   "Admins reach every branch.")
def create_user(username, display_name, role, password, branch_ids):
    """Create a staff account."""
    _ready()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{2,40}", username):
        raise click.ClickException("Usernames are 2-40 letters, digits, dots, dashes or underscores.")
    if db.session.scalar(select(StaffUser).where(StaffUser.username == username)):
        raise click.ClickException(f"User {username} exists already.")
    if password is not None and len(password) < auth.MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"Passwords need at least {auth.MIN_PASSWORD_LENGTH} characters.")
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    user = StaffUser(
        username=username,
        display_name=display_name or username,
        role=role,
        branch_id=_branch(branch_ids[0] if branch_ids else None).id if role != "admin" or branch_ids else None,
        created_at=clock.now(),
    )
    user.other_branches = [_branch(extra) for extra in branch_ids[1:]]
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    audit.record("user.created", target=f"user:{username}", branch_id=user.branch_id,
                 detail={"role": role, "branches": user.branch_ids})
    click.echo(f"Created {role} {username}." + (f" Password (shown once): {password}" if generated else ""))


@user_cli.command("set-password")
@click.argument("username")
@click.password_option()
def set_password(username, password):
    """Set a staff account's password."""
    _ready()
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is None:
        raise click.ClickException(f"No user {username}.")
    if len(password) < auth.MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"Passwords need at least {auth.MIN_PASSWORD_LENGTH} characters.")
    auth.set_password(user, password)  # whoever was logged in as this user logs in again
    audit.record("user.password_set", target=f"user:{username}", branch_id=user.branch_id)
    click.echo(f"Password of {username} changed; every session of {username} has ended.")


@service_cli.command("create")
@click.argument("code")
@click.argument("name")
@click.option("--minutes", type=click.IntRange(1, 480), default=5, show_default=True, help="Average service time.")
@click.option("--counters", default="", help="Counters that serve it, e.g. 1,2.")
@click.option("--slot-minutes", type=click.IntRange(5, 480), default=15, show_default=True, help="Appointment slot length.")
@click.option("--capacity", type=click.IntRange(1, 100), default=1, show_default=True, help="Appointments per slot.")
@click.option("--branch", "branch_id", type=int)
def create_service(code, name, minutes, counters, slot_minutes, capacity, branch_id):
    """Create a service; CODE is the ticket prefix letter."""
    _ready()
    code = code.upper()
    if not re.fullmatch(r"[A-Z]", code):
        raise click.ClickException("The code is one letter A-Z: it prefixes the ticket numbers.")
    if not 1 <= len(name.strip()) <= 80:
        raise click.ClickException("The name needs 1-80 characters.")
    branch = _branch(branch_id)
    if any(s.code == code for s in branch.services):
        raise click.ClickException(f"{branch.name} has a service {code} already.")
    by_name = {c.name: c for c in branch.counters}
    wanted = [n.strip() for n in counters.split(",") if n.strip()]
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise click.ClickException(f"Unknown counter(s): {', '.join(missing)}")
    service = Service(branch=branch, code=code, name=name.strip(), avg_service_minutes=minutes,
                      slot_minutes=slot_minutes, slot_capacity=capacity)
    db.session.add(service)
    for counter_name in wanted:
        by_name[counter_name].services.append(service)
    db.session.commit()
    audit.record("settings.changed", target=f"service:{service.id}", branch_id=branch.id, detail={"created": code})
    click.echo(f"Created service {code} ({service.name}) at {branch.name}.")


@service_cli.command("set")
@click.argument("code")
@click.option("--name")
@click.option("--minutes", type=click.IntRange(1, 480), help="Average service time.")
@click.option("--slot-minutes", type=click.IntRange(5, 480), help="Appointment slot length.")
@click.option("--capacity", type=click.IntRange(1, 100), help="Appointments per slot.")
@click.option("--active/--inactive", default=None)
@click.option("--branch", "branch_id", type=int)
def set_service(code, name, minutes, slot_minutes, capacity, active, branch_id):
    """Change a service."""
    _ready()
    branch = _branch(branch_id)
    (service,) = _services(branch, code)
    if name is not None:
        if not 1 <= len(name.strip()) <= 80:
            raise click.ClickException("The name needs 1-80 characters.")
        service.name = name.strip()
    for attr, value in (("avg_service_minutes", minutes), ("slot_minutes", slot_minutes),
                        ("slot_capacity", capacity), ("active", active)):
        if value is not None:
            setattr(service, attr, value)
    db.session.commit()
    audit.record("settings.changed", target=f"service:{service.id}", branch_id=branch.id,
                 detail={"fields": _given(name=name, minutes=minutes, slot_minutes=slot_minutes, capacity=capacity,
                                          active=active)})
    click.echo(f"Saved service {service.code}.")


@service_cli.command("list")
@click.option("--branch", "branch_id", type=int)
def list_services(branch_id):
    """List the branch's services and the counters serving each."""
    _ready()
    branch = _branch(branch_id)
    for s in branch.services:
        state = "" if s.active else " (inactive)"
        counters = ", ".join(c.name for c in s.counters) or "no counter"
        click.echo(f"{s.code}  {s.name}{state}  ~{s.avg_service_minutes} min  counters: {counters}  "
                   f"slots: {s.slot_minutes} min x {s.slot_capacity}")


@counter_cli.command("create")
@click.argument("name")
@click.option("--services", required=True, help="Service codes it serves, e.g. A,B.")
@click.option("--branch", "branch_id", type=int)
def create_counter(name, services, branch_id):
    """Create a counter."""
    _ready()
    branch = _branch(branch_id)
    if not re.fullmatch(r"[\w .-]{1,20}", name):
        raise click.ClickException("Counter names are 1-20 letters, digits, spaces, dots or dashes.")
    if any(c.name == name for c in branch.counters):
        raise click.ClickException(f"{branch.name} has a counter {name} already.")
    counter = Counter(branch=branch, name=name, services=_services(branch, services))
    db.session.add(counter)
    db.session.commit()
    audit.record("settings.changed", target=f"counter:{counter.id}", branch_id=branch.id, detail={"created": name})
    click.echo(f"Created counter {name} at {branch.name}.")


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


def _given(**options) -> list[str]:
    """The settings a command changed, for the audit log (their names: values may be personal)."""
    return sorted(key for key, value in options.items() if value is not None)


def _apply_branch_settings(branch, *, name=None, sender=None, timezone=None, country=None, hours=None):
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise click.ClickException(f"Unknown time zone {timezone!r}; use an IANA name like Europe/Tbilisi.")
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


# --- tokens and kiosks -------------------------------------------------------------------------

def _describe(token, now) -> str:
    reach = "every branch" if token.role == "admin" else "branches " + ",".join(str(b.id) for b in token.branches)
    used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
    until = f" until {token.expires_at:%Y-%m-%d}" if token.expires_at and token.state(now) == "active" else ""
    return (f"{token.id}  {token.name}  {token.role}  {reach}  {token.hint}...  {token.state(now)}{until}  "
            f"last used: {used} UTC")


def _created(make):
    _ready()
    try:
        return make()
    except SeedError as error:
        raise click.ClickException(error.message) from None


@token_cli.command("create")
@click.option("--name", required=True, help="Which system uses it, e.g. 'Booking website'.")
@click.option("--role", type=click.Choice(tokens.ROLES), default="staff", show_default=True)
@click.option("--branch", "branch_ids", type=int, multiple=True, help="A branch it may use; repeat for more.")
@click.option("--expires-days", type=click.IntRange(1, tokens.MAX_EXPIRY_DAYS), help="Leave out: never expires.")
def create_token(name, role, branch_ids, expires_days):
    """Create an API token; it is printed once and cannot be shown again."""
    token, secret = _created(lambda: tokens.create(name, role, branch_ids, expires_days=expires_days))
    audit.token("token.created", token)
    click.echo(f"Created: {_describe(token, clock.now())}")
    click.echo(f"Token (shown once; send it as 'Authorization: Bearer <token>'): {secret}")


@token_cli.command("list")
def list_tokens():
    """List API tokens (never their secrets)."""
    _ready()
    now = clock.now()
    for token in tokens.listing(kiosks=False):
        click.echo(_describe(token, now))


def _revoke(token_id, kiosk):
    _ready()
    try:
        token = tokens.revoke(token_id, kiosk=kiosk)
    except SeedError as error:
        raise click.ClickException(error.message) from None
    audit.token("kiosk.revoked" if kiosk else "token.revoked", token)
    click.echo(f"Revoked: {_describe(token, clock.now())}")


@token_cli.command("revoke")
@click.argument("token_id", type=int)
def revoke_token(token_id):
    """Revoke an API token: its next request is refused."""
    _revoke(token_id, kiosk=False)


@kiosk_cli.command("create")
@click.option("--branch", "branch_id", type=int, required=True)
@click.option("--name", required=True, help="Where it stands, e.g. 'Entrance'.")
@click.option("--url", help="The address kiosks open Seed at, e.g. http://192.168.1.10:5000: prints the "
                            "whole setup link and its QR code.")
def create_kiosk(branch_id, name, url):
    """Register a kiosk; its setup link is printed once."""
    kiosk, secret = _created(lambda: tokens.create_kiosk(branch_id, name))
    audit.token("kiosk.registered", kiosk)
    # After '#': a browser never sends it, so the token stays out of access logs.
    link = f"{(url or '').rstrip('/')}/kiosk/{branch_id}#setup={secret}"
    click.echo(f"Registered: {_describe(kiosk, clock.now())}")
    click.echo(f"Setup link (shown once; open it on the kiosk{'' if url else ' after the address of Seed'}): {link}")
    if url:
        import segno

        segno.make(link, error="m").terminal(compact=True)


@kiosk_cli.command("list")
def list_kiosks():
    """List registered kiosks."""
    _ready()
    now = clock.now()
    for kiosk in tokens.listing(kiosks=True):
        click.echo(_describe(kiosk, now))


@kiosk_cli.command("revoke")
@click.argument("kiosk_id", type=int)
def revoke_kiosk(kiosk_id):
    """Revoke a kiosk's registration: it shares the limit of its address again."""
    _revoke(kiosk_id, kiosk=True)


# --- personal data and the audit log -----------------------------------------------------------

# Whoever runs the command line owns the installation: it reaches every branch (core/scope.py).
OPERATOR = SimpleNamespace(is_authenticated=True, role="admin", branch_ids=[])


def _person(call):
    _ready()
    try:
        return call()
    except SeedError as error:
        raise click.ClickException(error.message) from None


@privacy_cli.command("export")
@click.argument("phone")
@click.option("--output", type=click.File("w", encoding="utf-8"), default="-", help="A file (default: the terminal).")
def export_person(phone, output):
    """Everything held about PHONE (international form, +995...) as JSON."""
    found = _person(lambda: privacy.export(phone, OPERATOR))
    json.dump(found, output, ensure_ascii=False, indent=2)
    output.write("\n")
    audit.record("data.exported", target=privacy.target(found["phone"]),
                 detail={key: len(rows) for key, rows in found.items() if isinstance(rows, list) and rows})


@privacy_cli.command("erase")
@click.argument("phone")
@click.option("--yes", is_flag=True, help="Erase without asking.")
def erase_person(phone, yes):
    """Erase PHONE everywhere: its texts, tickets, appointments, surveys; queued texts are cancelled."""
    held = _person(lambda: privacy.summary(phone, OPERATOR))
    click.echo("Held: " + ", ".join(f"{key} {count}" for key, count in held.items() if count))
    if not yes:
        click.confirm(f"Erase everything about {privacy.masked(phone)}? It cannot be undone", abort=True)
    erased = _person(lambda: privacy.erase(phone, OPERATOR))
    audit.record("data.erased", target=privacy.target(phone), detail=erased)
    click.echo("Erased: " + (", ".join(f"{key} {count}" for key, count in erased.items()) or "nothing"))


@privacy_cli.command("anonymise")
def anonymise_now():
    """Run the retention job once now (it also runs by itself in the scheduler)."""
    done = _person(privacy.anonymise)
    if done:
        audit.record("data.anonymised", detail=done)
    click.echo("Anonymised: " + (", ".join(f"{key} {count}" for key, count in done.items()) or "nothing due"))


@audit_cli.command("list")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="First day (UTC), e.g. 2026-03-01.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Last day (UTC).")
@click.option("--action", type=click.Choice(audit.ACTIONS))
@click.option("--branch", "branch_id", type=int)
@click.option("--limit", type=click.IntRange(1, audit.CSV_LIMIT), default=50, show_default=True)
@click.option("--csv", "as_csv", is_flag=True, help="CSV (UTF-8 with BOM) instead of lines.")
def list_audit(since, until, action, branch_id, limit, as_csv):
    """The newest entries first."""
    _ready()
    statement = audit.query(since=since and since.date(), until=until and until.date(), action=action,
                            branch_id=branch_id, user=OPERATOR)
    entries, _older = audit.page(statement, limit=limit)
    if as_csv:
        click.echo(audit.to_csv(entries), nl=False)
        return
    for e in entries:
        click.echo(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.actor}  {e.role or '-'}  branch {e.branch_id or '-'}  {e.action}  "
                   f"{e.target or '-'}  {json.dumps(e.detail, ensure_ascii=False)}")
