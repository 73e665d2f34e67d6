"""Check-in: validate what the customer entered, record their consent in the words they saw,
and issue the ticket through the queue engine."""
from __future__ import annotations

import functools
import logging
import re
from datetime import timedelta

import phonenumbers
from flask import has_request_context, request, url_for
from flask_babel import gettext
from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from core import appointments, clock, customers, engine, logs
from core.database import begin_writing, write_transaction
from core.errors import Conflict, NotFound, ValidationError
from core.extensions import db
from core.locales import force_locale
from core.models import Branch, Closure, Service, Ticket
from core.queries import estimated_wait_minutes, estimating, position, quote_on_arrival
from core.storefront import LANGUAGES, offered_languages, start_language
from core.web import whole_number
from messaging import phones

log = logging.getLogger(__name__)



def consent_text(branch: Branch, language: str) -> str:
    """The exact words the kiosk shows next to the consent choice; stored with the consent."""
    with force_locale(language):
        return gettext(
            "Yes, %(business)s may text me about this visit: my place in the queue, when it is my turn, "
            "and one short survey afterwards. Reply STOP at any time to stop.",
            business=branch.sender_name,
        )


def branch_or_default(branch_id) -> Branch:
    branch_id = whole_number({"branch": branch_id}, "branch")
    branch = db.session.get(Branch, branch_id) if branch_id else db.session.scalar(select(Branch).order_by(Branch.id))
    if branch is None:
        raise NotFound("No such branch.", {"branch": "unknown"})
    _keep(branch)
    return branch


def _keep(branch: Branch) -> None:
    """The request holds the branch it read: the session holds a row only weakly, and a check-in
    that asks for its branch three times (its language, the rate limit's refusal, the check-in)
    read it three times."""
    logs.note_branch(branch.id)  # what the request's log lines are about
    if has_request_context():
        request.environ.setdefault("seed.branches", []).append(branch)


@functools.cache  # built once for each way of naming the branch, bound at each use (see core/queries.py)
def _arrival(first_branch: bool):
    """The branch (the given one, or the first), the service of the code asked for and the
    closures around today, in one query: the branch-local day is known only once the branch is
    read, and no branch's day is more than one day from UTC's."""
    branch = select(func.min(Branch.id)).scalar_subquery() if first_branch else bindparam("branch")
    return (select(Branch, Service, Closure).select_from(Branch)
            .outerjoin(Service, and_(Service.branch_id == Branch.id, Service.code == bindparam("code")))
            .outerjoin(Closure, and_(Closure.branch_id == Branch.id, Closure.first_day <= bindparam("last"),
                                     Closure.last_day >= bindparam("first")))
            .where(Branch.id == branch))


def _arriving(branch_id, code) -> tuple[Branch, Service | None, Closure | None]:
    """What a walk-in's check-in reads before it writes: the branch (NotFound when there is
    none), the service of `code` in it (None when there is none, or no code), and the closure
    that covers the branch's today (as core.storefront.closure_today chooses it)."""
    branch_id = whole_number({"branch": branch_id}, "branch")
    now = clock.now()
    code = code.strip().upper() if isinstance(code, str) and code.strip() else None
    today = now.date()
    rows = db.session.execute(_arrival(not branch_id), {
        "branch": branch_id, "code": code, "first": today - timedelta(days=1), "last": today + timedelta(days=1)}).all()
    if not rows:
        raise NotFound("No such branch.", {"branch": "unknown"})
    branch, service = rows[0][0], rows[0][1]
    _keep(branch)
    day = branch.local_date(now)
    covering = [closure for _b, _s, closure in rows if closure is not None and closure.first_day <= day <= closure.last_day]
    return branch, service, min(covering, key=lambda closure: (closure.first_day, closure.id), default=None)


def check_phone(raw, branch: Branch) -> dict:
    """A mobile number that texts can reach (core's rule), in E.164 and as the customer would write it."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 32:
        raise ValidationError(gettext("Enter a mobile number."), {"phone": "required"})
    number = appointments.mobile_number(raw, branch)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    same_country = phonenumbers.region_code_for_number(number) == branch.country
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    phones.checked_elsewhere(e164)  # (its welcome text's check, next, is then a lookup)
    return {
        "e164": e164,
        "display": national if same_country else phonenumbers.format_number(
            number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
    }


def clean_name(raw) -> str | None:
    if raw not in (None, "") and not isinstance(raw, str):
        raise ValidationError(gettext("The name must be text."), {"name": "not text"})
    return appointments.customer_name(raw)


def check_in(data: dict) -> dict:
    """Validate a check-in request and issue the ticket. Bad input raises before anything changes."""
    if not isinstance(data, dict):
        raise ValidationError("The body must be a JSON object.")
    unknown = set(data) - {"service", "phone", "language", "sms_consent", "name", "branch", "booking_code"}
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(sorted(unknown))[:80]}", {f: "unknown" for f in unknown})
    begin_writing()  # (on SQLite: what it reads, under the write lock it writes with)
    branch, service, closure = _arriving(data.get("branch"), data.get("service"))
    refuse_when_closed(branch, closure)
    if data.get("booking_code") or (data.get("phone") and not data.get("service")):
        return _appointment_check_in(branch, data)
    language = language_for(branch, data)
    service = _open_service(data.get("service"), service, language)
    consent = data.get("sms_consent", False)
    if not isinstance(consent, bool):
        raise ValidationError("sms_consent must be true or false.", {"sms_consent": "not a boolean"})
    phone = check_phone(data["phone"], branch) if data.get("phone") not in (None, "") else None
    if consent and phone is None:
        raise ValidationError(gettext("Texts need a mobile number."), {"phone": "required for texts"})
    name = clean_name(data.get("name"))

    remember = None
    if phone is not None or name is not None:
        consent_words = consent_text(branch, language) if consent else None

        def remember(session):
            return customers.remember_in(session, phone["e164"] if phone else None, name=name, language=language,
                                         consent_source="kiosk" if consent else None, consent_text=consent_words)
    # The welcome text and the answer both say where the ticket stands: worked out once, in the
    # ticket's own transaction, where the wait told is kept with the customer and the ticket.
    with estimating():
        ticket = engine.issue_ticket(service.id, customer=remember, language=language, source="kiosk",
                                     before_number=_quote, service=service)
        return ticket_result(ticket, sms=bool(consent), quote_kept=True)


def refuse_when_closed(branch: Branch, closure: Closure | None) -> None:
    """No check-in on a day the branch is closed (`closure`: the holiday or closure that covers
    today on its own calendar, if any)."""
    if closure is None:
        return
    if closure.message.strip():
        message = gettext("We are closed today: %(reason)s", reason=closure.message.strip())
    else:
        message = gettext("We are closed today. Please come back another day.")
    raise Conflict(message, {"branch": "closed"})


def language_for(branch: Branch, data: dict) -> str:
    """The customer's language: one of ours and one this branch offers; its start language when not said."""
    language = data.get("language", start_language(branch))
    if language not in LANGUAGES:
        raise ValidationError(gettext("This kiosk does not offer that language."), {"language": "unsupported"})
    if language not in offered_languages(branch):
        raise ValidationError(gettext("This kiosk does not offer that language."), {"language": "not offered"})
    return language


def _open_service(code, service: Service | None, language: str) -> Service:
    """The service asked for by its code (`service`: the branch's of that code, as _arriving read
    it); a paused one is refused by name, in the customer's language."""
    if not isinstance(code, str) or not code.strip():
        raise ValidationError(gettext("Choose a service."), {"service": "required"})
    if service is None:  # (a kiosk left open while its services were set up anew)
        raise ValidationError(gettext("This service is not offered here any more: please choose another or ask at the desk."),
                              {"service": "unknown"})
    if not service.active:
        raise ValidationError(gettext("%(service)s is paused: please ask at the desk.", service=service.name_in(language)),
                              {"service": "paused"})
    return service


def _quote(_session, service, fields) -> dict:
    """(In the ticket's transaction, before it takes its number) the wait the customer is told,
    kept on the ticket for the report that sets it against the real one; it and the place are
    remembered for the answer and the welcome text."""
    _place, wait = quote_on_arrival(fields["branch_id"], service, fields["priority"], fields["arrived_at"])
    return {"quoted_wait_minutes": wait}


def ticket_result(ticket, *, sms: bool, quote_kept=False, **extra) -> dict:
    """What the kiosk (and any check-in client) is told about the ticket it just got; the wait it
    is told is kept on the ticket, for the report that sets it against the real one (already,
    when `quote_kept`: see _quote)."""
    place = position(ticket)
    quoted = estimated_wait_minutes(ticket, place)
    told = {
        "id": ticket.id,
        "number": ticket.label,
        "service": ticket.service.code,
        "service_name": ticket.service.name_in(ticket.language),
        "position": place,
        "estimated_wait_minutes": quoted,
        "status_url": url_for("kiosk.status", token=ticket.access_token, _external=True),
        "sms": sms,
        **extra,
    }
    if not quote_kept:
        _keep_quote(ticket.id, quoted)
    return told


def _keep_quote(ticket_id: int, minutes: int | None) -> None:
    """One UPDATE by primary key, after the ticket was issued (not a change of its state, so
    not the engine's): the check-in's cost does not grow with the queue."""
    if minutes is None:
        return
    try:
        # A write like every other (BEGIN IMMEDIATE on SQLite): upgrading the request's read
        # transaction while the gateway writes fails at once with "database is locked".
        with write_transaction() as session:
            session.execute(update(Ticket).where(Ticket.id == ticket_id).values(quoted_wait_minutes=minutes)
                            .execution_options(synchronize_session=False))
    except SQLAlchemyError:
        # The ticket is issued: a lost quote costs a report one row, never the customer a ticket.
        log.warning("could not keep the wait quoted for ticket %s", ticket_id, exc_info=True)


def _appointment_check_in(branch: Branch, data: dict) -> dict:
    """"I have an appointment": found by booking code or phone, queued at its time."""
    from core import appointments

    language = language_for(branch, data)
    code = data.get("booking_code")
    if code is not None and (not isinstance(code, str) or not re.fullmatch(r"\s*[A-Za-z0-9]{4,8}\s*", code)):
        raise ValidationError(gettext("Booking codes are 6 letters and digits."), {"booking_code": "invalid"})
    phone = None if code else check_phone(data.get("phone"), branch)["e164"]
    try:
        appointment = appointments.find_for_check_in(branch, code=code, phone=phone)
    except NotFound:
        raise NotFound(gettext("We found no appointment for today. Please take a ticket or ask at the desk."),
                       {"booking_code" if code else "phone": "not found"}) from None
    with estimating():
        ticket = appointments.check_in(appointment.id, language=language)
        return ticket_result(ticket, sms=bool(appointment.customer and appointment.customer.sms_consent),
                             appointment={"code": appointment.booking_code,
                                          "time": branch.local(appointment.starts_at).strftime("%H:%M")})
