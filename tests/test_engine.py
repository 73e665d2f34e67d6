"""The queue engine: every transition, every refusal, numbering, order, events."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import engine
from core.errors import Conflict, InvalidTransition, NotFound, ValidationError
from core.events import ticket_changed
from core.extensions import db
from core.models import Counter, Ticket, TicketEvent
from core.models import TicketStatus as S

from .helpers import make_branch, make_counter, make_service


def events_of(ticket_id):
    return [e.kind for e in db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id))]


def fresh(ticket_id) -> Ticket:
    db.session.expire_all()
    return db.session.get(Ticket, ticket_id)


def called(setup, counter_index=0):
    _, (a, _b), counters, staff = setup
    engine.issue_ticket(a.id)
    return engine.call_next(counters[counter_index].id, staff=staff)


# --- issuing and numbering ----------------------------------------------------------------

def test_issue_numbers_per_service(setup):
    _, (a, b), _, _ = setup
    labels = [engine.issue_ticket(s.id).label for s in (a, a, b, a)]
    assert labels == ["A001", "A002", "B001", "A003"]
    ticket = db.session.scalar(select(Ticket).where(Ticket.label == "A003"))
    assert ticket.status == S.WAITING and ticket.number == 3
    assert events_of(ticket.id) == ["issued"]


def test_numbers_past_999_keep_every_digit_on_both_databases(any_db_app, clock):
    """A service's 1,000th ticket of the day is A1000 (at least three digits, never cut), its
    number 1000, with its "issued" event: on PostgreSQL the number, the label, the ticket and the
    event are one statement (core.engine._issuing), on SQLite four."""
    from core.models import TicketSequence

    branch = make_branch("Busy")
    service = make_service(branch, "Q")
    db.session.commit()
    first = engine.issue_ticket(service.id)
    assert (first.label, first.number) == ("Q001", 1)
    db.session.execute(TicketSequence.__table__.update().values(last_number=997))
    db.session.commit()
    issued = [engine.issue_ticket(service.id) for _ in range(4)]
    assert [(t.label, t.number) for t in issued] == [("Q998", 998), ("Q999", 999), ("Q1000", 1000), ("Q1001", 1001)]
    db.session.expire_all()
    stored = db.session.execute(select(Ticket.label, Ticket.number, Ticket.service_day).where(Ticket.id == issued[2].id)).one()
    assert stored == ("Q1000", 1000, branch.local_date(clock.now()))
    assert events_of(issued[2].id) == ["issued"]


def test_numbering_resets_on_the_branch_local_day_not_utc(app, clock):
    tokyo = make_branch("Tokyo", timezone="Asia/Tokyo")  # UTC+9: local midnight is 15:00 UTC
    service = make_service(tokyo, "A")
    db.session.commit()
    assert engine.issue_ticket(service.id).label == "A001"  # 18:00 local, Monday
    clock.advance(hours=5, minutes=30)  # 14:30 UTC = 23:30 local, same local day
    assert engine.issue_ticket(service.id).label == "A002"
    clock.advance(minutes=45)  # 15:15 UTC = 00:15 local Tuesday
    first_of_day = engine.issue_ticket(service.id)
    assert first_of_day.label == "A001"
    assert first_of_day.service_day.isoformat() == "2026-03-03"


def test_issue_refuses_unknown_or_inactive_service_and_bad_priority(setup):
    _, (a, b), _, _ = setup
    b.active = False
    db.session.commit()
    with pytest.raises(NotFound):
        engine.issue_ticket(9999)
    with pytest.raises(NotFound):
        engine.issue_ticket(b.id)
    with pytest.raises(ValidationError):
        engine.issue_ticket(a.id, priority=1000)
    with pytest.raises(ValidationError):
        engine.issue_ticket(a.id, priority="high")
    assert db.session.scalar(select(func.count(Ticket.id))) == 0


# --- call next --------------------------------------------------------------------------------

def test_call_next_takes_priority_then_arrival(setup, clock):
    _, (a, _b), (c1, _c2), staff = setup
    first = engine.issue_ticket(a.id)
    clock.advance(minutes=1)
    second = engine.issue_ticket(a.id)
    clock.advance(minutes=1)
    urgent = engine.issue_ticket(a.id, priority=10)
    order = []
    for _ in range(3):
        ticket = engine.call_next(c1.id, staff=staff)
        order.append(ticket.label)
        engine.complete(ticket.id, staff=staff)
    assert order == [urgent.label, first.label, second.label]
    assert engine.call_next(c1.id, staff=staff) is None


def test_call_next_only_serves_the_counters_services(app):
    branch = make_branch()
    a, b = make_service(branch, "A"), make_service(branch, "B")
    only_b = make_counter(branch, "9", [b])
    db.session.commit()
    engine.issue_ticket(a.id)
    assert engine.call_next(only_b.id) is None
    ticket_b = engine.issue_ticket(b.id)
    assert engine.call_next(only_b.id).id == ticket_b.id


def test_call_next_sets_counter_time_and_opens_counter(setup, clock):
    _, (a, _b), (c1, _c2), staff = setup
    engine.issue_ticket(a.id)
    clock.advance(minutes=7)
    ticket = engine.call_next(c1.id, staff=staff)
    ticket = fresh(ticket.id)
    assert ticket.status == S.CALLED and ticket.counter_id == c1.id
    assert ticket.called_at == clock.now()
    counter = db.session.get(Counter, c1.id)
    assert counter.is_open and counter.staff_id == staff.id
    event = db.session.scalars(select(TicketEvent).where(TicketEvent.kind == "called")).one()
    assert (event.staff_id, event.counter_id, event.at, event.from_status, event.to_status) == (
        staff.id, c1.id, clock.now(), "waiting", "called")


def test_call_next_refuses_while_counter_has_a_ticket(setup):
    _, (a, _b), (c1, _c2), staff = setup
    engine.issue_ticket(a.id)
    waiting = engine.issue_ticket(a.id)
    engine.call_next(c1.id, staff=staff)
    with pytest.raises(Conflict, match="still has ticket A001"):
        engine.call_next(c1.id, staff=staff)
    assert fresh(waiting.id).status == S.WAITING


def test_call_next_refuses_unknown_counter_and_counter_without_services(app):
    branch = make_branch()
    bare = make_counter(branch, "7", [])
    db.session.commit()
    with pytest.raises(NotFound):
        engine.call_next(12345)
    with pytest.raises(Conflict, match="serves no service"):
        engine.call_next(bare.id)


# --- the moves at the counter -----------------------------------------------------------------

def test_recall_counts_and_keeps_called(setup):
    ticket = called(setup)
    engine.recall(ticket.id)
    engine.recall(ticket.id)
    ticket = fresh(ticket.id)
    assert ticket.status == S.CALLED and ticket.recall_count == 2
    assert events_of(ticket.id) == ["issued", "called", "recalled", "recalled"]


def test_start_then_complete(setup, clock):
    ticket = called(setup)
    clock.advance(minutes=1)
    engine.start_serving(ticket.id)
    clock.advance(minutes=6)
    engine.complete(ticket.id)
    ticket = fresh(ticket.id)
    assert ticket.status == S.COMPLETED
    assert ticket.finished_at - ticket.started_at == timedelta(minutes=6)
    assert events_of(ticket.id) == ["issued", "called", "started", "completed"]


def test_complete_straight_from_called_counts_service_from_the_call(setup, clock):
    ticket = called(setup)
    clock.advance(minutes=4)
    engine.complete(ticket.id)
    ticket = fresh(ticket.id)
    assert ticket.started_at == ticket.called_at
    assert ticket.finished_at - ticket.started_at == timedelta(minutes=4)


def test_no_show_frees_the_counter(setup):
    _, (a, _b), (c1, _c2), _ = setup
    ticket = called(setup)
    engine.no_show(ticket.id)
    assert fresh(ticket.id).status == S.NO_SHOW
    following = engine.issue_ticket(a.id)
    assert engine.call_next(c1.id).id == following.id


def test_hold_and_unhold_keep_the_place(setup, clock):
    _, (a, _b), (c1, _c2), _ = setup
    first = engine.issue_ticket(a.id)
    clock.advance(minutes=1)
    second = engine.issue_ticket(a.id)
    engine.hold(first.id)
    assert fresh(first.id).status == S.HELD
    clock.advance(minutes=5)
    third = engine.issue_ticket(a.id)
    engine.unhold(first.id)
    order = []
    for _ in range(3):
        ticket = engine.call_next(c1.id)
        order.append(ticket.id)
        engine.complete(ticket.id)
    assert order == [first.id, second.id, third.id]


def test_held_ticket_is_not_called(setup):
    _, (a, _b), (c1, _c2), _ = setup
    ticket = engine.issue_ticket(a.id)
    engine.hold(ticket.id)
    assert engine.call_next(c1.id) is None


def test_hold_from_the_counter_frees_it(setup):
    ticket = called(setup)
    engine.hold(ticket.id)
    ticket = fresh(ticket.id)
    assert ticket.status == S.HELD and ticket.counter_id is None and ticket.called_at is None


def test_transfer_keeps_arrival_and_number(setup, clock):
    _, (a, b), (c1, _c2), _ = setup
    ticket = engine.issue_ticket(a.id)
    arrived = fresh(ticket.id).arrived_at
    clock.advance(minutes=3)
    later_b = engine.issue_ticket(b.id)
    engine.call_next(c1.id)
    engine.transfer(ticket.id, b.id)
    moved = fresh(ticket.id)
    assert (moved.status, moved.service_id, moved.label, moved.arrived_at, moved.counter_id) == (
        S.WAITING, b.id, "A001", arrived, None)
    event = db.session.scalars(select(TicketEvent).where(TicketEvent.kind == "transferred")).one()
    assert event.detail == {"from_service": "A", "to_service": "B"}
    # It arrived before B001, so it is first in B.
    only_b = make_counter(db.session.get(Counter, c1.id).branch, "B-only", [db.session.merge(b)])
    db.session.commit()
    assert engine.call_next(only_b.id).id == ticket.id
    assert fresh(later_b.id).status == S.WAITING


def test_transfer_refusals(setup, app):
    _, (a, _b), _, _ = setup
    other = make_service(make_branch("Elsewhere"), "Z")
    db.session.commit()
    ticket = engine.issue_ticket(a.id)
    with pytest.raises(NotFound):
        engine.transfer(ticket.id, 424242)
    with pytest.raises(NotFound):
        engine.transfer(ticket.id, other.id)
    with pytest.raises(Conflict, match="already in"):
        engine.transfer(ticket.id, a.id)
    assert events_of(ticket.id) == ["issued"]


def test_cancel(setup):
    _, (a, _b), _, staff = setup
    ticket = engine.issue_ticket(a.id)
    engine.cancel(ticket.id, staff=staff, reason="left")
    ticket = fresh(ticket.id)
    assert ticket.status == S.CANCELLED and ticket.finished_at is not None
    assert ticket.events[-1].detail == {"reason": "left"}


def test_running_late_is_skipped_then_keeps_its_place(setup, clock):
    _, (a, _b), (c1, _c2), _ = setup
    late = engine.issue_ticket(a.id)
    clock.advance(minutes=1)
    on_time = engine.issue_ticket(a.id)
    clock.advance(minutes=1)
    engine.issue_ticket(a.id)  # arrives after "late": still called after it
    engine.running_late(late.id, 10)
    assert engine.call_next(c1.id).id == on_time.id
    engine.complete(on_time.id)
    clock.advance(minutes=10)  # late_until passed: back in its original place, before `later`
    assert engine.call_next(c1.id).id == late.id
    assert fresh(late.id).late_until is None


def test_running_late_default_and_limits(setup, app, clock):
    _, (a, _b), _, _ = setup
    ticket = engine.issue_ticket(a.id)
    engine.running_late(ticket.id)
    assert fresh(ticket.id).late_until == clock.now() + timedelta(minutes=app.config["LATE_DEFAULT_MINUTES"])
    for bad in (0, -5, 241, "10", True):
        with pytest.raises(ValidationError):
            engine.running_late(ticket.id, bad)


REFUSED = [
    # (action, how to bring the ticket into the refused state)
    ("recall", "waiting"), ("recall", "completed"),
    ("start", "waiting"), ("start", "serving"),
    ("complete", "waiting"), ("complete", "held"), ("complete", "completed"),
    ("no_show", "waiting"), ("no_show", "serving"),
    ("hold", "held"), ("hold", "completed"),
    ("unhold", "waiting"), ("unhold", "called"),
    ("cancel", "serving"), ("cancel", "completed"), ("cancel", "no_show"),
    ("late", "called"), ("late", "held"), ("late", "cancelled"),
    ("transfer", "completed"), ("transfer", "cancelled"),
]


def bring_to(setup, state):
    _, (a, _b), (c1, _c2), _ = setup
    ticket = engine.issue_ticket(a.id)
    steps = {
        "waiting": [], "called": ["call"], "serving": ["call", "start"], "held": ["hold"],
        "completed": ["call", "complete"], "no_show": ["call", "no_show"], "cancelled": ["cancel"],
    }[state]
    for step in steps:
        if step == "call":
            assert engine.call_next(c1.id).id == ticket.id
        else:
            getattr(engine, {"start": "start_serving"}.get(step, step))(ticket.id)
    assert fresh(ticket.id).status == state
    return ticket


@pytest.mark.parametrize(("action", "state"), REFUSED)
def test_impossible_moves_are_refused_and_change_nothing(setup, action, state):
    _, (_a, b), _, _ = setup
    ticket = bring_to(setup, state)
    before = events_of(ticket.id)
    call = {
        "start": lambda: engine.start_serving(ticket.id),
        "late": lambda: engine.running_late(ticket.id, 5),
        "transfer": lambda: engine.transfer(ticket.id, b.id),
    }.get(action, lambda: getattr(engine, action)(ticket.id))
    with pytest.raises(InvalidTransition) as refused:
        call()
    assert ticket.label in refused.value.message and refused.value.status == 409
    assert fresh(ticket.id).status == state
    assert events_of(ticket.id) == before


def test_unknown_ticket_is_not_found(setup):
    for call in (engine.recall, engine.complete, engine.hold, engine.cancel):
        with pytest.raises(NotFound):
            call(999)


# --- events -----------------------------------------------------------------------------------

def test_domain_events_are_sent_after_commit(setup, app):
    _, (a, _b), (c1, _c2), staff = setup
    seen = []

    def listener(sender, change):
        # Read through a separate connection: the change must already be committed.
        with db.engine.connect() as conn:
            status = conn.execute(select(Ticket.status).where(Ticket.id == change.ticket_id)).scalar_one()
        seen.append((change.kind, change.label, change.status, status, change.counter_id))

    with ticket_changed.connected_to(listener, sender=app):
        ticket = engine.issue_ticket(a.id)
        engine.call_next(c1.id, staff=staff)
        engine.complete(ticket.id, staff=staff)
        with pytest.raises(InvalidTransition):
            engine.complete(ticket.id)
    assert seen == [
        ("issued", "A001", "waiting", "waiting", None),
        ("called", "A001", "called", "called", c1.id),
        ("completed", "A001", "completed", "completed", c1.id),
    ]


def test_counter_open_and_close(setup):
    _, (a, _b), (c1, _c2), staff = setup
    engine.set_counter_open(c1.id, True, staff=staff)
    assert db.session.get(Counter, c1.id).is_open
    engine.issue_ticket(a.id)
    ticket = engine.call_next(c1.id)
    with pytest.raises(Conflict):
        engine.set_counter_open(c1.id, False)
    engine.complete(ticket.id)
    engine.set_counter_open(c1.id, False)
    counter = db.session.get(Counter, c1.id)
    assert not counter.is_open and counter.staff_id is None
