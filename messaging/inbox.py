"""The inbox: every received text is committed here before it is deleted from the modem or
acted upon. Multipart texts are joined by sender and reference; parts that wait too long are
joined as they are and flagged incomplete, never dropped."""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from core import clock
from core.database import write_transaction

from .models import InboxMessage, InboxPart
from .phones import masked
from .signals import sms_received

log = logging.getLogger(__name__)


def _key(*fields) -> str:
    return hashlib.sha256("\x1f".join(str(f) for f in fields).encode()).hexdigest()


def store_received(sender: str, body: str, sent_at: datetime | None, *, concatenation=None,
                   branch_id=None, gateway=None) -> int | None:
    """Store one received text or part; idempotent for the same stored message read twice.
    `concatenation` is (reference, total, sequence) for a part. Returns the inbox id once whole."""
    now = clock.now()
    stamp = sent_at.isoformat() if sent_at else ""
    new_id = None
    with write_transaction() as session:
        if concatenation is None or concatenation[1] <= 1:
            key = _key(gateway, sender, stamp, body)
            if session.scalar(select(InboxMessage.id).where(InboxMessage.dedupe_key == key)):
                return None
            message = InboxMessage(branch_id=branch_id, sender=sender, body=body, sent_at=sent_at, received_at=now,
                                   received_by=gateway, dedupe_key=key)
            session.add(message)
            session.flush()
            new_id = message.id
        else:
            reference, total, sequence = concatenation
            key = _key(gateway, sender, stamp, reference, total, sequence, body)
            if session.scalar(select(InboxPart.id).where(InboxPart.dedupe_key == key)):
                return None
            session.add(InboxPart(branch_id=branch_id, sender=sender, reference=reference, total=total,
                                  sequence=sequence, body=body, sent_at=sent_at, received_at=now,
                                  received_by=gateway, dedupe_key=key))
            session.flush()
            parts = _open_parts(session, sender, reference, total)
            if len({p.sequence for p in parts}) == total:
                new_id = _join(session, parts, now, incomplete=False)
    if new_id:
        log.info("inbox %s: text from %s stored", new_id, masked(sender))
        sms_received.send(current_app._get_current_object(), inbox_id=new_id)
    return new_id


def _open_parts(session, sender, reference, total):
    return session.scalars(
        select(InboxPart)
        .where(InboxPart.sender == sender, InboxPart.reference == reference, InboxPart.total == total,
               InboxPart.message_id.is_(None))
        .order_by(InboxPart.sequence, InboxPart.id)
    ).all()


def _join(session, parts, now, incomplete: bool) -> int:
    by_sequence = {}
    for part in parts:
        by_sequence.setdefault(part.sequence, part)
    first = parts[0]
    body = "".join(by_sequence[s].body if s in by_sequence else "[…]" for s in range(1, first.total + 1))
    message = InboxMessage(
        branch_id=first.branch_id, sender=first.sender, body=body, sent_at=first.sent_at, received_at=now,
        received_by=first.received_by, parts=first.total, incomplete=incomplete,
        dedupe_key=_key("joined", *sorted(p.dedupe_key for p in parts)),
    )
    session.add(message)
    session.flush()
    for part in parts:
        part.message_id = message.id
    return message.id


def join_stale_parts() -> list[int]:
    """Parts whose siblings never came within the reassembly window become a message of their own,
    flagged incomplete, so staff see them."""
    cutoff = clock.now() - timedelta(minutes=current_app.config["INBOX_REASSEMBLY_MINUTES"])
    joined = []
    with write_transaction() as session:
        stale = session.execute(
            select(InboxPart.sender, InboxPart.reference, InboxPart.total)
            .where(InboxPart.message_id.is_(None), InboxPart.received_at < cutoff)
            .distinct()
        ).all()
        for sender, reference, total in stale:
            parts = _open_parts(session, sender, reference, total)
            if parts:
                joined.append(_join(session, parts, clock.now(), incomplete=True))
    for inbox_id in joined:
        sms_received.send(current_app._get_current_object(), inbox_id=inbox_id)
    return joined
