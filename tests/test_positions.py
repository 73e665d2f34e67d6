"""Positions of a whole branch from one query (core.queries.positions), by the same rule the engine
calls by, and position texts whose cost does not grow with the number of texting customers."""
import threading

import pytest

from sqlalchemy import event, func, or_, select

from core import engine
from core.extensions import db
from core.models import Customer, Ticket
from core.queries import open_counters, position, positions, quote_on_arrival, service_minutes, wait_for
from messaging.models import OutboxMessage

from .helpers import make_branch, make_counter, make_service


def one_at_a_time(tickets):
    """The rule, written out: within a service, higher priority first, then arrival, then id."""
    places = {}
    for service_id in {t.service_id for t in tickets}:
        queue = sorted((t for t in tickets if t.service_id == service_id), key=lambda t: (-t.priority, t.arrived_at, t.id))
        places.update({t.id: place for place, t in enumerate(queue, 1)})
    return places


def test_positions_follow_the_rule_for_priorities_ties_late_tickets_and_services(any_db_app, clock):
    branch = make_branch()
    a, b = make_service(branch, "A"), make_service(branch, "B")
    only_a = make_counter(branch, "1", [a])
    db.session.commit()
    issued = []
    for n, (service, priority, tie) in enumerate([(a, 0, False), (a, 0, True), (b, 0, False), (a, 10, False),
                                                  (b, 5, True), (a, -1, False), (a, 0, True), (b, 0, False),
                                                  (a, 10, True), (a, 10, False)]):
        issued.append(engine.issue_ticket(service.id, priority=priority).id)
        if not tie:  # a tie: the next one arrives in the same instant
            clock.advance(seconds=20)
    late = issued[1]
    engine.running_late(late, 10)  # keeps its place: counted, only skipped by call next
    engine.hold(issued[6])  # on hold: no position until it is back
    engine.transfer(issued[7], a.id)  # keeps its arrival time in the new queue
    db.session.expire_all()

    from core.models import Ticket

    waiting = db.session.scalars(select(Ticket).where(Ticket.status == "waiting")).all()
    expected = one_at_a_time(waiting)
    assert positions(branch.id) == expected
    assert positions(branch.id, a.id) == {i: p for i, p in expected.items() if db.session.get(Ticket, i).service_id == a.id}
    for up_to in (1, 2, 3, 10):  # the front of each queue only (after each move, for the texts)
        assert positions(branch.id, up_to=up_to) == {i: p for i, p in expected.items() if p <= up_to}
        assert positions(branch.id, a.id, up_to=up_to) == {
            i: p for i, p in expected.items() if p <= up_to and db.session.get(Ticket, i).service_id == a.id}
    assert all(position(db.session.get(Ticket, i)) == p for i, p in expected.items())
    assert position(db.session.get(Ticket, issued[6])) is None and issued[6] not in positions(branch.id)
    # Priority 10 (the last two arrived together: by id), then by arrival; the late ticket keeps its
    # place and the transferred one its arrival time; priority -1 last.
    assert sorted((i for i in expected if i not in (issued[2], issued[4])), key=expected.get) == [
        issued[i] for i in (3, 8, 9, 0, 1, 7, 5)]
    assert (expected[issued[4]], expected[issued[2]]) == (1, 2)  # B: priority 5 before the earlier arrival

    # The engine calls by the same rule: the queue of A, front first, skipping only the late ticket.
    queue_a = sorted((i for i in expected if db.session.get(Ticket, i).service_id == a.id), key=expected.get)
    called = []
    while (ticket := engine.call_next(only_a.id)) is not None:
        called.append(ticket.id)
        engine.complete(ticket.id)
    assert called == [i for i in queue_a if i != late]


def count_statements(action) -> int:
    seen, lock = [], threading.Lock()

    def note(*_args):
        with lock:
            seen.append(1)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        action()
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    return len(seen)


def queue_of_texting_customers(count, clock):
    branch = make_branch(country="GE")
    service = make_service(branch, "A")
    counter = make_counter(branch, "1", [service])
    db.session.commit()
    known = db.session.scalar(select(func.count(Customer.id)))
    for n in range(known, known + count):
        customer = Customer(phone=f"+99555520{n:04d}", sms_consent=True, created_at=clock.now())
        db.session.add(customer)
        db.session.commit()
        engine.issue_ticket(service.id, customer_id=customer.id)
        clock.advance(seconds=5)
    return branch, counter


def texts_of(kind):
    db.session.rollback()
    return db.session.scalars(select(OutboxMessage.ticket_id).where(OutboxMessage.kind == kind)).all()


def test_the_place_counted_before_a_ticket_is_written_is_its_place_after(any_db_app, clock):
    """A check-in works out where the ticket will stand before it takes its number
    (quote_on_arrival): it must be the place the ticket then has, whatever its priority and
    whoever arrived in the same instant."""
    branch = make_branch()
    a = make_service(branch, "A")
    db.session.commit()
    for priority, tie in [(0, False), (0, True), (10, False), (-1, True), (0, True), (10, True), (5, False),
                          (0, False), (-1, False)]:
        now = engine.clock.now()
        before, _wait = quote_on_arrival(branch.id, a, priority, now)
        ticket = engine.issue_ticket(a.id, priority=priority)
        assert ticket.arrived_at == now
        db.session.expire_all()
        assert position(ticket) == before == positions(branch.id)[ticket.id], (priority, tie)
        if not tie:  # a tie: the next one arrives in the same instant
            clock.advance(seconds=20)


def test_the_quote_read_in_one_statement_says_what_the_three_reads_say(any_db_app, clock):
    """A check-in's place and wait (quote_on_arrival, one statement) are the queue rule's place and
    what service_minutes and open_counters say, read apart: with completions to measure or not,
    with one, two or no counters open, for each priority and for an arrival tied with one waiting."""
    branch = make_branch()
    a, b = make_service(branch, "A"), make_service(branch, "B")
    first, second = make_counter(branch, "1", [a, b], is_open=True), make_counter(branch, "2", [a], is_open=False)
    db.session.commit()
    seen = set()
    for round_ in range(5):
        if round_:  # one more completion of A each round (4, 6, 8... minutes): the median moves
            engine.issue_ticket(a.id, priority=100)
            called = engine.call_next(first.id)
            clock.advance(minutes=2 + 2 * round_)
            engine.complete(called.id)
        for priority in (-1, 0, 5):
            engine.issue_ticket(a.id, priority=priority)
            engine.issue_ticket(b.id, priority=priority)
        if round_ == 3:
            second.is_open = True
            db.session.commit()
        if round_ == 4:
            first.is_open = second.is_open = False
            db.session.commit()
        db.session.expire_all()
        tied = db.session.scalars(select(Ticket).where(Ticket.service_id == a.id)
                                  .order_by(Ticket.id.desc())).first()
        for priority, at in [(-1, engine.clock.now()), (0, engine.clock.now()), (5, engine.clock.now()),
                             (10, engine.clock.now()), (tied.priority, tied.arrived_at)]:
            waiting = db.session.scalars(select(Ticket).where(Ticket.service_id == a.id,
                                                              Ticket.status == "waiting")).all()
            # (the rule written out: a ticket not yet written comes after those of its instant)
            place = 1 + sum((-t.priority, t.arrived_at) <= (-priority, at) for t in waiting)
            assert quote_on_arrival(branch.id, a, priority, at) == (place, wait_for(a, place)), (round_, priority)
        seen.add((service_minutes(a), open_counters(a)))
        clock.advance(seconds=30)
    # The rounds met the configured average and measured medians, and 0, 1 and 2 counters open.
    assert len({minutes for minutes, _n in seen}) >= 3 and {n for _m, n in seen} == {0, 1, 2}, seen


def test_position_texts_cost_the_same_with_200_texting_customers_as_with_10(any_db_app, clock):
    costs = []
    for count in (10, 200):
        branch, counter = queue_of_texting_customers(count, clock)
        first = engine.call_next(counter.id)
        engine.complete(first.id)
        before = {kind: len(texts_of(kind)) for kind in ("next", "position")}
        costs.append(count_statements(lambda: engine.call_next(counter.id)))
        # The call still brought one customer to the front and one within the threshold (3 ahead).
        assert {kind: len(texts_of(kind)) - before[kind] for kind in before} == {"next": 1, "position": 1}
    assert costs[0] == costs[1], f"statements for one call with 10 and 200 texting customers waiting: {costs}"


def test_one_bad_stored_number_does_not_cost_the_others_their_text(any_db_app, clock):
    branch, counter = queue_of_texting_customers(6, clock)
    from core.models import Ticket

    queue = sorted(positions(branch.id).items(), key=lambda item: item[1])
    front, nearly = db.session.get(Ticket, queue[1][0]), db.session.get(Ticket, queue[4][0])
    front.customer.phone = "+9955"  # stored before numbers were checked: no text can reach it
    db.session.commit()
    engine.call_next(counter.id)  # front is now first, nearly is now 3 ahead
    assert front.id not in texts_of("next")
    assert nearly.id in texts_of("position")


def test_the_texts_a_call_owes_others_are_written_in_one_transaction(any_db_app, clock):
    """"You're next" and "nearly your turn" after a call: worded one by one, written in one write
    transaction after the call's own (they were one each, each queuing for SQLite's write lock)."""
    branch, counter = queue_of_texting_customers(6, clock)
    engine.complete(engine.call_next(counter.id).id)
    transaction, inserted = [0], []

    def statement(_conn, _cursor, sql, *_args):
        if "INSERT INTO outbox" in sql:  # (on PostgreSQL, with its notices: WITH text AS (INSERT ...)
            inserted.append(transaction[0])

    def commit(_conn):
        transaction[0] += 1

    event.listen(db.engine, "before_cursor_execute", statement)
    event.listen(db.engine, "commit", commit)
    try:
        before = {kind: set(texts_of(kind)) for kind in ("called", "next", "position")}
        engine.call_next(counter.id)
    finally:
        event.remove(db.engine, "before_cursor_execute", statement)
        event.remove(db.engine, "commit", commit)
    added = {kind: len(set(texts_of(kind)) - before[kind]) for kind in before}
    assert added == {"called": 1, "next": 1, "position": 1}
    # the call's own text with the call; the other two together, in a later transaction
    assert len(inserted) == 3 and inserted[0] < inserted[1] == inserted[2], inserted


def test_a_position_text_whose_notice_another_took_meanwhile_is_not_written(any_db_app, clock):
    """Another process (a second counter's call, the lost-texts job) takes "nearly your turn" for
    a customer between this call's look at the notices and its write: the notice decides, no second
    text is written, nor left behind, and the other customer's text still goes."""
    from messaging import notify
    from messaging.models import TicketNotice

    branch, counter = queue_of_texting_customers(6, clock)
    engine.complete(engine.call_next(counter.id).id)
    worded = notify._worded
    taken = []

    def meanwhile(ticket, kind, place=None, **extra):
        if kind == "position" and not taken:
            with db.engine.begin() as other:  # another connection: committed before this call writes
                other.execute(TicketNotice.__table__.insert().values(ticket_id=ticket.id, kind=kind))
            taken.append(ticket.id)
        return worded(ticket, kind, place, **extra)

    notify._worded = meanwhile
    try:
        before = {kind: set(texts_of(kind)) for kind in ("next", "position")}
        count = db.session.scalar(select(func.count(OutboxMessage.id)))
        engine.call_next(counter.id)
    finally:
        notify._worded = worded
    assert len(taken) == 1
    assert len(set(texts_of("next")) - before["next"]) == 1
    assert set(texts_of("position")) == before["position"]  # none for the one whose notice was taken
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == count + 2  # "go to counter", "next"
    assert db.session.get(TicketNotice, (taken[0], "position")).outbox_id is None  # the other's, untouched


def test_a_called_customers_bad_number_does_not_cost_the_one_behind_the_text(any_db_app, clock):
    """The call's own text cannot go (a number stored before numbers were checked): the one it
    brought to the front still hears "you're next", and the call itself stands."""
    branch, counter = queue_of_texting_customers(3, clock)
    from core.models import Ticket

    queue = sorted(positions(branch.id).items(), key=lambda item: item[1])
    first, second = db.session.get(Ticket, queue[0][0]), db.session.get(Ticket, queue[1][0])
    first.customer.phone = "+9955"
    db.session.commit()
    texted_before = texts_of("next")
    assert engine.call_next(counter.id).id == first.id
    db.session.rollback()
    assert db.session.get(Ticket, first.id).status == "called"
    assert first.id not in texts_of("called")
    assert second.id in texts_of("next") and second.id not in texted_before


def test_the_queues_by_page_keep_whole_counts_and_the_same_places(any_db_app, clock):
    from core.queries import queue_snapshot

    branch = make_branch()
    a, b = make_service(branch, "A"), make_service(branch, "B")
    db.session.commit()
    for n in range(7):
        engine.issue_ticket(a.id, priority=5 if n == 4 else 0)
        clock.advance(seconds=10)
    held = engine.issue_ticket(a.id)
    engine.hold(held.id)
    engine.issue_ticket(b.id)
    whole = {s["code"]: s for s in queue_snapshot(branch.id)}
    page = {s["code"]: s for s in queue_snapshot(branch.id, first=3, after=2)}
    assert [s["waiting_count"] for s in whole.values()] == [s["waiting_count"] for s in page.values()] == [7, 1]
    assert [t["position"] for t in whole["A"]["waiting"]] == list(range(1, 8))
    assert page["A"]["waiting"] == whole["A"]["waiting"][2:5] and page["B"]["waiting"] == []
    assert whole["A"]["waiting"][0]["number"] == "A005"  # priority first
    assert [t["number"] for t in page["A"]["held"]] == ["A008"]


def test_the_front_of_the_queues_is_read_without_numbering_all_of_it(app, clock):
    """The texts after each call and completion ask for the first few places of each queue
    (positions with up_to): SQLite's work for them is the same with 2,000 waiting as with 20
    (read from the front of ix_ticket_service_queue_order), where numbering every waiting ticket
    grew with the queue."""
    from sqlalchemy import insert

    from core.models import TicketStatus

    from .test_request_cost import sqlite_steps

    branch = make_branch()
    a, b = make_service(branch, "A"), make_service(branch, "B")
    db.session.commit()
    now = clock.now()
    steps, written = [], 0
    for waiting in (20, 2000):
        db.session.execute(insert(Ticket), [
            {"branch_id": branch.id, "service_id": (a, b)[n % 2].id, "service_day": now.date(), "number": n,
             "label": f"{(a, b)[n % 2].code}{n:04d}", "status": str(TicketStatus.WAITING), "priority": n % 3,
             "language": "en", "source": "kiosk", "access_token": f"t{n}", "arrived_at": now, "recall_count": 0}
            for n in range(written, waiting)])
        db.session.commit()
        written = waiting
        expected = {i: p for i, p in positions(branch.id).items() if p <= 4}
        assert len(expected) == 8
        steps.append(sqlite_steps(lambda: expected == positions(branch.id, up_to=4) or pytest.fail("places differ")))
    assert steps[1] <= 2 * steps[0] + 2, steps  # (in hundreds of steps)


def test_a_counter_of_several_services_calls_from_the_fronts_of_their_queues(app, clock):
    """Call next at a counter of two services reads each service's first waiting ticket from
    ix_ticket_service_queue_order: SQLite's work is the same with 2,000 waiting as with 20, where
    sorting the waiting tickets of both services grew with the queue; and the one called is the
    first by the queue's rule (priority, then arrival, then id) across both, late ones skipped."""
    from datetime import timedelta

    from sqlalchemy import insert

    from core.models import TicketStatus

    from .helpers import make_counter
    from .test_request_cost import sqlite_steps

    branch = make_branch()
    a, b, c = make_service(branch, "A"), make_service(branch, "B"), make_service(branch, "C")
    counter = make_counter(branch, "1", [a, b])
    db.session.commit()
    now = clock.now()
    steps, written = [], 0
    for waiting in (20, 2000):
        db.session.execute(insert(Ticket), [
            {"branch_id": branch.id, "service_id": (a, b, c)[n % 3].id, "service_day": now.date(), "number": n,
             "label": f"X{n:04d}", "status": str(TicketStatus.WAITING), "priority": n % 2, "language": "en",
             "source": "kiosk", "access_token": f"t{n}", "arrived_at": now + timedelta(seconds=waiting - n),
             "recall_count": 0, "late_until": now + timedelta(hours=1) if n == written + 1 else None}
            for n in range(written, waiting)])
        db.session.commit()
        written = waiting
        expected = db.session.execute(
            select(Ticket.id).where(Ticket.service_id.in_((a.id, b.id)), Ticket.status == TicketStatus.WAITING,
                                    or_(Ticket.late_until.is_(None), Ticket.late_until <= now))
            .order_by(Ticket.priority.desc(), Ticket.arrived_at, Ticket.id).limit(1)).scalar_one()
        called = []
        steps.append(sqlite_steps(lambda: called.append(engine.call_next(counter.id).id)))
        assert called == [expected]
        engine.cancel(expected)
    assert steps[1] <= 2 * steps[0] + 2, steps  # (in hundreds of steps)


def test_a_place_is_counted_in_the_index_alone(app, clock):
    """A check-in's place (and position()) counts the waiting ahead through ranges of
    ix_ticket_service_queue_order, never reading their rows: SQLite's work a waiting ticket ahead is
    three steps of the index, where one condition with ORs over the branch's index read and tested
    every waiting ticket's row (9.5 steps; a check-in with 3,000 waiting 1.4 ms against 0.4)."""
    from datetime import timedelta

    from sqlalchemy import insert

    from core.models import TicketStatus

    from .test_request_cost import sqlite_steps

    branch = make_branch()
    a = make_service(branch, "A")
    db.session.commit()
    now = clock.now()
    steps, written = [], 0
    for waiting in (100, 3100):  # priorities 0 and 5, arrivals a minute ago and now
        db.session.execute(insert(Ticket), [
            {"branch_id": branch.id, "service_id": a.id, "service_day": now.date(), "number": n,
             "label": f"A{n:04d}", "status": str(TicketStatus.WAITING), "priority": 5 if n % 4 == 3 else 0,
             "language": "en", "source": "kiosk", "access_token": f"t{n}",
             "arrived_at": now if n % 7 == 0 else now - timedelta(minutes=1), "recall_count": 0}
            for n in range(written, waiting)])
        db.session.commit()
        written = waiting
        tickets = db.session.scalars(select(Ticket)).all()
        last = max((t for t in tickets if t.priority == 0 and t.arrived_at == now), key=lambda t: t.id)
        counted = {}
        steps.append(sqlite_steps(lambda: counted.update(
            quote=quote_on_arrival(branch.id, a, 0, now)[0], position=position(last))))
        assert counted == {  # (the rule written out; a ticket not yet written comes after its instant's)
            "quote": 1 + sum(t.priority > 0 or t.arrived_at <= now for t in tickets),
            "position": 1 + sum((-t.priority, t.arrived_at, t.id) < (0, now, last.id) for t in tickets)}
    per_ticket = (steps[1] - steps[0]) * 100 / 3000 / 2  # (two counts a round: the quote's and the position's)
    assert per_ticket < 5, (steps, per_ticket)  # (3 steps; the condition with ORs 9.5)
