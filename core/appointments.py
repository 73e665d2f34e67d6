"""Appointments: booking within opening hours, never on a closed day, within slot capacity;
confirming, cancelling, rescheduling to a slot that is re-checked at the moment of booking, changing
whom an appointment is for, finding free slots, and a service's days as a calendar shows them."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import phonenumbers
from babel.dates import format_datetime
from flask_babel import get_locale, gettext, pgettext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from . import clock
from .database import write_transaction
from .errors import Conflict, InvalidTransition, NotFound, ValidationError
from .models import Appointment, Branch, Closure, Customer, Service
from .settings.branches import closed_days, is_closed

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ACTIVE = ("booked", "confirmed")


def _hm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(0, 0) if value == "24:00" else time(int(hours), int(minutes))


def _closing(day: date, closes: str, zone) -> datetime:
    """When a day's opening period ends; "24:00" is the midnight that ends the day."""
    if closes == "24:00":
        return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone)
    return datetime.combine(day, _hm(closes), tzinfo=zone)


def fits_opening_hours(branch: Branch, service: Service, starts_at: datetime) -> bool:
    local = branch.local(starts_at)
    end = local + timedelta(minutes=service.slot_minutes)
    for opens, closes in branch.opening_hours.get(WEEKDAYS[local.weekday()], []):
        if datetime.combine(local.date(), _hm(opens), tzinfo=branch.zone) <= local and \
                end <= _closing(local.date(), closes, branch.zone):
            return True
    return False


def on_the_grid(branch: Branch, service: Service, starts_at: datetime) -> bool:
    """Slots start at opening time and every slot_minutes after it."""
    local = branch.local(starts_at)
    for opens, _closes in branch.opening_hours.get(WEEKDAYS[local.weekday()], []):
        first = datetime.combine(local.date(), _hm(opens), tzinfo=branch.zone)
        offset = (local - first).total_seconds() / 60
        if offset >= 0 and offset % service.slot_minutes == 0:
            return True
    return False


def taken(session, service_id: int, starts_at: datetime, exclude: int | None = None) -> int:
    query = select(func.count(Appointment.id)).where(
        Appointment.service_id == service_id, Appointment.starts_at == starts_at, Appointment.status.in_(ACTIVE))
    if exclude is not None:
        query = query.where(Appointment.id != exclude)
    return session.scalar(query)


def _check_slot(session, service: Service, starts_at: datetime, exclude=None):
    """Raise unless `starts_at` is a bookable slot of `service` with room. Holds the service's row
    (FOR UPDATE) until the transaction ends, so two bookings of one slot never both see room on
    PostgreSQL (on SQLite the write transaction's lock does that)."""
    session.execute(select(Service.id).where(Service.id == service.id).with_for_update())
    branch = service.branch
    if starts_at.tzinfo is None:
        raise ValidationError(gettext("Appointment times need a time zone."), {"starts_at": "no zone"})
    if starts_at <= clock.now():
        raise ValidationError(gettext("That time has passed."), {"starts_at": "in the past"})
    closure = is_closed(branch, branch.local_date(starts_at))
    if closure is not None:
        day = f"{branch.local(starts_at):%Y-%m-%d}"
        message = (gettext("%(branch)s is closed on %(day)s: %(reason)s", branch=branch.name, day=day,
                           reason=closure.message) if closure.message
                   else gettext("%(branch)s is closed on %(day)s.", branch=branch.name, day=day))
        raise ValidationError(message, {"starts_at": "closed"})
    if not fits_opening_hours(branch, service, starts_at) or not on_the_grid(branch, service, starts_at):
        raise ValidationError(gettext("%(time)s is not a %(service)s slot within opening hours.",
                                      time=_weekday_and_time(branch, starts_at), service=service.name),
                              {"starts_at": "not a slot"})
    if taken(session, service.id, starts_at, exclude) >= service.slot_capacity:
        raise Conflict(gettext("The %(time)s slot is full.", time=f"{branch.local(starts_at):%H:%M}"),
                       {"starts_at": "full"})


def _weekday_and_time(branch: Branch, moment: datetime) -> str:
    """The weekday and time ("Mon 09:15") where the branch is, in the reader's language (English outside a request)."""
    return format_datetime(moment, "EEE HH:mm", tzinfo=branch.zone, locale=str(get_locale() or "en"))


def _status_word(status: str) -> str:
    """An appointment's status as refusals say it ("Appointment K7Q2 is <status>")."""
    return {"booked": pgettext("appointment is", "booked"), "confirmed": pgettext("appointment is", "confirmed"),
            "cancelled": pgettext("appointment is", "cancelled"),
            "checked_in": pgettext("appointment is", "checked in"),
            "no_show": pgettext("appointment is", "a no-show")}.get(status, status)


def booking_language(branch: Branch, value: str | None) -> str:
    """The language an appointment's texts go out in: one the branch offers; none given, its default."""
    from .storefront import offered_languages, start_language

    if value in (None, ""):
        return start_language(branch)
    offered = offered_languages(branch)
    if value not in offered:
        raise ValidationError(gettext("The language must be one this branch offers: %(offered)s.",
                                      offered=", ".join(offered)), {"language": "not offered"})
    return value


def book(service_id: int, starts_at: datetime, *, customer_id=None, source="staff", language=None) -> Appointment:
    """Book a slot. `language`, the one its texts go out in, is checked against the branch's; without
    one the texts follow the customer's language."""
    with write_transaction() as session:
        service = session.get(Service, service_id)
        if service is None or not service.active:
            raise NotFound(gettext("Service %(service)s does not exist or is not offered now.", service=service_id))
        _check_slot(session, service, starts_at)
        appointment = Appointment(branch_id=service.branch_id, service_id=service.id, customer_id=customer_id,
                                  starts_at=starts_at, status="booked", source=source, created_at=clock.now(),
                                  reminders_sent=[],
                                  language=booking_language(service.branch, language) if language else None)
        session.add(appointment)
        session.flush()
    return appointment


# --- whom an appointment is for ------------------------------------------------------------------

NAME_LENGTH = 60  # what the kiosk and the console's booking form take
MOBILE_TYPES = frozenset({phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})
_NOT_IN_NAMES = re.compile(r"[<>\u2028\u2029]")


@dataclass(frozen=True)
class Contact:
    """A customer's details as a booking takes them, checked (contact() makes one)."""
    name: str | None
    phone: str | None  # E.164
    language: str  # one the branch offers


def mobile(raw, branch: Branch) -> str | None:
    """A mobile number texts can reach, in E.164, read as the branch's country writes numbers; None
    for none given. The one rule: the kiosk, the console, the API and the import use it too."""
    number = mobile_number(raw, branch)
    return None if number is None else phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mobile_number(raw, branch: Branch) -> phonenumbers.PhoneNumber | None:
    """mobile()'s number as parsed (for a caller that also shows it: parsing is the costly part)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str) or len(raw) > 32:
        raise ValidationError(gettext("That is not a phone number."), {"phone": "not a phone number"})
    try:
        number = phonenumbers.parse(raw, branch.country)
    except phonenumbers.NumberParseException:
        raise ValidationError(gettext("That is not a phone number."), {"phone": "not a phone number"}) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(gettext("That number is not valid: please check it."), {"phone": "invalid"})
    if phonenumbers.number_type(number) not in MOBILE_TYPES:
        raise ValidationError(gettext("That looks like a landline: texts cannot reach it. Enter a mobile number."),
                              {"phone": "not a mobile"})
    # the number alone, as its E.164 form reads back (no extension, no trace of how it was typed)
    return phonenumbers.PhoneNumber(country_code=number.country_code, national_number=number.national_number,
                                    italian_leading_zero=number.italian_leading_zero,
                                    number_of_leading_zeros=number.number_of_leading_zeros)


def customer_name(raw) -> str | None:
    """A customer's name as typed, checked (length, no markup or control characters); None for none."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        raise ValidationError(gettext("Names may not contain < > or control characters."), {"name": "not text"})
    name = unicodedata.normalize("NFC", raw).strip()
    if len(name) > NAME_LENGTH:
        raise ValidationError(gettext("Names are at most %(count)s characters.", count=NAME_LENGTH),
                              {"name": "too long"})
    if _NOT_IN_NAMES.search(name) or any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in name):
        raise ValidationError(gettext("Names may not contain < > or control characters."),
                              {"name": "invalid characters"})
    return name


def contact(branch: Branch, *, name=None, phone=None, language=None) -> Contact:
    """Check a customer's details for an appointment at `branch`: every field, so that one
    refusal names all that is wrong (its detail: field -> reason). Changes nothing."""
    checked, messages, detail = {}, [], {}
    for key, check in (("name", lambda: customer_name(name)), ("phone", lambda: mobile(phone, branch)),
                       ("language", lambda: booking_language(branch, language))):
        try:
            checked[key] = check()
        except ValidationError as error:
            messages.append(error.message)
            detail.update(error.detail or {key: "invalid"})
    if messages:
        raise ValidationError(" ".join(messages), detail)
    return Contact(**checked)


def _consent(customer: Customer, words: str | None, source: str) -> None:
    """A consent given now (`words`: what the customer agreed to) also lifts an earlier STOP."""
    if words and customer.phone:
        customer.sms_consent, customer.consent_at, customer.opted_out_at = True, clock.now(), None
        customer.consent_source, customer.consent_text = source, words


def _customer_for(session, current: Customer | None, details: Contact) -> Customer | None:
    """The customer record an appointment with these details belongs to. A number is one record's
    (the column is unique): the one that holds it already, else `current` when it had no number
    yet, else a new record; a number that changes does not take the old one's consent along."""
    if details.phone is not None:
        if current is not None and current.phone == details.phone:
            customer = current
        else:
            customer = session.scalar(select(Customer).where(Customer.phone == details.phone))
            if customer is None and current is not None and current.phone is None:
                customer, customer.phone = current, details.phone
            if customer is None:
                customer = Customer(phone=details.phone, created_at=clock.now())
                session.add(customer)
            elif customer is not current:  # someone we know: their name stays unless one is given
                customer.name = details.name or customer.name
    elif current is not None and current.phone is None:
        customer = current
    elif details.name is not None:
        customer = Customer(created_at=clock.now())
        session.add(customer)
    else:
        return None
    if customer is current or customer.id is None:
        customer.name = details.name
    customer.language = details.language
    return customer


def _once_more_on_a_taken_number(work):
    """Run `work` (one write transaction); again once if a number was stored by another
    transaction between our look and our insert (PostgreSQL: the unique index refuses the second)."""
    try:
        return work()
    except IntegrityError:
        return work()


def book_for(service_id: int, starts_at: datetime, *, name=None, phone=None, language=None, consent=None,
             consent_source="staff", source="staff") -> Appointment:
    """Book a slot for a customer given by name and mobile (either or neither), in one transaction:
    the details checked (contact()), the slot checked, the customer found by the number or
    remembered. A refusal leaves no customer row or consent behind. `consent`: the words the
    customer agreed to texts with (None: none given now)."""
    def work():
        with write_transaction() as session:
            service = session.get(Service, service_id)
            if service is None or not service.active:
                raise NotFound(gettext("Service %(service)s does not exist or is not offered now.",
                                       service=service_id))
            details = contact(service.branch, name=name, phone=phone, language=language)
            _check_slot(session, service, starts_at)
            customer = _customer_for(session, None, details)
            if customer is not None:
                _consent(customer, consent, consent_source)
                session.flush()
            appointment = Appointment(branch_id=service.branch_id, service_id=service.id,
                                      customer_id=customer.id if customer else None, starts_at=starts_at,
                                      status="booked", source=source, created_at=clock.now(), reminders_sent=[],
                                      language=details.language)
            session.add(appointment)
            session.flush()
        return appointment

    return _once_more_on_a_taken_number(work)


def _change(appointment_id, allowed, change):
    with write_transaction() as session:
        appointment = session.get(Appointment, appointment_id, with_for_update=True)
        if appointment is None:
            raise NotFound(gettext("Appointment %(ident)s does not exist.", ident=appointment_id))
        if appointment.status not in allowed:
            raise InvalidTransition(gettext("Appointment %(code)s is %(status)s.", code=appointment.booking_code,
                                             status=_status_word(appointment.status)))
        change(session, appointment)
    return appointment


def confirm(appointment_id):
    return _change(appointment_id, ACTIVE, lambda s, a: setattr(a, "status", "confirmed"))


def cancel(appointment_id):
    return _change(appointment_id, ACTIVE, lambda s, a: setattr(a, "status", "cancelled"))


def mark_late(appointment_id, minutes: int):
    return _change(appointment_id, ACTIVE, lambda s, a: setattr(a, "late_minutes", minutes))


def reschedule(appointment_id, starts_at: datetime, *, reopen: bool = False):
    """Move to `starts_at`, re-checked now: a slot taken since it was offered raises Conflict.
    `reopen`: a cancelled appointment may be booked again this way (R after a cancellation)."""
    def move(session, appointment):
        _check_slot(session, appointment.service, starts_at, exclude=appointment.id)
        appointment.starts_at, appointment.status, appointment.reminders_sent = starts_at, "booked", []

    return _change(appointment_id, (*ACTIVE, "cancelled") if reopen else ACTIVE, move)


def change_customer(appointment_id, *, name, phone, language, consent=None, consent_source="staff") -> Appointment:
    """Whom an active appointment is for (staff correcting a booking): name, mobile and the
    language of its texts, checked as a booking checks them; on bad input nothing changes. The same
    number: that customer's name and language are corrected. A number another customer record
    holds: the appointment is that customer's from now on. A new number: a new record (the old
    one keeps its number and consent), or the customer's own when they had none. Neither name nor
    number: the appointment is for no one in particular."""
    def change(session, appointment):
        details = contact(appointment.branch, name=name, phone=phone, language=language)
        customer = _customer_for(session, appointment.customer, details)
        if customer is not None:
            _consent(customer, consent, consent_source)
            session.flush()
        appointment.customer = customer
        appointment.language = details.language

    return _once_more_on_a_taken_number(lambda: _change(appointment_id, ACTIVE, change))


def _grid(service: Service, first: date, days: int):
    """Every slot start of the service on the open days from `first` for `days` days (branch-local)."""
    branch = service.branch
    closed = closed_days(branch, first, first + timedelta(days=days - 1))
    for offset in range(days):
        day = first + timedelta(days=offset)
        if day in closed:
            continue
        for opens, closes in branch.opening_hours.get(WEEKDAYS[day.weekday()], []):
            moment = datetime.combine(day, _hm(opens), tzinfo=branch.zone)
            closing = _closing(day, closes, branch.zone)
            while moment + timedelta(minutes=service.slot_minutes) <= closing:
                yield moment
                moment += timedelta(minutes=service.slot_minutes)


@dataclass(frozen=True)
class Slot:
    starts_at: datetime  # in the branch's zone
    booked: int  # active appointments in it
    capacity: int
    past: bool

    @property
    def free(self) -> bool:
        return not self.past and self.booked < self.capacity


def slots(service: Service, first: date, days: int = 1) -> list[Slot]:
    """The service's slots on `days` branch-local days from `first`, each with how many active
    appointments it holds (one query for the whole range); closed days have none."""
    from .extensions import db

    branch = service.branch
    start = datetime.combine(first, time.min, tzinfo=branch.zone)
    counts = dict(db.session.execute(
        select(Appointment.starts_at, func.count(Appointment.id)).where(
            Appointment.service_id == service.id, Appointment.status.in_(ACTIVE),
            Appointment.starts_at >= start, Appointment.starts_at < start + timedelta(days=days + 1))
        .group_by(Appointment.starts_at)).all())
    booked = {moment.astimezone(branch.zone): count for moment, count in counts.items()}
    now = clock.now()
    return [Slot(moment, booked.get(moment, 0), service.slot_capacity, moment <= now)
            for moment in _grid(service, first, days)]


def free_slots(service: Service, after: datetime, count=3, days=14) -> list[datetime]:
    """The next `count` slots of the service with room, after `after`, within `days`."""
    found = [slot.starts_at for slot in slots(service, service.branch.local(after).date(), days)
             if slot.booked < slot.capacity and slot.starts_at > after]
    return found[:count]


def _day_start(branch: Branch, day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=branch.zone)


def appointments_between(branch: Branch, first: date, days: int = 1, *, service_id: int | None = None,
                         cancelled: bool = False) -> list[Appointment]:
    """The appointments of the branch (or of one of its services) on `days` branch-local days from
    `first`, by time, with their customers: one query, bounded by the range (ix_appointment_slot).
    Cancelled ones only when asked for."""
    from .extensions import db

    services = [service_id] if service_id is not None else [s.id for s in branch.services]
    query = (select(Appointment).options(joinedload(Appointment.customer))
             .where(Appointment.branch_id == branch.id, Appointment.service_id.in_(services),
                    Appointment.starts_at >= _day_start(branch, first),
                    Appointment.starts_at < _day_start(branch, first + timedelta(days=days))))
    if not cancelled:
        query = query.where(Appointment.status != "cancelled")
    return db.session.scalars(query.order_by(Appointment.starts_at, Appointment.id)).all()


@dataclass(frozen=True)
class CalendarDay:
    """One branch-local day of a service as the calendar shows it."""
    day: date
    closure: Closure | None  # the holiday or closure covering it
    slots: list[tuple[Slot, list[Appointment]]]  # none on a closed day or one without opening hours
    # at times that are no slot of the day (the hours changed, a closure was added, since the booking)
    others: list[Appointment] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        return self.closure is not None or not self.slots


def calendar(service: Service, first: date, days: int = 1) -> list[CalendarDay]:
    """The service's days from `first`: each slot with its appointments, closures, and the
    appointments that fall on no slot. A few queries for the whole range, whatever its history."""
    from .extensions import db

    branch = service.branch
    last = first + timedelta(days=days - 1)
    closures = db.session.scalars(select(Closure).where(Closure.branch_id == branch.id, Closure.last_day >= first,
                                                        Closure.first_day <= last).order_by(Closure.first_day)).all()
    booked: dict[date, list[Appointment]] = {}
    for appointment in appointments_between(branch, first, days, service_id=service.id):
        booked.setdefault(branch.local_date(appointment.starts_at), []).append(appointment)
    by_day: dict[date, list[Slot]] = {}
    for slot in slots(service, first, days):
        by_day.setdefault(slot.starts_at.date(), []).append(slot)
    found = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        theirs = booked.get(day, [])
        rows = [(slot, [a for a in theirs if a.starts_at == slot.starts_at]) for slot in by_day.get(day, [])]
        placed = {id(a) for _slot, held in rows for a in held}
        found.append(CalendarDay(day, next((c for c in closures if c.first_day <= day <= c.last_day), None), rows,
                                 [a for a in theirs if id(a) not in placed]))
    return found


def find_for_check_in(branch: Branch, *, code=None, phone=None) -> Appointment:
    """Today's active appointment at this branch, by booking code or by the customer's phone."""
    from .extensions import db

    today = branch.local_date(clock.now())
    start = datetime.combine(today, time.min, tzinfo=branch.zone)
    query = select(Appointment).where(Appointment.branch_id == branch.id, Appointment.status.in_(ACTIVE),
                                      Appointment.starts_at >= start, Appointment.starts_at < start + timedelta(days=1))
    if code:
        query = query.where(Appointment.booking_code == code.strip().upper())
    elif phone:
        query = query.join(Customer, Appointment.customer_id == Customer.id).where(Customer.phone == phone)
    else:
        raise ValidationError(gettext("A booking code or a phone number is needed."), {"appointment": "required"})
    appointment = db.session.scalar(query.order_by(Appointment.starts_at).limit(1))
    if appointment is None:
        raise NotFound(gettext("No appointment for today matches."), {"appointment": "not found"})
    return appointment


def check_in(appointment_id, *, language=None):
    """Into the queue: appointment priority at its time; early arrivals wait for their slot; late
    ones follow APPOINTMENT_LATE_POLICY after the grace period."""
    from flask import current_app

    from . import engine
    from .extensions import db

    config = current_app.config
    appointment = db.session.get(Appointment, appointment_id)
    grace = appointment.starts_at + timedelta(minutes=config["APPOINTMENT_LATE_GRACE_MINUTES"])
    very_late = clock.now() > grace and config["APPOINTMENT_LATE_POLICY"] == "walk_in"
    ticket = engine.issue_ticket(appointment.service_id, customer_id=appointment.customer_id,
                                 priority=None if very_late else config["APPOINTMENT_PRIORITY"],
                                 language=language or (appointment.customer.language if appointment.customer else None),
                                 source="appointment", not_before=appointment.starts_at)

    def checked_in(_session, row):
        row.status, row.ticket_id = "checked_in", ticket.id

    _change(appointment_id, ACTIVE, checked_in)
    return ticket


def book_many(rows: list[dict], source="import") -> list[Appointment]:
    """Book every row or none: one transaction, each slot checked against the rows before it.
    Rows: {"service_id", "starts_at", "phone", "name", "language"} (language: the branch's default when absent)."""
    booked = []
    with write_transaction() as session:
        for number, row in enumerate(rows, 1):
            service = session.get(Service, row["service_id"])
            try:
                _check_slot(session, service, row["starts_at"])
            except (ValidationError, Conflict) as error:
                raise ValidationError(gettext("Row %(row)s: %(problem)s", row=number, problem=error.message),
                                      {"row": number}) from None
            language = booking_language(service.branch, row.get("language"))
            customer = None
            if row.get("phone"):
                # A customer new to us speaks the row's language; a known one keeps theirs (the
                # appointment's texts go out in the row's language either way).
                customer = session.scalar(select(Customer).where(Customer.phone == row["phone"])) or Customer(
                    phone=row["phone"], created_at=clock.now(), language=language)
                customer.name = row.get("name") or customer.name
                session.add(customer)
                session.flush()
            appointment = Appointment(branch_id=service.branch_id, service_id=service.id,
                                      customer_id=customer.id if customer else None, starts_at=row["starts_at"],
                                      status="booked", source=source, created_at=clock.now(), reminders_sent=[],
                                      language=language)
            session.add(appointment)
            session.flush()
            booked.append(appointment)
    return booked
