"""A branch's texts: which ones it sends and the policy they obey. The defaults are
MESSAGING_DEFAULTS in core/config.py; a branch's own choices are kept in Branch.messaging.
The texts page, PUT /api/v1/admin/texts and `flask branch texts` all change them through update().

Values arrive as the command line and forms give them (strings: "off", "20", "21:30", "1440, 120")
or as JSON gives them (false, 20, [1440, 120]); each key's rule reads both. Reminder lead times
are a list, which the command line once read as a time of day: no value could be given."""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext

from .. import audit
from ..database import write_transaction
from ..models import Branch
from . import FieldErrors
from .fields import read_switch, read_whole, require_object, unknown

SWITCH, NUMBER, TIME, MINUTES = "switch", "number", "time", "minutes"
CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
MAX_REMINDERS = 4  # more would be nagging; each is one more text per appointment
WEEK = 7 * 24 * 60


@dataclass(frozen=True)
class Rule:
    kind: str
    low: int = 0
    high: int = 0


# One rule per key of MESSAGING_DEFAULTS (a test holds the two in step).
RULES = {
    "welcome": Rule(SWITCH), "position": Rule(SWITCH), "next": Rule(SWITCH), "called": Rule(SWITCH),
    "no_show": Rule(SWITCH), "survey": Rule(SWITCH),
    "position_threshold": Rule(NUMBER, 1, 20),  # people ahead; "you're next" covers the last one
    "survey_delay_minutes": Rule(NUMBER, 0, WEEK),
    "survey_dedupe_days": Rule(NUMBER, 0, 365),
    "daily_cap": Rule(NUMBER, 1, 100),
    "duplicate_seconds": Rule(NUMBER, 0, 3600),
    "quiet_start": Rule(TIME), "quiet_end": Rule(TIME),
    "reminder_lead_minutes": Rule(MINUTES, 10, 2 * WEEK),
}


class _Refused(Exception):
    """One value that its rule cannot read; the message is the field's error."""


def _switch(raw, rule: Rule) -> bool:
    value = read_switch(raw)
    if value is None:
        raise _Refused(gettext("Choose on or off."))
    return value


def _whole(raw, rule: Rule, message: str | None = None) -> int:
    value = read_whole(raw, rule.low, rule.high)
    if value is None:
        raise _Refused(message or gettext("Give a whole number from %(low)s to %(high)s.", low=rule.low,
                                          high=rule.high))
    return value


def _time(raw, rule: Rule) -> str:
    found = CLOCK.fullmatch(raw.strip()) if isinstance(raw, str) else None
    if found is None:
        raise _Refused(gettext("Give a time of day as hours and minutes, for example 20:00."))
    return f"{int(found.group(1)):02d}:{found.group(2)}"


def _minutes(raw, rule: Rule) -> list[int]:
    """Lead times, longest first; none at all means no reminders."""
    message = gettext("Give minutes before the appointment as whole numbers from %(low)s to %(high)s, "
                      "separated by commas, for example 1440, 120.", low=rule.low, high=rule.high)
    if isinstance(raw, str):
        raw = [part for part in re.split(r"[\s,]+", raw.strip()) if part]
    if not isinstance(raw, list):
        raise _Refused(message)
    values = [_whole(item, rule, message) for item in raw]
    if len(values) > MAX_REMINDERS:
        raise _Refused(gettext("At most %(count)s reminders per appointment.", count=MAX_REMINDERS))
    if len(set(values)) != len(values):
        raise _Refused(gettext("Give each lead time once."))
    return sorted(values, reverse=True)


READERS = {SWITCH: _switch, NUMBER: _whole, TIME: _time, MINUTES: _minutes}


def current(branch: Branch) -> dict:
    """Every setting as the branch has it: its own choice, else the default."""
    own = branch.messaging or {}
    return {key: own.get(key, default) for key, default in current_app.config["MESSAGING_DEFAULTS"].items()}


def validate(changes) -> dict:
    """The changes read by their rules; every refused value gets its field's error, all at once."""
    known = current_app.config["MESSAGING_DEFAULTS"]
    errors, clean = FieldErrors(), {}
    for key, raw in require_object(changes).items():
        rule = RULES.get(key) if key in known else None
        if rule is None:
            unknown(errors, key)
            continue
        try:
            clean[key] = READERS[rule.kind](raw, rule)
        except _Refused as refused:
            errors.add(key, str(refused))
    errors.raise_if_any()
    return clean


def update(branch: Branch, changes) -> dict:
    """Apply `changes` (all or nothing) and record what really changed; the settings after."""
    clean = validate(changes)
    with write_transaction() as session:
        row = session.get(Branch, branch.id, with_for_update=True)
        before = current(row)
        changed = {key: value for key, value in clean.items() if before[key] != value}
        if changed:
            row.messaging = {**(row.messaging or {}), **changed}  # a new dict: the JSON column sees the change
    if changed:
        audit.record("settings.changed", target=f"branch:{row.id}", branch_id=row.id, detail={"texts": changed})
    return current(row)
