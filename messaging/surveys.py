"""Replies to the post-visit survey: a score of 1-5 is stored; a low one (3 or less) gets one
follow-up question whose free-text answer is stored; then a thank-you. A reply that is not a
score is asked about once more, then left to staff. Replies to anything else are not ours."""
from __future__ import annotations

import logging
import re
import unicodedata
from datetime import timedelta

from sqlalchemy import select

from core import clock
from core.database import write_transaction
from core.extensions import db
from core.models import Branch

from . import outbox, templates
from .models import InboxMessage, OutboxMessage, SurveyResponse

log = logging.getLogger(__name__)
OPEN_DAYS = 7
# "5", "５。", "5点", "5 ქულა": after normalise, a digit, maybe "points", maybe a full stop or "!".
SCORE = re.compile(r"^\s*([1-5])\s*(?:点|ქულა)?\s*[.!。]?\s*$")


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text)  # full-width digits (１-５) and "！" count as "5" and "!"


def open_survey(session, phone: str):
    """The sender's most recent survey that was sent and still waits for an answer."""
    since = clock.now() - timedelta(days=OPEN_DAYS)
    return session.scalar(
        select(SurveyResponse)
        .join(OutboxMessage, SurveyResponse.outbox_id == OutboxMessage.id)
        .where(SurveyResponse.phone == phone, SurveyResponse.state.in_(("asked", "followup")),
               OutboxMessage.status.in_(("sent", "delivered")), OutboxMessage.sent_at >= since)
        .order_by(OutboxMessage.sent_at.desc(), SurveyResponse.id.desc())
        .limit(1)
    )


def asked_at(phone: str):
    """When the survey this number could be answering went out (None when there is none)."""
    since = clock.now() - timedelta(days=OPEN_DAYS)
    return db.session.scalar(
        select(OutboxMessage.sent_at)
        .join(SurveyResponse, SurveyResponse.outbox_id == OutboxMessage.id)
        .where(SurveyResponse.phone == phone, SurveyResponse.state.in_(("scheduled", "asked", "followup")),
               OutboxMessage.status.in_(("sent", "delivered")), OutboxMessage.sent_at >= since)
        .order_by(OutboxMessage.sent_at.desc()).limit(1))


def awaits_score(phone: str) -> bool:
    """Whether a reply of 1-5 from this number would be read as a score now (as handle() reads it)."""
    survey = open_survey(db.session, phone)
    if survey is not None:
        return survey.state == "asked"  # in "followup" whatever they write is their comment
    return db.session.scalar(
        select(SurveyResponse.id).join(OutboxMessage, SurveyResponse.outbox_id == OutboxMessage.id)
        .where(SurveyResponse.phone == phone, SurveyResponse.state == "scheduled",
               OutboxMessage.status.in_(("sent", "delivered")),
               OutboxMessage.sent_at >= clock.now() - timedelta(days=OPEN_DAYS)).limit(1)) is not None


def handle(inbox_id: int) -> str | None:
    """Read an inbox text as a survey answer if its sender has an open survey. The outcome, or None."""
    reply_kind = None
    with write_transaction() as session:
        message = session.get(InboxMessage, inbox_id)
        if message is None or message.status != "handling":  # claimed by the router
            return None
        survey = open_survey(session, message.sender)
        if survey is None:
            # Sent rows become "asked" here, the first time their number writes back.
            survey = _asked_now(session, message.sender)
            if survey is None:
                return None
        text = normalise(message.body)
        now = clock.now()
        if survey.state == "asked":
            match = SCORE.match(text)
            if match:
                survey.score, survey.answered_at = int(match.group(1)), now
                if survey.score <= 3:
                    survey.state, reply_kind, outcome = "followup", "survey_followup", f"survey score {survey.score}"
                else:
                    survey.state, reply_kind, outcome = "done", "survey_thanks", f"survey score {survey.score}"
            elif survey.retries == 0:
                survey.retries, reply_kind, outcome = 1, "survey_retry", "survey: asked again for a score"
            else:
                survey.state, outcome = "staff", "survey: reply not understood, left to staff"
        else:  # followup: whatever they write is their comment
            survey.comment, survey.state, reply_kind, outcome = message.body[:2000], "done", "survey_thanks", "survey comment"
        message.status = "unhandled" if survey.state == "staff" else "handled"
        message.outcome, message.handled_at = outcome, now
        survey_id, branch_id, language, phone = survey.id, survey.branch_id, survey.language, survey.phone
    if reply_kind:
        branch = db.session.get(Branch, branch_id)
        outbox.enqueue(phone, templates.render(branch, reply_kind, language), reply_kind, branch_id=branch_id)
    log.info("survey %s: %s", survey_id, outcome)
    return outcome


def _asked_now(session, phone):
    survey = session.scalar(
        select(SurveyResponse).join(OutboxMessage, SurveyResponse.outbox_id == OutboxMessage.id)
        .where(SurveyResponse.phone == phone, SurveyResponse.state == "scheduled",
               OutboxMessage.status.in_(("sent", "delivered")),
               OutboxMessage.sent_at >= clock.now() - timedelta(days=OPEN_DAYS))
        .order_by(OutboxMessage.sent_at.desc()).limit(1))
    if survey is not None:
        survey.state = "asked"
    return survey


def on_sms_received(app, inbox_id) -> None:
    try:
        handle(inbox_id)
    except Exception:  # noqa: BLE001  (the text stays in the inbox, unhandled and visible)
        log.exception("inbox %s: survey handling failed", inbox_id)
