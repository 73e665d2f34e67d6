"""What a customer may do to their own ticket from its status page (/t/<token>): say they are
running late, or cancel it. Both are the queue engine's own moves (engine.running_late is what the
L/LATE text reply calls; engine.cancel is the console's), so the engine's rules and its TicketEvent
record hold. The page adds only what a customer may not do that staff may (cancel a ticket already
called: the counter is waiting for them), the texted reply's rule that only today's ticket moves,
and refusals in the customer's words and language (call inside force_locale(ticket.language))."""
from __future__ import annotations

from babel.dates import format_time
from flask import current_app
from flask_babel import gettext

from core import clock, engine
from core.errors import InvalidTransition, SeedError, ValidationError
from core.extensions import db
from core.models import Ticket
from core.models import TicketStatus as S

LATE_CHOICES = (10, 20, 30)  # minutes, the buttons the page offers
CANCEL_REASON = "customer, on the status page"  # in the ticket's event, beside the engine's own record

# The statuses each move is open to a customer from: never more than the engine allows.
MOVES = {
    "late": engine.MOVES["late"].allowed,
    "cancel": engine.MOVES["cancel"].allowed & {S.WAITING, S.HELD},
}
CLOSED = frozenset({S.COMPLETED, S.NO_SHOW, S.CANCELLED})


class Refused(SeedError):
    """A move the customer may not make now; the message is theirs to read."""

    status = 409
    code = "refused"


def _today(ticket: Ticket, now) -> bool:
    """The texted reply moves only today's ticket (messaging/router.py): so does the page."""
    return ticket.service_day == ticket.branch.local_date(now)


def allowed(ticket: Ticket, now=None) -> list[str]:
    """The moves the page offers for this ticket now, in MOVES' order."""
    if not _today(ticket, now or clock.now()):
        return []
    return [action for action, statuses in MOVES.items() if ticket.status in statuses]


def late_choices() -> list[int]:
    return [minutes for minutes in LATE_CHOICES if minutes <= current_app.config["LATE_MAX_MINUTES"]]


def late_until(ticket: Ticket, now=None) -> str | None:
    """Until when a waiting ticket is skipped, in the branch's zone, 24-hour, in the ticket's language."""
    if ticket.status != S.WAITING or not ticket.is_late(now or clock.now()):
        return None
    return format_time(ticket.late_until, "HH:mm", tzinfo=ticket.branch.zone, locale=ticket.language)


def refusal(ticket: Ticket) -> str:
    """Why this ticket cannot be moved by its customer now, for them to read."""
    if ticket.status in CLOSED or not _today(ticket, clock.now()):
        return gettext("This ticket is closed, so it can no longer be changed.")
    if ticket.status in (S.CALLED, S.SERVING):
        return gettext("You have already been called, so this can no longer be changed here. "
                       "Please speak to the staff at the counter.")
    if ticket.status == S.HELD:
        return gettext("Your ticket is on hold. Please ask at the desk.")
    return gettext("Something went wrong. Please try again or ask at the desk.")


def _run(ticket: Ticket, action: str, move) -> Ticket:
    if action not in allowed(ticket):
        raise Refused(refusal(ticket), {"status": str(ticket.status)})
    try:
        return move()
    except InvalidTransition:  # it moved (a call, say) between the check and the engine's lock
        db.session.refresh(ticket)
        raise Refused(refusal(ticket), {"status": str(ticket.status)}) from None


def running_late(ticket: Ticket, minutes) -> Ticket:
    """Skip the ticket for `minutes` (one of the page's choices); it keeps its place."""
    if isinstance(minutes, bool) or minutes not in late_choices():
        raise ValidationError(gettext("Please choose one of the times offered."), {"minutes": "not offered"})
    return _run(ticket, "late", lambda: engine.running_late(ticket.id, minutes))


def cancel(ticket: Ticket, confirmed) -> Ticket:
    """Cancel the ticket, only when the customer confirmed it (the page asks first)."""
    if confirmed is not True:
        raise ValidationError(gettext("Please confirm that you want to cancel your ticket."),
                              {"confirm": "required"})
    return _run(ticket, "cancel", lambda: engine.cancel(ticket.id, reason=CANCEL_REASON))
