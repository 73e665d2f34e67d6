"""Replies as Japanese and Georgian customers write them (issue 16), through the real inbound path
(a received text, the router, the engine and the outbox): 少し遅れます, 20分遅れます, 遅れ20, L20,
取り消し, ５。 and 5点; კი, "20 წუთით" and Georgian typed in Latin letters, which counts only from a
number whose texts go out in Georgian. Junk still gets the one polite "passed to staff" answer."""
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core import appointments, engine
from core.extensions import db
from core.models import Appointment, Customer, Ticket
from messaging import inbox, outbox, router
from messaging.models import InboxMessage, OutboxMessage, SurveyResponse

from .helpers import make_branch, make_counter, make_service
from .modem_helpers import KA

TBILISI = timezone(timedelta(hours=4))
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
GEORGIAN = re.compile(r"[\u10d0-\u10ff]")


@pytest.fixture
def clinic(app, clock):
    branch = make_branch("Clinic", timezone="Asia/Tbilisi", country="GE",
                         opening_hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")})
    branch.sender_name = "Tbilisi Clinic"
    service = make_service(branch, "B", "Appointments", slot_minutes=30, slot_capacity=1)
    counter = make_counter(branch, "1", [service])
    customer = Customer(phone=KA, sms_consent=True, consent_at=clock.now(), language="ja", created_at=clock.now())
    db.session.add(customer)
    db.session.commit()
    return branch, service, counter, customer


def text_in(body, clock, sender=KA):
    clock.advance(seconds=5)
    ident = inbox.store_received(sender, body, clock.now(), gateway="g")
    db.session.rollback()
    return db.session.get(InboxMessage, ident)


def sent(kind, to=KA):
    db.session.rollback()
    return db.session.scalars(select(OutboxMessage.body).where(OutboxMessage.kind == kind, OutboxMessage.to == to)
                              .order_by(OutboxMessage.id)).all()


def waiting_ticket(clinic, language):
    _branch, service, _counter, customer = clinic
    return engine.issue_ticket(service.id, customer_id=customer.id, language=language)


def booked(clinic, language, day=4, hour=10):
    _branch, service, _counter, customer = clinic
    return appointments.book(service.id, datetime(2026, 3, day, hour, tzinfo=TBILISI), customer_id=customer.id,
                             language=language)


@pytest.mark.parametrize(("words", "minutes"), [
    ("少し遅れます", None), ("20分遅れます", 20), ("遅れ20", 20), ("遅れます20分", 20), ("１０分ほど遅れます", 10),
    ("L20", 20), ("Ｌ２０", 20), ("l 20", 20),
    ("20 წუთით", 20), ("20 წუთით დავაგვიანებ", 20), ("ვაგვიანებ 20 წუთით", 20),
])
def test_running_late_in_the_customers_words(app, clinic, clock, words, minutes):
    ticket = waiting_ticket(clinic, "ja")
    message = text_in(words, clock)
    expected = minutes or app.config["LATE_DEFAULT_MINUTES"]
    held = db.session.get(Ticket, ticket.id)
    assert message.status == "handled" and message.outcome.startswith("late until"), message.outcome
    assert held.late_until == clock.now() + timedelta(minutes=expected)
    [ack] = sent("late_ack")
    assert JAPANESE.search(ack) and ticket.label in ack  # answered in the ticket's language


@pytest.mark.parametrize("words", ["取り消し", "取消", "キャンセル", "ｷｬﾝｾﾙ", "キャンセルします"])
def test_cancelling_in_japanese_cancels_the_appointment(clinic, clock, words):
    appointment = booked(clinic, "ja")
    assert text_in(words, clock).outcome == "appointment cancelled"
    assert db.session.get(Appointment, appointment.id).status == "cancelled"
    [answer] = sent("appointment_cancelled")
    assert JAPANESE.search(answer)  # in the language it was booked in


@pytest.mark.parametrize("language", ["ka", "en", "ja"])
def test_georgian_yes_confirms_whoever_writes_it(clinic, clock, language):
    appointment = booked(clinic, language)
    assert text_in("კი", clock).outcome == "appointment confirmed"
    assert db.session.get(Appointment, appointment.id).status == "confirmed"


@pytest.mark.parametrize(("words", "outcome", "status"), [
    ("ki", "appointment confirmed", "confirmed"), ("Ki.", "appointment confirmed", "confirmed"),
    ("diax", "appointment confirmed", "confirmed"), ("gauqmeba", "appointment cancelled", "cancelled"),
])
def test_georgian_in_latin_letters_counts_from_a_georgian_customer(clinic, clock, words, outcome, status):
    appointment = booked(clinic, "ka")  # the customer's own language is ja: the latest booking's wins
    assert text_in(words, clock).outcome == outcome
    assert db.session.get(Appointment, appointment.id).status == status
    assert GEORGIAN.search(sent(f"appointment_{status}")[0])


@pytest.mark.parametrize("words", ["ki", "gauqmeba", "20 wutit"])
def test_georgian_in_latin_letters_is_not_a_yes_from_an_english_customer(clinic, clock, words):
    appointment = booked(clinic, "ka")
    clock.advance(minutes=1)
    waiting_ticket(clinic, "en")  # their latest: an English ticket
    message = text_in(words, clock)
    assert (message.status, message.outcome) == ("unhandled", "to staff")
    assert db.session.get(Appointment, appointment.id).status == "booked"
    [ack] = sent("unknown_ack")
    assert ack.isascii()  # in English, the language of their latest ticket


def test_georgian_in_latin_letters_running_late(clinic, clock):
    ticket = waiting_ticket(clinic, "ka")
    assert text_in("20 wutit", clock).outcome.startswith("late until")
    assert db.session.get(Ticket, ticket.id).late_until == clock.now() + timedelta(minutes=20)


def test_classify_reads_latin_georgian_only_in_georgian():
    assert router.classify("ki", "ka") == ("confirm", None) and router.classify("ki", "en") == (None, None)
    assert router.classify("ki") == (None, None) and router.classify("GAUQMEBA", "ka") == ("cancel", None)
    assert router.classify("daxmareba", "ka") == ("help", None) and router.classify("daxmareba", "ja") == (None, None)
    assert router.classify("20 wutit", "ka") == ("late", 20) and router.classify("20 wutit", "en") == (None, None)


def open_survey(clinic, clock):
    branch, _service, _counter, _customer = clinic
    survey = outbox.enqueue(KA, "Tbilisi Clinic: how was it?", "survey", branch_id=branch.id)
    row = db.session.get(OutboxMessage, survey.id)
    row.status, row.sent_at = "sent", clock.now()
    db.session.add(SurveyResponse(branch_id=branch.id, outbox_id=survey.id, phone=KA, language="ja",
                                  created_at=clock.now()))
    db.session.commit()


@pytest.mark.parametrize(("words", "score"), [("５。", 5), ("５", 5), ("5点", 5), ("４点。", 4), ("5 ქულა", 5),
                                             ("3！", 3)])
def test_survey_scores_in_full_width_and_with_points(clinic, clock, words, score):
    open_survey(clinic, clock)
    assert text_in(words, clock).outcome == f"survey score {score}"
    assert db.session.scalar(select(SurveyResponse.score)) == score


@pytest.mark.parametrize("words", ["hello", "L 9999", "20", "少し", "遅れ20000", "kii", "5点 ありがとう", "ok 20 min"])
def test_junk_still_goes_to_staff_with_the_usual_answer(clinic, clock, words):
    ticket = waiting_ticket(clinic, "ja")
    message = text_in(words, clock)
    assert (message.status, message.outcome) == ("unhandled", "to staff")
    assert db.session.get(Ticket, ticket.id).late_until is None
    [ack] = sent("unknown_ack")
    assert JAPANESE.search(ack)


def test_a_number_we_do_not_know_is_answered_in_the_branchs_language(clinic, clock):
    branch = clinic[0]
    branch.default_language = "ka"
    db.session.commit()
    stranger = "+995555987654"
    assert text_in("hello", clock, sender=stranger).outcome == "to staff"
    [ack] = sent("unknown_ack", stranger)
    assert GEORGIAN.search(ack)
    # A branch whose language is ka reads the stranger's Latin Georgian too: "ki" with nothing to confirm.
    assert text_in("ki", clock, sender=stranger).outcome == "confirm: no appointment"
    # STOP remembers the stranger in that language: the confirmation and later answers are Georgian.
    assert text_in("STOP", clock, sender=stranger).outcome == "opted out"
    assert GEORGIAN.search(sent("stop_confirm", stranger)[0])
    assert db.session.scalar(select(Customer.language).where(Customer.phone == stranger)) == "ka"
