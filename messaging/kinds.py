"""The one table of text kinds: which lane each goes out in, who may send it, what the sending
policy asks of it, and what must still be true of its ticket or appointment when the modem is
free to send it. Everything else (outbox order, policy, the stale check, health) reads this.

A modem sends 6-20 texts a minute, so order matters: "please go to counter 3" must never wait
behind a morning's reminders. Lanes, most urgent first:
  call      "you're next", "go to counter N": the person is in the building, now
  queue     welcome, "nearly your turn", no-show note
  reply     answers to someone who just wrote, staff replies, an admin's test
  reminder  appointment reminders
  bulk      surveys and broadcasts
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lane:
    name: str
    rank: int  # higher goes first (stored as outbox.priority, so one index orders the claim)
    max_wait_minutes: int  # a queued text older than this makes health say "degraded"


LANES = {lane.name: lane for lane in (
    Lane("call", 50, 2),
    Lane("queue", 40, 5),
    Lane("reply", 30, 10),
    Lane("reminder", 20, 60),
    Lane("bulk", 10, 24 * 60),
)}

# Ticket states in which a ticket-bound text still tells the truth.
WAITING = ("waiting", "held")
AT_COUNTER = ("called", "serving")


@dataclass(frozen=True)
class Kind:
    name: str
    lane: str
    sender: str = "system"  # system, staff (inbox reply), admin (test, broadcast)
    consent: bool = True  # needs the customer's consent (answers to someone who wrote do not)
    reaches_opted_out: bool = False  # the STOP confirmation and HELP go whatever
    daytime_only: bool = False  # waits out the branch's quiet hours
    ticket_states: tuple[str, ...] | None = None  # ticket-bound: sent only while the ticket is in one of these
    appointment_bound: bool = False  # sent only while the appointment is active and still ahead

    @property
    def rank(self) -> int:
        return LANES[self.lane].rank


_ANSWER = {"consent": False}
KINDS = {kind.name: kind for kind in (
    Kind("next", "call", ticket_states=WAITING),
    Kind("called", "call", ticket_states=AT_COUNTER),
    Kind("welcome", "queue", ticket_states=WAITING),
    Kind("position", "queue", ticket_states=WAITING),
    Kind("no_show", "queue", ticket_states=("no_show",)),
    Kind("help", "reply", reaches_opted_out=True, **_ANSWER),
    Kind("stop_confirm", "reply", reaches_opted_out=True, **_ANSWER),
    Kind("start_confirm", "reply", **_ANSWER),
    Kind("late_ack", "reply", **_ANSWER),
    Kind("unknown_ack", "reply", **_ANSWER),
    Kind("survey_followup", "reply", **_ANSWER),
    Kind("survey_retry", "reply", **_ANSWER),
    Kind("survey_thanks", "reply", **_ANSWER),
    Kind("appointment_confirmed", "reply", **_ANSWER),
    Kind("appointment_cancelled", "reply", **_ANSWER),
    Kind("appointment_moved", "reply", **_ANSWER),
    Kind("appointment_late", "reply", **_ANSWER),
    Kind("reschedule_offer", "reply", **_ANSWER),
    Kind("reschedule_taken", "reply", **_ANSWER),
    Kind("reschedule_none", "reply", **_ANSWER),
    Kind("reply", "reply", sender="staff", **_ANSWER),
    Kind("test", "reply", sender="admin", **_ANSWER),
    # The confirmation of a booking the customer just made online: an answer to what they did (so
    # the reply lane, at any hour), on their consent given with it, and only while the booking stands.
    Kind("appointment_booked", "reply", appointment_bound=True),
    Kind("reminder", "reminder", daytime_only=True, appointment_bound=True),
    Kind("survey", "bulk", daytime_only=True, ticket_states=("completed",)),
    Kind("correction", "bulk", sender="admin"),
)}
# outbox.kind's column length; a test checks every kind fits it.
KIND_LENGTH = 40


def get(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown text kind {name!r}: add it to messaging/kinds.py") from None


def lane_of(name: str) -> str:
    return get(name).lane
