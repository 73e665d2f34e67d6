"""A branch's services: the ticket letter, the name in each language, the expected minutes, the
target wait, the starting priority, the counters serving it, its place on the kiosk, taking
tickets or paused, and its appointment slots. The services page, /api/v1/admin/services and
`flask service` all change them through create(), update() and move().

Values arrive as JSON gives them (5, true, [1, 2]) or as forms and the command line give them
("5", "on", ["1", "2"]); each rule reads both. An update changes only the fields it is given.

The code prefixes the ticket numbers (A001 is service A's first ticket today) and a label is
unique per branch and day. So a code may change only while the service has no ticket today:
other days' tickets keep their labels, and two services never number into one letter on a day.
"""
from __future__ import annotations

import re

from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import audit, clock
from ..database import write_transaction
from ..errors import ValidationError
from ..extensions import db
from ..models import Branch, Counter, Service, Ticket
from ..language import LANGUAGE_NAMES
from ..storefront import LANGUAGES
from . import FieldErrors
from .fields import as_object, chosen, one_line, switch, whole

CODE = re.compile(r"[A-Za-z]")  # ASCII only: "ı".upper() is "I"
NAME_LENGTH = 80
POSITION_STEP = 10  # room to put a service between two others by hand

# The whole numbers a service has, and their bounds.
NUMBERS = {
    "avg_service_minutes": (1, 480),
    "target_wait_minutes": (1, 480),
    "priority": (0, 9),  # a ticket's starting priority; higher is called first
    "position": (0, 999),  # kiosk order, smallest first, then the code
    "slot_minutes": (5, 480),
    "slot_capacity": (1, 100),
}
FIELDS = ("code", "name", "names", *NUMBERS, "active", "counters")
READ_ONLY = ("id", "branch")  # shown by describe(), so a client may send a service back as it got it
DEFAULTS = {"avg_service_minutes": 5, "target_wait_minutes": 15, "priority": 0, "slot_minutes": 15,
            "slot_capacity": 1, "active": True}


# --- what a service is ------------------------------------------------------------------------

def name_languages(branch: Branch) -> list[str]:
    """The languages a service is named in: the branch's default first, then the kiosk's others."""
    offered = [lang for lang in (branch.languages or ()) if lang in LANGUAGES]
    return list(dict.fromkeys([branch.default_language, *offered]))


def in_kiosk_order(branch: Branch) -> list[Service]:
    return db.session.scalars(
        select(Service).where(Service.branch_id == branch.id).order_by(Service.position, Service.code)
    ).all()


def describe(service: Service) -> dict:
    """A service as the JSON API shows it, and as create() and update() read it back."""
    return {
        "id": service.id, "branch": service.branch_id, "code": service.code, "name": service.name,
        "names": dict(service.names or {}), **{key: getattr(service, key) for key in NUMBERS},
        "active": service.active, "counters": sorted(c.id for c in service.counters),
    }


def code_locked(service: Service, session=None) -> bool:
    """Whether the service has a ticket today (the branch's day): its code cannot change until tomorrow."""
    session = session or db.session
    today = service.branch.local_date(clock.now())
    # "service_id + 0": SQLite, which keeps no statistics here, would otherwise look the
    # service's every ticket up in ix_ticket_service_arrived rather than the branch's tickets of
    # today in the (branch, day, label) one; the unary + keeps that term out of index choice.
    return session.scalar(select(Ticket.id).where(
        Ticket.branch_id == service.branch_id, Ticket.service_day == today, Ticket.service_id + 0 == service.id,
    ).limit(1)) is not None


def _taken_message(branch: Branch, code: str) -> str:
    return gettext("%(branch)s has a service %(code)s already.", branch=branch.name, code=code)


def _code(errors, session, branch, service, raw) -> str | None:
    text = raw.strip() if isinstance(raw, str) else ""
    if not CODE.fullmatch(text):
        errors.add("code", gettext("The code is one letter A-Z: it prefixes the ticket numbers."))
        return None
    code = text.upper()
    if service is not None and code == service.code:
        return code
    if session.scalar(select(Service.id).where(Service.branch_id == branch.id, Service.code == code)) is not None:
        errors.add("code", _taken_message(branch, code))
    elif service is not None and code_locked(service, session):
        errors.add("code", gettext("Service %(code)s has tickets today: its code can change tomorrow, "
                                   "before the first ticket.", code=service.code))
    return code


def _names(errors, branch, current: dict, data: dict) -> dict:
    """The names after the change: given ones replace, empty ones are removed, others are kept.
    "name" alone is the default language's name."""
    raw = data.get("names", {})
    if not isinstance(raw, dict):
        errors.add("names", gettext("Give the names as an object of languages and names."))
        return current
    raw = dict(raw)
    if "name" in data and branch.default_language not in raw:
        raw[branch.default_language] = data["name"]
    names = dict(current)
    for language, value in raw.items():
        key = f"names.{str(language)[:10]}"
        if language not in LANGUAGES:
            errors.add(key, gettext("Names can be given in %(languages)s.", languages=", ".join(LANGUAGES)))
        elif value is None or (isinstance(value, str) and not value.strip()):
            names.pop(language, None)
        elif (name := one_line(errors, key, value, NAME_LENGTH)) is not None:
            names[language] = name
    default = branch.default_language
    if not names.get(default) and f"names.{default}" not in errors:
        errors.add(f"names.{default}", gettext("Give the name in %(language)s, the branch's language.",
                                               language=LANGUAGE_NAMES.get(default, default)))
    return names


def _validated(session, branch: Branch, service: Service | None, data: dict) -> tuple[dict, list | None]:
    """Every field read at once: (the new values by attribute, the counters or None if not given)."""
    errors, values = FieldErrors(), {}
    if service is None or "code" in data:
        values["code"] = _code(errors, session, branch, service, data.get("code"))
    if service is None or "names" in data or "name" in data:
        values["names"] = _names(errors, branch, dict(service.names or {}) if service else {}, data)
        values["name"] = values["names"].get(branch.default_language)
    for key, (low, high) in NUMBERS.items():
        if key in data:
            values[key] = whole(errors, key, data[key], low, high)
    if "active" in data:
        values["active"] = switch(errors, "active", data["active"])
    counters = None
    if "counters" in data:
        mine = {c.id: c for c in session.scalars(select(Counter).where(Counter.branch_id == branch.id))}
        counters = chosen(errors, "counters", data["counters"], mine, gettext("Choose counters of this branch."))
    errors.raise_if_any()
    return values, counters


def _refuse_if_code_taken(branch: Branch, code) -> None:
    """After a unique violation: the same code created meanwhile by someone else is a field error."""
    code = code.strip().upper() if isinstance(code, str) else None
    if code and db.session.scalar(select(Service.id).where(Service.branch_id == branch.id, Service.code == code)):
        message = _taken_message(branch, code)
        raise ValidationError(message, {"code": message}) from None


# --- changes ----------------------------------------------------------------------------------

def create(branch: Branch, data) -> Service:
    data = as_object(data, FIELDS, READ_ONLY)
    try:
        with write_transaction() as session:
            branch = session.get(Branch, branch.id)
            values, counters = _validated(session, branch, None, data)
            if "position" not in data:
                last = session.scalar(select(func.max(Service.position)).where(Service.branch_id == branch.id))
                values["position"] = min(NUMBERS["position"][1], (last or 0) + POSITION_STEP)
            service = Service(branch_id=branch.id, **{**DEFAULTS, **values})
            service.counters = counters or []
            session.add(service)
            session.flush()
            service_id, code = service.id, service.code
    except IntegrityError:
        _refuse_if_code_taken(branch, data.get("code"))
        raise
    audit.record("settings.changed", target=f"service:{service_id}", branch_id=branch.id,
                 detail={"service": code, "created": True})
    return db.session.get(Service, service_id)


def update(service: Service, data) -> Service:
    """Change the fields given; nothing at all when one of them is refused."""
    data = as_object(data, FIELDS, READ_ONLY)
    try:
        with write_transaction() as session:
            row = session.get(Service, service.id, with_for_update=True)
            values, counters = _validated(session, row.branch, row, data)
            changed = sorted(key for key, value in values.items() if getattr(row, key) != value)
            for key in changed:
                setattr(row, key, values[key])
            if counters is not None and set(counters) != set(row.counters):
                row.counters = counters
                changed.append("counters")
            branch, code = row.branch, row.code
    except IntegrityError:
        _refuse_if_code_taken(service.branch, data.get("code"))
        raise
    if changed:
        audit.record("settings.changed", target=f"service:{service.id}", branch_id=branch.id,
                     detail={"service": code, "fields": changed})
    return db.session.get(Service, service.id)


def move(service: Service, step: int) -> None:
    """One place earlier (-1) or later (+1) on the kiosk. Positions are renumbered in steps of
    POSITION_STEP, so services that shared a position get a distinct one."""
    with write_transaction() as session:
        rows = session.scalars(select(Service).where(Service.branch_id == service.branch_id)
                               .order_by(Service.position, Service.code).with_for_update()).all()
        here = next(i for i, row in enumerate(rows) if row.id == service.id)
        there = here + step
        if not 0 <= there < len(rows):
            return
        rows[here], rows[there] = rows[there], rows[here]
        for place, row in enumerate(rows, start=1):
            row.position = place * POSITION_STEP
        code = rows[there].code
    audit.record("settings.changed", target=f"service:{service.id}", branch_id=service.branch_id,
                 detail={"service": code, "fields": ["position"]})
