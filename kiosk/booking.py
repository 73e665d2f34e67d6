"""Online self-booking pages, public, phone-first, plain links and forms (no script needed):

  /book/<branch_id>   choose a language, a service, a day and a free time, then give a name, a
                      mobile number and consent to texts: booked, and the confirmation texted
  /a/<token>          the customer's own booking (the link in that text): cancel it (asked
                      first) or move it to another free time

Thin: read the request, call core.self_booking, render, always in the customer's language (never
the staff's error pages). Rate-limited per client address, bookings per mobile number too, and
changes per link; over a limit the customer reads why, in their language (429)."""
from __future__ import annotations

import logging
import re
from datetime import date, datetime, time
from functools import wraps

from babel.dates import format_date, format_datetime
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError

from core import appointments, clock, self_booking, storefront
from core.auth import client_address
from core.errors import Conflict, SeedError, ValidationError
from core.extensions import db, limiter
from core.locales import force_locale
from core.models import Appointment, Branch
from core.web import MAX_ID
from messaging import appointment_texts

log = logging.getLogger(__name__)

booking = Blueprint("booking", __name__, template_folder="templates")

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
# How the pages write days and times: the customer's language, the branch's clock, 24-hour.
DAY_PATTERNS = {"en": "EEE d MMM", "ja": "M月d日(E)", "ka": "EEE d MMM"}
LONG_PATTERNS = {"en": "EEEE d MMMM y, HH:mm", "ja": "y年M月d日(E) HH:mm", "ka": "EEEE, d MMMM, y, HH:mm"}


def _limit(key: str):
    return lambda: current_app.config[key]


def _per_address() -> str:
    return f"booking-address:{client_address()}"


def _per_token() -> str:
    return f"booking-link:{(request.view_args or {}).get('token', '')[:64]}"


def _number() -> str | None:
    """The mobile number a booking form gives, in E.164 (None: none a booking could take, nothing to count)."""
    if "seed.booking_number" not in request.environ:
        branch, found = _find_branch((request.view_args or {}).get("branch_id")), None
        try:
            found = appointments.contact(branch, phone=request.form.get("phone")).phone if branch else None
        except ValidationError:
            pass
        request.environ["seed.booking_number"] = found
    return request.environ["seed.booking_number"]


page_views = limiter.shared_limit(_limit("BOOKING_PAGE_RATE_LIMIT"), scope="booking-pages", key_func=_per_address)
changes_per_address = limiter.shared_limit(_limit("BOOKING_RATE_LIMIT"), scope="booking-changes",
                                           key_func=_per_address)
bookings_per_number = limiter.limit(_limit("BOOKING_PHONE_RATE_LIMIT"), key_func=lambda: f"booking-number:{_number()}",
                                    exempt_when=lambda: _number() is None)
changes_per_link = limiter.shared_limit(_limit("BOOKING_CHANGE_RATE_LIMIT"), scope="booking-link",
                                        key_func=_per_token)


# --- the customer's language and the pages' words ------------------------------------------------

def _offered(branch: Branch, wanted) -> str:
    """`wanted` if the branch offers it, else the language its screens start in."""
    return wanted if wanted in storefront.offered_languages(branch) else storefront.start_language(branch)


def _browser_language() -> str:
    return request.accept_languages.best_match(current_app.config["LANGUAGES"]) or "en"


def _language_of_request() -> str:
    """The language to refuse in before the view ran: the booking's, the form's or page's, else the browser's."""
    args = request.view_args or {}
    if "token" in args:
        try:
            return self_booking.language_of(self_booking.by_token(args["token"]))
        except SeedError:
            return _browser_language()
    branch = _find_branch(args.get("branch_id"))
    if branch is None:
        return _browser_language()
    return _offered(branch, request.values.get("language"))


def _message_page(title: str, message: str, status: int, language: str, branch: Branch | None = None, back=None):
    return render_template("kiosk/booking_message.html", title=title, message=message, language=language,
                           branch=branch, brand=storefront.branding(branch) if branch else {"css": "", "logo": None},
                           back=back), status


def politely(view):
    """Over a limit: a page saying so in the customer's language (429), never the staff's error page."""
    @wraps(view)
    def run(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except RateLimitExceeded:
            language = _language_of_request()
            with force_locale(language):
                return _message_page(gettext("Please wait a moment"),
                                     gettext("Too many requests: wait a moment and try again."), 429, language)
    return run


@booking.errorhandler(CSRFError)
def expired(_error):
    """The form's token is gone (the session expired, or cookies are off): say so, in their language."""
    language = _language_of_request()
    with force_locale(language):
        return _message_page(gettext("Please try again"),
                             gettext("This page was open too long, so nothing was changed. Please go back, reload "
                                     "the page and try again."), 400, language, back=_came_from())


def _came_from() -> str:
    args = request.view_args or {}
    return (url_for("booking.manage", token=args["token"]) if "token" in args
            else url_for("booking.page", branch_id=args.get("branch_id", 0)))


@booking.errorhandler(self_booking.LinkGone)
def link_gone(_error):
    language = _browser_language()
    with force_locale(language):
        return _message_page(gettext("This link no longer works"),
                             gettext("We could not find an appointment for this link. Please check the link in "
                                     "your text, or call or visit us."), 404, language)


class NoSuchBranch(Exception):
    """/book/<branch_id> of a branch that is not there."""


@booking.errorhandler(NoSuchBranch)
def no_such_branch(_error):
    language = _browser_language()
    with force_locale(language):
        return _message_page(gettext("This booking page does not exist"),
                             gettext("Please check the address, or call or visit us."), 404, language)


def _find_branch(branch_id) -> Branch | None:
    # ids are 32-bit on PostgreSQL: a larger one is simply not there (never a database error)
    return db.session.get(Branch, branch_id) if isinstance(branch_id, int) and 0 < branch_id <= MAX_ID else None


def _branch(branch_id: int) -> Branch:
    branch = _find_branch(branch_id)
    if branch is None:
        raise NoSuchBranch()
    return branch


def day_label(moment: date, language: str) -> str:
    return format_date(moment, DAY_PATTERNS.get(language, DAY_PATTERNS["en"]), locale=language)


def time_label(moment: datetime, branch: Branch, language: str) -> str:
    return format_datetime(moment, "HH:mm", tzinfo=branch.zone, locale=language)


def long_label(moment: datetime, branch: Branch, language: str) -> str:
    return format_datetime(moment, LONG_PATTERNS.get(language, LONG_PATTERNS["en"]), tzinfo=branch.zone,
                           locale=language)


def _common(branch: Branch, language: str) -> dict:
    return {"branch": branch, "language": language, "brand": storefront.branding(branch),
            "language_names": storefront.LANGUAGE_NAMES, "day_label": lambda d: day_label(d, language),
            "time_label": lambda m: time_label(m, branch, language)}


# --- reading what the customer chose -------------------------------------------------------------

def _chosen_day(branch: Branch, raw) -> date | None:
    if not isinstance(raw, str) or not _DAY.fullmatch(raw):
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return None
    first, last = self_booking.window(branch)
    return day if first <= day <= last else None


def _chosen_time(branch: Branch, day: date | None, raw) -> datetime | None:
    match = _TIME.fullmatch(raw) if isinstance(raw, str) else None
    if day is None or match is None:
        return None
    return datetime.combine(day, time(int(match[1]), int(match[2])), tzinfo=branch.zone)


# --- /book/<branch_id> -----------------------------------------------------------------------------

def _steps(branch: Branch, language: str, args, errors: dict | None = None) -> tuple[str, dict]:
    """Which step the choices so far lead to, and what it shows. A choice that cannot be taken
    (a service not offered, a closed or past day, a time taken since) sends the customer back to
    that step with a word on why."""
    errors = dict(errors or {})
    context = {"services": self_booking.services(branch), "errors": errors, "values": args, "service": None,
               "day": None, "slot": None}
    code = args.get("service")
    if not code:
        return "service", context
    try:
        service = context["service"] = self_booking.service_by_code(branch, code)
    except ValidationError as error:
        errors.setdefault("service", error.message)
        return "service", context
    context["days"] = self_booking.days(service)
    raw_day = args.get("day")
    if not raw_day:
        return "day", context
    day = _chosen_day(branch, raw_day)
    open_days = {d.day for d in context["days"] if not d.closed and d.free}
    if day not in open_days:
        errors.setdefault("day", gettext("There is no free time on that day. Please choose another."))
        return "day", context
    context["day"] = day
    context["times"] = self_booking.free_times(service, day)
    raw_time = args.get("time")
    if not raw_time:
        return "time", context
    slot = _chosen_time(branch, day, raw_time)
    if slot not in context["times"]:
        errors.setdefault("time", gettext("That time is no longer free. Please choose another."))
        return "time", context
    context["slot"] = slot
    context["consent"] = self_booking.consent_text(branch, language)
    return "details", context


def _link(branch: Branch, language: str, **chosen) -> str:
    return url_for("booking.page", branch_id=branch.id, language=language,
                   **{key: value for key, value in chosen.items() if value})


def _render_steps(branch: Branch, language: str, args, errors=None, status=200):
    step, context = _steps(branch, language, args, errors)
    service, day = context["service"], context["day"]
    links = {
        "service": lambda code: _link(branch, language, service=code),
        "day": lambda d: _link(branch, language, service=service.code, day=d.isoformat()),
        "time": lambda moment: _link(branch, language, service=service.code, day=day.isoformat(),
                                     time=f"{moment:%H:%M}"),
        "language": lambda code: _link(branch, code, service=args.get("service"), day=args.get("day"),
                                       time=args.get("time")),
        "back": {"day": _link(branch, language),
                 "time": _link(branch, language, service=service.code) if service else None,
                 "details": _link(branch, language, service=service.code, day=day.isoformat()) if day else None}.get(step),
    }
    return render_template("kiosk/booking.html", step=step, links=links,
                           languages=storefront.offered_languages(branch), **context,
                           **_common(branch, language)), status


def _refuse_when_off(branch: Branch, language: str, status: int):
    with force_locale(language):
        return _message_page(gettext("Online booking"),
                             gettext("%(branch)s does not take bookings online at the moment. Please call or visit us.",
                                     branch=branch.name), status, language, branch)


@booking.get("/book/<int:branch_id>")
@politely
@page_views
def page(branch_id):
    branch = _branch(branch_id)
    language = _offered(branch, request.args.get("language"))
    if not self_booking.enabled(branch):
        return _refuse_when_off(branch, language, 200)
    with force_locale(language):
        return _render_steps(branch, language, request.args)


@booking.post("/book/<int:branch_id>")
@politely
@changes_per_address
@bookings_per_number
def book(branch_id):
    branch = _branch(branch_id)
    form = request.form
    language = _offered(branch, form.get("language"))
    if not self_booking.enabled(branch):
        return _refuse_when_off(branch, language, 403)
    with force_locale(language):
        day = _chosen_day(branch, form.get("day"))
        try:
            appointment = self_booking.book(
                branch, service=form.get("service"), starts_at=_chosen_time(branch, day, form.get("time")),
                name=form.get("name"), phone=form.get("phone"), language=form.get("language"),
                consent=form.get("consent") == "yes")
        except Conflict as error:  # taken since it was offered: choose again
            args = {key: form.get(key) for key in ("service", "day")}
            return _render_steps(branch, language, args, {"time": error.message}, 409)
        except ValidationError as error:
            return _render_steps(branch, language, form, _field_errors(error), 400)
    _confirm_by_text(appointment)
    return redirect(url_for("booking.manage", token=appointment.access_token, done="booked"), 303)


def _field_errors(error: ValidationError) -> dict:
    """core.self_booking's refusal per field ({"name": message, ...}); one without fields is the form's."""
    detail = error.detail if isinstance(error.detail, dict) else {}
    return {key: value for key, value in detail.items() if isinstance(value, str)} or {"form": error.message}


def _confirm_by_text(appointment: Appointment) -> None:
    """The confirmation text, after the booking committed; a booking stands whatever the outbox says.
    The link's address: PUBLIC_URL when configured (a text must never carry a host a request made
    up, say one pointing elsewhere), else the one the customer booked on."""
    public = current_app.config["PUBLIC_URL"]
    link = (public.rstrip("/") + url_for("booking.manage", token=appointment.access_token) if public
            else url_for("booking.manage", token=appointment.access_token, _external=True))
    try:
        appointment_texts.booked(db.session.get(Appointment, appointment.id), link)
    except SeedError as error:
        log.warning("online booking %s: no confirmation text: %s", appointment.id, error.message)


# --- /a/<token> ------------------------------------------------------------------------------------

def _manage(appointment: Appointment, *, change=None, errors=None, status=200):
    branch = appointment.branch
    language = self_booking.language_of(appointment)
    context = {"appointment": appointment, "change": None, "errors": dict(errors or {}),
               "can_change": self_booking.can_change(appointment), "online": self_booking.enabled(branch),
               "service_name": appointment.service.name_in(language),
               "when": long_label(appointment.starts_at, branch, language), "done": request.args.get("done"),
               "past": appointment.starts_at <= clock.now()}
    if context["can_change"] and change == "cancel":
        context["change"] = "cancel"
    elif context["can_change"] and context["online"] and change == "move":
        context["change"] = "move"
        context["days"] = self_booking.days(appointment.service)
        day = _chosen_day(branch, request.values.get("day"))
        if day is not None:
            context["day"] = day
            context["times"] = self_booking.free_times(appointment.service, day, exclude=appointment.starts_at)
    links = {
        "self": url_for("booking.manage", token=appointment.access_token),
        "move": url_for("booking.manage", token=appointment.access_token, change="move"),
        "cancel": url_for("booking.manage", token=appointment.access_token, change="cancel"),
        "day": lambda d: url_for("booking.manage", token=appointment.access_token, change="move", day=d.isoformat()),
        "again": url_for("booking.page", branch_id=branch.id, language=language),
    }
    return render_template("kiosk/booking_manage.html", links=links, **context, **_common(branch, language)), status


@booking.get("/a/<token>")
@politely
@page_views
def manage(token):
    appointment = self_booking.by_token(token)
    with force_locale(self_booking.language_of(appointment)):
        return _manage(appointment, change=request.args.get("change"))


@booking.post("/a/<token>/cancel")
@politely
@changes_per_address
@changes_per_link
def cancel(token):
    appointment = self_booking.by_token(token)
    with force_locale(self_booking.language_of(appointment)):
        try:
            self_booking.cancel(appointment, request.form.get("confirm") == "yes")
        except ValidationError as error:
            return _manage(appointment, change="cancel", errors={"form": error.message}, status=400)
        except SeedError as error:
            return _manage(appointment, errors={"form": error.message}, status=error.status)
    return redirect(url_for("booking.manage", token=token, done="cancelled"), 303)


@booking.post("/a/<token>/move")
@politely
@changes_per_address
@changes_per_link
def move(token):
    appointment = self_booking.by_token(token)
    branch = appointment.branch
    with force_locale(self_booking.language_of(appointment)):
        day = _chosen_day(branch, request.form.get("day"))
        try:
            self_booking.move(appointment, _chosen_time(branch, day, request.form.get("time")))
        except (ValidationError, Conflict) as error:
            db.session.rollback()
            return _manage(db.session.get(Appointment, appointment.id), change="move",
                           errors={"form": error.message}, status=error.status)
        except SeedError as error:
            return _manage(appointment, errors={"form": error.message}, status=error.status)
    try:
        appointment_texts.moved(db.session.get(Appointment, appointment.id))
    except SeedError as error:
        log.warning("appointment %s moved online: no text: %s", appointment.id, error.message)
    return redirect(url_for("booking.manage", token=token, done="moved"), 303)
