"""A crash between a ticket change's commit and its texts delays them, never drops them: the
scheduler's lost-texts job writes them through the same code, each at most once."""

import pytest
from sqlalchemy import func, select

from core import cooperative, engine
from core.events import ticket_changed, ticket_changing
from core.extensions import db
from core.models import Customer
from messaging import notify, outbox
from messaging.models import OutboxMessage, SurveyResponse
from scheduler import jobs

from .helpers import make_branch_setup
from .test_query_plans import Capture, assert_no_walks, branch, migrated_app  # noqa: F401  (fixtures)

NINO, GIO = "+995555123456", "+995555123457"


@pytest.fixture
def setup(any_db_app, clock):
    branch, services, counters, staff = make_branch_setup()
    branch.country = "GE"
    db.session.commit()
    return branch, services, counters, staff


def customer(phone):
    person = Customer(phone=phone, sms_consent=True, language="en", created_at=engine.clock.now())
    db.session.add(person)
    db.session.commit()
    return person.id


def crashed(move, *args, **kwargs):
    """`move` as a process that dies right after its commit: no subscriber hears of the change."""
    with ticket_changed.muted():
        return move(*args, **kwargs)


def unwritten(move, *args, **kwargs):
    """`move` whose texts were not written with it, by a process that died right after its
    commit. A change's texts are written in its own transaction, so this is a change whose texts
    were not written there: a template that failed until staff mended it, a change by an older
    Seed just before the upgrade."""
    with ticket_changing.muted():
        return crashed(move, *args, **kwargs)


def unwelcomed(*args, **kwargs):
    return unwritten(engine.issue_ticket, *args, **kwargs)


def texts(kind=None):
    query = select(OutboxMessage.kind, OutboxMessage.to, OutboxMessage.status).order_by(OutboxMessage.id)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    return db.session.execute(query).all()


def test_a_crash_right_after_a_change_cannot_lose_its_own_text(setup, clock):
    """Each change's own text commits with it: a check-in its welcome, a call its "go to counter",
    a completion its survey. The "you're next" a call owes the one behind comes after the commit:
    lost with the process, the job writes it."""
    _, (a, _b), (c1, _c2), _ = setup
    ticket = crashed(engine.issue_ticket, a.id, customer_id=customer(NINO))
    assert texts() == [("welcome", NINO, "queued")]
    assert ticket.label in db.session.scalar(select(OutboxMessage.body))
    crashed(engine.issue_ticket, a.id, customer_id=customer(GIO))
    clock.advance(seconds=5)
    assert crashed(engine.call_next, c1.id).id == ticket.id
    crashed(engine.complete, ticket.id)
    assert [(kind, to) for kind, to, _status in texts()] == [
        ("welcome", NINO), ("welcome", GIO), ("called", NINO), ("survey", NINO)]
    assert db.session.scalar(select(func.count(SurveyResponse.id))) == 1
    clock.advance(seconds=30)
    assert jobs.lost_texts() == 0  # no change lacks its own text
    assert texts("next") == [("next", GIO, "queued")]  # the one behind heard, late but once
    assert jobs.lost_texts() == 0 and len(texts()) == 5


def test_a_welcome_not_written_with_its_ticket_is_written_once(setup, clock):
    _, (a, _b), _, _ = setup
    ticket = unwelcomed(a.id, customer_id=customer(NINO))
    assert texts() == []
    assert jobs.lost_texts() == 0  # too fresh: its own process may still be writing it
    clock.advance(seconds=30)
    assert jobs.lost_texts() == 1
    assert texts() == [("welcome", NINO, "queued")]
    body = db.session.scalar(select(OutboxMessage.body))
    assert ticket.label in body
    assert jobs.lost_texts() == 0  # safe to run again
    clock.advance(minutes=2)
    assert jobs.lost_texts() == 0
    assert len(texts()) == 1


def test_a_lost_call_is_written_once_and_the_written_welcome_is_not_repeated(setup, clock):
    _, (a, _b), (c1, _c2), _ = setup
    first = engine.issue_ticket(a.id, customer_id=customer(NINO))
    engine.issue_ticket(a.id, customer_id=customer(GIO))
    assert texts("welcome") == [("welcome", NINO, "queued"), ("welcome", GIO, "queued")]
    clock.advance(seconds=5)
    assert unwritten(engine.call_next, c1.id).id == first.id
    assert texts("called") == [] and texts("next") == []
    clock.advance(seconds=30)
    assert jobs.lost_texts() == 1
    # The call's own text, and the "you're next" the queue's move owed the one behind.
    assert texts("called") == [("called", NINO, "queued")]
    assert texts("next") == [("next", GIO, "queued")]
    assert len(texts("welcome")) == 2  # written at check-in, not again
    assert jobs.lost_texts() == 0
    assert len(texts()) == 4


def test_texts_written_as_usual_are_not_written_again(setup, clock):
    _, (a, _b), (c1, _c2), _ = setup
    ticket = engine.issue_ticket(a.id, customer_id=customer(NINO))
    engine.call_next(c1.id)
    engine.complete(ticket.id)
    before = texts()
    assert [kind for kind, _to, _status in before] == ["welcome", "called", "survey"]
    clock.advance(seconds=30)
    assert jobs.lost_texts() == 0
    assert texts() == before


def test_a_lost_survey_is_written_once_with_its_survey_row(setup, clock):
    _, (a, _b), (c1, _c2), _ = setup
    ticket = engine.issue_ticket(a.id, customer_id=customer(NINO))
    engine.call_next(c1.id)
    unwritten(engine.complete, ticket.id)
    clock.advance(seconds=30)
    assert jobs.lost_texts() == 1
    assert texts("survey") == [("survey", NINO, "queued")]
    assert db.session.scalar(select(func.count(SurveyResponse.id))) == 1
    assert jobs.lost_texts() == 0
    assert len(texts("survey")) == 1


def test_a_change_older_than_the_window_is_left_alone(setup, clock):
    _, (a, _b), _, _ = setup
    unwelcomed(a.id, customer_id=customer(NINO))
    clock.advance(minutes=11)
    assert jobs.lost_texts() == 0
    assert texts() == []


def test_nobody_who_may_not_be_texted_is_found(setup, clock):
    _, (a, _b), _, _ = setup
    unwelcomed(a.id)  # a walk-in without a phone
    quiet = Customer(phone=GIO, sms_consent=False, language="en", created_at=clock.now())
    db.session.add(quiet)
    db.session.commit()
    unwelcomed(a.id, customer_id=quiet.id)
    clock.advance(seconds=30)
    assert jobs.lost_texts() == 0
    assert texts() == []


def test_a_text_no_longer_true_is_cancelled_by_the_gateway(setup, clock):
    _, (a, _b), (c1, _c2), _ = setup
    unwelcomed(a.id, customer_id=customer(NINO))
    engine.call_next(c1.id)  # called before anyone noticed the lost welcome
    clock.advance(seconds=30)
    assert jobs.lost_texts() == 1
    assert [kind for kind, _to, _status in texts()] == ["called", "welcome"]
    claimed = [outbox.claim("test-gateway") for _ in range(2)]
    assert [c and c["kind"] for c in claimed] == ["called", None]
    welcome = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "welcome"))
    db.session.refresh(welcome)
    assert welcome.status == "cancelled"
    assert jobs.lost_texts() == 0


def test_the_job_never_walks_the_history(migrated_app, branch, clock):  # noqa: F811
    _branch, services, counters = branch
    unwelcomed(services[0].id, customer_id=customer(NINO))
    engine.issue_ticket(services[0].id, customer_id=customer(GIO))
    unwritten(engine.call_next, counters[0].id)
    clock.advance(seconds=30)
    with Capture(db.engine) as captured:
        assert jobs.lost_texts() == 2  # the first one's welcome and call
        assert jobs.lost_texts() == 0
    assert_no_walks(captured.statements)


def test_a_long_window_is_read_page_by_page_and_every_lost_text_written_once(setup, clock, monkeypatch):
    """A busy branch's ten minutes hold thousands of changes: the job reads them a page at a
    time (here 3), in (at, id) order across changes of the same instant, and finds each lost
    text once wherever the pages break. The lost welcomes come after later moves texted some of
    them "next" or "nearly your turn": written late, a welcome still takes its notice."""
    monkeypatch.setattr(notify, "UNWRITTEN_PAGE", 3)
    pauses = []
    monkeypatch.setattr(cooperative, "let_others_run", lambda: pauses.append(True))
    _, (a, b), (c1, _c2), _ = setup
    phones = [f"+99555512{n:04d}" for n in range(8)]
    lost = [unwelcomed(a.id, customer_id=customer(phones[0]))]
    for phone in phones[1:4]:  # three changes of one instant, across the first page's end
        lost.append(unwelcomed(b.id, customer_id=customer(phone)))
    clock.advance(seconds=1)
    engine.issue_ticket(a.id, customer_id=customer(phones[4]))  # its welcome was written
    engine.issue_ticket(a.id)  # nobody to text
    lost.append(unwelcomed(a.id, customer_id=customer(phones[5])))
    clock.advance(seconds=1)
    first = unwritten(engine.call_next, c1.id)  # called twice, its call text lost both times
    engine.hold(first.id)
    engine.unhold(first.id)
    assert unwritten(engine.call_next, c1.id).id == first.id
    clock.advance(seconds=30)
    with Capture(db.engine) as captured:
        assert jobs.lost_texts() == len(lost) + 1  # the five welcomes and one call
    pages = [s for s, _ in captured.statements if "FROM ticket_event" in s and "LIMIT" in s.upper()]
    assert len(pages) == 3  # 8 changes with a customer to text, 3 a page
    assert len(pauses) == 2  # requests and screens go first between two pages
    welcomes = sorted(to for _kind, to, _status in texts("welcome"))
    assert welcomes == sorted(phones[:6])  # the five lost ones and the one written at check-in
    assert [to for _kind, to, _status in texts("called")] == [phones[0]]
    assert jobs.lost_texts() == 0
    assert len(texts("welcome")) == 6 and len(texts("called")) == 1
