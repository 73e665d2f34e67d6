"""Whether a text may go now, checked for every text when a gateway is about to send it:
consent, opt-out, quiet hours (surveys and reminders wait; queue texts, for people in the
building, do not), a daily cap per number, and no identical text twice within a minute."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, select

from core.models import Branch, Customer

from .models import OutboxMessage

QUEUE_KINDS = {"welcome", "position", "next", "called", "no_show"}
WAITS_FOR_DAYTIME = {"survey", "reminder"}  # replies to a customer who just wrote go at once
NEEDS_NO_CONSENT = {"test", "help", "unknown_ack", "stop_confirm", "late_ack", "reply", "appointment_confirmed",
                    "appointment_cancelled", "reschedule_offer", "reschedule_taken", "reschedule_none",
                    "appointment_moved", "appointment_late"}  # a test typed by an admin; answers to someone who wrote
REACHES_THE_OPTED_OUT = {"stop_confirm", "help"}  # the confirmation of STOP, and HELP, go whatever
GONE_OUT = ("sending", "sent", "delivered")


@dataclass(frozen=True)
class Decision:
    action: str  # send, hold, suppress
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


def decide(session, message: OutboxMessage, now: datetime) -> Decision:
    branch = session.get(Branch, message.branch_id) if message.branch_id else None
    rules = settings(branch)
    customer = session.scalar(select(Customer).where(Customer.phone == message.to))
    if customer is not None and customer.opted_out_at is not None and message.kind not in REACHES_THE_OPTED_OUT:
        return Decision("suppress", "opted out (STOP): nothing is sent until START")
    if message.kind not in NEEDS_NO_CONSENT and (customer is None or not customer.sms_consent):
        return Decision("suppress", "no consent to texts from this number")
    if branch is not None and message.kind in WAITS_FOR_DAYTIME:
        until = quiet_until(branch, now, rules)
        if until is not None:
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
