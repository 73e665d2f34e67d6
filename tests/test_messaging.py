"""Texts customers get: the journey end to end over the virtual modem, and each policy rule."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from core import engine
from core.extensions import db
from core.models import Customer
from hardware.gateway import Gateway
from messaging import outbox, templates
from messaging import surveys
from messaging.models import InboxMessage, OutboxMessage, SurveyResponse

from .constants import START
from .modem_helpers import KA, wait_until


@pytest.fixture
def branch_setup(setup):
    branch = setup[0]
    branch.country, branch.timezone, branch.sender_name = "GE", "Asia/Tbilisi", "Tbilisi Clinic"
    branch.messaging = {"position_threshold": 2}
    db.session.commit()
    return setup


@pytest.fixture
def gateway(app, vm):
    app.config.update(MODEM_SWEEP_SECONDS=0.5, MODEM_HEALTH_SECONDS=0.5)
    gw = Gateway(app, port=vm.port).start()
    yield gw
    gw.stop()


def texts(vm, number=KA):
    return [m["body"] for m in vm.messages_for(number)]


def test_journey_welcome_position_next_counter_survey(client, branch_setup, gateway, vm, clock):
    _, (a, _b), (c1, c2), _ = branch_setup
    walk_ins = [client.post("/api/v1/checkins", json={"service": "A"}).json["ticket"]["id"] for _ in range(3)]
    nino = client.post("/api/v1/checkins", json={"service": "A", "phone": "555 12 34 56", "language": "ka",
                                                 "sms_consent": True}).json["ticket"]
    wait_until(lambda: len(texts(vm)) == 1, message="welcome")
    welcome = vm.messages_for(KA)[0]
    assert welcome["body"] == ("Tbilisi Clinic: ბილეთი A004 (Service A). თქვენამდე 3 ადამიანია, ~15 წთ. "
                               "ჯერის წინ მოგწერთ. შეწყვეტა: STOP.")
    assert welcome["encoding"] == "UCS-2"

    first = engine.call_next(c1.id)  # two ahead now: the one "nearly your turn" text
    wait_until(lambda: len(texts(vm)) == 2, message="position text")
    assert texts(vm)[1].startswith("Tbilisi Clinic: ბილეთი A004, თქვენამდე 2 ადამიანია")
    second = engine.call_next(c2.id)  # one ahead: nothing new, they were told already
    engine.complete(first.id)
    third = engine.call_next(c1.id)  # nobody ahead: "you are next"
    wait_until(lambda: len(texts(vm)) == 3, message="you're next")
    assert "თქვენ შემდეგი ხართ" in texts(vm)[2]
    engine.complete(second.id)
    called = engine.call_next(c2.id)
    assert called.id == nino["id"]
    wait_until(lambda: len(texts(vm)) == 4, message="go to counter")
    assert texts(vm)[3] == "Tbilisi Clinic: ბილეთი A004, გთხოვთ, მიბრძანდეთ №2 ფანჯარასთან."
    engine.complete(third.id)
    engine.complete(called.id)

    # The survey waits for the branch's delay (an hour), then goes.
    survey = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "survey"))
    assert survey.send_after == clock.now() + __import__("datetime").timedelta(minutes=60)
    clock.advance(minutes=61)
    wait_until(lambda: len(texts(vm)) == 5, message="survey")
    assert "1-დან" in texts(vm)[4]
    kinds = [m.kind for m in db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
    assert kinds == ["welcome", "position", "next", "called", "survey"]
    # The walk-ins without a number got nothing: nothing was even queued for them.
    assert not db.session.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id.in_(walk_ins))).all()

    vm.inject(KA, "4")  # the rating, from the handset, through the modem
    wait_until(lambda: len(texts(vm)) == 6, message="thank-you")
    assert texts(vm)[5].startswith("Tbilisi Clinic: გმადლობთ პასუხისთვის")
    db.session.rollback()
    response = db.session.scalar(select(SurveyResponse))
    assert (response.score, response.state, response.ticket_id) == (4, "done", nino["id"])
    assert db.session.scalar(select(InboxMessage)).outcome == "survey score 4"


def test_japanese_texts_arrive_intact_and_english_stays_gsm7(client, branch_setup, gateway, vm):
    client.post("/api/v1/checkins", json={"service": "A", "phone": "+819012345678", "language": "ja", "sms_consent": True})
    client.post("/api/v1/checkins", json={"service": "A", "phone": "555 99 88 77", "language": "en", "sms_consent": True})
    wait_until(lambda: vm.messages_for("+819012345678") and vm.messages_for("+995555998877"), message="welcomes")
    japanese = vm.messages_for("+819012345678")[0]
    # Nobody ahead: "you are next", not "0 ahead, about 0 min".
    assert japanese["body"].startswith("Tbilisi Clinic：受付番号はA001番です（Service A）。次にお呼びします")
    assert "前に" not in japanese["body"] and japanese["encoding"] == "UCS-2"
    english = vm.messages_for("+995555998877")[0]
    assert english["encoding"] == "GSM-7" and english["parts"] == 1


def make_row(to, kind, body="Tbilisi Clinic: hello", branch_id=None, when=None):
    message = OutboxMessage(to=to, kind=kind, body=body, branch_id=branch_id, status="queued",
                            send_after=when or START, created_at=START)
    db.session.add(message)
    db.session.commit()
    return message.id


def consenting(phone=KA, **fields):
    customer = Customer(phone=phone, sms_consent=True, consent_at=START, created_at=START, **fields)
    db.session.add(customer)
    db.session.commit()
    return customer


def outcome(ident):
    db.session.rollback()
    message = db.session.get(OutboxMessage, ident)
    return message.status, message.policy_note


def test_no_consent_and_opt_out_suppress_with_the_reason(app, branch_setup):
    stranger = make_row(KA, "welcome", branch_id=branch_setup[0].id)
    assert outbox.claim("g") is None
    assert outcome(stranger) == ("suppressed", "no consent to texts from this number")
    consenting("+995555000001", opted_out_at=START)
    stopped = make_row("+995555000001", "called", branch_id=branch_setup[0].id)
    test = make_row("+995555000001", "test", branch_id=branch_setup[0].id)
    assert outbox.claim("g") is None
    assert outcome(stopped)[0] == outcome(test)[0] == "suppressed"
    assert "STOP" in outcome(stopped)[1]


def test_quiet_hours_hold_surveys_but_not_queue_texts(app, branch_setup, clock):
    consenting()
    clock.set(datetime(2026, 3, 2, 17, 30, tzinfo=timezone.utc))  # 21:30 in Tbilisi
    survey = make_row(KA, "survey", body="Tbilisi Clinic: how was it?", branch_id=branch_setup[0].id, when=clock.now())
    called = make_row(KA, "called", body="Tbilisi Clinic: counter 2", branch_id=branch_setup[0].id, when=clock.now())
    claimed = outbox.claim("g")
    assert claimed["id"] == called  # the person in the building is told at once
    outbox.mark_sent(called, "g", [1])
    status, note = outcome(survey)
    assert status == "queued" and "quiet hours" in note and "09:00" in note
    assert db.session.get(OutboxMessage, survey).send_after == datetime(2026, 3, 3, 5, 0, tzinfo=timezone.utc)
    assert outbox.claim("g") is None
    clock.set(datetime(2026, 3, 3, 5, 0, tzinfo=timezone.utc))  # 09:00 Tbilisi
    assert outbox.claim("g")["id"] == survey


def test_daily_cap_and_duplicates(app, branch_setup, clock):
    branch = branch_setup[0]
    branch.messaging = {"daily_cap": 2}
    db.session.commit()
    consenting()
    for body in ("Tbilisi Clinic: one", "Tbilisi Clinic: two"):
        ident = make_row(KA, "position", body=body, branch_id=branch.id, when=clock.now())
        assert outbox.claim("g")["id"] == ident
        outbox.mark_sent(ident, "g", [1])
    third = make_row(KA, "position", body="Tbilisi Clinic: three", branch_id=branch.id, when=clock.now())
    assert outbox.claim("g") is None
    assert outcome(third) == ("suppressed", "daily cap of 2 texts to this number reached")

    branch.messaging = {"daily_cap": 10}
    db.session.commit()
    again = make_row(KA, "position", body="Tbilisi Clinic: two", branch_id=branch.id, when=clock.now())
    assert outbox.claim("g") is None
    assert outcome(again)[1] == "the same text went to this number less than a minute ago"
    clock.advance(seconds=61)
    later = make_row(KA, "position", body="Tbilisi Clinic: two", branch_id=branch.id, when=clock.now())
    assert outbox.claim("g")["id"] == later


def test_survey_is_sent_once_per_number_in_thirty_days(client, branch_setup, clock):
    _, (a, _b), (c1, _c2), _ = branch_setup
    for _ in range(2):
        client.post("/api/v1/checkins", json={"service": "A", "phone": "555123456", "sms_consent": True})
        ticket = engine.call_next(c1.id)
        engine.complete(ticket.id)
        clock.advance(days=3)
    surveys = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "survey")).all()
    assert len(surveys) == 1


def test_templates_mend_look_alikes_and_keep_unknown_placeholders(app, branch_setup):
    assert templates.mend_look_alikes("It’s “ready” – now…") == "It's \"ready\" - now..."
    assert templates.mend_look_alikes("受付「A001」…") == "受付「A001」…"  # Japanese keeps its punctuation
    assert templates.fill("{branch} {nonsense} {ticket}", {"branch": "B", "ticket": "A001"}) == "B {nonsense} A001"
    text = templates.render(branch_setup[0], "called", "en", ticket="A001", counter="3")
    assert text == "Tbilisi Clinic: ticket A001, please go to counter 3 now."


def survey_sent_to(phone, clock, branch, language="en"):
    """A survey that went out to `phone`, as the notifier and the gateway leave it."""
    consenting(phone)
    ident = make_row(phone, "survey", body="Tbilisi Clinic: how was it?", branch_id=branch.id, when=clock.now())
    assert outbox.claim("g")["id"] == ident
    outbox.mark_sent(ident, "g", [7])
    db.session.add(SurveyResponse(branch_id=branch.id, outbox_id=ident, phone=phone, language=language,
                                  created_at=clock.now()))
    db.session.commit()


def reply(phone, body, clock):
    from messaging import inbox

    ident = inbox.store_received(phone, body, clock.now(), gateway="g")
    db.session.rollback()
    return db.session.get(InboxMessage, ident)


def replies_queued():
    db.session.rollback()
    return [m.kind for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind.like("survey_%")))]


def test_low_score_gets_one_follow_up_and_the_comment_is_stored(app, branch_setup, clock):
    survey_sent_to(KA, clock, branch_setup[0])
    assert reply(KA, "２", clock).outcome == "survey score 2"  # full-width digits count
    assert replies_queued() == ["survey_followup"]
    assert reply(KA, "The wait was too long", clock).outcome == "survey comment"
    response = db.session.scalar(select(SurveyResponse))
    assert (response.score, response.comment, response.state) == (2, "The wait was too long", "done")
    assert replies_queued() == ["survey_followup", "survey_thanks"]
    assert reply(KA, "5", clock).outcome == "to staff"  # the survey is closed: a "5" now is for a person


def test_unreadable_answers_are_asked_once_then_left_to_staff(app, branch_setup, clock):
    survey_sent_to(KA, clock, branch_setup[0])
    first = reply(KA, "9", clock)
    assert (first.status, first.outcome) == ("handled", "survey: asked again for a score")
    assert replies_queued() == ["survey_retry"]
    second = reply(KA, "maybe later", clock)
    assert (second.status, second.outcome) == ("unhandled", "survey: reply not understood, left to staff")
    assert db.session.scalar(select(SurveyResponse)).state == "staff"
    assert replies_queued() == ["survey_retry"]


def test_a_number_without_an_open_survey_is_not_a_score(app, branch_setup, clock):
    consenting()
    message = reply(KA, "3", clock)
    assert (message.status, message.outcome) == ("unhandled", "to staff")
    assert surveys.handle(message.id) is None
    assert db.session.scalar(select(SurveyResponse)) is None


def test_no_show_note_and_per_branch_switches(client, branch_setup, runner):
    _, (a, _b), (c1, _c2), _ = branch_setup
    result = runner.invoke(args=["branch", "texts", "welcome=off", "survey_delay_minutes=1440"])
    assert result.exit_code == 0 and "welcome                False" in result.output
    assert runner.invoke(args=["branch", "texts", "welcome=maybe"]).exit_code != 0
    assert runner.invoke(args=["branch", "texts", "quiet_start=25:00"]).exit_code != 0
    client.post("/api/v1/checkins", json={"service": "A", "phone": "555123456", "sms_consent": True})
    ticket = engine.call_next(c1.id)
    engine.no_show(ticket.id)
    db.session.rollback()
    kinds = [m.kind for m in db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
    assert kinds == ["called", "no_show"]  # no welcome: switched off
    note = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "no_show"))
    assert note.body == "Tbilisi Clinic: we called ticket A001 but could not find you. Please see the desk if you still need help."


@pytest.mark.parametrize("raw, country", [({"phone": "+995555123456"}, None), (["+995555123456"], None), ("+99", None),
                                          ("555 12 34 56", ["GE"]), ("12", "GE"), ("", "GE")])
def test_a_number_refused_once_is_refused_every_time_with_a_clear_error(raw, country):
    """Numbers are parsed once and remembered (messaging.phones): a refusal is not remembered as an
    answer, and what cannot be remembered (a list, a JSON object) is refused, not a crash."""
    from core.errors import ValidationError
    from messaging.phones import e164

    for _ in range(2):
        with pytest.raises(ValidationError):
            e164(raw, country)
    assert e164("555 12 34 56", "GE") == e164("+995555123456") == "+995555123456"


def test_a_number_the_kiosk_just_checked_is_not_parsed_again_for_its_text(monkeypatch):
    """The kiosk parses a new customer's number (a mobile one, messaging's own rule is wider) and
    says so (messaging.phones.checked_elsewhere): the welcome text's check of it is a lookup. Any
    other number is still parsed, and the numbers kept are bounded, the oldest going first."""
    import phonenumbers

    from messaging import phones

    monkeypatch.setattr(phones, "_VALID", {})
    monkeypatch.setattr(phones, "_VALID_KEPT", 3)
    phones._parsed.cache_clear()  # (numbers parsed by earlier tests in this process)
    parsed = []
    real_parse = phonenumbers.parse
    monkeypatch.setattr(phonenumbers, "parse", lambda *a, **k: parsed.append(a[0]) or real_parse(*a, **k))
    for n in range(4):
        phones.checked_elsewhere(f"+99559912340{n}")
    assert phones.e164("+995599123403") == "+995599123403" and parsed == []
    assert phones.e164("+995599123401", "GE") == "+995599123401" and parsed == []
    assert list(phones._VALID) == ["+995599123401", "+995599123402", "+995599123403"]  # the oldest went
    assert phones.e164("+995599123400") == "+995599123400" and parsed == ["+995599123400"]
    assert phones.e164("599 12 34 09", "GE") == "+995599123409" and parsed[-1] == "599 12 34 09"
