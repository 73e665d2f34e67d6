"""Online self-booking, the public side: a customer books a free slot of a branch's service with
their name, mobile number and consent to texts, and later cancels or moves it by the link they
were texted (Appointment.access_token, the only key: there is no account).

Every booking goes through core.appointments' slot check under its lock (the service's row, FOR
UPDATE; SQLite's write lock), in the same transaction as the customer and their consent: two
people never get one slot, and a refused booking changes nothing, not even the customer. Call
inside flask_babel.force_locale(the customer's language): every refusal is theirs to read."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import gettext
from sqlalchemy import select

from . import appointments, audit, clock
from .database import write_transaction
from .errors import Conflict, InvalidTransition, NotFound, SeedError, ValidationError
from .extensions import db
from .locales import force_locale
from .models import Appointment, Branch, Service
from .settings import FieldErrors
from .settings.branches import closed_days
from .storefront import kiosk_services, start_language

DAYS_AHEAD = 14  # today and the 13 days after it, on the branch's calendar
SOURCE = "online"  # Appointment.source and Customer.consent_source
SWITCH = "online_booking"  # the key in Branch.messaging (see enabled())
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,32}")


class BookingOff(SeedError):
    """The branch takes no online bookings (its manager switched them off)."""

    status = 403
    code = "booking_off"


class LinkGone(NotFound):
    """A manage link that names no appointment (mistyped, or never one of ours)."""


class Refused(SeedError):
    """A change the customer may not make now (the appointment has passed, or is cancelled)."""

    status = 409
    code = "refused"


# --- the switch ---------------------------------------------------------------------------------
# Kept in the branch's JSON settings (Branch.messaging, beside the texts it sends, which an online
# booking starts): on unless a manager switched it off.

def enabled(branch: Branch) -> bool:
    own = branch.messaging if isinstance(branch.messaging, dict) else {}
    return own.get(SWITCH, True) is not False


def set_enabled(branch: Branch, on: bool) -> None:
    """Switch online booking on or off for the branch; recorded in the audit log when it changes."""
    if not isinstance(on, bool):
        raise ValidationError(gettext("Either on or off."), {SWITCH: "not a boolean"})
    if enabled(branch) == on:
        return
    with write_transaction() as session:
        row = session.get(Branch, branch.id, with_for_update=True)
        row.messaging = {**(row.messaging or {}), SWITCH: on}  # a new dict: the JSON column sees the change
    audit.record("settings.changed", target=f"branch:{branch.id}", branch_id=branch.id, detail={SWITCH: on})


def refuse_when_off(branch: Branch) -> None:
    if not enabled(branch):
        raise BookingOff(gettext("%(branch)s does not take bookings online at the moment. Please call or visit us.",
                                 branch=branch.name), {SWITCH: "off"})


# --- what can be booked -------------------------------------------------------------------------

def consent_text(branch: Branch, language: str) -> str:
    """The exact words next to the consent box, in `language`; stored with the consent."""
    with force_locale(language):
        return gettext("Yes, %(business)s may text me about this appointment: the confirmation, reminders, "
                       "my place in the queue on the day, and one short survey afterwards. "
                       "Reply STOP at any time to stop.", business=branch.sender_name)


def services(branch: Branch) -> list[Service]:
    """The services a customer may book, in the kiosk's order (a paused one is not offered)."""
    return [service for service in kiosk_services(branch) if service.active]


def service_by_code(branch: Branch, code) -> Service:
    if not isinstance(code, str) or not code.strip():
        raise ValidationError(gettext("Choose a service."), {"service": "required"})
    found = next((s for s in services(branch) if s.code == code.strip().upper()), None)
    if found is None:
        raise ValidationError(gettext("That service cannot be booked online. Please choose another."),
                              {"service": "not offered"})
    return found


def window(branch: Branch) -> tuple[date, date]:
    """The first and the last day a booking may fall on (branch-local)."""
    today = branch.local_date(clock.now())
    return today, today + timedelta(days=DAYS_AHEAD - 1)


@dataclass(frozen=True)
class Day:
    day: date
    closed: bool  # a closure, or no opening hours that weekday
    free: int  # free slots left (0 on a closed day)


def days(service: Service) -> list[Day]:
    """The booking window's days for `service`: each open or closed, with its free slots (two queries)."""
    branch = service.branch
    first, last = window(branch)
    closed = closed_days(branch, first, last)
    free: dict[date, int] = {}
    for slot in appointments.slots(service, first, DAYS_AHEAD):
        free[slot.starts_at.date()] = free.get(slot.starts_at.date(), 0) + (1 if slot.free else 0)
    hours = branch.opening_hours or {}
    result = []
    for offset in range(DAYS_AHEAD):
        day = first + timedelta(days=offset)
        shut = day in closed or not hours.get(appointments.WEEKDAYS[day.weekday()])
        result.append(Day(day, shut, 0 if shut else free.get(day, 0)))
    return result


def free_times(service: Service, day: date, exclude: datetime | None = None) -> list[datetime]:
    """The free slots of `service` on `day` (branch-local), in the branch's zone; `exclude`: a time
    not to offer (the one an appointment being moved has now)."""
    first, last = window(service.branch)
    if not first <= day <= last:
        return []
    return [slot.starts_at for slot in appointments.slots(service, day, 1)
            if slot.free and (exclude is None or slot.starts_at != exclude)]


def _in_window(branch: Branch, starts_at: datetime, errors: FieldErrors) -> None:
    if not isinstance(starts_at, datetime) or starts_at.tzinfo is None:
        errors.add("time", gettext("Please choose one of the times offered."))
        return
    _first, last = window(branch)
    if branch.local_date(starts_at) > last:
        errors.add("time", gettext("Appointments can be booked up to %(days)s days ahead.", days=DAYS_AHEAD))
    elif starts_at <= clock.now():
        errors.add("time", gettext("That time has passed. Please choose another."))


# --- booking, and the customer's changes ---------------------------------------------------------

def _details(branch: Branch, name, phone, errors: FieldErrors) -> None:
    """Name and mobile as every booking checks them (appointments.contact), each refusal on its
    own field; online, both are required."""
    missing = {"name": gettext("Please enter your name."), "phone": gettext("Enter a mobile number.")}
    for field, given in (("name", name), ("phone", phone)):
        if not isinstance(given, str) or not given.strip():
            errors.add(field, missing[field])
            continue
        try:
            appointments.contact(branch, **{field: given})
        except ValidationError as error:
            errors.add(field, error.message)


def book(branch: Branch, *, service, starts_at: datetime, name, phone, language, consent) -> Appointment:
    """Book `starts_at` (an aware moment: one of free_times()) of `service` (a code) for the
    customer, with their consent to texts in the exact words they saw. Every field is checked
    first (all errors at once, ValidationError, detail: field -> message); then, in one transaction
    (appointments.book_for), the slot under its lock (ValidationError when it is not a slot within
    opening hours on an open day, Conflict when it is full), the customer and their consent."""
    refuse_when_off(branch)
    errors = FieldErrors()
    chosen = _checked(errors, "service", lambda: service_by_code(branch, service))
    language = _checked(errors, "language", lambda: appointments.booking_language(branch, language or None))
    _details(branch, name, phone, errors)
    if consent is not True:
        errors.add("consent", gettext("Please tick the box: we send your confirmation and reminders by text."))
    _in_window(branch, starts_at, errors)
    errors.raise_if_any()
    try:
        return appointments.book_for(chosen.id, starts_at, name=name, phone=phone, language=language,
                                     consent=consent_text(branch, language), consent_source=SOURCE, source=SOURCE)
    except Conflict:
        message = gettext("Sorry, that time was just taken. Please choose another.")
        raise Conflict(message, {"time": message}) from None
    except NotFound:  # paused since the page was shown
        message = gettext("That service cannot be booked online. Please choose another.")
        raise ValidationError(message, {"service": message}) from None
    except ValidationError as error:  # not a slot within opening hours, or a closed day
        raise ValidationError(error.message, {"time": error.message}) from None


def _checked(errors: FieldErrors, field: str, check):
    """check()'s value; its refusal noted on `field`."""
    try:
        return check()
    except ValidationError as error:
        errors.add(field, error.message)
        return None


def by_token(token) -> Appointment:
    """The appointment of a manage link; LinkGone if none."""
    found = (db.session.scalar(select(Appointment).where(Appointment.access_token == token))
             if isinstance(token, str) and TOKEN.fullmatch(token) else None)
    if found is None:
        raise LinkGone(gettext("This link does not lead to an appointment."), {"token": "unknown"})
    return found


def language_of(appointment: Appointment) -> str:
    """The language its customer reads: the one it was booked in, else theirs, else the branch's."""
    return (appointment.language or (appointment.customer.language if appointment.customer else None)
            or start_language(appointment.branch))


def can_change(appointment: Appointment) -> bool:
    """Whether its customer may still cancel or move it: active, and not begun."""
    return appointment.status in appointments.ACTIVE and appointment.starts_at > clock.now()


def _refusal(appointment: Appointment) -> Refused:
    if appointment.status == "cancelled":
        return Refused(gettext("This appointment is cancelled, so it can no longer be changed."),
                       {"status": appointment.status})
    return Refused(gettext("This appointment has passed, so it can no longer be changed here. "
                           "Please call or visit us."), {"status": appointment.status})


def cancel(appointment: Appointment, confirmed) -> Appointment:
    """Cancel, only when the customer confirmed it on the page."""
    if confirmed is not True:
        raise ValidationError(gettext("Please confirm that you want to cancel your appointment."),
                              {"confirm": "required"})
    if not can_change(appointment):
        raise _refusal(appointment)
    try:
        return appointments.cancel(appointment.id)
    except InvalidTransition:  # cancelled or checked in since the page was shown
        db.session.refresh(appointment)
        raise _refusal(appointment) from None


def move(appointment: Appointment, starts_at: datetime) -> Appointment:
    """Move to `starts_at` (one of free_times()): re-checked under the lock, Conflict if taken since."""
    if not can_change(appointment):
        raise _refusal(appointment)
    refuse_when_off(appointment.branch)
    errors = FieldErrors()
    _in_window(appointment.branch, starts_at, errors)
    if not errors and starts_at == appointment.starts_at:
        errors.add("time", gettext("Your appointment is at that time already. Please choose another."))
    errors.raise_if_any()
    try:
        return appointments.reschedule(appointment.id, starts_at)
    except InvalidTransition:
        db.session.refresh(appointment)
        raise _refusal(appointment) from None
    except Conflict:
        message = gettext("Sorry, that time was just taken. Please choose another.")
        raise Conflict(message, {"time": message}) from None
    except ValidationError as error:  # not a slot within opening hours, or a closed day
        raise ValidationError(error.message, {"time": error.message}) from None
