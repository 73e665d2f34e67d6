"""Kiosk pages and the check-in API. Thin: validate, call kiosk.checkin / core, render."""
import io
import re
from functools import wraps

import segno
from flask import abort, current_app, jsonify, redirect, render_template, request, send_file, url_for
from flask_babel import gettext, pgettext
from flask_limiter import RateLimitExceeded
from sqlalchemy import select

from core import clock, storefront, tokens
from core.appointments import NAME_LENGTH
from core.auth import client_address
from core.errors import SeedError, ValidationError
from core.extensions import csrf, db, limiter
from core.locales import force_locale
from core.models import Branch, Ticket, TicketStatus
from core.openapi import BOOLEAN, INTEGER, STRING, Any, Flag, Id, Text, body_values, endpoint, model, nullable
from core.queries import estimated_wait_minutes, position
from core.web import json_object

from . import api, bp, self_service
from .checkin import LANGUAGES, branch_or_default, check_in, check_phone, consent_text
from .phone_typing import as_typed

TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _refused(error: SeedError):
    """A refusal as every customer-facing endpoint answers it, in the words already chosen."""
    return jsonify({"error": error.code, "message": error.message, "detail": error.detail}), error.status


class TooManyTries(SeedError):
    status = 429
    code = "too_many_requests"


def registered_kiosk():
    """The registered kiosk whose token (X-Kiosk-Token) came with this request, if still active."""
    if "seed.kiosk" not in request.environ:  # looked up once a request, however often the limiter asks
        request.environ["seed.kiosk"] = tokens.kiosk_for(request.headers.get("X-Kiosk-Token"))
    return request.environ["seed.kiosk"]


def kiosk_key() -> str:
    """The check-in limit's bucket: a registered kiosk's own, else the client address. Never a name
    the client makes up (a new name per request would be a new bucket per request)."""
    kiosk = registered_kiosk()
    return f"kiosk:{kiosk.id}" if kiosk is not None else f"address:{client_address()}"


def _language(data) -> str:
    """The language the kiosk's customer reads: the one the request says, else its branch's."""
    language = data.get("language") if isinstance(data, dict) else None
    if language in LANGUAGES:
        return language
    try:
        return storefront.start_language(branch_or_default(data.get("branch") if isinstance(data, dict) else None))
    except SeedError:  # no such branch: that refusal is said in English, like any API's
        return "en"


def _sent() -> dict | None:
    """The body as sent, if it is a JSON object (only to choose the language the answer is in)."""
    try:
        return json_object()
    except SeedError:  # the declaration refuses it, in the branch's words
        return None


def kiosk_limited(limit_key: str):
    """The kiosk's rate limit (config[limit_key], per kiosk_key); over it, a refusal like the others
    ({"error", "message", "detail"}), in the customer's language: the kiosk shows the message.
    Everything else the view answers is in that language too, its declaration's refusals included
    (put the declaration below this)."""
    def wrap(view):
        limited = limiter.limit(lambda: current_app.config[limit_key], key_func=kiosk_key)(view)

        @wraps(view)
        def run():
            with force_locale(_language(_sent())):
                try:
                    return limited()
                except RateLimitExceeded:
                    return _refused(TooManyTries(gettext("Too many requests: wait a moment and try again.")))
        return run
    return wrap


def _given() -> dict:
    """The declared fields that came: the check-in tells a field left out from one sent (a language
    not said is the branch's, one said must be offered)."""
    return {key: value for key, value in body_values().items() if value is not None}


BRANCH = Id("The branch (default: the first)")
LANGUAGE = Text("The customer's language: one the branch offers (default: the branch's)", choices=LANGUAGES)
CHECKED_IN = model("CheckIn", {
    "id": INTEGER, "number": {**STRING, "description": "The label on the ticket, e.g. A012"},
    "service": {**STRING, "description": "The service's code"}, "service_name": STRING,
    "position": nullable({**INTEGER, "description": "Place in the service's queue"}),
    "estimated_wait_minutes": nullable(INTEGER),
    "status_url": {**STRING, "format": "uri", "description": "The customer's page for following the ticket"},
    "sms": {**BOOLEAN, "description": "Whether texts will come about it"},
    "appointment": {**model("CheckedInAppointment", {"code": STRING, "time": {
        **STRING, "description": "Its time on the branch's clock, HH:MM"}}),
        "description": "Checked in for an appointment: which"},
}, required=["id", "number", "service", "service_name", "position", "estimated_wait_minutes", "status_url", "sms"])


@api.post("/checkins")
@kiosk_limited("KIOSK_RATE_LIMIT")
@endpoint("Take a ticket, or check in for an appointment (a kiosk)", public=True,
          description="A walk-in names the `service`; an appointment is found by `booking_code`, or by `phone` "
                      "when no service is named. Refusals are in the customer's language. Rate-limited per "
                      "registered kiosk (`X-Kiosk-Token`), else per address.",
          body={"service": Text("The service's code", max_length=10), "phone": Text("A mobile number", max_length=32),
                "language": LANGUAGE,
                "sms_consent": Flag("The customer agreed, in the words the kiosk showed, to texts about this visit "
                                    "(needs phone)", default=False),
                "name": Text("The customer's name", max_length=NAME_LENGTH), "branch": BRANCH,
                "booking_code": Text("An appointment's booking code", max_length=20)},
          responses={201: ("Issued", model("CheckInAnswer", {
              "ticket": CHECKED_IN,
              "print": model("TicketPrint", {
                  "status": {"type": "string", "enum": ["off", "printed", "failed"]},
                  "message": nullable({**STRING, "description": "For the customer, when the printer failed"})})}))})
def checkins():
    data = _given()
    language = _language(data)  # (before the check-in's commits expire the branch it reads)
    ticket = check_in(data)
    return jsonify({"ticket": ticket, "print": _print(ticket, language)}), 201


def _print(ticket: dict, language: str) -> dict:
    """Print when a printer is configured. The ticket stands whatever the printer does."""
    settings = current_app.config["PRINTER"]
    if not settings:  # (python-escpos and Pillow not even imported: ~80 ms on a worker's first check-in)
        return {"status": "off", "message": None}
    from hardware.printer import PrintFailed, print_ticket
    branch = db.session.get(Ticket, ticket["id"]).branch
    ahead = max((ticket["position"] or 1) - 1, 0)
    words = {
        "your_ticket": gettext("Your ticket"),
        # Nobody ahead: "you're next", never "0 people ahead, about 0 min".
        "ahead": gettext("People ahead of you: %(count)s", count=ahead) if ahead else gettext("You're next."),
        "wait": gettext("Estimated wait: about %(minutes)s min", minutes=ticket["estimated_wait_minutes"])
        if ahead else gettext("Please stay close."),
        "scan": gettext("Scan to follow your place in the queue on your phone."),
    }
    when = branch.local(db.session.get(Ticket, ticket["id"]).arrived_at)  # the printer formats it per language
    try:
        print_ticket(settings, {**ticket, "print_words": words}, branch.name, language, when,
                     logo=storefront.branch_logo(branch))
    except PrintFailed:
        return {"status": "failed",
                "message": gettext("The printer did not print your ticket. Your place is kept: please note your number, %(number)s.",
                                   number=ticket["number"])}
    return {"status": "printed", "message": None}


@api.post("/phone-check")
@kiosk_limited("KIOSK_PHONE_CHECK_LIMIT")
@endpoint("A mobile number as the kiosk shows it back", public=True,
          description="Before the customer confirms it: in E.164 and as they would write it, or a refusal in their "
                      "language. With `typing`: the digits so far, formatted, and never a refusal for the number.",
          body={"phone": Any("What was typed: a whole number, or with `typing` anything so far (what is not text "
                             "reads as nothing typed)", schema_of={}),
                "branch": BRANCH, "language": LANGUAGE,
                "typing": Flag("The number is still being typed", default=False)},
          responses={200: model("PhoneShown", {
              "e164": {**STRING, "description": "The whole number in E.164 (not while typing)"},
              "display": {**STRING, "description": "As the customer would write it"}}, required=["display"])})
def phone_check():
    """The kiosk shows the number back, in national format, before the customer confirms it;
    with "typing": true, while it is typed (the digits so far, formatted, never an error)."""
    data = body_values()
    branch = branch_or_default(data["branch"])
    if data["typing"]:
        return jsonify({"display": as_typed(data["phone"], branch)})
    return jsonify(check_phone(data["phone"], branch))


def _strings(branch, language):
    with force_locale(language):
        return {
            "choose_language": gettext("Choose your language"),
            "welcome": gettext("Welcome to %(business)s", business=branch.name),
            "take_ticket": gettext("Take a ticket"),
            "which_service": gettext("What do you need today?"),
            "phone_title": gettext("Shall we text you when it is your turn?"),
            "phone_label": gettext("Your mobile number"),
            "phone_hint": gettext("Optional. We only use it for this visit."),
            "skip": gettext("No thanks"),
            "next": gettext("Next"),
            "back": gettext("Back"),
            "confirm_phone": gettext("Is this your number?"),
            "consent": consent_text(branch, language),
            "consent_yes": gettext("Yes, text me"),
            "consent_no": gettext("No texts"),
            "confirm_title": gettext("Please check"),
            "confirm_service": gettext("Service"),
            "confirm_texts": gettext("Texts"),
            "texts_to": gettext("to %(number)s"),
            "texts_none": gettext("none"),
            "get_ticket": gettext("Get my ticket"),
            "your_ticket": gettext("Your ticket"),
            "ahead": gettext("People ahead of you: %(count)s"),
            "wait": gettext("Estimated wait: about %(minutes)s min"),
            "you_are_next": gettext("You're next."),
            "stay_close": gettext("Please stay close."),
            "phone_required": gettext("Enter a mobile number."),
            "scan": gettext("Scan to follow your place in the queue on your phone."),
            "we_will_text": gettext("We will text you when it is almost your turn."),
            "done": gettext("Done"),
            "idle_title": gettext("Are you still there?"),
            "idle_body": gettext("Going back to the start in %(seconds)s seconds."),
            "idle_more": gettext("I need more time"),
            "error": gettext("Something went wrong. Please try again or ask at the desk."),
            "keypad_clear": gettext("Clear"),
            "have_appointment": gettext("I have an appointment"),
            "appointment_label": gettext("Your booking code or mobile number"),
            "check_in": gettext("Check in"),
            "paused": gettext("Paused — please ask at the desk"),
            "closed_title": gettext("Closed today"),
            "language_nav": gettext("Language"),
            "key_delete": gettext("Delete the last digit"),
            "qr_alt": gettext("QR code: opens your ticket's page with your place in the queue"),
            "closed_body": gettext("We are closed today. Please come back another day."),
        }


@bp.get("/kiosk/")
def kiosk_index():
    branch = db.session.scalar(select(Branch).order_by(Branch.id))
    if branch is None:
        abort(404, "No branch is set up yet.")
    return redirect(url_for("kiosk.screen", branch_id=branch.id))


@bp.get("/kiosk/<int:branch_id>")
def screen(branch_id):
    branch = db.session.get(Branch, branch_id)
    if branch is None:
        abort(404, f"Branch {branch_id} does not exist.")
    languages = storefront.offered_languages(branch)
    closure = storefront.closure_today(branch)
    # Closed today: the closure instead of the services, and nothing to choose.
    services = [] if closure else [
        {"code": s.code, "name": s.name, "names": {l: s.name_in(l) for l in languages}, "paused": not s.active}
        for s in storefront.kiosk_services(branch)]
    config = {"branch": branch.id, "services": services, "languages": languages,
              "default_language": storefront.start_language(branch), "closed": closure is not None,
              "idle_seconds": current_app.config["KIOSK_IDLE_SECONDS"],
              "warning_seconds": current_app.config["KIOSK_IDLE_WARNING_SECONDS"],
              "ticket_seconds": current_app.config["KIOSK_TICKET_SECONDS"]}
    strings = {language: _strings(branch, language) for language in languages}
    return render_template("kiosk/kiosk.html", branch=branch, config=config, strings=strings, closure=closure,
                           brand=storefront.branding(branch), language_names=storefront.LANGUAGE_NAMES)


class TicketGone(Exception):
    """A status link that names no ticket (mistyped, or its ticket anonymised long ago)."""


def ticket_by_token(token) -> Ticket:
    """The ticket of a status link (the page, its JSON, its QR code, its live socket); TicketGone if none."""
    # Tokens are URL-safe base64; anything else (a NUL, say, which PostgreSQL refuses) is not looked up.
    ticket = db.session.scalar(select(Ticket).where(Ticket.access_token == token)) if TOKEN.fullmatch(token) else None
    if ticket is None:
        raise TicketGone()
    return ticket


def _gone_words():
    """What a customer with a dead status link reads, in their browser's language (the ticket,
    which would say, is not there), else the language the (first) branch starts its screens in."""
    language = request.accept_languages.best_match(current_app.config["LANGUAGES"])
    if language is None:
        first = db.session.scalar(select(Branch).order_by(Branch.id).limit(1))
        language = storefront.start_language(first) if first is not None else "en"
    with force_locale(language):
        return language, {"title": gettext("This ticket link no longer works"),
                          "message": gettext("Ticket links work on the day of the visit only. Please take a new "
                                             "ticket at the kiosk or ask at the desk.")}


@bp.errorhandler(TicketGone)
def ticket_gone(_error):
    language, words = _gone_words()
    if request.path.endswith(".json") or request.method == "POST":
        return jsonify({"error": "not_found", "message": words["message"], "detail": None}), 404
    if request.path.endswith(".svg"):
        return "", 404
    return render_template("kiosk/status_gone.html", language=language, **words), 404


def status_of(ticket: Ticket, place: int | None = None, wait: int | None = None, now=None) -> dict:
    """What the status page shows. `place` and `wait` when the caller counted them already (the live
    page's push counts a whole branch's at once, kiosk/live.py), and `now` read once for them all."""
    now = now or clock.now()
    if place is None and ticket.status == TicketStatus.WAITING:
        place = position(ticket)
        wait = estimated_wait_minutes(ticket, place)
    return {"number": ticket.label, "service": ticket.service.name_in(ticket.language), "status": str(ticket.status),
            "position": place, "ahead": None if place is None else place - 1,
            "estimated_wait_minutes": wait,
            "counter": ticket.counter.name if ticket.counter and ticket.status in ("called", "serving") else None,
            "late_until": self_service.late_until(ticket, now), "actions": self_service.allowed(ticket, now)}


@bp.get("/t/<token>")
def status(token):
    ticket = ticket_by_token(token)
    with force_locale(ticket.language):
        words = {
            "title": gettext("Your place in the queue"),
            "ahead": gettext("People ahead of you: %(count)s"),
            "wait": gettext("Estimated wait: about %(minutes)s min"),
            "next": gettext("You're next. Please stay close."),  # nobody ahead: never "0 people, about 0 min"
            "called": gettext("It is your turn: please go to counter %(counter)s."),
            "serving": gettext("You are being served at counter %(counter)s."),
            "held": gettext("Your ticket is on hold. Please ask at the desk."),
            "finished": gettext("This ticket is closed. Thank you for your visit."),
            "updated": gettext("Updated %(time)s"),
            "offline": gettext("No connection. Retrying…"),
            "cancelled": gettext("Your ticket has been cancelled. Thank you for letting us know."),
            "late_until": gettext("We will keep your place and call you from %(time)s."),
            "late": gettext("I'm running late"),
            "late_question": gettext("How late will you be?"),
            "back": gettext("Back"),
            "cancel": gettext("Cancel my ticket"),
            "cancel_question": gettext("Cancel your ticket? You will lose your place in the queue."),
            "cancel_yes": gettext("Yes, cancel my ticket"),
            "cancel_no": gettext("No, keep my place"),
            "failed": gettext("Something went wrong. Please try again or ask at the desk."),
        }
        choices = [{"minutes": minutes, "label": pgettext("minutes late", "%(minutes)s min", minutes=minutes)}
                   for minutes in self_service.late_choices()]
        return render_template("kiosk/status.html", ticket=ticket, status=status_of(ticket), words=words,
                               language=ticket.language, timezone=ticket.branch.timezone, late_choices=choices,
                               brand=storefront.branding(ticket.branch))


@bp.get("/t/", defaults={"rest": ""})
@bp.get("/t/<path:rest>")
def status_elsewhere(rest):
    """A status link cut short or run on (a mail client's line break, a stray slash): the
    customer's page that says the link does not work, never the staff's error page; the
    ticket's own page when the link starts with a ticket's token."""
    ticket = ticket_by_token(rest.split("/", 1)[0])
    return redirect(url_for("kiosk.status", token=ticket.access_token))


@bp.get("/t/<token>.json")
def status_json(token):
    return jsonify(status_of(ticket_by_token(token)))


@bp.get("/t/<token>/qr.svg")
def status_qr(token):
    ticket = ticket_by_token(token)
    url = url_for("kiosk.status", token=ticket.access_token, _external=True)
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=8, border=2, dark="#000", light="#fff")
    out.seek(0)
    return send_file(out, mimetype="image/svg+xml", max_age=3600)


# --- the status page's buttons ------------------------------------------------------------------
# Public (the link is the only key), so: JSON with the page's own header only (a cross-site form can
# send neither, and a cross-site script cannot without the browser asking us first), rate-limited
# per ticket and per address, and every answer in the ticket's language.
ACTION_HEADER = ("X-Requested-With", "fetch")


def _action_limit(key: str):
    return lambda: current_app.config[key]  # core/config.py: per ticket, and per address


def _per_ticket() -> str:
    return f"status:{(request.view_args or {}).get('token', '')[:64]}"


def _per_address() -> str:
    return f"status-address:{client_address()}"


# One budget for both buttons (shared scope), not one per route.
per_ticket = limiter.shared_limit(_action_limit("STATUS_ACTION_RATE_LIMIT"),
                                  scope="status-actions", key_func=_per_ticket)
per_address = limiter.shared_limit(_action_limit("STATUS_ACTION_ADDRESS_RATE_LIMIT"),
                                   scope="status-actions-address", key_func=_per_address)


def customer_action(view):
    """A status page button's route: over the rate limit, the answer is a refusal like the others
    ({"error", "message", "detail"}, in the ticket's language), never the staff's error page."""

    @wraps(view)
    def run(token):
        try:
            return view(token)
        except RateLimitExceeded:
            ticket = ticket_by_token(token)
            with force_locale(ticket.language):
                return _refused(TooManyTries(gettext("Too many requests: wait a moment and try again.")))

    return run


def _act(token, move):
    """`move(ticket, body)` for the page's own request; {"status"} after it (the page's socket
    brings it too), or the refusal in the ticket's language."""
    ticket = ticket_by_token(token)
    with force_locale(ticket.language):
        try:
            if request.headers.get(ACTION_HEADER[0]) != ACTION_HEADER[1]:
                raise ValidationError(gettext("Something went wrong. Please try again or ask at the desk."),
                                      {ACTION_HEADER[0]: f"must be {ACTION_HEADER[1]}"})
            move(ticket, json_object())
        except SeedError as error:
            return _refused(error)
        db.session.refresh(ticket)
        return jsonify({"status": status_of(ticket)})


@bp.post("/t/<token>/late")
@csrf.exempt
@customer_action
@per_ticket
@per_address
def status_late(token):
    """{"minutes": 10|20|30}: skipped until then, in its place (what the texted L 20 does)."""
    return _act(token, lambda ticket, data: self_service.running_late(ticket, data.get("minutes")))


@bp.post("/t/<token>/cancel")
@csrf.exempt
@customer_action
@per_ticket
@per_address
def status_cancel(token):
    """{"confirm": true}: cancelled, only when confirmed on the page."""
    return _act(token, lambda ticket, data: self_service.cancel(ticket, data.get("confirm")))
