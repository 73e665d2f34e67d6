"""The display's clock and date in each language's own format, on the branch's clock.

Babel (CLDR) decides the order, the month and weekday names and the 24-hour clock; the screen only
fills in the numbers, which it reads from its own clock in the branch's time zone. So an English
(US) browser in New York shows a Tokyo branch's screen as "14:05", "11月29日(日)" while it is in
Japanese, and the screen's own locale and zone never show through.

A format goes to the page as a template with %(name)s placeholders (the ones display.js fills
for every phrase) plus the names it uses: "%(M)s月%(d)s日(%(weekday)s)", weekdays Monday first.
"""
from datetime import datetime

from babel import Locale
from babel.dates import format_datetime, tokenize_pattern

from core.language import TIME_PATTERNS  # the 24-hour clock every customer and staff page uses

# A wall's date: the day and the month in words, no year. en is written the British way
# ("Sunday 29 November"), ja as CLDR's MMMEd, ka in the order Georgian offices write it.
DATE_PATTERNS = {"en": "EEEE d MMMM", "ja": "M月d日(E)", "ka": "EEEE, d MMMM"}
BABEL_LOCALES = {"en": "en_GB", "ja": "ja", "ka": "ka"}

# Numeric fields: what the page fills in ("HH" is the hour with two digits).
NUMBERS = {("H", 1): "H", ("H", 2): "HH", ("m", 1): "m", ("m", 2): "mm", ("d", 1): "d", ("d", 2): "dd",
           ("M", 1): "M", ("M", 2): "MM", ("L", 1): "M", ("L", 2): "MM", ("y", 1): "y", ("y", 4): "y"}
# Fields in words: (placeholder, CLDR table, context); the width comes from the field's length.
WORDS = {"E": ("weekday", "days", "format"), "M": ("month", "months", "format"), "L": ("month", "months", "stand-alone")}
WIDTHS = {1: "abbreviated", 2: "abbreviated", 3: "abbreviated", 4: "wide", 5: "narrow"}


def _template(pattern: str, locale: Locale, names: dict) -> str:
    out = []
    for kind, value in tokenize_pattern(pattern):
        if kind == "chars":
            out.append(value)
            continue
        letter, length = value
        if (letter, length) in NUMBERS:
            out.append(f"%({NUMBERS[letter, length]})s")
            continue
        if letter not in WORDS or length not in WIDTHS:
            raise ValueError(f"{pattern!r}: the display cannot fill the field {letter * length!r}")
        name, table, context = WORDS[letter]
        cldr = getattr(locale, table)[context][WIDTHS[length]]
        keys = range(7) if name == "weekday" else range(1, 13)  # CLDR: Monday is 0, January is 1
        words = [cldr[key] for key in keys]
        if names.setdefault(name, words) != words:
            raise ValueError(f"{pattern!r}: one width of {name} names per pattern")
        out.append(f"%({name})s")
    return "".join(out)


def formats(language: str) -> dict:
    """What the page needs to write the time and the date in `language`."""
    locale = Locale.parse(BABEL_LOCALES[language])
    names: dict[str, list[str]] = {}
    return {"time": _template(TIME_PATTERNS[language], locale, names),
            "date": _template(DATE_PATTERNS[language], locale, names),
            "weekdays": names.get("weekday", []), "months": names.get("month", [])}


def written(moment: datetime, branch, language: str) -> dict:
    """The time and the date at `moment` on the branch's clock, as the page writes them (its first
    render, before the script runs, and the tests' reference)."""
    locale = BABEL_LOCALES[language]
    return {key: format_datetime(moment, pattern, tzinfo=branch.zone, locale=locale)
            for key, pattern in (("time", TIME_PATTERNS[language]), ("date", DATE_PATTERNS[language]))}
