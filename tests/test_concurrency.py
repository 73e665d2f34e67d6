"""Two staff pressing "call next" at the same moment never get the same ticket, and no ticket
is skipped: 12 threads against file SQLite and against PostgreSQL."""
import threading

from sqlalchemy import select

from core import engine
from core.extensions import db
from core.models import Ticket, TicketEvent

from .helpers import make_branch, make_counter, make_service

THREADS = 12
TICKETS = 120


def run_threads(app, work):
    barrier = threading.Barrier(THREADS)
    errors, results = [], [[] for _ in range(THREADS)]

    def runner(index):
        with app.app_context():
            try:
                barrier.wait()
                work(index, results[index])
            except BaseException as error:  # noqa: BLE001  (reported by the assertion below)
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads), "a caller hung"
    assert errors == []
    return results


def call_every_ticket(app, counter_ids, issued) -> list[int]:
    """Each counter in its own thread calls next and completes until nobody is waiting; checks
    that every ticket was called once and the callers overlapped, and returns the tickets in
    the order their calls were recorded."""
    def work(index, mine):
        while True:
            ticket = engine.call_next(counter_ids[index])
            if ticket is None:
                return
            mine.append(ticket.id)
            engine.complete(ticket.id)

    results = run_threads(app, work)
    called = [ticket_id for per_thread in results for ticket_id in per_thread]
    assert sorted(called) == issued  # every ticket called, none twice
    assert sum(1 for per_thread in results if per_thread) > 1  # the callers really overlapped
    db.session.rollback()  # end this thread's read snapshot, taken before the callers ran
    call_events = db.session.scalars(select(TicketEvent).where(TicketEvent.kind == "called").order_by(TicketEvent.id)).all()
    assert len(call_events) == len(issued)
    return [event.ticket_id for event in call_events]


def test_concurrent_call_next_never_gives_one_ticket_twice(any_db_app, clock):
    app = any_db_app
    branch = make_branch()
    service = make_service(branch, "A")
    counters = [make_counter(branch, str(i), [service]) for i in range(THREADS)]
    db.session.commit()
    counter_ids = [c.id for c in counters]
    issued = []
    for _ in range(TICKETS):
        issued.append(engine.issue_ticket(service.id).id)
        clock.advance(seconds=1)

    calls = call_every_ticket(app, counter_ids, issued)
    assert all(t.status == "completed" for t in db.session.scalars(select(Ticket)))
    if db.engine.dialect.name == "sqlite":
        # One writer at a time: calls happen strictly in queue order, none overtakes another.
        assert calls == issued


def test_concurrent_issue_numbers_without_gaps_or_repeats(any_db_app):
    app = any_db_app
    branch = make_branch()
    service = make_service(branch, "A")
    db.session.commit()
    service_id = service.id

    def work(_index, mine):
        for _ in range(10):
            mine.append(engine.issue_ticket(service_id).number)

    results = run_threads(app, work)
    numbers = sorted(n for per_thread in results for n in per_thread)
    assert numbers == list(range(1, THREADS * 10 + 1))


def test_concurrent_calls_at_counters_of_two_services_never_give_one_ticket_twice(any_db_app, clock):
    """The same with every counter serving two services, tickets of both arriving in turn and
    some with priority: a call reads the front of each service's queue (on PostgreSQL the first
    tickets not locked by the other counters' calls at that moment), and no ticket is called
    twice or left behind."""
    app = any_db_app
    branch = make_branch()
    services = [make_service(branch, "A"), make_service(branch, "B")]
    counters = [make_counter(branch, str(i), services) for i in range(THREADS)]
    db.session.commit()
    counter_ids = [c.id for c in counters]
    issued = []
    for n in range(TICKETS):
        issued.append(engine.issue_ticket(services[n % 2].id, priority=1 if n % 7 == 0 else 0).id)
        clock.advance(seconds=1)

    calls = call_every_ticket(app, counter_ids, issued)
    assert len(calls) == TICKETS
    if db.engine.dialect.name == "sqlite":
        # One writer at a time: priority first, then arrival, across both services.
        first = [t for n, t in enumerate(issued) if n % 7 == 0]
        assert calls == first + [t for t in issued if t not in first]
