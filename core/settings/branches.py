"""Branch settings: name, sender name, time zone, country, languages, opening hours, branding,
and closures (holidays). The pages, the JSON API and `flask branch ...` call these same functions
with a dict of strings (a form, the command line) or typed values (JSON): every field is checked
first and all errors come back at once; then everything changes in one commit, or nothing does."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import phonenumbers
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from .. import audit, clock, zones
from ..database import write_transaction
from ..errors import NotFound, ValidationError
from ..extensions import db
from ..models import Branch, Closure
from ..seed import WEEKDAYS
from ..web import MAX_ID
from ..web import day as read_day
from . import FieldErrors, branding
from .fields import NOT_ONE_LINE, unknown

LANGUAGES = ("en", "ja", "ka")
FIELDS = ("name", "sender_name", "timezone", "country", "language", "languages", "opening_hours", "show_names",
          "primary", "accent", "logo")
IGNORED = ("id", "closures", "branch")  # what GET returns and a client may send back unchanged
MAX_RANGES = 4  # opening ranges per weekday (a lunch break makes two)
MAX_CLOSURE_DAYS = 366
COUNTRIES = frozenset(region for region in phonenumbers.SUPPORTED_REGIONS if region.isalpha())
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])(?::00)?")
_HOURS_PART = re.compile(r"([a-z]{3})(?:-([a-z]{3}))?((?:\s+\S+-\S+)+|\s+closed)")
TRUE, FALSE = ("1", "on", "true", "yes"), ("", "0", "off", "false", "no")


# --- reading one field -------------------------------------------------------------------------

def _text(value, field, limit, errors, *, required=True):
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.add(field, _("This field is required."))
        return ""
    if not isinstance(value, str):
        errors.add(field, _("This field takes text."))
    elif len(value.strip()) > limit:
        errors.add(field, _("Use 1-%(limit)s characters.", limit=limit) if required
                   else _("At most %(limit)s characters.", limit=limit))
    elif NOT_ONE_LINE.search(value):
        errors.add(field, _("One line of text, without control characters."))
    else:
        return value.strip()
    return None


def _timezone(value, errors):
    if zones.is_zone(value):
        return value
    close = zones.suggestions(value) if isinstance(value, str) else []
    if close:
        errors.add("timezone", _("Unknown time zone %(zone)s. Did you mean %(close)s?", zone=str(value)[:64],
                                 close=_(" or ").join(close)))
    else:
        errors.add("timezone", _("Unknown time zone %(zone)s: choose one from the list, e.g. Asia/Tbilisi.",
                                 zone=str(value)[:64]))
    return None


def _country(value, errors):
    code = value.strip().upper() if isinstance(value, str) else None
    if code in COUNTRIES:
        return code
    errors.add("country", _("Give the country as a two-letter ISO code, e.g. GE, JP or GB."))
    return None


def _languages(value, errors):
    items = [part.strip() for part in value.split(",")] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        errors.add("languages", _("Choose the languages from en, ja and ka."))
        return None
    chosen = list(dict.fromkeys(item for item in items if item))
    if not chosen:
        errors.add("languages", _("The kiosk needs at least one language."))
    elif any(item not in LANGUAGES for item in chosen):
        errors.add("languages", _("Choose the languages from en, ja and ka."))
    else:
        return chosen
    return None


def _flag(value, field, errors):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
        return value.strip().lower() in TRUE
    errors.add(field, _("Either on or off."))
    return None


def _colour(value, field, errors):
    """"#rrggbb", or empty for the default colours."""
    if value is None or value == "":
        return ""
    if isinstance(value, str) and _COLOUR.fullmatch(value.strip()):
        return value.strip().lower()
    errors.add(field, _("A colour is written #rrggbb, e.g. #1d4ed8."))
    return None


def _clock_time(value, closing=False):
    """"HH:MM" (also "9:00" and "09:00:00", as time inputs send them); "24:00" only as a closing time."""
    if closing and value == "24:00":
        return value
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    return f"{int(match[1]):02d}:{match[2]}" if match else None


def parse_hours(text: str, errors: FieldErrors) -> dict | None:
    """'mon-fri 09:00-12:00 13:00-17:00; sat 10:00-13:00; sun closed' -> {"mon": [[...], [...]], ...}"""
    hours: dict = {}
    for part in filter(None, (p.strip() for p in text.lower().split(";"))):
        match = _HOURS_PART.fullmatch(part)
        days = _day_span(match[1], match[2] or match[1]) if match else None
        if not days:
            errors.add("opening_hours", _("Cannot read hours “%(part)s”: write e.g. mon-fri 09:00-17:00.",
                                          part=part[:40]))
            return None
        ranges = [] if match[3].strip() == "closed" else [r.split("-", 1) for r in match[3].split()]
        for weekday in days:
            hours[weekday] = hours.get(weekday, []) + ranges
    return hours


def _day_span(first: str, last: str) -> tuple[str, ...]:
    """mon..fri as the days between; empty for an unknown day or a span that runs backwards."""
    if first not in WEEKDAYS or last not in WEEKDAYS:
        return ()
    return WEEKDAYS[WEEKDAYS.index(first):WEEKDAYS.index(last) + 1]


def _hours(value, errors):
    """{"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "sat": [], ...}: a day missing or empty
    is closed. Ranges come back sorted; they must not overlap."""
    if isinstance(value, str):
        value = parse_hours(value, errors)
        if value is None:
            return None
    if not isinstance(value, dict):
        errors.add("opening_hours", _("Opening hours are given per weekday: mon, tue, wed, thu, fri, sat, sun."))
        return None
    result = {}
    for weekday, ranges in value.items():
        if weekday not in WEEKDAYS:
            errors.add("opening_hours", _("Opening hours are given per weekday: mon, tue, wed, thu, fri, sat, sun."))
            continue
        day_hours = _day_hours(ranges, f"opening_hours.{weekday}", errors)
        if day_hours:
            result[weekday] = day_hours
    return {weekday: result[weekday] for weekday in WEEKDAYS if weekday in result}


def _day_hours(ranges, field, errors):
    if ranges is None:
        return []
    if not isinstance(ranges, list) or not all(isinstance(r, (list, tuple)) and len(r) == 2 for r in ranges):
        errors.add(field, _("Give each opening as an opening and a closing time, e.g. 09:00 and 17:00."))
        return None
    if len(ranges) > MAX_RANGES:
        errors.add(field, _("At most %(count)s openings a day.", count=MAX_RANGES))
        return None
    parsed = []
    for opens, closes in ranges:
        start, end = _clock_time(opens), _clock_time(closes, closing=True)
        if start is None or end is None:
            errors.add(field, _("Write times as HH:MM, e.g. 09:00."))
            return None
        if start >= end:
            errors.add(field, _("%(opens)s to %(closes)s: opening must come before closing.", opens=start, closes=end))
            return None
        parsed.append([start, end])
    parsed.sort()
    for before, after in zip(parsed, parsed[1:]):
        if after[0] < before[1]:
            errors.add(field, _("%(first)s and %(second)s overlap.", first="–".join(before), second="–".join(after)))
            return None
    return parsed


# --- the whole form ----------------------------------------------------------------------------

def _flatten(data: dict) -> dict:
    """The JSON shape ({"branding": {"primary", "accent", "logo"}}) as flat fields."""
    data = dict(data)
    given = data.pop("branding", None)
    if isinstance(given, dict):
        for key in ("primary", "accent"):
            if key in given:
                data.setdefault(key, given[key])
        if "logo" in given and given["logo"] is None:
            data.setdefault("logo", None)  # null removes it; the current name sent back is no change
    elif given is not None:
        data["branding"] = given  # refused in _read
    return data


def _read(data: dict, current: Branch | None, errors: FieldErrors) -> dict:
    """The checked new values of the fields `data` gives (attribute -> value); errors collected."""
    data = _flatten(data)
    for key in data:
        if key == "branding":  # not an object: _flatten left it
            errors.add("branding", _("Branding takes a main colour (primary), an accent colour (accent) and a logo."))
        elif key not in FIELDS and key not in IGNORED:
            unknown(errors, key)
    values = {}
    readers = {
        "name": lambda v: _text(v, "name", 80, errors),
        "sender_name": lambda v: _text(v, "sender_name", 40, errors),
        "timezone": lambda v: _timezone(v, errors),
        "country": lambda v: _country(v, errors),
        "languages": lambda v: _languages(v, errors),
        "opening_hours": lambda v: _hours(v, errors),
        "show_names": lambda v: _flag(v, "show_names", errors),
        "primary": lambda v: _colour(v, "primary", errors),
        "accent": lambda v: _colour(v, "accent", errors),
    }
    for key, read in readers.items():
        if key in data:
            values[key] = read(data[key])
    if "language" in data:
        values["default_language"] = data["language"] if data["language"] in LANGUAGES else None
        if values["default_language"] is None:
            errors.add("language", _("Choose the language from en, ja and ka."))
    if "logo" in data:
        values["logo"] = _logo(data["logo"], errors)
    _agree(values, current, errors)
    return values


def _logo(value, errors):
    """None removes the logo; bytes (or a data URL) are a new one."""
    if value is None:
        return None
    raw = branding.as_bytes(value)
    reason = branding.problem(raw) if raw is not None else _("Upload a PNG or JPEG file.")
    if reason:
        errors.add("logo", reason)
    return raw


def _agree(values: dict, current: Branch | None, errors: FieldErrors) -> None:
    """The default language must be one the kiosk offers."""
    language = values.get("default_language", current.default_language if current else None)
    offered = values.get("languages", current.languages if current else None)
    if language and offered and language not in offered:
        errors.add("language" if "default_language" in values else "languages",
                   _("The default language must be one of the languages the kiosk offers."))


def defaults() -> dict:
    """A new branch's settings where nothing is said: the configured zone, country and language,
    Monday to Friday 09:00-17:00, every language on the kiosk."""
    config = current_app.config
    language = config["DEFAULT_LANGUAGE"] if config["DEFAULT_LANGUAGE"] in LANGUAGES else "en"
    return {"timezone": config["DEFAULT_TIMEZONE"], "country": config["DEFAULT_COUNTRY"], "language": language,
            "languages": list(LANGUAGES), "opening_hours": {d: [["09:00", "17:00"]] for d in WEEKDAYS[:5]},
            "show_names": False}


def _with_defaults(data: dict) -> dict:
    """`data` with the defaults where it gives nothing (an empty form field is nothing), and the
    branch's name as its sender name when that fits."""
    filled = defaults()
    if isinstance(data.get("name"), str) and len(data["name"].strip()) <= 40:
        filled["sender_name"] = data["name"]
    given = {key: value for key, value in data.items()
             if key == "logo" or not (value is None or isinstance(value, str) and not value.strip())}
    return {**filled, **given}


def create(data: dict) -> Branch:
    """A new branch; what `data` leaves out comes from defaults(). Who may: the caller decides (admins)."""
    errors = FieldErrors()
    data = _with_defaults(data)
    values = _read(data, None, errors)
    for required in ("name", "sender_name"):
        if required not in data:
            errors.add(required, _("This field is required."))
    errors.raise_if_any(_("The branch was not created: please correct the fields marked."))
    branch = Branch(created_at=clock.now(), branding={}, messaging={})
    stored = None
    try:
        with write_transaction() as session:
            session.add(branch)
            stored = _apply(branch, values)
    except BaseException:
        branding.discard(stored)
        raise
    audit.record("settings.changed", target=f"branch:{branch.id}", branch_id=branch.id, detail={"created": True})
    return branch


def update(branch: Branch, data: dict) -> Branch:
    """Change the fields `data` gives; the rest stay as they are."""
    errors = FieldErrors()
    values = _read(data, branch, errors)
    errors.raise_if_any(_("Nothing was changed: please correct the fields marked."))
    before = dict(branch.branding or {}).get("logo")
    changed = sorted(key for key, value in values.items() if _differs(branch, key, value))
    stored = None
    try:
        with write_transaction():
            stored = _apply(branch, values)
    except BaseException:
        if stored != before:
            branding.discard(stored)
        raise
    if "logo" in values and before != (branch.branding or {}).get("logo"):
        branding.discard(before)
    if changed:
        audit.record("settings.changed", target=f"branch:{branch.id}", branch_id=branch.id, detail={"fields": changed})
    return branch


def _differs(branch: Branch, key: str, value) -> bool:
    if key in ("primary", "accent"):
        return (branch.branding or {}).get(key, "") != value
    if key == "logo":
        return value is not None or bool((branch.branding or {}).get("logo"))
    return getattr(branch, key) != value


def _apply(branch: Branch, values: dict) -> str | None:
    """Set the checked values; a new logo is written now (its name is returned, so that a failed
    commit can remove it again)."""
    look = dict(branch.branding or {})
    stored = None
    for key, value in sorted(values.items(), key=lambda item: item[0] == "logo"):  # the logo last
        if key in ("primary", "accent") and value == "":
            look.pop(key, None)  # back to the default colour
        elif key in ("primary", "accent"):
            look[key] = value
        elif key == "logo":
            if value is None:
                look.pop("logo", None)
            else:
                if branch.id is None:
                    db.session.flush()  # a new branch: its id names the file
                stored = look["logo"] = branding.store(branch.id, value)
        else:
            setattr(branch, key, value)
    branch.branding = look  # a new dict: the JSON column sees the change
    return stored


# --- closures ----------------------------------------------------------------------------------

def _date(value, field, errors):
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return read_day(value, field)
    except ValidationError:
        errors.add(field, _("Give a date as YYYY-MM-DD."))
        return None


def add_closure(branch: Branch, first_day, last_day=None, message="") -> Closure:
    """Closed from first_day to last_day, both included (one day when last_day is left out)."""
    errors = FieldErrors()
    first = _date(first_day, "first_day", errors)
    last = first if last_day in (None, "") else _date(last_day, "last_day", errors)
    if first and last and last < first:
        errors.add("last_day", _("The last day cannot come before the first."))
    elif first and last and (last - first).days + 1 > MAX_CLOSURE_DAYS:
        errors.add("last_day", _("A closure lasts at most %(days)s days.", days=MAX_CLOSURE_DAYS))
    text = _text(message, "message", 200, errors, required=False)
    errors.raise_if_any(_("The closure was not added: please correct the fields marked."))
    with write_transaction() as session:
        closure = Closure(branch_id=branch.id, first_day=first, last_day=last, message=text, created_at=clock.now())
        session.add(closure)
    audit.record("settings.changed", target=f"branch:{branch.id}", branch_id=branch.id,
                 detail={"closure_added": closure.id, "first_day": first.isoformat(), "last_day": last.isoformat()})
    return closure


def remove_closure(branch: Branch, closure_id) -> None:
    with write_transaction() as session:
        closure = session.get(Closure, closure_id) if isinstance(closure_id, int) and 0 < closure_id <= MAX_ID else None
        if closure is None or closure.branch_id != branch.id:
            raise NotFound(_("Closure %(id)s does not exist.", id=closure_id))
        days = {"first_day": closure.first_day.isoformat(), "last_day": closure.last_day.isoformat()}
        session.delete(closure)
    audit.record("settings.changed", target=f"branch:{branch.id}", branch_id=branch.id,
                 detail={"closure_removed": closure_id, **days})


def closures(branch: Branch) -> list[Closure]:
    return db.session.scalars(select(Closure).where(Closure.branch_id == branch.id)
                              .order_by(Closure.first_day, Closure.id)).all()


def is_closed(branch: Branch, day: date) -> Closure | None:
    """The closure that covers this branch-local day, if any."""
    return db.session.scalar(select(Closure).where(Closure.branch_id == branch.id, Closure.last_day >= day,
                                                   Closure.first_day <= day).order_by(Closure.first_day).limit(1))


def closed_days(branch: Branch, first: date, last: date) -> set[date]:
    """The branch-local days from first to last (included) that a closure covers: one query."""
    found = set()
    for closure in db.session.scalars(select(Closure).where(Closure.branch_id == branch.id,
                                                            Closure.last_day >= first, Closure.first_day <= last)):
        day = max(first, closure.first_day)
        while day <= min(last, closure.last_day):
            found.add(day)
            day += timedelta(days=1)
    return found


def open_on(branch: Branch, moment: datetime) -> bool:
    """Whether the branch is open at this moment: not a closed day, and within that weekday's
    hours. A moment without a zone is read as the branch's wall clock."""
    local = moment.replace(tzinfo=branch.zone) if moment.tzinfo is None else branch.local(moment)
    if is_closed(branch, local.date()) is not None:
        return False
    now = local.time()
    for opens, closes in (branch.opening_hours or {}).get(WEEKDAYS[local.weekday()], []):
        if _as_time(opens) <= now and (closes == "24:00" or now < _as_time(closes)):
            return True
    return False


def _as_time(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


# --- what the API and the pages show ------------------------------------------------------------

def closure_dict(closure: Closure) -> dict:
    return {"id": closure.id, "first_day": closure.first_day.isoformat(), "last_day": closure.last_day.isoformat(),
            "message": closure.message}


def as_dict(branch: Branch) -> dict:
    return {"id": branch.id, "name": branch.name, "sender_name": branch.sender_name, "timezone": branch.timezone,
            "country": branch.country, "language": branch.default_language, "languages": list(branch.languages or []),
            "opening_hours": branch.opening_hours or {}, "show_names": branch.show_names,
            "branding": dict(branch.branding or {}), "closures": [closure_dict(c) for c in closures(branch)]}
