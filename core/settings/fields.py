"""Reading one settings field. Values arrive as JSON gives them (5, true, [1, 2]) or as forms and
the command line give them ("5", "on", ["1", "2"]); each reader takes both. The readers that take
a FieldErrors add the field's message there and return None, so a caller reads every field before
refusing them all at once."""
from __future__ import annotations

import re

from flask_babel import gettext

from ..errors import ValidationError
from . import FieldErrors

DIGITS = re.compile(r"[0-9]{1,9}")
NOT_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")  # controls, line breaks, surrogates
ON_OFF = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}
MAX_CHOICES = 100  # ids in one list: more than a branch has


def read_whole(raw, low: int, high: int) -> int | None:
    """A whole number from `low` to `high` (digits in a string count), else None."""
    if isinstance(raw, str) and DIGITS.fullmatch(raw.strip()):
        raw = int(raw.strip())
    if isinstance(raw, int) and not isinstance(raw, bool) and low <= raw <= high:
        return raw
    return None


def read_switch(raw) -> bool | None:
    """True or False, or one of the words of ON_OFF; else None."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ON_OFF:
        return ON_OFF[raw.strip().lower()]
    return None


def whole(errors: FieldErrors, key: str, raw, low: int, high: int) -> int | None:
    value = read_whole(raw, low, high)
    if value is None:
        errors.add(key, gettext("Give a whole number from %(low)s to %(high)s.", low=low, high=high))
    return value


def switch(errors: FieldErrors, key: str, raw) -> bool | None:
    value = read_switch(raw)
    if value is None:
        errors.add(key, gettext("Choose on or off."))
    return value


def one_line(errors: FieldErrors, key: str, raw, high: int) -> str | None:
    """A name: 1 to `high` characters on one line, without control characters. Markup is kept as
    typed: pages escape it on the way out."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not 1 <= len(text) <= high or NOT_ONE_LINE.search(text):
        errors.add(key, gettext("Give a name of 1 to %(high)s characters on one line.", high=high))
        return None
    return text


def chosen(errors: FieldErrors, key: str, raw, rows: dict, message: str) -> list | None:
    """The rows named by a list of ids; `message` when one is not among `rows` (another branch's)."""
    if not isinstance(raw, list) or len(raw) > MAX_CHOICES:
        errors.add(key, message)
        return None
    picked = []
    for item in raw:
        if isinstance(item, str) and DIGITS.fullmatch(item.strip()):
            item = int(item.strip())
        if isinstance(item, bool) or not isinstance(item, int) or item not in rows:
            errors.add(key, message)
            return None
        picked.append(rows[item])
    return list(dict.fromkeys(picked))


def require_object(data) -> dict:
    """The settings sent must be an object of names and values."""
    if not isinstance(data, dict):
        raise ValidationError(gettext("Send the settings as an object of names and values."), {"body": "not an object"})
    return data


def unknown(errors: FieldErrors, key) -> None:
    """A name that is no setting is refused: a typo would otherwise change nothing, silently."""
    name = str(key)[:40]
    errors.add(name, gettext("There is no setting called %(name)s.", name=name))


def as_object(data, fields, read_only=()) -> dict:
    """The settings sent, without the read-only ones; a name that is no setting is refused."""
    errors = FieldErrors()
    for key in require_object(data):
        if key not in fields and key not in read_only:
            unknown(errors, key)
    errors.raise_if_any()
    return {key: value for key, value in data.items() if key in fields}
