"""The wording rules of issue 16, through the code that queues the texts (notify on check-in, the
reply router), on SQLite and PostgreSQL: nobody ahead reads "you are next"; HELP lists the replies
that work, the survey digits only while a survey waits for a score; running late says until when
the place is kept, on the ticket's own branch clock."""
import re
import pytest
from sqlalchemy import select

from core import engine
from core.extensions import db
from core.models import Ticket
from messaging import inbox, outbox, router
from messaging.models import InboxMessage, OutboxMessage

from .conftest import RequestIsolatedClient
from .helpers import make_branch, make_counter, make_service
from .modem_helpers import KA

NUMBERS = {"en": "+995555000101", "ja": "+995555000102", "ka": "+995555000103"}
# How each language says "you are next" and "N ahead".
NEXT = {"en": "You are next", "ja": "次にお呼びします", "ka": "შემდეგი თქვენ ხართ"}
AHEAD = {"en": "{n} ahead of you", "ja": "前に{n}人", "ka": "თქვენამდე {n} ადამიანია"}
ZERO_WAIT = {"en": "about 0 min", "ja": "約0分", "ka": "~0 წთ"}
# The reply words HELP names in each language, and what the router makes of each.
REPLY_WORDS = {
    "en": {"C": "confirm", "X": "cancel", "R": "reschedule", "L": "late", "LATE 20": "late", "STOP": "stop",
           "START": "start"},
    "ja": {"確認": "confirm", "C": "confirm", "キャンセル": "cancel", "X": "cancel", "変更": "reschedule", "R": "reschedule",
           "遅れ 20": "late", "停止": "stop", "再開": "start"},
    "ka": {"დიახ": "confirm", "გაუქმება": "cancel", "გადატანა": "reschedule", "დაგვიანება 20": "late",
           "შეწყვეტა": "stop", "განახლება": "start"},
}
SCORES = {"en": "1-5", "ja": "1〜5", "ka": "1-5"}


@pytest.fixture
def clinic(any_db_app):
    branch = make_branch("Clinic", timezone="Asia/Tbilisi", country="GE")
    branch.sender_name = "Tbilisi Clinic"
    services = [make_service(branch, "A")]
    counters = [make_counter(branch, "1", services)]
    db.session.commit()
    any_db_app.test_client_class = RequestIsolatedClient
    return branch, services[0], counters[0], any_db_app.test_client()


def check_in(client, language, phone, **extra):
    response = client.post("/api/v1/checkins", json={"service": "A", "phone": phone, "language": language,
                                                     "sms_consent": True, **extra})
    assert response.status_code == 201, response.json
    return response.json["ticket"]


def sent(kind, to):
    db.session.rollback()
    return db.session.scalars(select(OutboxMessage.body).where(OutboxMessage.kind == kind, OutboxMessage.to == to)
                              .order_by(OutboxMessage.id)).all()


def text_in(body, sender, clock, branch_id=None):
    clock.advance(seconds=5)
    ident = inbox.store_received(sender, body, clock.now(), gateway="g", branch_id=branch_id)
    db.session.rollback()
    return db.session.get(InboxMessage, ident)


def words(word, text):
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


@pytest.mark.parametrize("language", ["en", "ja", "ka"])
def test_a_welcome_with_nobody_ahead_says_you_are_next(clinic, language):
    _, _, _, client = clinic
    first, second = NUMBERS[language], KA
    check_in(client, language, first)
    check_in(client, language, second)
    [welcome] = sent("welcome", first)
    assert welcome.startswith("Tbilisi Clinic") and NEXT[language] in welcome, welcome
    assert AHEAD[language].format(n=0) not in welcome and ZERO_WAIT[language] not in welcome
    [behind] = sent("welcome", second)
    assert AHEAD[language].format(n=1) in behind and NEXT[language] not in behind, behind
    # "You are next" was the welcome: no second text says it again.
    assert sent("next", first) == [] and sent("position", first) == []


@pytest.mark.parametrize("language", ["en", "ja", "ka"])
def test_help_lists_the_replies_that_work_and_the_scores_only_while_a_survey_waits(clinic, clock, language):
    branch, _, counter, client = clinic
    number = NUMBERS[language]
    mine = check_in(client, language, number)
    assert text_in("HELP", number, clock).outcome == "help sent"
    [answer] = sent("help", number)
    assert answer.startswith("Tbilisi Clinic")
    for word, action in REPLY_WORDS[language].items():
        assert words(word, answer), (word, answer)
        assert router.classify(word)[0] == action, word
    assert SCORES[language] not in answer  # no survey open: a digit would not be a score

    engine.call_next(counter.id)
    engine.complete(mine["id"])
    clock.advance(minutes=61)  # the survey's delay
    while (row := outbox.claim("g")) is not None:  # the gateway sends what is due, the survey among it
        outbox.mark_sent(row["id"], "g", [1])
    assert sent("survey", number)
    assert text_in("ヘルプ" if language == "ja" else "HELP", number, clock).outcome == "help sent"
    while_open = sent("help", number)[-1]
    assert SCORES[language] in while_open and all(words(word, while_open) for word in REPLY_WORDS[language])
    assert text_in("5", number, clock).outcome == "survey score 5"  # and a digit is read as the score
    assert text_in("HELP", number, clock).outcome == "help sent"
    assert SCORES[language] not in sent("help", number)[-1]  # answered: the digits are not offered again


@pytest.mark.parametrize("language, until", [("en", "until 13:20"), ("ja", "13:20まで"), ("ka", "13:20-მდე")])
def test_running_late_says_until_when_the_place_is_kept(clinic, clock, language, until):
    _, _, counter, client = clinic
    number = NUMBERS[language]
    mine = check_in(client, language, number)  # first in the queue: its wait would be "0 min"
    assert text_in("LATE 20", number, clock).outcome == "late until 13:20"  # 09:00:05 UTC is 13:00 in Tbilisi
    [ack] = sent("late_ack", number)
    assert ack.startswith("Tbilisi Clinic") and until in ack and mine["number"] in ack, ack
    assert ZERO_WAIT[language] not in ack and "13:00" not in ack
    db.session.rollback()
    held = db.session.get(Ticket, mine["id"])
    assert held.branch.local(held.late_until).strftime("%H:%M") == "13:20"
    assert engine.call_next(counter.id) is None  # the place is kept, not called before then


def test_running_late_at_another_branchs_number_is_told_on_the_tickets_clock(clinic, clock):
    tbilisi, _, _, client = clinic
    tokyo = make_branch("Tokyo office", timezone="Asia/Tokyo", country="GE")
    tokyo.sender_name = "Minato Office"
    make_counter(tokyo, "1", [make_service(tokyo, "A")])
    db.session.commit()
    clock.advance(hours=7)  # 16:00 UTC: 20:00 on Monday in Tbilisi, already 01:00 on Tuesday in Tokyo
    ticket = check_in(client, "en", NUMBERS["en"], branch=tokyo.id)
    # The text reaches the Tbilisi modem: the ticket is found on its own day, the answer comes from
    # its own branch, and the time is Tokyo's (16:20 UTC is 01:20 there), never Tbilisi's 20:20.
    message = text_in("L 20", NUMBERS["en"], clock, branch_id=tbilisi.id)
    assert message.outcome == "late until 01:20"
    [ack] = sent("late_ack", NUMBERS["en"])
    assert ack.startswith("Minato Office:") and "until 01:20" in ack and ticket["number"] in ack, ack
