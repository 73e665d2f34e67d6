"""Texts about appointments: the confirmation of a booking made online (with the customer's
link to it), reminders at each lead time (a sweep that is safe to rerun), and the replies C
(confirm), X (cancel), R (reschedule: three free slots, answer 1-3, re-checked)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from core import appointments, clock
from core.database import write_transaction
from core.errors import Conflict, SeedError, ValidationError
from core.extensions import db
from core.language import customer_datetime
from core.models import Appointment, Customer
from core.settings import branches as branch_settings

from . import outbox, policy, templates
from .models import RescheduleOffer

log = logging.getLogger(__name__)


def when_text(branch, moment: datetime, language: str) -> str:
    """An appointment's date and time as its texts in `language` give them, on the branch's clock."""
    return customer_datetime(moment, branch.zone, language)


def choices_text(branch, slots, language: str) -> str:
    """The free times a reschedule offer lists, numbered for the reply."""
    return " ".join(f"{i}) {when_text(branch, s, language)}" for i, s in enumerate(slots, 1))


def _language(appointment: Appointment) -> str:
    return appointment.language or appointment.customer.language  # the one asked when booking, if it was


def _body(appointment: Appointment, kind: str, **values) -> str | None:
    """The text of `kind` for the appointment's customer, or None when they have no number."""
    customer = appointment.customer
    if customer is None or not customer.phone:
        return None
    language = _language(appointment)
    return templates.render(appointment.branch, kind, language, service=appointment.service.name_in(language),
                            time=when_text(appointment.branch, appointment.starts_at, language),
                            code=appointment.booking_code, **values)


def _text(appointment: Appointment, kind: str, **values) -> int | None:
    body = _body(appointment, kind, **values)
    if body is None:
        return None
    return outbox.enqueue(appointment.customer.phone, body, kind, branch_id=appointment.branch_id,
                          appointment_id=appointment.id).id


def booked(appointment: Appointment, link: str) -> int | None:
    """Confirm a booking made online, after it committed: when, the code, the reply words that act
    on it (X, R) and `link`, the absolute address of its page (/a/<token>) to cancel or move it."""
    return _text(appointment, "appointment_booked", link=link)


def moved(appointment: Appointment) -> int | None:
    """Tell the customer the new time of an appointment they moved on its page (as after R and a choice)."""
    return _text(appointment, "appointment_moved")


def send_reminders() -> int:
    """Each lead time once per appointment; none for a lead time the booking was made inside."""
    now, sent = clock.now(), 0
    upcoming = db.session.scalars(select(Appointment).where(
        Appointment.status.in_(appointments.ACTIVE), Appointment.starts_at > now)).all()
    for appointment in upcoming:
        if branch_settings.is_closed(appointment.branch, appointment.branch.local_date(appointment.starts_at)):
            continue  # the branch closed that day after the booking: no reminder for a visit that cannot happen
        leads = policy.settings(appointment.branch)["reminder_lead_minutes"]
        for lead in sorted(leads, reverse=True):
            due = appointment.starts_at - timedelta(minutes=lead)
            if lead in (appointment.reminders_sent or []) or now < due:
                continue
            # Booked before the lead time: remind; inside it: the booking said it. The text is
            # written in the transaction that marks the lead time done: a crash loses neither.
            body = _body(appointment, "reminder") if due >= appointment.created_at else None
            with write_transaction() as session:
                row = session.get(Appointment, appointment.id, with_for_update=True)
                if lead in (row.reminders_sent or []):
                    continue
                row.reminders_sent = [*(row.reminders_sent or []), lead]
                queued = None
                try:
                    if body:
                        queued = outbox.add(session, row.customer.phone, body, "reminder", branch_id=row.branch_id,
                                            appointment_id=row.id)
                except ValidationError as error:  # a stored number no text can reach: the others still go
                    log.warning("appointment %s: no reminder written: %s", row.id, error.message)
            if queued:
                outbox.announce(queued)
                sent += 1
    return sent


def upcoming_for(phone: str) -> Appointment | None:
    return db.session.scalar(
        select(Appointment).join(Customer, Appointment.customer_id == Customer.id)
        .where(Customer.phone == phone, Appointment.status.in_(appointments.ACTIVE),
               Appointment.starts_at > clock.now())
        .order_by(Appointment.starts_at).limit(1))


def cancelled_lately(phone: str) -> Appointment | None:
    """The sender's appointment cancelled in the last RESCHEDULE_AFTER_CANCEL_DAYS whose day has not
    passed: "Reply R to book another time", in the cancellation text, offers times for it."""
    now = clock.now()
    days = current_app.config["RESCHEDULE_AFTER_CANCEL_DAYS"]
    return db.session.scalar(
        select(Appointment).join(Customer, Appointment.customer_id == Customer.id)
        .where(Customer.phone == phone, Appointment.status == "cancelled",
               Appointment.starts_at > now - timedelta(days=days))
        .order_by(Appointment.id.desc()).limit(1))


def _answer(phone, change, kind, outcome) -> str | None:
    """Apply `change` to the sender's next appointment and text them `kind`; None without one."""
    appointment = upcoming_for(phone)
    if appointment is None:
        return None
    change(appointment.id)
    _text(db.session.get(Appointment, appointment.id), kind)
    return outcome


def confirm(phone) -> str | None:
    return _answer(phone, appointments.confirm, "appointment_confirmed", "appointment confirmed")


def cancel(phone) -> str | None:
    return _answer(phone, appointments.cancel, "appointment_cancelled", "appointment cancelled")


def offer(phone, appointment=None) -> str | None:
    appointment = appointment or upcoming_for(phone) or cancelled_lately(phone)
    if appointment is None:
        return None
    slots = appointments.free_slots(appointment.service, clock.now(), count=4)
    slots = [s for s in slots if s != appointment.starts_at or appointment.status == "cancelled"][:3]
    if not slots:
        _text(appointment, "reschedule_none")
        return "reschedule: no free slot"
    minutes = current_app.config["RESCHEDULE_OFFER_MINUTES"]
    with write_transaction() as session:
        for old in session.scalars(select(RescheduleOffer).where(RescheduleOffer.phone == phone,
                                                                  RescheduleOffer.status == "open")):
            old.status = "expired"
        session.add(RescheduleOffer(appointment_id=appointment.id, phone=phone, status="open",
                                    slots=[s.isoformat() for s in slots], created_at=clock.now(),
                                    expires_at=clock.now() + timedelta(minutes=minutes)))
    _text(appointment, "reschedule_offer", choices=choices_text(appointment.branch, slots, _language(appointment)))
    return "reschedule: slots offered"


def open_offer(phone) -> RescheduleOffer | None:
    return db.session.scalar(select(RescheduleOffer).where(
        RescheduleOffer.phone == phone, RescheduleOffer.status == "open", RescheduleOffer.expires_at > clock.now())
        .order_by(RescheduleOffer.id.desc()).limit(1))


def choose(phone, choice: int) -> str | None:
    chosen = open_offer(phone)
    if chosen is None or not 1 <= choice <= len(chosen.slots):
        return None
    appointment = db.session.get(Appointment, chosen.appointment_id)
    slot = datetime.fromisoformat(chosen.slots[choice - 1])
    with write_transaction() as session:
        session.get(RescheduleOffer, chosen.id).status = "used"
    try:
        appointments.reschedule(appointment.id, slot, reopen=True)
    except Conflict:
        # Taken since it was offered: say so and offer what is free now.
        _text(appointment, "reschedule_taken")
        offer(phone, appointment)
        return "reschedule: taken, new slots offered"
    except SeedError as error:
        log.info("reschedule refused: %s", error.message)
        return None
    _text(db.session.get(Appointment, appointment.id), "appointment_moved")
    return "appointment rescheduled"
