"""Domain events, sent after the change is committed. Displays and messaging subscribe here;
the engine knows nothing about them."""
from dataclasses import dataclass, field

from blinker import Namespace

signals = Namespace()
# sender: the Flask app; kwargs: event=TicketEvent (below)
ticket_changed = signals.signal("ticket-changed")
# Sent inside the change's own write transaction, before its commit: sender the Flask app; kwargs
# session, ticket (loaded, with the change applied), change=TicketChange. A receiver adds rows
# that must commit with the change (a ticket's welcome text) and must not raise for a problem of
# its own: anything it raises undoes the change.
ticket_changing = signals.signal("ticket-changing")
# sender: the Flask app; kwargs: branch_id, counter_id, is_open
counter_changed = signals.signal("counter-changed")


@dataclass(frozen=True)
class TicketChange:
    kind: str  # issued, called, recalled, started, completed, no_show, held, unheld, transferred, cancelled, late
    ticket_id: int
    branch_id: int
    label: str
    status: str
    counter_id: int | None = None
    detail: dict = field(default_factory=dict)
    # What receivers of ticket_changing wrote in the change's own transaction ({text kind: what
    # was queued, or None when nothing was due}), for ticket_changed's receivers after the commit.
    written: dict = field(default_factory=dict, compare=False, repr=False)
