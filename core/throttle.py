"""Login throttling: 5 failed logins within 15 minutes for one username, or from one client
address, lock that username or address for 15 minutes.

Failures are rows in the database, so every web process counts the same ones; rows are only
inserted (never a counter updated), so parallel guesses cannot lose a count. The lock is worked
out from the rows: it starts at the failure that made 5 within 15 minutes and lasts 15 minutes.
Attempts refused during a lock are logged but not counted, so a lock does not grow by itself.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask_babel import gettext
from sqlalchemy import Index, String, delete, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from .database import write_transaction
from .errors import SeedError
from .extensions import db
from .types import UTCDateTime

log = logging.getLogger(__name__)

FAILURES = 5
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)
KEEP = WINDOW + LOCK  # an older failure can no longer start or extend a lock


class LoginFailure(db.Model):
    __tablename__ = "login_failure"
    __table_args__ = (
        Index("ix_login_failure_username", "username", "at"),
        Index("ix_login_failure_address", "address", "at"),
        Index("ix_login_failure_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40))  # as typed, folded: "Alice" and "alice" share a count
    address: Mapped[str] = mapped_column(String(45))  # the client address (an IPv6 address is at most 45)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class TooManyAttempts(SeedError):
    status = 429
    code = "too_many_attempts"


def _username(raw) -> str:
    return (raw or "").strip().lower()[:40]


def _address(raw) -> str:
    return (raw or "unknown")[:45]


def _lock_end(times: list[datetime]) -> datetime | None:
    """When the lock made by these failures (oldest first) ends; None if they made none."""
    end = None
    for i in range(FAILURES - 1, len(times)):
        if times[i] - times[i - FAILURES + 1] <= WINDOW:
            end = times[i] + LOCK
    return end


def locked_until(username, address, now: datetime) -> datetime | None:
    """The end of the lock on this username or address, or None when neither is locked."""
    username, address = _username(username), _address(address)
    rows = db.session.execute(
        select(LoginFailure.username, LoginFailure.address, LoginFailure.at)
        .where(or_(LoginFailure.username == username, LoginFailure.address == address), LoginFailure.at > now - KEEP)
        .order_by(LoginFailure.at)
    ).all()
    ends = [_lock_end([r.at for r in rows if r.username == username]),
            _lock_end([r.at for r in rows if r.address == address])]
    ends = [end for end in ends if end is not None and end > now]
    return max(ends) if ends else None


def check(username, address, now: datetime) -> None:
    """Refuse (TooManyAttempts, 429) an attempt on a locked username or from a locked address,
    before any password is looked at."""
    until = locked_until(username, address, now)
    if until is not None:
        log.warning("login refused, locked until %s: username %r from %s", f"{until:%H:%M:%S}",
                    _username(username), _address(address))
        minutes = max(1, -(-int((until - now).total_seconds()) // 60))
        raise TooManyAttempts(gettext("Too many failed logins. Try again in %(minutes)s minutes.", minutes=minutes),
                              {"retry_after": int((until - now).total_seconds()) + 1, "minutes": minutes})


def failed(username, address, now: datetime) -> None:
    """Count a failed login, forget failures too old to matter, and log the failure (and the lock
    when this failure makes one)."""
    username, address = _username(username), _address(address)
    with write_transaction() as session:
        session.execute(delete(LoginFailure).where(LoginFailure.at <= now - KEEP))
        session.add(LoginFailure(username=username, address=address, at=now))
    log.warning("login failed: username %r from %s", username, address)
    until = locked_until(username, address, now)
    if until is not None:
        log.warning("login locked until %s after %d failures in %d minutes: username %r / address %s",
                    f"{until:%Y-%m-%d %H:%M:%S}", FAILURES, WINDOW.seconds // 60, username, address)


def succeeded(username) -> None:
    """A right password clears that username's failures (a few typos do not add up over a day);
    the address keeps its count: one account's success must not reset guesses at others."""
    with write_transaction() as session:
        session.execute(delete(LoginFailure).where(LoginFailure.username == _username(username)))
