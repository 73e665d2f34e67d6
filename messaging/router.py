"""The reply router: every received text is read once, in this order, and gets an outcome.

1. STOP / START / HELP (and their Japanese and Georgian words): always, whatever else is open.
2. An open question to this number (a survey) reads the reply in its light: "1" is a score.
3. L or LATE [minutes] (L20, 20分遅れます, 20 წუთით too): the sender's waiting ticket is skipped until
   then and keeps its place.
4. Anything else goes to the staff inbox, and the sender gets one polite acknowledgement a day.
Keywords are matched case- and width-insensitively (full-width Latin and digits count). Georgian typed
in Latin letters ("ki", "gauqmeba") is read only from a number whose texts go out in Georgian: from
anyone else "ki" is not a yes. Every answer goes out in the language of the sender's latest ticket or
appointment, else their own, else (a number we do not know) the branch's default language.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from datetime import datetime, time, timedelta

from sqlalchemy import select

from core import clock, engine
from core.database import write_transaction
from core.errors import SeedError
from core.extensions import db
from core.models import Appointment, Branch, Customer, Ticket
from core.models import TicketStatus as S
from core.queries import estimated_wait_minutes

from . import appointment_texts, inbox, outbox, surveys, templates
from .models import InboxMessage, OutboxMessage
from .models import OutboxStatus as O

log = logging.getLogger(__name__)

# One table of keywords, by action. Compared after NFKC and case-folding (see normalise).
KEYWORDS = {
    "stop": {"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "停止", "配信停止", "ストップ", "გაჩერება", "შეწყვეტა"},
    "start": {"START", "UNSTOP", "再開", "開始", "スタート", "დაწყება", "განახლება"},
    "help": {"HELP", "INFO", "ヘルプ", "助けて", "დახმარება"},
    "late": {"L", "LATE", "遅れ", "遅れます", "遅れる", "遅刻", "少し遅れます", "少し遅れる", "遅れそうです",
             "少し遅れそうです", "ちょっと遅れます", "遅くなります", "少し遅くなります",
             "დაგვიანება", "ვაგვიანებ", "ვიგვიანებ", "დავაგვიანებ", "დავიგვიანებ"},
    "confirm": {"C", "CONFIRM", "YES", "確認", "はい", "დიახ", "კი", "ვადასტურებ"},
    "cancel": {"X", "CANCEL APPOINTMENT", "キャンセル", "キャンセルします", "取り消し", "取消", "取消し", "取り消します",
               "予約キャンセル", "予約取り消し", "გაუქმება"},
    "reschedule": {"R", "RESCHEDULE", "変更", "გადატანა"},
}
# Georgian as many Georgians text it, in Latin letters: read only when the sender's language is ka
# ("ki" is an everyday "yes" there and a typo anywhere else).
LATIN_GEORGIAN = {
    "stop": {"gachereba", "shewyveta", "shetsyveta", "shetsqveta"},
    "start": {"dawyeba", "datsyeba", "datsqeba", "ganaxleba", "ganakhleba"},
    "help": {"daxmareba", "dakhmareba"},
    "late": {"dagvianeba", "vagvianeb", "vigvianeb", "davagvianeb", "davigvianeb"},
    "confirm": {"ki", "diax", "diakh", "vadastureb"},
    "cancel": {"gauqmeba", "gaukmeba"},
    "reschedule": {"gadatana"},
}
# Minutes, in every language's words; longest first so that "minutes" is not read as "min" + "utes".
MINUTE_WORDS = sorted({"min", "mins", "minute", "minutes", "分", "分間", "წთ", "წუთი", "წუთით", "წუთში",
                       "wt", "wuti", "wutit", "tsuti", "tsutit"}, key=len, reverse=True)
# "By 20 minutes" says running late on its own ("20 წუთით"); "20 min" alone does not.
LATE_BY = {"წუთით"}
LATE_BY_LATIN = {"wutit", "tsutit"}
_UNIT = "(" + "|".join(map(re.escape, MINUTE_WORDS)) + ")"
CHOICE = re.compile(r"^([1-9])$")
WORD_THEN_MINUTES = re.compile(r"^(\D+?)\s*(\d{1,3})\s*" + _UNIT + r"?$")  # LATE 20, L20, 遅れます20分
MINUTES_THEN_WORD = re.compile(r"^(\d{1,3})\s*" + _UNIT + r"?\s*(?:ほど|くらい|ぐらい)?\s*(\D*)$")  # 20分遅れます


def normalise(text: str) -> str:
    # NFKC folds full-width letters and digits; casefold (not upper: Georgian has capitals since
    # Unicode 11 that phones do not send) makes the comparison case-blind.
    text = unicodedata.normalize("NFKC", text or "").casefold().strip()
    text = re.sub(r"\s+", " ", text)
    return text.strip(" .!?。！？")


LOOKUP = {action: {normalise(word) for word in words} for action, words in KEYWORDS.items()}
LATIN_LOOKUP = {action: {normalise(word) for word in words} for action, words in LATIN_GEORGIAN.items()}


def classify(text: str, language: str | None = None) -> tuple[str | None, int | None]:
    """The keyword action of a reply and its number, if any: ("late", 20) for "LATE 20" or "20分遅れます".
    `language`: the sender's (see language_for); "ka" also reads Georgian typed in Latin letters."""
    words = normalise(text)
    tables = (LOOKUP, LATIN_LOOKUP) if language == "ka" else (LOOKUP,)
    for table in tables:
        for action, keywords in table.items():
            if words in keywords:
                return action, None
    late = set().union(*(table["late"] for table in tables))
    match = WORD_THEN_MINUTES.match(words)
    if match and match.group(1).strip() in late:
        return "late", int(match.group(2))
    match = MINUTES_THEN_WORD.match(words)
    if match:
        minutes, unit, rest = int(match.group(1)), match.group(2), match.group(3).strip()
        late_by = LATE_BY | LATE_BY_LATIN if language == "ka" else LATE_BY
        if rest in late or (not rest and unit in late_by):
            return "late", minutes
    return None, None


def _customer(session, phone):
    return session.scalar(select(Customer).where(Customer.phone == phone))


def _branch_for(message: InboxMessage) -> Branch | None:
    if message.branch_id:
        return db.session.get(Branch, message.branch_id)
    last = db.session.scalar(select(OutboxMessage.branch_id).where(OutboxMessage.to == message.sender,
                                                                   OutboxMessage.branch_id.is_not(None))
                             .order_by(OutboxMessage.id.desc()).limit(1))
    return db.session.get(Branch, last) if last else db.session.scalar(select(Branch).order_by(Branch.id))


def language_for(phone: str, branch: Branch | None) -> str:
    """The language of texts to this number: that of their latest ticket or appointment (whichever
    was made last), else the customer's own, else, for a number we do not know, `branch`'s default."""
    customer = db.session.scalar(select(Customer).where(Customer.phone == phone))
    if customer is None:
        return branch.default_language if branch is not None else "en"
    ticket = db.session.execute(select(Ticket.language, Ticket.arrived_at).where(Ticket.customer_id == customer.id)
                                .order_by(Ticket.id.desc()).limit(1)).first()
    appointment = db.session.execute(
        select(Appointment.language, Appointment.created_at)
        .where(Appointment.customer_id == customer.id, Appointment.language.is_not(None))
        .order_by(Appointment.id.desc()).limit(1)).first()
    latest = max((row for row in (ticket, appointment) if row is not None and row[0]), key=lambda row: row[1],
                 default=None)
    return latest[0] if latest is not None else customer.language


def _reply(message: InboxMessage, kind: str, *, branch: Branch | None = None, wording: str | None = None,
           **values) -> None:
    """Answer the sender: from `branch` (else the one the text came to), in `wording` (else the kind's)."""
    branch = branch or _branch_for(message)
    if branch is None:
        return
    body = templates.render(branch, kind, language_for(message.sender, branch), wording=wording, **values)
    try:
        outbox.enqueue(message.sender, body, kind, branch_id=branch.id)
    except SeedError as error:  # a sender we cannot text back (alphanumeric, foreign short code)
        log.info("inbox %s: no reply possible: %s", message.id, error.message)


def _finish(inbox_id, status, outcome, error=None):
    with write_transaction() as session:
        message = session.get(InboxMessage, inbox_id)
        message.status, message.outcome, message.handled_at, message.error = status, outcome[:80], clock.now(), error


def handle(inbox_id: int) -> str | None:
    if not inbox.claim_for_handling(inbox_id):
        return None  # handled already, or another handler has it
    message = db.session.get(InboxMessage, inbox_id)
    db.session.refresh(message)
    action, minutes = classify(message.body, language_for(message.sender, _branch_for(message)))
    if action == "stop":
        return _stop(message)
    if action == "start":
        return _start(message)
    if action == "help":
        # The survey digits are listed only while a 1-5 from this number would be read as a score.
        _reply(message, "help", wording="help_survey" if surveys.awaits_score(message.sender) else None)
        _finish(inbox_id, "handled", "help sent")
        return "help sent"
    outcome = _open_question(message)
    if outcome:
        return outcome
    if action == "late":
        return _late(message, minutes)
    if action in ("confirm", "cancel", "reschedule"):
        run = {"confirm": appointment_texts.confirm, "cancel": appointment_texts.cancel,
               "reschedule": appointment_texts.offer}[action]
        outcome = run(message.sender)
        if outcome:
            _finish(message.id, "handled", outcome)
            return outcome
        return _unknown(message, outcome=f"{action}: no appointment")
    return _unknown(message)


def _open_question(message):
    """Read the reply against the newest open question to this number: slots offered, or a survey."""
    offered = appointment_texts.open_offer(message.sender)
    survey_sent = surveys.asked_at(message.sender)
    newest_is_offer = offered is not None and (survey_sent is None or offered.created_at >= survey_sent)
    choice = CHOICE.match(normalise(message.body))
    if newest_is_offer and choice:
        outcome = appointment_texts.choose(message.sender, int(choice.group(1)))
        if outcome:
            _finish(message.id, "handled", outcome)
            return outcome
    return surveys.handle(message.id)


def _stop(message):
    now, language = clock.now(), language_for(message.sender, _branch_for(message))
    with write_transaction() as session:
        customer = _customer(session, message.sender) or Customer(phone=message.sender, created_at=now,
                                                                  language=language)
        customer.opted_out_at, customer.sms_consent = now, False
        session.add(customer)
        # Nothing queued for this number goes out any more.
        for row in session.scalars(select(OutboxMessage).where(OutboxMessage.to == message.sender,
                                                               OutboxMessage.status == O.QUEUED)):
            row.status, row.policy_note = O.CANCELLED, "opted out (STOP)"
    _reply(message, "stop_confirm")
    _finish(message.id, "handled", "opted out")
    return "opted out"


def _start(message):
    now, language = clock.now(), language_for(message.sender, _branch_for(message))
    with write_transaction() as session:
        customer = _customer(session, message.sender) or Customer(phone=message.sender, created_at=now,
                                                                  language=language)
        customer.opted_out_at = None
        customer.sms_consent, customer.consent_at, customer.consent_source = True, now, "sms"
        customer.consent_text = f"Texted {message.body.strip()[:40]!r} to opt in"
        session.add(customer)
    _reply(message, "start_confirm")
    _finish(message.id, "handled", "opted in")
    return "opted in"


def _late(message, minutes):
    # The sender's ticket waiting today, "today" on its own branch's clock (which need not be the
    # clock of the branch the text came in to): a day either side of UTC's, then checked per ticket.
    now = clock.now()
    days = [now.date() + timedelta(days=offset) for offset in (-1, 0, 1)]
    waiting = db.session.scalars(
        select(Ticket).join(Customer, Ticket.customer_id == Customer.id)
        .where(Customer.phone == message.sender, Ticket.status == S.WAITING, Ticket.service_day.in_(days))
        .order_by(Ticket.arrived_at.desc()).limit(10)).all()
    ticket = next((t for t in waiting if t.service_day == t.branch.local_date(now)), None)
    if ticket is None:
        return _late_for_appointment(message, minutes)
    try:
        engine.running_late(ticket.id, minutes)
    except SeedError as error:
        return _unknown(message, outcome="late: refused", error=error.message)
    ticket = db.session.get(Ticket, ticket.id)
    # The time the ticket is really held until, on its own branch's clock.
    local_until = templates.clock_text(ticket.branch, ticket.late_until)
    _reply(message, "late_ack", branch=ticket.branch, ticket=ticket.label, time=local_until,
           wait=estimated_wait_minutes(ticket))
    _finish(message.id, "handled", f"late until {local_until}")
    return f"late until {local_until}"


def _late_for_appointment(message, minutes):
    """Running late for today's appointment: it is marked late for the staff, and the customer told."""
    from core import appointments

    appointment = appointment_texts.upcoming_for(message.sender)
    branch = appointment.branch if appointment is not None else None  # its day and time on its own clock
    if appointment is None or branch.local_date(appointment.starts_at) != branch.local_date(clock.now()):
        return _unknown(message, outcome="late: no ticket or appointment")
    minutes = minutes or 15
    appointments.mark_late(appointment.id, minutes)
    _reply(message, "appointment_late", branch=branch, time=templates.clock_text(branch, appointment.starts_at),
           wait=minutes)
    _finish(message.id, "handled", f"appointment late {minutes} min")
    return f"appointment late {minutes} min"


def _unknown(message, outcome="to staff", error=None):
    branch = _branch_for(message)
    if branch is not None:
        day_start = datetime.combine(branch.local_date(clock.now()), time.min, tzinfo=branch.zone)
        acknowledged = db.session.scalar(select(OutboxMessage.id).where(
            OutboxMessage.to == message.sender, OutboxMessage.kind == "unknown_ack",
            OutboxMessage.created_at >= day_start).limit(1))
        if not acknowledged:
            _reply(message, "unknown_ack")
    _finish(message.id, "unhandled", outcome, error)
    return outcome


def on_sms_received(app, inbox_id) -> None:
    try:
        handle(inbox_id)
    except Exception as error:  # noqa: BLE001  (the text stays in the inbox, marked failed, visible)
        log.exception("inbox %s: reply handling failed", inbox_id)
        try:
            db.session.rollback()
            _finish(inbox_id, "failed", "handler failed", f"{type(error).__name__}: {error}")
        except Exception:  # noqa: BLE001
            log.exception("inbox %s: could not record the failure", inbox_id)


