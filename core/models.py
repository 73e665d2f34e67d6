"""The branch's data. Ticket state is changed only by core.engine."""
from __future__ import annotations

import enum
import secrets
import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import JSON, Column, Date, ForeignKey, Index, String, Table, Text, UniqueConstraint, desc, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db
from .types import UTCDateTime


class TicketStatus(enum.StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    HELD = "held"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


OPEN_AT_COUNTER = (TicketStatus.CALLED, TicketStatus.SERVING)
FINISHED = (TicketStatus.COMPLETED, TicketStatus.NO_SHOW, TicketStatus.CANCELLED)


class Branch(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    # The name every text starts with; short, as customers see it.
    sender_name: Mapped[str] = mapped_column(String(40))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # ISO 3166 alpha-2: how phone numbers typed without a country code are read.
    country: Mapped[str] = mapped_column(String(2), default="GB")
    default_language: Mapped[str] = mapped_column(String(5), default="en")
    # {"mon": [["09:00", "17:00"]], ...}; a missing day is closed.
    opening_hours: Mapped[dict] = mapped_column(JSON, default=dict)
    # The languages the kiosk and the self-booking page offer, the default language first or among them.
    languages: Mapped[list] = mapped_column(JSON, default=lambda: ["en", "ja", "ka"],
                                            server_default='["en", "ja", "ka"]')
    # {"logo": file name in the instance's branding folder, "primary": "#1d4ed8", "accent": "#f59e0b"}:
    # shown on the kiosk, the display, the status page and the printed ticket.
    branding: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    show_names: Mapped[bool] = mapped_column(default=False)
    # Which texts this branch sends and when: see MESSAGING_DEFAULTS in core/config.py.
    messaging: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    # Changes with every change of the branch's own wording of its texts (messaging.templates
    # caches the wording by it: a text costs no query for it, in every process).
    wording_stamp: Mapped[str] = mapped_column(String(32), default=lambda: uuid.uuid4().hex, server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    services: Mapped[list[Service]] = relationship(back_populates="branch", order_by="Service.code")
    counters: Mapped[list[Counter]] = relationship(back_populates="branch", order_by="Counter.id")
    closures: Mapped[list[Closure]] = relationship(back_populates="branch", order_by="Closure.first_day",
                                                   cascade="all, delete-orphan")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def local_date(self, moment: datetime) -> date:
        return self.local(moment).date()


class Closure(db.Model):
    """A holiday or closure: the branch is closed from first_day to last_day (branch-local days,
    both included). The kiosk shows the message; no bookings or reminders fall on these days."""

    __table_args__ = (Index("ix_closure_branch_days", "branch_id", "last_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id", ondelete="CASCADE"))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    message: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    branch: Mapped[Branch] = relationship(back_populates="closures")


counter_services = Table(
    "counter_service",
    db.metadata,
    Column("counter_id", ForeignKey("counter.id", ondelete="CASCADE"), primary_key=True),
    Column("service_id", ForeignKey("service.id", ondelete="CASCADE"), primary_key=True),
)


class Service(db.Model):
    __table_args__ = (UniqueConstraint("branch_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    # One capital letter: the ticket prefix (A001) and the code the API and kiosk use.
    code: Mapped[str] = mapped_column(String(1))
    # The name in the branch's default language (and the fallback); names holds it per language,
    # {"en": "General", "ja": "総合窓口", "ka": "ზოგადი"}: name_in() picks.
    name: Mapped[str] = mapped_column(String(80))
    names: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    avg_service_minutes: Mapped[int] = mapped_column(default=5)
    # False: paused; the kiosk shows it as paused and takes no tickets for it.
    active: Mapped[bool] = mapped_column(default=True)
    # The wait the branch aims for (reports: service level = share called within it).
    target_wait_minutes: Mapped[int] = mapped_column(default=15, server_default="15")
    # Tickets of this service start with this priority (higher goes first).
    priority: Mapped[int] = mapped_column(default=0, server_default="0")
    # Place on the kiosk, smallest first (then the code).
    position: Mapped[int] = mapped_column(default=0, server_default="0")
    # Appointments: the length of a slot and how many people one slot takes.
    slot_minutes: Mapped[int] = mapped_column(default=15, server_default="15")
    slot_capacity: Mapped[int] = mapped_column(default=1, server_default="1")

    branch: Mapped[Branch] = relationship(back_populates="services")
    counters: Mapped[list[Counter]] = relationship(secondary=counter_services, back_populates="services")

    def name_in(self, language: str | None) -> str:
        """The name in a language, else the default name."""
        return (self.names or {}).get(language or "") or self.name


class Counter(db.Model):
    __table_args__ = (UniqueConstraint("branch_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    name: Mapped[str] = mapped_column(String(20))
    is_open: Mapped[bool] = mapped_column(default=False)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))

    branch: Mapped[Branch] = relationship(back_populates="counters")
    services: Mapped[list[Service]] = relationship(
        secondary=counter_services, back_populates="counters", order_by="Service.code"
    )
    staff: Mapped[StaffUser | None] = relationship()


# A person may work for several branches (core/scope.py reads this).
staff_branches = Table(
    "staff_user_branch",
    db.metadata,
    Column("user_id", ForeignKey("staff_user.id", ondelete="CASCADE"), primary_key=True),
    Column("branch_id", ForeignKey("branch.id", ondelete="CASCADE"), primary_key=True),
)


def identified(table: str, columns: str | tuple[str, ...], condition: str) -> Index:
    """A partial index of the rows that still name someone, by the time retention counts from:
    the retention job (core/privacy.py) finds its next rows here without walking the history it
    has anonymised already."""
    columns = (columns,) if isinstance(columns, str) else columns
    return Index(f"ix_{table}_identified", *columns, sqlite_where=text(condition), postgresql_where=text(condition))


class Customer(db.Model):
    # (created_at, id): the retention job looks through the customers still named a stretch at a
    # time in that order, and each stretch is a range of it even when thousands were created in
    # one instant (an import).
    __table_args__ = (identified("customer", ("created_at", "id"), "phone IS NOT NULL OR name IS NOT NULL"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(16), unique=True)  # E.164
    name: Mapped[str | None] = mapped_column(String(80))
    language: Mapped[str] = mapped_column(String(5), default="en")
    sms_consent: Mapped[bool] = mapped_column(default=False)
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_source: Mapped[str | None] = mapped_column(String(20))  # kiosk, staff, sms, import
    consent_text: Mapped[str | None] = mapped_column(Text)  # the exact words the customer agreed to
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


def new_session_epoch() -> str:
    return secrets.token_urlsafe(12)


class StaffUser(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(10), default="staff")  # staff, manager or admin (core/scope.py)
    active: Mapped[bool] = mapped_column(default=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))  # home branch: the console's first
    # The language of the staff pages for this person (None: the browser's).
    language: Mapped[str | None] = mapped_column(String(5))
    # The console's single-key shortcuts (N, R, S, C): each person may switch them off (WCAG 2.1.4).
    shortcuts: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Part of every session's user id (get_id): a new one at logout or password change ends every
    # session of this person, on every device (core/auth.py).
    session_epoch: Mapped[str] = mapped_column(String(24), default=new_session_epoch, server_default="")
    # Further branches this person works for, beside the home branch.
    other_branches: Mapped[list[Branch]] = relationship(secondary=staff_branches, order_by="Branch.id")

    ROLES = ("staff", "manager", "admin")

    @property
    def branch_ids(self) -> list[int]:
        """Every branch this person belongs to: the home branch first."""
        ids = [self.branch_id] if self.branch_id is not None else []
        return ids + [b.id for b in self.other_branches if b.id != self.branch_id]

    def get_id(self) -> str:
        return f"{self.id}:{self.session_epoch}"

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive accounts
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class TicketSequence(db.Model):
    """Last number handed out per service and branch-local day; bumped atomically."""

    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"), primary_key=True)
    service_day: Mapped[date] = mapped_column(Date, primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)


def new_access_token() -> str:
    return secrets.token_urlsafe(18)


class Ticket(db.Model):
    __table_args__ = (
        UniqueConstraint("branch_id", "service_day", "label"),
        Index("ix_ticket_queue", "branch_id", "status", "service_id"),
        # The ticket a counter holds now (engine.current_ticket): a counter's years of tickets keep its id.
        Index("ix_ticket_counter", "counter_id", "status"),
        # A service's latest completions, newest first (wait estimates): read 10 rows, not the history.
        Index("ix_ticket_service_finished", "service_id", "status", "finished_at"),
        Index("ix_ticket_customer", "customer_id", "id"),  # a customer's latest ticket (whose reply is this?)
        # A branch's newest tickets (GET /api/v1/tickets): read 500 rows in order, not sort them all.
        Index("ix_ticket_branch_arrived", "branch_id", "arrived_at", "id"),
        # The same filtered by state or by service (?status=cancelled, ?service=A): read in order
        # too; by branch alone a rare state or a small service read every ticket the branch had.
        # (A service is one branch's: its index needs no branch, and so never looks to SQLite like
        # a better way than the (branch, day) one to a day's tickets of a service.)
        Index("ix_ticket_branch_status_arrived", "branch_id", "status", "arrived_at", "id"),
        Index("ix_ticket_service_arrived", "service_id", "arrived_at", "id"),
        # Both (?service=A&status=cancelled): by either index alone, a rare state read every
        # ticket of the service, or every ticket of the branch in that state.
        Index("ix_ticket_service_status_arrived", "service_id", "status", "arrived_at", "id"),
        # A service's waiting tickets in queue order (QUEUE_ORDER: priority, highest first, then
        # arrival): the first few read from the front of the queue, not all of it numbered
        # (core.queries.positions with up_to, after every call and completion).
        Index("ix_ticket_service_queue_order", "service_id", "status", desc("priority"), "arrived_at", "id"),
        identified("ticket", "arrived_at", "customer_id IS NOT NULL"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counter.id"))
    service_day: Mapped[date] = mapped_column(Date)
    number: Mapped[int]
    # What customers see and hear: prefix of the issuing service + number (A001); kept on transfer.
    label: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12), default=TicketStatus.WAITING.value)
    # Higher goes first (appointments, priority customers); equal priority goes by arrival.
    priority: Mapped[int] = mapped_column(default=0)
    language: Mapped[str] = mapped_column(String(5), default="en")
    source: Mapped[str] = mapped_column(String(20), default="staff")
    access_token: Mapped[str] = mapped_column(String(32), unique=True, default=new_access_token)
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    late_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recall_count: Mapped[int] = mapped_column(default=0)
    # The wait we told the customer at check-in (minutes): reports set it against the real one.
    quoted_wait_minutes: Mapped[int | None]

    branch: Mapped[Branch] = relationship()
    service: Mapped[Service] = relationship()
    customer: Mapped[Customer | None] = relationship()
    counter: Mapped[Counter | None] = relationship()
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id", cascade="all, delete-orphan"
    )

    def is_late(self, now: datetime) -> bool:
        return self.late_until is not None and self.late_until > now


class TicketEvent(db.Model):
    """Append-only audit: one row for every change of a ticket, with who and when."""

    __table_args__ = (
        # Today's calls of a kind (the displays' recent calls): found by moment, not by walking
        # every event a branch's tickets ever had.
        Index("ix_ticket_event_kind_at", "kind", "at"),
        # A counter deleted (one that never served) is looked for here by the database's own
        # foreign-key check: without it, every event ever (seconds, the write lock held).
        Index("ix_ticket_event_counter", "counter_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counter.id"))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)

    ticket: Mapped[Ticket] = relationship(back_populates="events")
    staff: Mapped[StaffUser | None] = relationship()
    counter: Mapped[Counter | None] = relationship()


def new_booking_code() -> str:
    # No 0/O, 1/I/L: read aloud and typed on a kiosk without mistakes.
    return "".join(secrets.choice("23456789ABCDEFGHJKMNPQRSTUVWXYZ") for _ in range(6))


class Appointment(db.Model):
    __table_args__ = (
        Index("ix_appointment_slot", "service_id", "starts_at", "status"),
        Index("ix_appointment_customer", "customer_id", "id"),
        identified("appointment", "starts_at", "customer_id IS NOT NULL"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default="booked")  # booked, confirmed, cancelled, checked_in
    booking_code: Mapped[str] = mapped_column(String(8), unique=True, default=new_booking_code)
    late_minutes: Mapped[int | None]  # the customer said they are running late
    reminders_sent: Mapped[list] = mapped_column(JSON, default=list)  # lead times (minutes) already reminded
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))
    source: Mapped[str] = mapped_column(String(12), default="staff")
    # The language its texts go out in, chosen when booking (None: booked before it was asked).
    language: Mapped[str | None] = mapped_column(String(5))
    # The customer's own link to it (/a/<token>, in the booking's text): the only key the public page takes.
    access_token: Mapped[str] = mapped_column(String(32), unique=True, default=new_access_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    service: Mapped[Service] = relationship()
    customer: Mapped[Customer | None] = relationship()
    branch: Mapped[Branch] = relationship()


class ModemSetting(db.Model):
    """A branch's modem as set from the web: where it is plugged in (a device, a by-id path or
    imei:<IMEI>) and the SIM's PIN. The gateway of the branch restarts when it changes
    (version goes up)."""

    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id", ondelete="CASCADE"), primary_key=True)
    port: Mapped[str | None] = mapped_column(Text)
    pin: Mapped[str | None] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
