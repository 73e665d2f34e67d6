"""Whether a text may go now, checked for every text when a gateway is about to send it:
still true (a ticket-bound text whose ticket has moved on, or a reminder for an appointment that
is gone or past, is cancelled as stale), consent, opt-out, quiet hours (surveys and reminders
wait; queue texts, for people in the building, do not), a daily cap per number, and no identical
text twice within a minute. What each kind asks for is in messaging/kinds.py."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from flask import current_app
from sqlalchemy import and_, case, exists, func, literal, or_, select

from core.appointments import ACTIVE as ACTIVE_APPOINTMENT
from core.models import Appointment, Branch, Customer, Ticket

from . import kinds
from .models import OutboxMessage

GONE_OUT = ("sending", "sent", "delivered")
BEGUN = "stale: the appointment would have begun before the text could go"


@dataclass(frozen=True)
class Decision:
    action: str  # send, hold, suppress, cancel (no longer true: stale)
    reason: str | None = None
    until: datetime | None = None


def settings(branch: Branch | None) -> dict:
    merged = dict(current_app.config["MESSAGING_DEFAULTS"])
    if branch is not None and branch.messaging:
        merged.update(branch.messaging)
    return merged


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_until(branch: Branch, now: datetime, rules: dict) -> datetime | None:
    """The end of the quiet hours `now` falls in (branch-local), or None when it is daytime."""
    start, end = _clock(rules["quiet_start"]), _clock(rules["quiet_end"])
    local = branch.local(now)
    moment = local.time()
    quiet = (start <= moment or moment < end) if start > end else (start <= moment < end)
    if not quiet:
        return None
    day = local.date() if moment < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=branch.zone)


def stale(session, message: OutboxMessage, kind: kinds.Kind, until: datetime) -> str | None:
    """Why a ticket- or appointment-bound text would no longer be true at `until`, or None."""
    if kind.ticket_states and message.ticket_id:
        ticket = session.get(Ticket, message.ticket_id)
        if ticket is not None and ticket.status not in kind.ticket_states:
            return f"stale: ticket {ticket.label} is {ticket.status.replace('_', ' ')} now"
    if kind.appointment_bound and message.appointment_id:
        appointment = session.get(Appointment, message.appointment_id)
        if appointment is not None and appointment.status not in ACTIVE_APPOINTMENT:
            return f"stale: the appointment is {appointment.status}"
        if appointment is not None and appointment.starts_at <= until:
            return BEGUN
    return None


def stale_in_sql(now: datetime):
    """The rule of `stale` at `now` as SQL over the outbox row: (whether it is stale, why). For
    setting aside many at once (outbox._set_aside_stale); the same words as `stale` gives."""
    bound = {}
    for kind in kinds.KINDS.values():
        if kind.ticket_states:
            bound.setdefault(kind.ticket_states, []).append(kind.name)
    ticket_moved_on = and_(Ticket.id == OutboxMessage.ticket_id, or_(*(
        and_(OutboxMessage.kind.in_(names), Ticket.status.not_in(states)) for states, names in bound.items())))
    appointment_kinds = [kind.name for kind in kinds.KINDS.values() if kind.appointment_bound]
    appointment_gone = and_(Appointment.id == OutboxMessage.appointment_id, OutboxMessage.kind.in_(appointment_kinds),
                            or_(Appointment.status.not_in(ACTIVE_APPOINTMENT), Appointment.starts_at <= now))
    ticket_why = (select(literal("stale: ticket ") + Ticket.label + " is " + func.replace(Ticket.status, "_", " ")
                         + " now").where(Ticket.id == OutboxMessage.ticket_id).scalar_subquery())
    appointment_why = (select(case(
        (Appointment.status.not_in(ACTIVE_APPOINTMENT), literal("stale: the appointment is ") + Appointment.status),
        else_=literal(BEGUN)))
        .where(Appointment.id == OutboxMessage.appointment_id).scalar_subquery())
    by_ticket = exists().where(ticket_moved_on)
    is_stale = or_(OutboxMessage.ticket_id.is_not(None) & by_ticket,
                   OutboxMessage.appointment_id.is_not(None) & exists().where(appointment_gone))
    return is_stale, case((by_ticket, ticket_why), else_=appointment_why)


def decide(session, message: OutboxMessage, now: datetime) -> Decision:
    kind = kinds.KINDS.get(message.kind) or kinds.Kind(message.kind, "bulk")
    why = stale(session, message, kind, now)
    if why:
        return Decision("cancel", why)
    branch = session.get(Branch, message.branch_id) if message.branch_id else None
    rules = settings(branch)
    customer = session.scalar(select(Customer).where(Customer.phone == message.to))
    if customer is not None and customer.opted_out_at is not None and not kind.reaches_opted_out:
        return Decision("suppress", "opted out (STOP): nothing is sent until START")
    if kind.consent and (customer is None or not customer.sms_consent):
        return Decision("suppress", "no consent to texts from this number")
    if branch is not None and kind.daytime_only:
        until = quiet_until(branch, now, rules)
        if until is not None:
            why = stale(session, message, kind, until)
            if why:
                return Decision("cancel", why)
            return Decision("hold", f"quiet hours: waits until {until.strftime('%H:%M')} branch time", until)
    if branch is not None:
        local = branch.local(now)
        day_start = datetime.combine(local.date(), time.min, tzinfo=branch.zone)
        today = session.scalar(select(func.count(OutboxMessage.id)).where(
            OutboxMessage.to == message.to, OutboxMessage.status.in_(GONE_OUT),
            OutboxMessage.sent_at >= day_start, OutboxMessage.id != message.id))
        if today >= rules["daily_cap"]:
            return Decision("suppress", f"daily cap of {rules['daily_cap']} texts to this number reached")
    recent = session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.to == message.to, OutboxMessage.body == message.body, OutboxMessage.id != message.id,
        OutboxMessage.status.in_(GONE_OUT),
        OutboxMessage.sent_at >= now - timedelta(seconds=rules["duplicate_seconds"])))
    if recent:
        return Decision("suppress", "the same text went to this number less than a minute ago")
    return Decision("send")
