"""Appointments: booking within opening hours, never on a closed day, within slot capacity;
confirming, cancelling, rescheduling to a slot that is re-checked at the moment of booking, and
finding free slots."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from babel.dates import format_datetime
from flask_babel import get_locale, gettext, pgettext
from sqlalchemy import func, select

from . import clock
from .database import write_transaction
from .errors import Conflict, InvalidTransition, NotFound, ValidationError
from .models import Appointment, Branch, Service
from .settings.branches import closed_days, is_closed

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ACTIVE = ("booked", "confirmed")


def _hm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(0, 0) if value == "24:00" else time(int(hours), int(minutes))


def fits_opening_hours(branch: Branch, service: Service, starts_at: datetime) -> bool:
    local = branch.local(starts_at)
    end = (local + timedelta(minutes=service.slot_minutes)).time()
    for opens, closes in branch.opening_hours.get(WEEKDAYS[local.weekday()], []):
        closing = time(23, 59, 59) if closes == "24:00" else _hm(closes)
        if _hm(opens) <= local.time() and end <= closing and end > local.time():
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


def reschedule(appointment_id, starts_at: datetime):
    """Move to `starts_at`, re-checked now: a slot taken since it was offered raises Conflict."""
    def move(session, appointment):
        _check_slot(session, appointment.service, starts_at, exclude=appointment.id)
        appointment.starts_at, appointment.status, appointment.reminders_sent = starts_at, "booked", []

    return _change(appointment_id, ACTIVE, move)


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
            closing = datetime.combine(day, time(23, 59, 59) if closes == "24:00" else _hm(closes), tzinfo=branch.zone)
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


def find_for_check_in(branch: Branch, *, code=None, phone=None) -> Appointment:
    """Today's active appointment at this branch, by booking code or by the customer's phone."""
    from .extensions import db
    from .models import Customer

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
    from .models import Customer

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
