"""What every JSON endpoint reads from a request, and the one reading of each kind of value in it:
the body, whole numbers, times, days and texts. Each refuses bad input with a ValidationError
(400) that names the field and the reason, before anything is changed. A value the database or
the datetime module cannot hold (an id past PostgreSQL's INTEGER, 2**63 for SQLite, a NUL, a lone
surrogate, the year 9999 plus a day) must never reach them: there it is a 500."""
from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, tzinfo

from flask import request
from flask_babel import gettext

from .errors import UnsupportedMediaType, ValidationError

MAX_DEPTH = 5  # no endpoint takes more than an object of scalars; room to grow, none to recurse
MAX_ID = 2**31 - 1  # an INTEGER column on PostgreSQL
MIN_YEAR, MAX_YEAR = 2000, 2100  # far enough apart for any booking, near enough that +1 day never overflows
ALLOWED_CONTROLS = "\t\n\r"  # a CSV file or a multi-line text carries these; nothing carries the rest

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # Unicode's Cc, and surrogates (Cs)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_DAY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DAY_FORMAT = re.compile(_DAY)
_MOMENT_FORMAT = re.compile(_DAY + r"[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?")
_WHOLE = re.compile(r"-?[0-9]{1,12}")


def invalid(field: str, reason: str, message: str | None = None) -> ValidationError:
    return ValidationError(message or f"{field}: {reason}.", {field: reason})


# --- the body ----------------------------------------------------------------------------------

def json_object(*, empty_ok=False) -> dict:
    """The request body as a JSON object of at most MAX_DEPTH levels, every string in it free of
    control characters (but tab and line breaks) and of lone surrogates. 415 when it is not JSON.
    `empty_ok`: an empty body is {} (action endpoints that take no parameters)."""
    raw = request.get_data(cache=True)
    if empty_ok and not raw.strip():
        return {}
    read = request.environ.get(_READ_KEY)
    if read is not None:  # read and checked already in this request (the kiosk's language, then its view)
        return read
    if not request.is_json:
        raise UnsupportedMediaType(gettext("Send JSON with Content-Type: application/json."), {"body": "not JSON"})
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("body", "not UTF-8", gettext("The body must be UTF-8 text.")) from None
    if _too_deep(source):
        raise invalid("body", "nested too deeply", gettext("The body may nest at most %(most)s levels deep.",
                                                             most=MAX_DEPTH))
    try:
        data = json.loads(source, parse_constant=_no_constant, parse_float=_finite_float)
    except ValueError as error:  # includes integers of more than 4300 digits
        raise invalid("body", "not JSON", gettext("The body is not valid JSON: %(problem)s",
                                                problem=str(error)[:80])) from None
    if not isinstance(data, dict):
        raise invalid("body", "not an object", gettext("The body must be a JSON object, e.g. {\"service\": \"A\"}."))
    for field, value in _strings(data):
        _check_characters(field, value)
    request.environ[_READ_KEY] = data
    return data


_READ_KEY = "seed.json_object"  # (a refusal is not kept: it is raised again, in the reader's language)


def _too_deep(source: str) -> bool:
    """Whether brackets outside strings nest past MAX_DEPTH. Counted before parsing: the parser
    recurses once per level and would end in a RecursionError long before any check of ours."""
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub('""', source)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"{literal[:20]} is too large")
    return value


def _strings(value, field=None):
    """(top-level field, string) for every key and string in the body: reasons name the field."""
    if isinstance(value, str):
        yield field or "body", value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, field)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield field or key, key
            yield from _strings(item, field or key)


def _check_characters(field: str, value: str, allowed: str = ALLOWED_CONTROLS) -> None:
    for found in _CONTROL.finditer(value):
        if found.group() not in allowed:
            raise invalid(field[:40], "control character",
                          gettext("%(field)s contains a control character (U+%(code)s).", field=repr(field[:40]),
                                  code=f"{ord(found.group()):04X}"))


# --- values ------------------------------------------------------------------------------------

def whole_number(data: dict, key: str, default=None, *, low: int = 1, high: int = MAX_ID) -> int | None:
    """data[key] as an int from low to high (ids by default); JSON true is not 1, 2.0 is not 2."""
    value = data.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(key, "not a whole number", gettext("%(field)s must be a whole number.", field=key))
    if not low <= value <= high:
        raise invalid(key, "out of range", gettext("%(field)s must be a whole number from %(low)s to %(high)s.",
                                                      field=key, low=low, high=high))
    return value


def arg_number(key: str, *, low: int = 1, high: int = MAX_ID, args=None) -> int | None:
    """The query argument `key` as a bounded int, or None when absent or empty. Only ASCII
    digits: int() would take ' 7', '7_0' and '٧' too."""
    raw = (request.args if args is None else args).get(key)
    if raw in (None, ""):
        return None
    if not _WHOLE.fullmatch(raw):
        raise invalid(key, "not a whole number", gettext("%(field)s must be a whole number.", field=key))
    return whole_number({key: int(raw)}, key, low=low, high=high)


def clean_text(data: dict, key: str, *, max_length: int, required=False, multiline=False,
               default=None) -> str | None:
    """data[key] as text of at most max_length characters, without control characters; line
    breaks and tabs only where `multiline`. None (or default) when absent and not required."""
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise invalid(key, "required", gettext("%(field)s is required.", field=key))
        return default
    if not isinstance(value, str):
        raise invalid(key, "not text", gettext("%(field)s must be text.", field=key))
    if not value.strip():
        raise invalid(key, "required", gettext("%(field)s is required.", field=key))
    if len(value) > max_length:
        raise invalid(key, "too long", gettext("%(field)s has at most %(most)s characters.", field=key,
                                                    most=max_length))
    if not multiline and any(mark in value for mark in "\n\r\u2028\u2029"):
        raise invalid(key, "line break", gettext("%(field)s is one line of text.", field=key))
    _check_characters(key, value, ALLOWED_CONTROLS if multiline else "")
    return value


def moment(value, key: str, *, zone: tzinfo | None = None) -> datetime:
    """An ISO 8601 time, YYYY-MM-DDTHH:MM[:SS[.ffffff]][Z|±HH:MM], in MIN_YEAR..MAX_YEAR. Without
    a zone it is a wall-clock time in `zone`; without `zone` a zone is required."""
    example = "e.g. 2026-03-03T10:00:00+04:00"
    if not isinstance(value, str) or len(value) > 40 or not _MOMENT_FORMAT.fullmatch(value):
        raise invalid(key, "not an ISO time", gettext("%(field)s must be an ISO time, %(example)s.", field=key,
                                                        example=example))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(key, "no such time", gettext("%(field)s: %(value)s does not exist, %(example)s.",
                                                    field=key, value=value, example=example)) from None
    _check_year(key, parsed.year)
    if parsed.tzinfo is None:
        if zone is None:
            raise invalid(key, "no time zone", gettext("%(field)s needs a time zone, %(example)s.", field=key,
                                                               example=example))
        parsed = parsed.replace(tzinfo=zone)
    return parsed


def day(value, key: str) -> date:
    """A calendar day, YYYY-MM-DD, in MIN_YEAR..MAX_YEAR."""
    if not isinstance(value, str) or not _DAY_FORMAT.fullmatch(value):
        raise invalid(key, "not a date", gettext("%(field)s must be a date, YYYY-MM-DD.", field=key))
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise invalid(key, "no such date", gettext("%(field)s: %(value)s does not exist.", field=key,
                                                                   value=value)) from None
    _check_year(key, parsed.year)
    return parsed


def _check_year(key: str, year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise invalid(key, "year out of range", gettext("%(field)s must be within the years %(low)s to %(high)s.",
                                                              field=key, low=MIN_YEAR, high=MAX_YEAR))
