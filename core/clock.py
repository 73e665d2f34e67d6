"""The one source of "now". Everything stores UTC; tests inject a clock they move by hand."""
from datetime import datetime, timedelta, timezone

from flask import current_app


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class ManualClock:
    """A clock that only moves when told to: tests never sleep for minutes."""

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(timezone.utc)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta) -> datetime:
        self._now += timedelta(**delta)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(timezone.utc)


def clock():
    return current_app.extensions["seed.clock"]


def now() -> datetime:
    return clock().now()
