"""The texts and surveys of a period: what went out, what came back, what customers scored.

Texts count by when they were written (created_at), replies by when they arrived, surveys by
when they were set up (a visit's end). Narrowed to a service, counter or staff member, only the
texts and surveys bound to those tickets count; replies are bound to no ticket, so they (and the
reply rate, the opt-outs) are not counted then: None, not a wrong number.
"""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import case, func, literal_column, or_, select

from core import clock
from core.extensions import db
from core.models import Appointment, Service, Ticket
from core.models import TicketStatus as S
from core.reports import EVERYTHING, Grouping, Period, Selection, json_values, plain_plans, share
from messaging.models import InboxMessage, OutboxMessage, SurveyResponse
from messaging.models import OutboxStatus as O

ACCEPTED = (O.SENT, O.DELIVERED)  # the network took it
SCORES = (1, 2, 3, 4, 5)
# How long before an appointment its reminders may be written: the longest lead time (core/settings/texts.py
# allows two weeks) and a day to spare.
REMINDER_LOOKBACK = timedelta(days=15)
NEVER_CAME = ("booked", "confirmed")  # an appointment whose time passed in these never checked in
SATISFIED = (4, 5)  # CSAT: the share of answers that are 4 or 5
REASONS_SHOWN = 10
# What a reply meant, read from the outcome the reply router (messaging/router.py, surveys.py,
# appointment_texts.py) gave it: the first prefix that matches. No match: unknown (left to staff).
MEANINGS = (
    ("opted out", "stop"), ("opted in", "start"), ("help sent", "help"),
    ("late", "late"), ("appointment late", "late"),
    ("appointment confirmed", "confirm"), ("confirm:", "confirm"),
    ("appointment cancelled", "cancel"), ("cancel:", "cancel"),
    ("appointment rescheduled", "reschedule"), ("reschedule", "reschedule"),
    ("survey score", "survey_score"), ("survey", "survey_other"),
)
MEANING_NAMES = tuple(dict.fromkeys(name for _prefix, name in MEANINGS)) + ("unknown",)


def meaning(outcome: str | None) -> str:
    for prefix, name in MEANINGS:
        if outcome and outcome.startswith(prefix):
            return name
    return "unknown"


def written_in(period: Period) -> list:
    """Conditions for the branch's texts written in the period (index ix_outbox_branch_created)."""
    return [OutboxMessage.branch_id == period.branch_id,
            OutboxMessage.created_at >= period.start, OutboxMessage.created_at < period.end]


def _outbox(period: Period, selection: Selection, *columns):
    query = select(*columns).where(*written_in(period))
    if selection.narrowed:
        query = query.join(Ticket, Ticket.id == OutboxMessage.ticket_id).where(*selection.conditions(period))
    return query


def texts(period: Period, selection: Selection = EVERYTHING) -> dict:
    """Texts written, sent (taken by the network), delivered, failed and why, suppressed by the
    policy, parts (GSM-7/UCS-2 segments) of those that left; replies by meaning, opt-outs."""
    plain_plans()
    row = db.session.execute(_outbox(
        period, selection, func.count().label("written"),
        func.sum(case((OutboxMessage.status.in_(ACCEPTED), 1), else_=0)).label("sent"),
        func.sum(case((OutboxMessage.status == O.DELIVERED, 1), else_=0)).label("delivered"),
        func.sum(case((OutboxMessage.status == O.FAILED, 1), else_=0)).label("failed"),
        func.sum(case((OutboxMessage.status == O.SUPPRESSED, 1), else_=0)).label("suppressed"),
        func.sum(case((OutboxMessage.sent_at.is_not(None), OutboxMessage.parts), else_=0)).label("parts"),
        # the reasons come along in the same pass: failures are few, a second pass would not be
        json_values(func.coalesce(OutboxMessage.last_error, "?")).filter(OutboxMessage.status == O.FAILED)
        .label("reasons"),
    )).one()
    reasons = Counter(row.reasons or ())
    sent = row.sent or 0
    figures = {"written": row.written or 0, "sent": sent, "delivered": row.delivered or 0,
               "failed": row.failed or 0,
               "failed_by_reason": dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))[:REASONS_SHOWN]),
               "suppressed": row.suppressed or 0, "parts": int(row.parts or 0)}
    if selection.narrowed:
        return {**figures, "replies": None, "reply_rate": None, "opt_outs": None, "replies_by_meaning": None,
                "reminders": reminders(period, selection)}
    by_meaning = dict.fromkeys(MEANING_NAMES, 0)
    for outcome, count in db.session.execute(
            select(InboxMessage.outcome, func.count())
            .where(InboxMessage.branch_id == period.branch_id, InboxMessage.received_at >= period.start,
                   InboxMessage.received_at < period.end).group_by(InboxMessage.outcome)):
        by_meaning[meaning(outcome)] += count
    replies = sum(by_meaning.values())
    return {**figures, "replies": replies, "reply_rate": share(replies, sent), "opt_outs": by_meaning["stop"],
            "replies_by_meaning": by_meaning, "reminders": reminders(period, selection)}


def reminders(period: Period, selection: Selection = EVERYTHING) -> dict | None:
    """Do reminders work? The no-show rate of the appointments whose reminder was delivered beside
    that of the rest. Appointments of the period whose time has passed and were not cancelled; a
    no-show never checked in, or checked in and was not there when called. One pass over the
    branch's appointments (by the (service, start) index) and its delivered reminders (by the
    (branch, written) index). Appointments belong to no counter or staff member: None then."""
    if selection.counter_id is not None or selection.staff_id is not None:
        return None
    plain_plans()
    delivered = select(OutboxMessage.appointment_id).where(
        OutboxMessage.branch_id == period.branch_id, OutboxMessage.created_at >= period.start - REMINDER_LOOKBACK,
        OutboxMessage.created_at < period.end, OutboxMessage.kind == "reminder", OutboxMessage.status == O.DELIVERED)
    services = select(Service.id).where(Service.branch_id == period.branch_id)
    if selection.service_id is not None:
        services = services.where(Service.id == selection.service_id)
    missed = or_(Appointment.status.in_(NEVER_CAME), Ticket.status == S.NO_SHOW)
    reminded = Appointment.id.in_(delivered).label("reminded")
    rows = db.session.execute(
        select(reminded, func.count(), func.count(case((missed, 1))))
        .select_from(Appointment).outerjoin(Ticket, Ticket.id == Appointment.ticket_id)
        .where(Appointment.service_id.in_(services), Appointment.starts_at >= period.start,
               Appointment.starts_at < min(period.end, clock.now()), Appointment.status != "cancelled")
        .group_by(literal_column("reminded")))
    found = {True: (0, 0), False: (0, 0)}
    for was_reminded, count, no_shows in rows:
        found[bool(was_reminded)] = (count, no_shows)
    return {name: {"appointments": count, "no_shows": no_shows, "no_show_rate": share(no_shows, count)}
            for name, (count, no_shows) in (("reminded", found[True]), ("not_reminded", found[False]))}


def _survey_columns() -> list:
    # The survey's own text, looked up by its id for each survey: a join would make PostgreSQL
    # hash every text ever written to find a year's few thousand.
    asked = (select(OutboxMessage.status).where(OutboxMessage.id == SurveyResponse.outbox_id)
             .scalar_subquery().in_(ACCEPTED))
    return [func.sum(case((asked, 1), else_=0)).label("sent"),
            func.count(SurveyResponse.score).label("answered"),
            func.sum(SurveyResponse.score).label("score_total"),
            *(func.sum(case((SurveyResponse.score == score, 1), else_=0)).label(f"score_{score}")
              for score in SCORES)]


def _surveys(period: Period, selection: Selection, keys=()):
    query = (select(*keys, *_survey_columns()).select_from(SurveyResponse)
             .where(SurveyResponse.branch_id == period.branch_id, SurveyResponse.created_at >= period.start,
                    SurveyResponse.created_at < period.end))
    if selection.narrowed:
        query = query.join(Ticket, Ticket.id == SurveyResponse.ticket_id).where(*selection.conditions(period))
    return query


def _survey_figures(row) -> dict:
    sent, answered = row.sent or 0, row.answered or 0
    distribution = {str(score): getattr(row, f"score_{score}") or 0 for score in SCORES}
    return {"sent": sent, "answered": answered, "response_rate": share(answered, sent),
            "mean_score": round(float(row.score_total) / answered, 2) if answered else None,
            "distribution": distribution,
            "csat": share(sum(distribution[str(score)] for score in SATISFIED), answered)}


def no_surveys() -> dict:
    """The figures of a group no survey went to."""
    return {"sent": 0, "answered": 0, "response_rate": None, "mean_score": None,
            "distribution": {str(score): 0 for score in SCORES}, "csat": None}


def surveys(period: Period, selection: Selection = EVERYTHING) -> dict:
    """Surveys sent (their text taken by the network), answered, response rate, mean score, the
    scores 1-5 and CSAT."""
    plain_plans()
    return _survey_figures(db.session.execute(_surveys(period, selection)).one())


def surveys_by(period: Period, grouping: Grouping, selection: Selection = EVERYTHING) -> dict:
    """{group key: survey figures}, the groups of core.reports.breakdown."""
    plain_plans()
    key = grouping.of_ticket(SurveyResponse.ticket_id, period).label("key")
    query = _surveys(period, selection, keys=[key]).group_by(literal_column("key"))
    return {row.key: _survey_figures(row) for row in db.session.execute(query)}


def follow_up(period: Period, selection: Selection = EVERYTHING, limit: int = 50) -> list[dict]:
    """The low scores (3 or less) and comments, newest first: whom to call back, and why.
    No phone number: staff find the customer from the ticket."""
    query = (select(SurveyResponse.answered_at, SurveyResponse.score, SurveyResponse.comment, Ticket.label,
                    Ticket.service_id)
             .join(Ticket, Ticket.id == SurveyResponse.ticket_id)
             .where(SurveyResponse.branch_id == period.branch_id, SurveyResponse.created_at >= period.start,
                    SurveyResponse.created_at < period.end, *selection.conditions(period),
                    (SurveyResponse.score <= 3) | SurveyResponse.comment.is_not(None))
             .order_by(SurveyResponse.answered_at.desc(), SurveyResponse.id.desc()).limit(limit))
    return [{"answered_at": answered, "score": score, "comment": comment, "ticket": label, "service_id": service}
            for answered, score, comment, label, service in db.session.execute(query)]
