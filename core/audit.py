"""The audit log: who did what, when, in which branch, for every action with consequences.

An entry is written by one `record(...)` line next to the service call in a view or a command
(or by a subscriber to a domain event, for ticket cancellations), after the change succeeded.
Entries are never changed or deleted: this module has no path that does, and the mapper refuses
an update or a delete of one. Targets and details carry no personal data: a phone number appears
only masked, and `record` refuses one that is not.

Who sees it: administrators every entry; managers the entries of their branches (core/scope.py);
entries of no branch (accounts, tokens, the command line's own changes) are administrators'.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time, timedelta, timezone, tzinfo

import click
from flask import has_request_context
from flask_login import current_user
from sqlalchemy import JSON, ForeignKey, Index, String, event, select
from sqlalchemy.orm import Mapped, mapped_column

from . import clock, scope
from .database import write_transaction
from .events import ticket_changed
from .extensions import db
from .security import PHONE_IN_TEXT
from .types import UTCDateTime

# Every action recorded, by its short code. The staff page names each in the reader's language.
ACTIONS = (
    "settings.changed",  # branch, service or counter settings, a branch's texts policy (command line)
    "template.saved", "template.reverted",  # a branch's wording of a text
    "user.created", "user.password_set", "user.password_changed",
    "token.created", "token.revoked", "kiosk.registered", "kiosk.revoked",
    "ticket.cancelled",
    "appointment.booked", "appointment.cancelled", "appointment.moved", "appointment.customer_changed",
    "text.sent",  # by staff: an inbox reply, an administrator's test
    "text.retried", "text.cancelled",  # outbox buttons
    "broadcast.sent",  # a correction to everyone who got a text
    "inbox.assigned",  # a conversation no branch knew, given to a branch
    "data.exported", "data.erased",  # everything about one phone number (core/privacy.py)
    "data.anonymised",  # the retention job's run
)
ACTOR_LENGTH = 100  # "token:" and a token's name of up to 80
TARGET_LENGTH = 80
PAGE_SIZE = 50
CSV_LIMIT = 10_000  # one download; narrow the dates for more
CSV_COLUMNS = ("id", "at_utc", "actor", "role", "branch_id", "action", "target", "detail")


class AuditEntry(db.Model):
    """One thing someone did. Append-only: written by record(), never updated or deleted."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        # the page: newest first, per branch (managers) or per action, and a date range
        Index("ix_audit_entry_branch", "branch_id", "id"),
        Index("ix_audit_entry_action", "action", "id"),
        Index("ix_audit_entry_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # a username, "token:<name>" for an integration, "cli" for the command line, "system" for jobs
    actor: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    role: Mapped[str | None] = mapped_column(String(10))  # the actor's role then; None: cli, system
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(TARGET_LENGTH))  # "ticket:12", "phone:+99555****456"
    detail: Mapped[dict] = mapped_column(JSON, default=dict)  # codes, ids, counts: no personal data


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _append_only(_mapper, _connection, entry):
    raise RuntimeError(f"audit entry {entry.id} is append-only: it cannot be changed or deleted")


# --- writing -----------------------------------------------------------------------------------

def actor() -> tuple[str, str | None]:
    """Who is acting now: the signed-in person or token, else the command line, else a job."""
    if has_request_context() and getattr(current_user, "is_authenticated", False):
        return str(current_user.username)[:ACTOR_LENGTH], getattr(current_user, "role", None)
    if click.get_current_context(silent=True) is not None:
        return "cli", None
    return "system", None


def _no_number(text: str, what: str) -> None:
    if PHONE_IN_TEXT.search(text):
        raise ValueError(f"an audit {what} may hold a masked phone number only: {PHONE_IN_TEXT.sub('+…', text)}")


def record(action: str, *, target: str | None = None, branch_id: int | None = None, detail: dict | None = None,
           who: tuple[str, str | None] | None = None) -> AuditEntry:
    """Append one entry in its own transaction, after the change it tells of was committed."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: add it to core.audit.ACTIONS")
    detail = detail or {}
    target = None if target is None else str(target)[:TARGET_LENGTH]
    _no_number(target or "", "target")
    _no_number(json.dumps(detail, default=str), "detail")
    name, role = who or actor()
    with write_transaction() as session:
        entry = AuditEntry(at=clock.now(), actor=name, role=role, branch_id=branch_id, action=action,
                           target=target, detail=detail)
        session.add(entry)
    return entry


def _on_ticket_changed(_app, change, **_):
    """A ticket cancelled by a person (console, API): the customer's own cancellations and the
    end-of-day close are in the ticket's history (TicketEvent) and are not someone's decision."""
    if change.kind != "cancelled":
        return
    name, role = actor()
    if name in ("cli", "system"):
        return
    record("ticket.cancelled", target=f"ticket:{change.ticket_id}", branch_id=change.branch_id,
           detail={"label": change.label}, who=(name, role))


def init_app(app) -> None:
    ticket_changed.connect(_on_ticket_changed, sender=app)


# --- reading -----------------------------------------------------------------------------------

def _day_start(day: date, zone: tzinfo) -> datetime:
    """The first moment of `day` where `zone` is, in UTC (a day of a clock change is 23 or 25 hours)."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(timezone.utc)


def query(*, since: date | None = None, until: date | None = None, action: str | None = None,
          branch_id: int | None = None, user=None, zone: tzinfo = timezone.utc):
    """Entries within the user's reach (core/scope.py), by a range of days in `zone` (both days
    included): a reader's "today" is their branch's, not Greenwich's."""
    statement = scope.scoped(select(AuditEntry), AuditEntry, user)
    if since is not None:
        statement = statement.where(AuditEntry.at >= _day_start(since, zone))
    if until is not None:
        statement = statement.where(AuditEntry.at < _day_start(until + timedelta(days=1), zone))
    if action is not None:
        statement = statement.where(AuditEntry.action == action)
    if branch_id is not None:
        statement = statement.where(AuditEntry.branch_id == branch_id)
    return statement


def page(statement, *, before: int | None = None, limit: int = PAGE_SIZE) -> tuple[list[AuditEntry], int | None]:
    """Newest first, `limit` entries older than id `before`; and the id to ask for the next page
    with (None: this is the last). Keyset paging: page 1000 costs what page 1 costs."""
    if before is not None:
        statement = statement.where(AuditEntry.id < before)
    rows = db.session.scalars(statement.order_by(AuditEntry.id.desc()).limit(limit + 1)).all()
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs a cell that starts like a formula: written as text instead.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def to_csv(entries) -> str:
    """UTF-8 with a byte-order mark, so that Excel reads non-Latin names correctly."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        writer.writerow([_cell(v) for v in (e.id, e.at.isoformat(), e.actor, e.role, e.branch_id, e.action, e.target,
                                            json.dumps(e.detail, ensure_ascii=False, sort_keys=True))])
    return out.getvalue()


def token(action: str, row) -> AuditEntry:
    """A token or kiosk made or revoked: its branch when it has exactly one (a kiosk's)."""
    ids = [b.id for b in row.branches]
    return record(action, target=f"token:{row.id}", branch_id=ids[0] if len(ids) == 1 else None,
                  detail={"name": row.name, "role": row.role, "branches": ids})
