"""The words of every text: catalogue defaults (Flask-Babel, en/ja/ka), an admin's override per
branch and language, placeholders filled in, and Latin look-alikes mended so English stays GSM-7."""
from __future__ import annotations

import string
import uuid

from flask_babel import gettext
from sqlalchemy import select

from core.extensions import db
from core.language import customer_time
from core.locales import force_locale
from hardware.pdu import encoding_of

from .models import MessageTemplate

PLACEHOLDERS = ("name", "ticket", "position", "ahead", "wait", "counter", "service", "branch", "time", "code", "choices",
                "link")

# Curly quotes, dashes and friends that would turn a Latin text into UCS-2 (70 characters a part).
LOOK_ALIKES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
})


# Each kind's catalogue text, translated only when asked for: a text rendered translates its
# own wording, not all of them (gettext(...) is kept literal for the extractor).
_DEFAULTS = {
    "welcome": lambda: gettext("{branch}: your ticket is {ticket} ({service}). {ahead} ahead of you, about {wait} min. "
                               "We'll text you before your turn. Reply STOP to opt out."),
    "welcome_next": lambda: gettext("{branch}: your ticket is {ticket} ({service}). You are next: please stay close. "
                                    "Reply STOP to opt out."),
    "position": lambda: gettext("{branch}: ticket {ticket}, {ahead} ahead of you now, about {wait} min. "
                                "Please stay close."),
    "next": lambda: gettext("{branch}: ticket {ticket}, you are next. Please get ready."),
    "called": lambda: gettext("{branch}: ticket {ticket}, please go to counter {counter} now."),
    "no_show": lambda: gettext("{branch}: we called ticket {ticket} but could not find you. "
                               "Please see the desk if you still need help."),
    "survey": lambda: gettext("{branch}: thank you for your visit. How was it? "
                              "Reply with a number from 1 (poor) to 5 (excellent)."),
    "survey_followup": lambda: gettext("{branch}: we are sorry it was not better. What should we improve? "
                                       "Reply in your own words."),
    "survey_retry": lambda: gettext("{branch}: please reply with one number from 1 (poor) to 5 (excellent)."),
    "survey_thanks": lambda: gettext("{branch}: thank you for your answer. It helps us serve you better."),
    "stop_confirm": lambda: gettext("{branch}: you will get no more texts from us. Reply START to get them again."),
    "start_confirm": lambda: gettext("{branch}: texts are on again. Reply STOP to stop them."),
    "help": lambda: gettext("{branch}: replies we understand: C to confirm, X to cancel, R to move an appointment; "
                            "L or LATE 20 if you are running late; STOP to stop texts, START to get them again."),
    "help_survey": lambda: gettext("{branch}: replies we understand: 1-5 to rate your visit; C to confirm, "
                                   "X to cancel, R to move an appointment; L or LATE 20 if you are running late; "
                                   "STOP to stop texts, "
                                   "START to get them again."),
    "late_ack": lambda: gettext("{branch}: noted. We will keep your place (ticket {ticket}) until {time}. "
                                "Please be back by then."),
    "unknown_ack": lambda: gettext("{branch}: thank you, we have passed your message to our staff. "
                                   "Reply HELP for options."),
    "reminder": lambda: gettext("{branch}: reminder of your {service} appointment on {time} (code {code}). "
                                "Reply C to confirm, X to cancel, R to change the time."),
    "appointment_confirmed": lambda: gettext("{branch}: thank you, your appointment on {time} is confirmed."),
    "appointment_cancelled": lambda: gettext("{branch}: your appointment on {time} is cancelled. "
                                             "Reply R to book another time."),
    "reschedule_offer": lambda: gettext("{branch}: free times: {choices}. Reply 1, 2 or 3 within 30 minutes."),
    "reschedule_taken": lambda: gettext("{branch}: sorry, that time was just taken."),
    "reschedule_none": lambda: gettext("{branch}: there is no free time in the next two weeks. Please call us."),
    "appointment_booked": lambda: gettext("{branch}: your {service} appointment on {time} is booked (code {code}). "
                                          "Reply X to cancel or R to change the time, or open {link}"),
    "appointment_moved": lambda: gettext("{branch}: done. Your {service} appointment is now on {time} (code {code})."),
    "appointment_late": lambda: gettext("{branch}: noted. We have told the staff you will be about {wait} min late "
                                        "for your {time} appointment."),
}


def defaults(kind: str) -> str:
    """The catalogue text of `kind` in the current locale."""
    return _DEFAULTS[kind]()


KINDS = ("welcome", "position", "next", "called", "no_show", "survey", "survey_followup", "survey_retry",
         "survey_thanks", "stop_confirm", "start_confirm", "help", "late_ack", "unknown_ack", "reminder",
         "appointment_confirmed", "appointment_cancelled", "reschedule_offer", "reschedule_taken", "reschedule_none",
         "appointment_moved", "appointment_late", "welcome_next", "help_survey", "appointment_booked")
# Wordings of a kind besides its own, chosen when the text is rendered (the editor lists them too).
WORDINGS = {"welcome_next": "welcome", "help_survey": "help"}


def kind_of(wording: str) -> str:
    """The text kind a wording is sent as: "welcome_next" is a welcome."""
    return WORDINGS.get(wording, wording)


def wording_for(kind: str, values: dict) -> str:
    """Nobody ahead reads "you are next", never "0 ahead of you, about 0 min"."""
    if values.get("ahead") == 0:
        return {"welcome": "welcome_next", "position": "next"}.get(kind, kind)
    return kind


def clock_text(branch, moment) -> str:
    """A time of day as texts give it: 24-hour, on the branch's clock (the same in every language)."""
    return customer_time(moment, branch.zone)


def mend_look_alikes(text: str) -> str:
    mended = text.translate(LOOK_ALIKES)
    return mended if encoding_of(text) == "UCS-2" and encoding_of(mended) == "GSM-7" else text


class _Values(dict):
    def __missing__(self, key):
        return "{" + key + "}"  # an unknown placeholder stays visible rather than crashing a send


def fill(template: str, values: dict) -> str:
    return string.Formatter().vformat(template, (), _Values({k: "" if v is None else v for k, v in values.items()}))


# (branch id, its wording stamp, kind, language) -> the branch's own wording, or None for ours.
# A change of wording changes the stamp (changed()), so an entry is never stale, in any process.
_OVERRIDES: dict[tuple, str | None] = {}
_OVERRIDES_KEPT = 5000


def changed(branch) -> None:
    """The branch's wording of a text was saved or reverted: call in that transaction."""
    branch.wording_stamp = uuid.uuid4().hex


def template_for(branch, kind: str, language: str) -> str:
    """The branch's wording of text `kind` in `language`, else the standard one."""
    key = (branch.id, branch.wording_stamp, kind, language)
    if key in _OVERRIDES:
        override = _OVERRIDES[key]
    else:
        override = db.session.scalar(select(MessageTemplate.body).where(
            MessageTemplate.branch_id == branch.id, MessageTemplate.kind == kind, MessageTemplate.language == language))
        if len(_OVERRIDES) >= _OVERRIDES_KEPT:
            _OVERRIDES.clear()
        _OVERRIDES[key] = override
    if override:
        return override
    with force_locale(language):
        return defaults(kind)


def render(branch, kind: str, language: str, *, wording: str | None = None, **values) -> str:
    """The text to send, in `wording` (else the one wording_for picks). Every text starts with the
    business name (the template's {branch})."""
    wording = wording or wording_for(kind, values)
    text = fill(template_for(branch, wording, language), {"branch": branch.sender_name, **values})
    if not text.startswith(branch.sender_name):
        text = f"{branch.sender_name}: {text}"
    return mend_look_alikes(text)
