"""Domain events, sent after the change is committed. Displays and messaging subscribe here;
the engine knows nothing about them."""
from dataclasses import dataclass, field

from blinker import Namespace

signals = Namespace()
# sender: the Flask app; kwargs: event=TicketEvent (below)
ticket_changed = signals.signal("ticket-changed")
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
