"""The reply router: keywords in every language and width, STOP then START, running late,
unknown texts to staff with one acknowledgement, and thousands of random replies."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core import engine
from core.extensions import db
from core.models import Customer, Ticket
from messaging import inbox, outbox, router
from messaging.models import InboxMessage, OutboxMessage

from .modem_helpers import KA


@pytest.fixture
def georgia(setup, clock):
    branch = setup[0]
    branch.country, branch.timezone, branch.sender_name = "GE", "Asia/Tbilisi", "Tbilisi Clinic"
    db.session.add(Customer(phone=KA, sms_consent=True, consent_at=clock.now(), language="ka", created_at=clock.now()))
    db.session.commit()
    return setup


def text_in(body, clock, sender=KA):
    ident = inbox.store_received(sender, body, clock.now(), gateway="g")
    db.session.rollback()
    return db.session.get(InboxMessage, ident)


def queued_kinds(number=KA):
    db.session.rollback()
    return [m.kind for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.to == number)
                                                .order_by(OutboxMessage.id))]


@pytest.mark.parametrize("word", ["STOP", "stop", "Stop.", "ＳＴＯＰ", "stopall", "UNSUBSCRIBE", "end", "Quit",
                                  "停止", "配信停止", "გაჩერება"])
def test_every_stop_word_opts_out(georgia, clock, word):
    assert router.classify(word) == ("stop", None)
    assert text_in(word, clock).outcome == "opted out"
    customer = db.session.scalar(select(Customer))
    assert customer.opted_out_at is not None and not customer.sms_consent


@pytest.mark.parametrize(("text", "expected"), [
    ("L", ("late", None)), ("late 20", ("late", 20)), ("ＬＡＴＥ　２０", ("late", 20)), ("遅れ 15分", ("late", 15)),
    ("START", ("start", None)), ("再開", ("start", None)), ("help", ("help", None)), ("დახმარება", ("help", None)),
    ("hello", (None, None)), ("stop it please", (None, None)), ("", (None, None)), ("L 9999", (None, None)),
])
def test_classify(text, expected):
    assert router.classify(text) == expected


def test_stop_then_start(georgia, clock):
    outbox.enqueue(KA, "Tbilisi Clinic: a survey", "survey", branch_id=georgia[0].id,
                   send_after=clock.now().replace(year=2027))
    text_in("STOP", clock)
    db.session.rollback()
    assert db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "survey")).status == "cancelled"
    confirmation = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "stop_confirm"))
    assert confirmation.body.startswith("Tbilisi Clinic: აღარ მიიღებთ")
    assert outbox.claim("g")["id"] == confirmation.id  # the confirmation reaches an opted-out number

    later = outbox.enqueue(KA, "Tbilisi Clinic: counter 2", "called", branch_id=georgia[0].id)
    assert outbox.claim("g") is None
    db.session.rollback()
    assert db.session.get(OutboxMessage, later.id).status == "suppressed"

    assert text_in("START", clock).outcome == "opted in"
    customer = db.session.scalar(select(Customer))
    assert customer.sms_consent and customer.opted_out_at is None and customer.consent_source == "sms"
    after = outbox.enqueue(KA, "Tbilisi Clinic: counter 3", "called", branch_id=georgia[0].id)
    claimed = []
    while (row := outbox.claim("g")) is not None:
        claimed.append(row["id"])
    assert after.id in claimed


def test_help_answers_with_the_business_and_commands(georgia, clock):
    assert text_in("ＨＥＬＰ", clock).outcome == "help sent"
    help_text = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "help")).body
    # A Georgian customer gets the Georgian reply words (tests/test_text_wording.py checks each is understood).
    assert help_text.startswith("Tbilisi Clinic:") and "შეწყვეტა" in help_text and "დაგვიანება 20" in help_text


def test_running_late_keeps_the_place(georgia, clock, client):
    _, (a, _b), (c1, _c2), _ = georgia
    mine = client.post("/api/v1/checkins", json={"service": "A", "phone": "555123456", "sms_consent": True}).json["ticket"]
    other = engine.issue_ticket(a.id)
    message = text_in("LATE 20", clock)
    assert message.outcome == "late until 13:20"  # 09:00 UTC is 13:00 in Tbilisi
    assert engine.call_next(c1.id).id == other.id  # skipped while late
    ack = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "late_ack")).body
    assert "A001" in ack and "13:20" in ack
    assert db.session.get(Ticket, mine["id"]).status == "waiting"


def test_late_without_a_ticket_and_unknown_texts_go_to_staff_with_one_ack(georgia, clock):
    assert text_in("L", clock).status == "unhandled"
    assert text_in("Can I bring my dog?", clock).outcome == "to staff"
    assert text_in("Hello?", clock).status == "unhandled"
    assert queued_kinds().count("unknown_ack") == 1  # one polite acknowledgement, not one per text


def test_a_handler_failure_leaves_the_text_visible(georgia, clock, monkeypatch):
    def broken(_inbox_id):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(router, "_unknown", lambda message, **_: broken(message))
    message = text_in("something", clock)
    assert (message.status, message.outcome) == ("failed", "handler failed") and "hiccup" in message.error
    assert db.session.scalar(select(InboxMessage.body)) == "something"


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(
    st.text(max_size=200),
    st.sampled_from(["STOP", "START", "HELP", "L", "LATE 5", "1", "5", "６", "x", "停止", "ＳＴＡＲＴ"]),
    st.builds(lambda w, n: f"{w} {n}", st.sampled_from(["L", "LATE", "遅れ"]), st.integers(-5, 5000)),
))
def test_random_replies_never_crash_and_always_get_an_outcome(app, clock, body):
    from .helpers import make_branch

    if not db.session.scalar(select(Customer)):
        make_branch("Fuzz")
        db.session.add(Customer(phone=KA, sms_consent=True, created_at=clock.now()))
        db.session.commit()
    clock.advance(seconds=1)  # every text a new one
    ident = inbox.store_received(KA, body, clock.now(), gateway="fuzz")
    if ident is None:
        return
    db.session.rollback()
    message = db.session.get(InboxMessage, ident)
    assert message.status in ("handled", "unhandled") and message.outcome
