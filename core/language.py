"""The language and the time zone of a person's pages, and dates and times written in them.

Staff pages (console, inbox, outbox, settings, reports) follow their reader: the language the
person chose for themselves (StaffUser.language), else the one picked with ?lang= (kept for the
session), else the browser's best match, else the default language of the branch they work in.
Customer-facing code (kiosk, display, texts) forces the customer's language with
flask_babel.force_locale; this choice does not reach it.

Times are stored in UTC and shown in a branch's time zone: the branch a row belongs to, else the
"working branch": the one the person picked (the header's switcher, or a counter), kept for the
session and always within reach, else their first branch.
"""
import re
from datetime import datetime, tzinfo
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from flask import current_app, g, has_request_context, request, session
from flask_babel import get_locale, get_timezone, refresh
from flask_login import current_user

from . import clock, scope
from .errors import NotFound
from .extensions import db
from .locales import locale

LANGUAGE_NAMES = {"en": "English", "ja": "日本語", "ka": "ქართული"}  # each in its own words: whoever reads finds theirs
LANGUAGE_KEY = "language"
BRANCH_KEY = "branch_id"

# The staff side's patterns: CLDR's for Japanese and Georgian, with the year in full; English
# staff read ISO dates and a 24-hour clock, which nobody in an office of several countries misreads.
DATE_PATTERNS = {"en": "yyyy-MM-dd", "ja": "y/MM/dd", "ka": "dd.MM.y"}
TIME_PATTERNS = {"en": "HH:mm", "ja": "H:mm", "ka": "HH:mm"}
# A customer's texts and printed ticket: short (a Japanese or Georgian text part holds 70 characters),
# with the weekday to check the day by and no year (an appointment is weeks away at most), and a
# 24-hour clock: "Thu 3 Dec 10:00", "12月3日(木) 10:00", "ხუთ 3 დეკ 10:00" (CLDR's order, "ხუთ, 3 დეკ", without
# the comma: with it, or with full stops after the abbreviations, a Georgian reschedule offer of three
# times takes three parts; tests/test_text_budget.py).
CUSTOMER_DATETIME_PATTERNS = {"en": "EEE d MMM HH:mm", "ja": "M月d日(E) HH:mm", "ka": "EEE d MMM HH:mm"}
CUSTOMER_TIME_PATTERN = "HH:mm"


def init_pages(app) -> None:
    """What pages need of the choice (the factory passes the selectors to Flask-Babel)."""
    app.before_request(_choose_afresh)
    app.jinja_env.globals.update(current_language=current_language, current_zone=current_zone,
                                 own_language=own_language, link_in_language=link_in_language,
                                 language_names=LANGUAGE_NAMES)
    app.jinja_env.filters.update(local_datetime=local_datetime, local_date=local_date, local_time=local_time,
                                 local_recent=local_recent, text_lang=text_lang)


def _choose_afresh() -> None:
    """Flask-Babel keeps its choice in `g`, which lives as long as the app context: one that
    outlives a request (a test's, a CLI command's) must not hand one request's language to the next."""
    g.pop("_flask_babel", None)


def _signed_in() -> bool:
    return bool(getattr(current_user, "is_authenticated", False))


# --- the choice --------------------------------------------------------------------------------

def chosen_language() -> str | None:
    """Flask-Babel's locale selector (None: the app's default). Computed afresh on each call."""
    if not has_request_context():
        return None
    offered = current_app.config["LANGUAGES"]
    own = own_language()
    if own is not None:
        return own
    if request.args.get("lang") in offered:
        session[LANGUAGE_KEY] = request.args["lang"]
    if session.get(LANGUAGE_KEY) in offered:
        return session[LANGUAGE_KEY]
    browser = request.accept_languages.best_match(offered)
    if browser:
        return browser
    branch = working_branch()
    return branch.default_language if branch is not None and branch.default_language in offered else None


def own_language() -> str | None:
    """The language the signed-in person chose for themselves (then ?lang= has no say)."""
    own = getattr(current_user, "language", None) if _signed_in() else None
    return own if own in current_app.config["LANGUAGES"] else None


def link_in_language(code: str) -> str:
    """A link to this page asking for language `code`, its query kept. Relative: the path is
    left out of the page (it may hold a phone number, e.g. an inbox conversation's)."""
    args = request.args.to_dict(flat=False)
    args["lang"] = [code]
    return f"?{urlencode(args, doseq=True)}"


def current_language() -> str:
    """The language this response speaks, for <html lang> (a forced locale included)."""
    return str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"])


def chosen_zone() -> tzinfo | None:
    """Flask-Babel's time zone selector: the working branch's, else the installation's."""
    if not has_request_context():
        return None
    branch = working_branch()
    return branch.zone if branch is not None else ZoneInfo(current_app.config["DEFAULT_TIMEZONE"])


def current_zone() -> str:
    """The name of the time zone this response's times are in, unless a row says otherwise."""
    return str(get_timezone())


def chosen_branch():
    """The branch picked this session, if it is still within reach; None if none was picked."""
    from .models import Branch

    ident = session.get(BRANCH_KEY) if _signed_in() else None
    if not isinstance(ident, int) or not scope.can_see(ident):
        return None
    return db.session.get(Branch, ident)


def working_branch():
    """The branch the person works in: the one picked, else their first; None when signed out
    or in no branch yet."""
    picked = chosen_branch()
    if picked is not None or not _signed_in():
        return picked
    try:
        return scope.branch()
    except NotFound:
        return None


def choose_branch(ident):
    """Work in branch `ident` from now on (NotFound if out of reach); its time zone applies at once."""
    branch = scope.branch(ident)
    session[BRANCH_KEY] = branch.id
    refresh()  # the language may follow the branch's default, and the time zone does
    return branch


# --- the language of a text of unknown language -------------------------------------------------

# Kana, CJK ideographs and their punctuation, full- and half-width forms: Japanese. Mkhedruli,
# Asomtavruli, Nuskhuri and Mtavruli: Georgian. hardware/static/phone.js repeats these ranges.
_SCRIPTS = {"ja": re.compile("[\u3000-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"),
            "ka": re.compile("[\u10a0-\u10ff\u1c90-\u1cbf\u2d00-\u2d2f]")}
_LATIN = re.compile("[A-Za-z]")


def text_lang(text, fallback: str | None = None) -> str | None:
    """The language a text (an SMS a customer wrote, a reply) is written in, for its element's
    `lang`, so that the browser picks Japanese or Georgian glyphs and a screen reader its voice in a
    page of another language: the script most of its letters are in (a ticket code or a URL in
    Latin letters does not make a Japanese text English); Latin letters alone are English, the only
    one of our languages written in them; `fallback` for a text without letters ("123", emoji)."""
    counts = {code: len(script.findall(text or "")) for code, script in _SCRIPTS.items()}
    code = max(counts, key=counts.get)
    if counts[code]:
        return code
    return "en" if _LATIN.search(text or "") else fallback


# --- dates and times ---------------------------------------------------------------------------

def _language() -> str:
    locale = get_locale()
    return locale.language if locale is not None and locale.language in DATE_PATTERNS else "en"


def _zone(where) -> tzinfo:
    """`where`: a branch, a time zone, or None (the working branch's)."""
    if where is None:
        return get_timezone() or ZoneInfo("UTC")
    return where if isinstance(where, tzinfo) else where.zone


def _moment(value) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def local_datetime(moment, where=None, seconds=False) -> str:
    """A stored moment as date and time where `where` is, in the reader's language ("" for none)."""
    if moment is None:
        return ""
    language = _language()
    pattern = f"{DATE_PATTERNS[language]} {TIME_PATTERNS[language]}{':ss' if seconds else ''}"
    return format_datetime(_moment(moment), pattern, tzinfo=_zone(where), locale=locale(language))


def local_time(moment, where=None) -> str:
    if moment is None:
        return ""
    language = _language()
    return format_datetime(_moment(moment), TIME_PATTERNS[language], tzinfo=_zone(where), locale=locale(language))


def local_date(value, where=None) -> str:
    """A calendar day (a date as it is; a moment on the day it is where `where` is)."""
    if value is None:
        return ""
    language = _language()
    if isinstance(value, (datetime, str)):
        value = _moment(value).astimezone(_zone(where)).date()
    return format_date(value, DATE_PATTERNS[language], locale=locale(language))


def customer_datetime(moment: datetime, zone: tzinfo, language: str | None) -> str:
    """A stored moment as a customer's text or ticket gives it, on `zone`'s clock, in `language`."""
    language = language if language in CUSTOMER_DATETIME_PATTERNS else "en"
    return format_datetime(moment, CUSTOMER_DATETIME_PATTERNS[language], tzinfo=zone, locale=locale(language))


def customer_time(moment: datetime, zone: tzinfo) -> str:
    """A time of day as a customer's text gives it: 24-hour, on `zone`'s clock."""
    return format_datetime(moment, CUSTOMER_TIME_PATTERN, tzinfo=zone, locale=locale("en"))


def local_recent(moment, where=None, now=None) -> str:
    """The time alone for a moment of today (where `where` is), else date and time."""
    if moment is None:
        return ""
    zone = _zone(where)
    if _moment(moment).astimezone(zone).date() == (now or clock.now()).astimezone(zone).date():
        return local_time(moment, zone)
    return local_datetime(moment, zone)
