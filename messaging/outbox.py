"""The outbox: every outgoing text is a row first. Gateways claim due rows under a lease, so a
crash or an unplugged modem delays a text and never drops it."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import insert, or_, select, update

from core import clock, cooperative
from core.database import write_transaction
from core.errors import ValidationError
from core.extensions import db
from hardware.pdu import encoding_of, outside_bmp, segment_count

from . import kinds, policy
from .models import OutboxMessage
from .models import OutboxStatus as O
from .phones import e164, masked
from .signals import outbox_queued

log = logging.getLogger(__name__)
MAX_SEGMENTS = 10


def check_body(body) -> str:
    if not isinstance(body, str) or not body.strip():
        raise ValidationError("The text is empty.", {"body": "required"})
    strange = outside_bmp(body)
    if strange:
        raise ValidationError(
            "Text messages cannot carry emoji or other characters outside Unicode's basic plane: "
            + " ".join(strange[:5]), {"body": "unsupported characters"})
    if segment_count(body) > MAX_SEGMENTS:
        raise ValidationError(f"The text is longer than {MAX_SEGMENTS} parts.", {"body": "too long"})
    return body


def enqueue(to, body, kind, *, branch_id=None, ticket_id=None, appointment_id=None, send_after=None,
            country=None) -> OutboxMessage:
    """Write a text to the outbox (its own transaction) and wake the gateways; the row, as committed."""
    with write_transaction() as session:
        queued = add(session, to, body, kind, branch_id=branch_id, ticket_id=ticket_id,
                     appointment_id=appointment_id, send_after=send_after, country=country)
    announce(queued)
    return db.session.get(OutboxMessage, queued.id)


def checked(to, body, country=None) -> tuple[str, str]:
    """(the number in E.164, the body) as add() would write them; ValidationError if it would not."""
    return e164(to, country, field="to"), check_body(body)


@functools.cache
def _new_row():
    table = OutboxMessage.__table__
    return insert(table).returning(table.c.id)


# The columns a new text is written with (row()); the others take their defaults in the table.
ROW = ("branch_id", "to", "body", "kind", "priority", "ticket_id", "appointment_id", "status", "send_after",
       "created_at", "encoding", "parts")


def row(to, body, kind, *, branch_id=None, ticket_id=None, appointment_id=None, send_after=None,
        country=None) -> dict:
    """The new text's columns (ROW), checked: ValidationError for a number or a body it may not have."""
    number, body = checked(to, body, country)
    now = clock.now()
    return {"branch_id": branch_id, "to": number, "body": body, "kind": kind, "priority": kinds.get(kind).rank,
            "ticket_id": ticket_id, "appointment_id": appointment_id, "status": O.QUEUED.value,
            "send_after": send_after or now, "created_at": now, "encoding": encoding_of(body),
            "parts": segment_count(body)}


def add(session, to, body, kind, *, branch_id=None, ticket_id=None, appointment_id=None, send_after=None,
        country=None) -> Queued:
    """Add a text to the outbox inside the caller's transaction (so it commits, or not, with the
    decision to send it); call announce() after the commit. Written as a row, not flushed as an
    object: nobody reads it back in the transaction (the unit of work cost each text about a
    million instructions of the one core that serves every request)."""
    values = row(to, body, kind, branch_id=branch_id, ticket_id=ticket_id, appointment_id=appointment_id,
                 send_after=send_after, country=country)
    message_id = session.execute(_new_row(), values).scalar_one()
    return Queued(message_id, kind, values["to"], branch_id)


@dataclass(frozen=True)
class Queued:
    """A new row, as add() wrote it, for announce(): what it says of the row, known without a
    query (after the commit every attribute of a loaded row would cost a query to read again)."""
    id: int
    kind: str
    to: str
    branch_id: int | None


def announce(message: OutboxMessage | Queued) -> None:
    """After the commit: log the new row and wake this process's gateways."""
    log.info("outbox %s: %s text to %s queued", message.id, message.kind, masked(message.to))
    outbox_queued.send(current_app._get_current_object(), message_id=message.id, branch_id=message.branch_id)


def _due(now, branch_id):
    query = select(OutboxMessage).where(
        or_(
            (OutboxMessage.status == O.QUEUED) & (OutboxMessage.send_after <= now),
            # a lease that ran out: its gateway died or hung mid-send
            (OutboxMessage.status == O.SENDING) & (OutboxMessage.lease_until < now),
        )
    )
    if branch_id is not None:
        query = query.where(OutboxMessage.branch_id == branch_id)
    return query


def claim(owner: str, branch_id=None, lease_seconds=120) -> dict | None:
    """Take the most urgent due row for `owner`, or None. Safe with several gateways at once.

    Rows that may not go (stale, no consent, quiet hours...) are set aside on the way, at most
    SET_ASIDE_PER_TRANSACTION in one write transaction: a backlog of hundreds of them would
    otherwise hold the write lock, and under gevent every request, for a second or more. The first
    stale one met sets aside every due stale text at once (_set_aside_stale), up to
    STALE_PER_STATEMENT a transaction."""
    now = clock.now()
    due = (_due(now, branch_id)
           .order_by(OutboxMessage.priority.desc(), OutboxMessage.send_after, OutboxMessage.id)
           .limit(1)
           .with_for_update(skip_locked=True))
    while True:
        with write_transaction() as session:
            claimed = _claim_within(session, due, owner, now, lease_seconds, branch_id)
        if claimed is not _MORE:
            return claimed
        cooperative.let_others_run()  # (requests and screens first, between two batches)


SET_ASIDE_PER_TRANSACTION = 20
_MORE = object()  # the batch set its rows aside without finding one to send: look on in a new transaction


def _claim_within(session, due, owner: str, now, lease_seconds, branch_id):
    for _ in range(SET_ASIDE_PER_TRANSACTION):
        message = session.execute(due).scalar_one_or_none()
        if message is None:
            return None
        decision = policy.decide(session, message, now)
        if decision.action == "send":
            if message.status == O.SENDING:
                message.possible_duplicate = True  # the previous holder may have sent it
            message.status = O.SENDING
            message.lease_owner = owner
            message.lease_until = now + timedelta(seconds=lease_seconds)
            message.attempts += 1
            return {"id": message.id, "to": message.to, "body": message.body, "attempts": message.attempts,
                    "parts": message.parts, "kind": message.kind}
        message.policy_note = decision.reason
        message.lease_owner = message.lease_until = None
        if decision.action == "hold":
            message.status, message.send_after = O.QUEUED, decision.until
        elif decision.action == "cancel":
            message.status = O.CANCELLED
        else:
            message.status = O.SUPPRESSED
        session.flush()
        log.info("outbox %s %s: %s", message.id, decision.action, decision.reason)
        if decision.action == "cancel" and _set_aside_stale(session, now, branch_id):
            return _MORE  # a backlog: the next batch in a new transaction
    return _MORE


STALE_PER_STATEMENT = 500


def _set_aside_stale(session, now, branch_id) -> int:
    """The claim met a stale text: cancel every due queued text that is no longer true, in one
    statement. After a modem outage or at a day's end there are hundreds; one by one each cost
    its reads, a flush and a log line on the thread that serves every request, for seconds."""
    is_stale, why = policy.stale_in_sql(now)
    these = (select(OutboxMessage.id)
             .where(OutboxMessage.status == O.QUEUED.value, OutboxMessage.send_after <= now, is_stale)
             .order_by(OutboxMessage.id).limit(STALE_PER_STATEMENT)
             .with_for_update(skip_locked=True, of=OutboxMessage))  # another gateway's row is its own
    if branch_id is not None:
        these = these.where(OutboxMessage.branch_id == branch_id)
    ids = session.execute(
        update(OutboxMessage).where(OutboxMessage.id.in_(these.scalar_subquery()),
                                    OutboxMessage.status == O.QUEUED.value)
        .values(status=O.CANCELLED.value, policy_note=why, lease_owner=None, lease_until=None)
        .returning(OutboxMessage.id).execution_options(synchronize_session="fetch")).scalars().all()
    if ids:
        log.info("outbox: %d more stale texts cancelled at once: %s", len(ids), _id_list(sorted(ids)))
    return len(ids)


def _id_list(ids: list[int]) -> str:
    """"1-3, 7, 9-12": sorted ids, short."""
    runs = []
    for n in ids:
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _owned(session, message_id, owner):
    message = session.get(OutboxMessage, message_id, with_for_update=True)
    if message is None or message.status != O.SENDING or message.lease_owner != owner:
        log.warning("outbox %s: lease lost by %s; leaving the row as it is", message_id, owner)
        return None
    return message


def mark_sent(message_id, owner, references: list[int]) -> None:
    now = clock.now()
    with write_transaction() as session:
        message = _owned(session, message_id, owner)
        if message is None:
            return
        message.status = O.SENT
        message.sent_at = now
        message.sent_by = owner
        message.modem_references = references
        message.lease_owner = message.lease_until = None
        message.last_error = None


def retry_later(message_id, owner, error: str, *, delay_seconds: float, ambiguous=False, counts=True) -> str:
    """Put the row back in the queue; after too many counted attempts, fail it. Returns the status."""
    now = clock.now()
    with write_transaction() as session:
        message = _owned(session, message_id, owner)
        if message is None:
            return "lost"
        if not counts:
            message.attempts -= 1  # the modem never had it: this try does not count
        message.last_error = error[:300]
        message.lease_owner = message.lease_until = None
        message.possible_duplicate = message.possible_duplicate or ambiguous
        if message.attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]:
            message.status = O.FAILED
            message.failed_at = now
        else:
            message.status = O.QUEUED
            message.send_after = now + timedelta(seconds=delay_seconds)
        return message.status


def fail(message_id, owner, error: str) -> None:
    now = clock.now()
    with write_transaction() as session:
        message = _owned(session, message_id, owner)
        if message is None:
            return
        message.status = O.FAILED
        message.failed_at = now
        message.last_error = error[:300]
        message.lease_owner = message.lease_until = None


def backoff_seconds(attempts: int) -> float:
    base = current_app.config["OUTBOX_RETRY_SECONDS"]
    return min(base * 2 ** max(attempts - 1, 0), 15 * 60)


def release_leases(owner: str) -> int:
    """At a gateway's start: rows its previous life held are back in the queue, flagged as
    possible duplicates (the modem may have sent the one in flight)."""
    with write_transaction() as session:
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == O.SENDING, OutboxMessage.lease_owner == owner)
            .values(status=O.QUEUED, lease_owner=None, lease_until=None, possible_duplicate=True)
        )
        return result.rowcount


def apply_status_report(owner: str, reference: int, status: int, within_hours=72) -> int | None:
    """A status report for TP-MR `reference`: the newest sent row of this gateway with that
    reference. TP-ST 0-31 delivered, 32-63 still trying, 64+ failed. Returns the row id."""
    since = clock.now() - timedelta(hours=within_hours)
    with write_transaction() as session:
        candidates = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.sent_by == owner, OutboxMessage.status.in_((O.SENT, O.DELIVERED)),
                   OutboxMessage.sent_at >= since)
            .order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc())
            .limit(200)
        ).all()
        message = next((m for m in candidates if reference in (m.modem_references or [])), None)
        if message is None:
            return None
        reports = dict(message.reports or {})
        reports[str(reference)] = status
        message.reports = reports
        if status >= 64:
            message.status = O.FAILED
            message.failed_at = clock.now()
            message.last_error = f"The network could not deliver it (status report {status})."
        elif status < 32 and all(reports.get(str(r), 99) < 32 for r in message.modem_references):
            message.status = O.DELIVERED
            message.delivered_at = clock.now()
        return message.id


CANCELLABLE = (O.QUEUED, O.FAILED)  # not gone out: waiting, or given up
RETRYABLE = (O.FAILED, O.CANCELLED)


def cancel(message_id, reason: str = "cancelled by staff") -> bool:
    """Cancel a text that has not gone out (queued, or failed for good). False if it is too late."""
    with write_transaction() as session:
        message = session.get(OutboxMessage, message_id, with_for_update=True)
        if message is None or message.status not in CANCELLABLE:
            return False
        message.status, message.policy_note = O.CANCELLED, reason[:200]
        return True


def retry_now(message_id) -> bool:
    """Queue a failed or cancelled text again, due now, with a fresh count of attempts."""
    with write_transaction() as session:
        message = session.get(OutboxMessage, message_id, with_for_update=True)
        if message is None or message.status not in RETRYABLE:
            return False
        message.status, message.send_after, message.attempts = O.QUEUED, clock.now(), 0
        message.failed_at = message.lease_owner = message.lease_until = None
        message.policy_note = "queued again by staff"
        branch_id = message.branch_id
    outbox_queued.send(current_app._get_current_object(), message_id=message_id, branch_id=branch_id)
    return True


def counts_by_status(branch_id=None) -> dict:
    query = select(OutboxMessage.status, db.func.count()).group_by(OutboxMessage.status)
    if branch_id is not None:
        query = query.where(OutboxMessage.branch_id == branch_id)
    return dict(db.session.execute(query).all())


