"""The outbox and inbox: every text is a row before it touches the modem, and after it leaves it."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from core.models import identified
from core.types import UTCDateTime

# Gateways are named by a short stable id (hardware/gateway.py), never by a device path.
GATEWAY_ID_LENGTH = 80


class OutboxStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for its send_after and a gateway
    SENDING = "sending"  # claimed by a gateway (lease_owner until lease_until)
    SENT = "sent"  # the modem accepted it (+CMGS); waiting for the status report
    DELIVERED = "delivered"  # the handset has it
    FAILED = "failed"  # given up, with the reason in last_error
    CANCELLED = "cancelled"
    SUPPRESSED = "suppressed"  # policy said no (no consent, opted out, cap, duplicate): policy_note says why


class OutboxMessage(db.Model):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "branch_id", "send_after"),
        # the outbox page (one branch, newest first), "today", health's counts and the send rate
        Index("ix_outbox_branch", "branch_id", "id"),
        Index("ix_outbox_created", "created_at"),
        Index("ix_outbox_branch_created", "branch_id", "created_at"),  # a branch's texts of a period (reports)
        Index("ix_outbox_sent", "sent_at"),
        # A branch's texts sent in the last hour (the outbox page's send rate): by branch alone,
        # SQLite read every text the branch ever had.
        Index("ix_outbox_branch_sent", "branch_id", "sent_at"),
        # A gateway's latest sent texts, for each status report (outbox.apply_status_report): by
        # status alone that was every text ever delivered, inside a write transaction.
        Index("ix_outbox_sent_by", "sent_by", "sent_at"),
        Index("ix_outbox_to", "to", "id"),  # a number's texts: the inbox thread, the branch of a reply
        # The outbox page and /api/v1/outbox filtered by status (?status=failed) or lane (?lane=call,
        # read as the lane's priority): a page of 50 read newest first in the index's order. By
        # branch alone, a rare status or lane read every text the branch ever had to fill the page.
        Index("ix_outbox_branch_status", "branch_id", "status", "id"),
        Index("ix_outbox_branch_priority", "branch_id", "priority", "id"),
        identified("outbox", "created_at", '"to" IS NOT NULL'),  # retention (core/privacy.py)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    to: Mapped[str | None] = mapped_column(String(16))  # E.164; None once anonymised (core/privacy.py)
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(40))  # a name in messaging/kinds.py
    # The rank of the kind's lane (messaging/kinds.py), higher first: "go to counter 3" must not
    # wait behind a batch of reminders.
    priority: Mapped[int] = mapped_column(default=0)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))
    appointment_id: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(12), default=OutboxStatus.QUEUED.value)
    send_after: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(300))
    lease_owner: Mapped[str | None] = mapped_column(String(GATEWAY_ID_LENGTH))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A retry after the gateway died (or lost the port) mid-send may repeat a text the modem had
    # already sent: such rows are flagged, so a duplicate is explained, never silent.
    possible_duplicate: Mapped[bool] = mapped_column(default=False)
    # The last word of the sending policy on this row: why it was held or suppressed.
    policy_note: Mapped[str | None] = mapped_column(String(200))
    encoding: Mapped[str | None] = mapped_column(String(8))  # GSM-7 or UCS-2
    parts: Mapped[int | None]
    modem_references: Mapped[list] = mapped_column(JSON, default=list)  # TP-MR of each part
    reports: Mapped[dict] = mapped_column(JSON, default=dict)  # reference -> TP-ST of its status report
    sent_by: Mapped[str | None] = mapped_column(String(GATEWAY_ID_LENGTH))  # the gateway that sent it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InboxMessage(db.Model):
    """A whole received text (multipart already joined), stored before anything acts on it."""

    __tablename__ = "inbox"
    __table_args__ = (
        Index("ix_inbox_sender", "sender", "id"),  # a number's texts: its conversation, its export or erasure
        Index("ix_inbox_branch_received", "branch_id", "received_at"),  # a branch's replies of a period (reports)
        identified("inbox", "received_at", "sender IS NOT NULL"),  # retention (core/privacy.py)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    sender: Mapped[str | None] = mapped_column(String(24))  # None once anonymised (core/privacy.py)
    body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the network's timestamp
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_by: Mapped[str | None] = mapped_column(String(GATEWAY_ID_LENGTH))
    parts: Mapped[int] = mapped_column(default=1)
    incomplete: Mapped[bool] = mapped_column(default=False)  # parts missing after the reassembly timeout
    # Reading the same stored text twice (crash between store and delete) must not store it twice:
    # while the text may still sit on the modem, this is a hash of where it sits and its PDU; once
    # the modem has deleted it the key is released (made unique by the row id), so a later,
    # genuinely identical text in the same slot is a new message.
    dedupe_key: Mapped[str] = mapped_column(String(80), unique=True)
    # new -> handling (claimed by one router, claimed_at) -> handled, unhandled (left to staff), failed
    status: Mapped[str] = mapped_column(String(12), default="new")
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(80))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when staff opened the conversation


class InboxPart(db.Model):
    """One part of a multipart text, kept until its siblings arrive (or the wait times out)."""

    __tablename__ = "inbox_part"
    __table_args__ = (
        Index("ix_inbox_part_group", "sender", "reference", "total"),
        Index("ix_inbox_part_received", "received_at"),  # deleted after retention (core/privacy.py)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    sender: Mapped[str] = mapped_column(String(24))
    reference: Mapped[int]
    total: Mapped[int]
    sequence: Mapped[int]
    body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_by: Mapped[str | None] = mapped_column(String(GATEWAY_ID_LENGTH))
    dedupe_key: Mapped[str] = mapped_column(String(80), unique=True)
    # UTF-16 halves of a character split between this part and the next or previous one:
    # {position: code unit}; they are put back together when the parts are joined.
    surrogates: Mapped[dict | None] = mapped_column(JSON)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"))  # set once joined


class InboxQuarantine(db.Model):
    """A received text that could not be decoded, stored or handled, kept raw for staff to see.
    It is deleted from the modem all the same: nothing received may stop the gateway."""

    __tablename__ = "inbox_quarantine"
    __table_args__ = (Index("ix_inbox_quarantine_received", "received_at"),)  # deleted after retention

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    gateway: Mapped[str | None] = mapped_column(String(GATEWAY_ID_LENGTH))
    memory: Mapped[str | None] = mapped_column(String(4))
    sender: Mapped[str | None] = mapped_column(String(24))
    pdu: Mapped[str] = mapped_column(Text)  # as the modem gave it (hex), or the text it decoded to
    error: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ModemStatus(db.Model):
    """What each gateway last saw of its modem; the health endpoint and console read it."""

    __tablename__ = "modem_status"

    gateway: Mapped[str] = mapped_column(String(GATEWAY_ID_LENGTH), primary_key=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    port: Mapped[str] = mapped_column(Text)  # device paths can be long (/dev/serial/by-id/...)
    # connecting, ready, no_network, disconnected, cooling, pin_rejected, puk_required, no_sim, stopped
    state: Mapped[str] = mapped_column(String(20))
    state_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signal: Mapped[int | None]  # 0-31 (AT+CSQ), None when unknown
    network: Mapped[str | None] = mapped_column(String(80))
    last_error: Mapped[str | None] = mapped_column(String(300))
    sent_total: Mapped[int] = mapped_column(default=0)
    failed_in_a_row: Mapped[int] = mapped_column(default=0, server_default="0")
    reconnects: Mapped[int] = mapped_column(default=0, server_default="0")  # connections lost in the last hour
    cooling_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    imei: Mapped[str | None] = mapped_column(String(20))
    imsi: Mapped[str | None] = mapped_column(String(20))
    # A hash of the PIN the SIM refused: never offered again (a SIM locks after three).
    refused_pin: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TicketNotice(db.Model):
    """Which queue texts a ticket has had, so each is sent at most once."""

    __tablename__ = "ticket_notice"
    # A text removed unsent (a notice another writer took first: messaging.notify._unwritten) is
    # looked for here by the database's foreign-key check: without it, every notice ever.
    __table_args__ = (Index("ix_ticket_notice_outbox", "outbox_id"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))


class MessageTemplate(db.Model):
    """An admin's wording of one text for one branch and language; the catalogue's otherwise."""

    __tablename__ = "message_template"

    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    language: Mapped[str] = mapped_column(String(5), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SurveyResponse(db.Model):
    """One post-visit survey: asked, rated (1-5), perhaps a comment after a low score."""

    __tablename__ = "survey_response"
    __table_args__ = (
        identified("survey_response", "created_at", "phone IS NOT NULL"),  # retention
        Index("ix_survey_response_branch_created", "branch_id", "created_at"),  # a period's surveys (reports)
        Index("ix_survey_response_ticket", "ticket_id"),
        Index("ix_survey_response_outbox", "outbox_id"),  # (as ix_ticket_notice_outbox: a text removed unsent)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    phone: Mapped[str | None] = mapped_column(String(16), index=True)  # None once anonymised (core/privacy.py)
    language: Mapped[str] = mapped_column(String(5), default="en")
    # scheduled -> asked -> (followup ->) done; or staff when the replies could not be read twice
    state: Mapped[str] = mapped_column(String(12), default="scheduled")
    score: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(Text)
    retries: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RescheduleOffer(db.Model):
    """Free slots offered by text after R; the customer answers 1, 2 or 3 before it expires."""

    __tablename__ = "reschedule_offer"
    __table_args__ = (identified("reschedule_offer", "created_at", "phone IS NOT NULL"),)  # retention

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointment.id"))
    phone: Mapped[str | None] = mapped_column(String(16), index=True)  # None once anonymised (core/privacy.py)
    slots: Mapped[list] = mapped_column(JSON)  # ISO times, in the order offered
    status: Mapped[str] = mapped_column(String(10), default="open")  # open, used, expired
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
