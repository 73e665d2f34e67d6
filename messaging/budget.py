"""The parts budget of a text: filled with the longest values its placeholders really take at a
branch, every text fits in PARTS parts, and the English welcome and "go to counter" in one. A
text over two parts costs three times one, and some phones show the parts out of order. The
defaults are held to it by a test; the template editor warns when a branch's own wording breaks it.

Parts are counted as the modem sends them (hardware/pdu.py): GSM-7 160, then 153 a part, with
the extension characters (€ [ ] { } ~ ^ | \\) taking two; UCS-2 70, then 67 a part."""
from __future__ import annotations

from datetime import datetime

from core.models import new_access_token, new_booking_code
from hardware.pdu import segment_info

from . import appointment_texts, templates

PARTS = 2
ONE_PART = {("welcome", "en"), ("called", "en")}  # sent to everyone, or the moment that matters most

# The longest values planned for, beyond what the branch itself holds (its name, services, counters).
TICKET = "A123"
COUNTER = "12"
AHEAD = 99  # people ahead on a city office's busiest morning
WAIT = 180  # minutes
CUSTOMER_NAME = {"en": "Konstantinos", "ja": "コバヤシ　アレクサンドラ", "ka": "ალექსანდრინე"}  # 12 characters
# The customer's link to an online booking (/a/<token>), on a public address of 24 characters; a
# longer address takes characters a Japanese or Georgian confirmation does not have.
LINK = "https://seed.example.org/a/" + new_access_token()
# Kinds whose {time} is an appointment's date and time; in every other kind it is a time of day.
APPOINTMENT_TIME = {"reminder", "appointment_confirmed", "appointment_cancelled", "reschedule_offer",
                    "reschedule_taken", "reschedule_none", "appointment_moved", "appointment_booked"}


def parts_allowed(kind: str, language: str) -> int:
    return 1 if (templates.kind_of(kind), language) in ONE_PART else PARTS


def _longest(texts) -> str:
    return max(texts, key=len, default="")


def _moments(branch) -> list[datetime]:
    """Times of day and dates to try: late in the morning and the evening, every month and weekday,
    so a format with month or weekday names (or AM/PM) is measured at its longest."""
    return [datetime(2026, month, day, hour, 45, tzinfo=branch.zone)
            for month in range(1, 13) for day in range(22, 29) for hour in (11, 23)]


def longest_values(branch, language: str) -> dict:
    """Every placeholder at its longest at `branch` in `language`; {time} as a time of day
    (values_for() gives an appointment kind its date and time)."""
    moments = _moments(branch)
    when = _longest(appointment_texts.when_text(branch, moment, language) for moment in moments)
    # The three longest times: a week on from the longest may fall on a day of one digit.
    slots = sorted(moments, key=lambda m: len(appointment_texts.when_text(branch, m, language)), reverse=True)[:3]
    return {
        "name": CUSTOMER_NAME.get(language, CUSTOMER_NAME["en"]),
        "ticket": TICKET,
        "position": AHEAD + 1, "ahead": AHEAD, "wait": WAIT,
        "counter": _longest([COUNTER, *(counter.name for counter in branch.counters)]),
        "service": _longest(service.name_in(language) for service in branch.services),
        "time": _longest(templates.clock_text(branch, moment) for moment in moments),
        "appointment_time": when,
        "code": new_booking_code(),  # always as long as this
        "choices": appointment_texts.choices_text(branch, slots, language),
        "link": LINK,
    }


def values_for(kind: str, longest: dict) -> dict:
    values = {key: value for key, value in longest.items() if key != "appointment_time"}
    if templates.kind_of(kind) in APPOINTMENT_TIME:
        values["time"] = longest["appointment_time"]
    return values


def measure(branch, kind: str, language: str, template: str | None = None, longest: dict | None = None) -> dict:
    """`template` (else the branch's wording of `kind`) filled with the longest values: the text,
    what it costs (segment_info) and the parts it may take ("allowed")."""
    longest = longest or longest_values(branch, language)
    values = values_for(kind, longest)
    if template is None:
        text = templates.render(branch, kind, language, wording=kind, **values)
    else:
        text = templates.mend_look_alikes(templates.fill(template, {"branch": branch.sender_name, **values}))
    return {"text": text, **segment_info(text), "allowed": parts_allowed(kind, language)}
