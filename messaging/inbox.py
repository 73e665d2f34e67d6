"""The inbox: every received text is committed here before it is deleted from the modem or
acted upon. Multipart texts are joined by sender and reference; parts that wait too long are
joined as they are and flagged incomplete, never dropped. What cannot be stored goes to the
quarantine, raw. Every stored text is handled exactly once: right away, or by the sweep that
picks up what a crash left unhandled."""
from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from core import clock
from core.database import write_transaction
from core.extensions import db
from core.models import Appointment, Customer, Ticket

from .models import InboxMessage, InboxPart, InboxQuarantine, OutboxMessage
from .phones import masked
from .signals import sms_received

log = logging.getLogger(__name__)


def _key(*fields) -> str:
    return hashlib.sha256("\x1f".join(str(f) for f in fields).encode()).hexdigest()


def branch_of_sender(session, sender: str) -> int | None:
    """The branch of the sender's latest ticket, appointment or text from us; None when no branch
    knows the number (the text is then "unassigned": only admins see it, and give it a branch)."""
    seen = []
    customer_id = session.scalar(select(Customer.id).where(Customer.phone == sender))
    if customer_id is not None:
        seen.append(session.execute(select(Ticket.arrived_at, Ticket.branch_id).where(Ticket.customer_id == customer_id)
                                    .order_by(Ticket.id.desc()).limit(1)).first())
        seen.append(session.execute(select(Appointment.created_at, Appointment.branch_id)
                                    .where(Appointment.customer_id == customer_id)
                                    .order_by(Appointment.id.desc()).limit(1)).first())
    seen.append(session.execute(select(OutboxMessage.created_at, OutboxMessage.branch_id)
                                .where(OutboxMessage.to == sender, OutboxMessage.branch_id.is_not(None))
                                .order_by(OutboxMessage.id.desc()).limit(1)).first())
    latest = max((row for row in seen if row is not None), key=lambda row: row[0], default=None)
    return latest[1] if latest else None


def assign(sender: str, branch_id: int) -> int:
    """Give a number's unassigned texts to a branch (an admin's decision). Returns how many."""
    with write_transaction() as session:
        return session.execute(update(InboxMessage).where(InboxMessage.sender == sender,
                                                          InboxMessage.branch_id.is_(None))
                               .values(branch_id=branch_id)).rowcount


def slot_key(gateway, memory, index, pdu) -> str:
    """Names one stored message on one modem: reading it twice gives the same key."""
    return _key(gateway, memory, index, pdu)


def release_slot(key: str) -> None:
    """The modem has deleted the message stored under `key`: a later text that lands in the same
    slot with the same content (a genuine repeat) is a new message, not a second reading."""
    with write_transaction() as session:
        for model in (InboxMessage, InboxPart):
            session.execute(update(model).where(model.dedupe_key == key)
                            .values(dedupe_key=f"done:{uuid.uuid4().hex}"))


def store_received(sender: str, body: str, sent_at: datetime | None, *, concatenation=None,
                   branch_id=None, gateway=None, slot: str | None = None, surrogates=None) -> int | None:
    """Store one received text or part; idempotent for the same stored message read twice
    (`slot`: its slot_key; None when it cannot be read twice). `concatenation` is (reference,
    total, sequence) for a part; `surrogates` the part's halves of split characters. Returns the
    inbox id once the text is whole."""
    now = clock.now()
    new_id = None
    key = slot or f"once:{uuid.uuid4().hex}"
    with write_transaction() as session:
        if branch_id is None:  # a gateway serving several branches: whose customer wrote?
            branch_id = branch_of_sender(session, sender)
        if concatenation is None or concatenation[1] <= 1:
            if session.scalar(select(InboxMessage.id).where(InboxMessage.dedupe_key == key)):
                return None
            message = InboxMessage(branch_id=branch_id, sender=sender, body=body, sent_at=sent_at, received_at=now,
                                   received_by=gateway, dedupe_key=key)
            session.add(message)
            session.flush()
            new_id = message.id
        else:
            reference, total, sequence = concatenation
            if session.scalar(select(InboxPart.id).where(InboxPart.dedupe_key == key)):
                return None
            session.add(InboxPart(branch_id=branch_id, sender=sender, reference=reference, total=total,
                                  sequence=sequence, body=body, sent_at=sent_at, received_at=now,
                                  received_by=gateway, dedupe_key=key, surrogates=surrogates or None))
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
    body = join_units(by_sequence[s] if s in by_sequence else None for s in range(1, first.total + 1))
    message = InboxMessage(
        branch_id=first.branch_id, sender=first.sender, body=body, sent_at=first.sent_at, received_at=now,
        received_by=first.received_by, parts=first.total, incomplete=incomplete,
        dedupe_key=f"joined:{min(p.id for p in parts)}",
    )
    session.add(message)
    session.flush()
    for part in parts:
        part.message_id = message.id
    return message.id


def join_units(parts) -> str:
    """The parts' texts in order, with characters whose UTF-16 halves were split between two parts
    made whole again (a half left alone becomes U+FFFD); a missing part shows as [...]."""
    pieces = []
    for part in parts:
        if part is None:
            pieces.append("[…]")
            continue
        units = list(part.body)
        for position, unit in (part.surrogates or {}).items():
            units[int(position)] = chr(unit)
        pieces.append("".join(units))
    return whole_characters("".join(pieces))[0]


def whole_characters(text: str) -> tuple[str, dict]:
    """Join UTF-16 surrogate pairs into the characters they encode (a phone sends an emoji as two
    16-bit units); replace each lone half with U+FFFD. Returns the text and {position: unit} of
    the halves replaced, so that a half split between two parts can be put back when joining."""
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    lone = {i: ord(ch) for i, ch in enumerate(joined) if 0xD800 <= ord(ch) <= 0xDFFF}
    if not lone:
        return joined, {}
    return "".join("\ufffd" if i in lone else ch for i, ch in enumerate(joined)), lone


def quarantine(pdu: str, error: str, *, gateway=None, memory=None, sender=None, branch_id=None) -> int:
    """Keep a received text that could not be stored or handled, raw, for staff to see."""
    with write_transaction() as session:
        row = InboxQuarantine(pdu=pdu, error=error[:2000], gateway=gateway, memory=memory,
                              sender=(sender or None) and sender[:24], branch_id=branch_id, received_at=clock.now())
        session.add(row)
        session.flush()
        ident = row.id
    log.warning("inbox quarantine %s: a received text from %s could not be stored: %s", ident,
                masked(sender) if sender else "an unknown sender", error)
    return ident


HANDLING_LEASE = timedelta(minutes=5)


def claim_for_handling(inbox_id: int) -> bool:
    """Take a new text for handling; True for exactly one caller. A claim older than the lease is
    a handler that died mid-way: it may be taken again."""
    now = clock.now()
    with write_transaction() as session:
        result = session.execute(
            update(InboxMessage)
            .where(InboxMessage.id == inbox_id,
                   or_(InboxMessage.status == "new",
                       (InboxMessage.status == "handling") & (InboxMessage.claimed_at < now - HANDLING_LEASE)))
            .values(status="handling", claimed_at=now))
        return result.rowcount == 1


def unhandled(limit=200) -> list[int]:
    """Texts stored but never handled (the process died between storing and handling)."""
    cutoff = clock.now() - HANDLING_LEASE
    return db.session.scalars(
        select(InboxMessage.id)
        .where(or_(InboxMessage.status == "new",
                   (InboxMessage.status == "handling") & (InboxMessage.claimed_at < cutoff)))
        .order_by(InboxMessage.id).limit(limit)).all()


def handle_unhandled() -> int:
    """Hand each unhandled text to the reply router once more (at start and periodically)."""
    ids = unhandled()
    for inbox_id in ids:
        sms_received.send(current_app._get_current_object(), inbox_id=inbox_id)
    return len(ids)


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
