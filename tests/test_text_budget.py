"""Every text a branch sends fits its parts budget at its longest (issue 16): each wording in en,
ja and ka, filled with the longest values its placeholders really take, through the real render
path, in at most two parts, and the English welcome and "go to counter" in one."""
import re
from datetime import datetime

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import Branch, new_access_token, new_booking_code
from core.seed import seed_demo
from hardware.pdu import segment_info
from messaging import appointment_texts, budget, templates

LANGUAGES = ("en", "ja", "ka")
# Business names of 30 characters, in the script a branch of that language would use.
SENDER = {"en": "Harbor Medical Group Northside", "ja": "医療法人社団さくら会みなと中央クリニック附属健康診断センター",
          "ka": "ვაკე-საბურთალოს ოჯახის კლინიკა"}
ONE_PART = {("welcome", "en"), ("welcome_next", "en"), ("called", "en")}


@pytest.fixture
def demo(app):
    """The first-run branch with its default services (their en/ja/ka names) and counters."""
    seed_demo()
    return db.session.scalar(select(Branch))


def test_the_part_counter_counts_as_the_modem_sends():
    assert segment_info("ა" * 140)["segments"] == 3  # 140 Georgian characters: 67 + 67 + 6
    assert segment_info("ა" * 70)["segments"] == 1 and segment_info("ა" * 134)["segments"] == 2
    assert segment_info("ა" * 135)["segments"] == 3
    assert segment_info("a" * 306)["segments"] == 2 and segment_info("a" * 307)["segments"] == 3
    assert segment_info("€" * 80)["segments"] == 1 and segment_info("€" * 81)["segments"] == 2  # two units each


def test_the_longest_values_are_as_long_as_the_issue_plans(demo):
    assert all(len(name) == 30 for name in SENDER.values())
    year = [datetime(2026, month, day, hour, minute, tzinfo=demo.zone)
            for month in range(1, 13) for day in range(1, 29) for hour in (9, 23) for minute in (5, 45)]
    for language in LANGUAGES:
        longest_when = max(len(appointment_texts.when_text(demo, moment, language)) for moment in year)
        values = budget.longest_values(demo, language)
        assert len(values["name"]) == 12 and values["ticket"] == "A123" and len(values["counter"]) >= 2
        assert values["ahead"] >= 99 and values["wait"] >= 100 and values["position"] == values["ahead"] + 1
        assert values["service"] == max((service.name_in(language) for service in demo.services), key=len)
        assert len(values["time"]) == max(len(templates.clock_text(demo, moment)) for moment in year)
        assert len(values["appointment_time"]) == longest_when
        assert len(values["code"]) == len(new_booking_code())
        assert values["choices"].startswith("1) ") and len(values["choices"]) >= 3 * (3 + longest_when) + 2


def test_every_default_text_fits_its_parts_at_its_longest(demo):
    over, seen = [], 0
    for language in LANGUAGES:
        demo.sender_name = SENDER[language]
        longest = budget.longest_values(demo, language)
        for wording in templates.KINDS:
            values = budget.values_for(wording, longest)
            text = templates.render(demo, templates.kind_of(wording), language, wording=wording, **values)
            allowed = 1 if (wording, language) in ONE_PART else 2
            info = segment_info(text)
            assert text.startswith(SENDER[language]), text  # every text names the business
            assert "{" not in text, text  # every placeholder filled
            if info["segments"] > allowed:
                over.append(f"{wording}/{language}: {info['characters']} characters, {info['segments']} parts: {text}")
            assert budget.measure(demo, wording, language, longest=longest)["segments"] == info["segments"]
            seen += 1
    assert seen == len(templates.KINDS) * 3 and not over, "\n".join(over)


def test_the_budget_test_would_catch_a_long_text(demo):
    demo.sender_name = SENDER["ka"]
    longest = budget.longest_values(demo, "ka")
    long_text = "{branch}: " + "ბილეთი {ticket}, " * 8
    assert budget.measure(demo, "welcome", "ka", long_text, longest)["segments"] == 3
    demo.sender_name = SENDER["en"]
    english = budget.measure(demo, "welcome_next", "en", "{branch}: " + "x" * 140)
    assert (english["segments"], english["allowed"]) == (2, 1)  # a 30-character name and 140 more


def test_wordings_are_sent_as_their_kind():
    assert templates.kind_of("welcome_next") == "welcome" and templates.kind_of("help_survey") == "help"
    assert templates.wording_for("welcome", {"ahead": 0}) == "welcome_next"
    assert templates.wording_for("position", {"ahead": 0}) == "next"
    assert templates.wording_for("welcome", {"ahead": 1}) == "welcome"


def catalogue(language):
    from flask_babel import force_locale

    with force_locale(language):
        return {kind: templates.defaults(kind) for kind in templates.KINDS}


def test_japanese_texts_use_one_term_for_each_thing_in_an_office_register(app):
    texts = catalogue("ja")
    for kind, text in texts.items():
        assert not re.search("予約番号|お客様|来店|本日|と返信。", text), (kind, text)  # booking code, register, curt
        if "{ticket}" in text:
            assert re.search("受付番号は?{ticket}番", text), (kind, text)  # one term for the ticket number
        if "{code}" in text:
            assert "予約コード{code}" in text, (kind, text)
        if "{counter}" in text:
            assert "{counter}番窓口" in text, (kind, text)


def test_georgian_texts_use_one_word_for_counter_and_appointment(app):
    texts = catalogue("ka")
    joined = " ".join(texts.values())
    assert "ოპერატორ" not in joined and "ჯავშ" not in joined and "მზადაა" not in joined
    assert "№{counter} ფანჯარასთან" in texts["called"]


def test_the_online_booking_confirmation_carries_its_link_and_fits(demo):
    """The text after an online booking: the business, the date and time, the reply words and the
    customer's link, with a 24-character public address, in two parts in every language."""
    assert budget.LINK.startswith("https://") and "/a/" in budget.LINK
    assert len(budget.LINK.rsplit("/", 1)[1]) == len(new_access_token())
    for language in LANGUAGES:
        demo.sender_name = SENDER[language]
        longest = budget.longest_values(demo, language)
        assert longest["link"] == budget.LINK
        values = budget.values_for("appointment_booked", longest)
        assert values["time"] == longest["appointment_time"]  # an appointment's date and time
        text = templates.render(demo, "appointment_booked", language, **values)
        assert text.startswith(SENDER[language]) and budget.LINK in text and values["time"] in text, text
        words = text.replace(budget.LINK, "")
        assert all(re.search(rf"(?<![A-Za-z]){key}(?![A-Za-z])", words) for key in "XR"), text  # the reply words
        assert segment_info(text)["segments"] <= 2, (language, segment_info(text), text)
    english = catalogue("en")["appointment_booked"]
    assert {"{service}", "{code}", "{link}"} <= set(re.findall(r"{\w+}", english))  # GSM-7 has room for all
