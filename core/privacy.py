"""Personal data: what Seed holds about its customers, for how long, and one person's export and
erasure on request.

HOLDERS below is the one table of where phone numbers, names and customers' words are kept and
what becomes of them. After RETENTION_DAYS a finished visit keeps its figures (counts, times,
statuses, scores, kinds of text) and loses what names a person: phone numbers and names become
NULL, the words of texts "[removed]"; parts of long texts and unreadable texts, kept only until
they are joined or looked at, are deleted; a text still queued after all that time is cancelled.
Erasure on request does the same at once to every row of that number within the requester's
branches, ends what is still to happen (queued texts, booked appointments, open offers, texts the
reply router has not read) and, when no branch holds anything more, the customer record.

The tables of messaging are reached through the shared metadata, by name: core imports no other
package of ours, and the retention rules stay readable in one place.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Callable

from flask import current_app
from flask_babel import gettext
from sqlalchemy import delete, exists, or_, select, update

from . import clock, cooperative, scope
from .database import write_transaction
from .errors import NotFound, ValidationError
from .extensions import db
from .models import FINISHED, Customer

REMOVED = "[removed]"
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def masked(number: str | None) -> str:
    """How a number appears where it must not be whole (logs, the audit log): enough to tell
    numbers apart, not enough to call them (+99555****456). The rule of messaging.phones.masked,
    here because core imports no other package of ours: that one can become an import of this."""
    if not number:
        return "-"
    return number[:6] + "*" * max(len(number) - 9, 0) + number[-3:] if len(number) > 9 else "***"


def target(number: str) -> str:
    """A phone number as the audit log names it."""
    return f"phone:{masked(number)}"


def check(number) -> str:
    """`number` if it is in E.164 (+ and 7-15 digits); reading local forms is messaging's."""
    if not isinstance(number, str) or not E164.fullmatch(number.strip()):
        raise ValidationError(gettext("Give the phone number in international form, e.g. +995555123456."),
                              {"phone": "not E.164"})
    return number.strip()


@dataclass(frozen=True)
class Holder:
    """One table that holds customers' numbers, names or words, and what becomes of them."""

    table: str
    section: str  # its name in an export and in counts
    at: str  # the time the retention period counts from
    phone: str | None = None  # the column holding the number; None: linked to the customer by customer_id
    scrub: dict = field(default_factory=dict)  # column -> value once anonymised or erased
    still_used: Callable | None = None  # table -> condition of rows left alone by the retention job
    export: tuple[str, ...] = ()  # the columns a person's export shows
    ends: Callable | None = None  # table -> (condition, values): what was still to happen, ended first
    delete: bool = False  # kept only for a while anyway: deleted rather than scrubbed
    branch: Callable = lambda t: t.c  # table -> something with .branch_id, for the scope rule

    @property
    def key(self) -> str:
        return self.phone or "customer_id"


def _offer_branch(t):
    appointment = db.metadata.tables["appointment"]
    return SimpleNamespace(branch_id=select(appointment.c.branch_id)
                           .where(appointment.c.id == t.c.appointment_id).scalar_subquery())


HOLDERS = (
    Holder("ticket", "tickets", "arrived_at", scrub={"customer_id": None},
           still_used=lambda t: t.c.status.not_in([str(s) for s in FINISHED]),
           export=("id", "branch_id", "service_id", "label", "status", "language", "source", "arrived_at",
                   "called_at", "started_at", "finished_at")),
    Holder("appointment", "appointments", "starts_at", scrub={"customer_id": None},
           export=("id", "branch_id", "service_id", "booking_code", "status", "starts_at", "late_minutes", "source",
                   "created_at"),
           ends=lambda t: (t.c.status.in_(("booked", "confirmed")) & (t.c.starts_at > clock.now()),
                           {"status": "cancelled"})),
    Holder("outbox", "texts_sent", "created_at", phone="to", scrub={"to": None, "body": REMOVED},
           still_used=lambda t: t.c.status == "sending",  # a gateway holds it: the next run takes it
           export=("id", "branch_id", "kind", "body", "status", "created_at", "sent_at", "delivered_at"),
           # Not gone out: it never will (one queued for months is long stale). A text a gateway
           # holds during an erasure may still leave; its row no longer says to whom.
           ends=lambda t: (t.c.status.in_(("queued", "sending")),
                           {"status": "cancelled", "policy_note": "personal data removed", "lease_owner": None,
                            "lease_until": None})),
    Holder("inbox", "texts_received", "received_at", phone="sender",
           scrub={"sender": None, "body": REMOVED, "error": None},
           still_used=lambda t: t.c.status.in_(("new", "handling")),
           export=("id", "branch_id", "body", "sent_at", "received_at", "status", "outcome"),
           # erased before the reply router read it: nothing is left to answer, or whom
           ends=lambda t: (t.c.status.in_(("new", "handling")),
                           {"status": "handled", "outcome": "personal data removed"})),
    Holder("inbox_part", "text_parts", "received_at", phone="sender", delete=True),
    Holder("inbox_quarantine", "unreadable_texts", "received_at", phone="sender", delete=True,
           export=("id", "branch_id", "received_at", "pdu")),
    Holder("survey_response", "surveys", "created_at", phone="phone", scrub={"phone": None, "comment": None},
           export=("id", "branch_id", "ticket_id", "score", "comment", "state", "created_at", "answered_at")),
    Holder("reschedule_offer", "reschedule_offers", "created_at", phone="phone", scrub={"phone": None},
           export=("id", "appointment_id", "status", "created_at", "expires_at"), branch=_offer_branch,
           ends=lambda t: (t.c.status == "open", {"status": "expired"})),
)

# Kept of a customer record whose number and name go: the consent given (yes/no, when, how, the
# words agreed to) and a STOP's time. The law asks us to be able to show consent for texts we
# sent; without the number they no longer say whose. Nothing is lost for sending: a text that
# needs consent needs a customer record with this number (messaging/policy.py).
CUSTOMER_EXPORT = ("name", "language", "sms_consent", "consent_at", "consent_source", "consent_text",
                   "opted_out_at", "created_at")


def _table(holder: Holder):
    return db.metadata.tables[holder.table]


def _value(value):
    return value.isoformat() if isinstance(value, datetime) else value


def _of_person(statement, holder, t, number, customer, user):
    """`statement` limited to this person's rows of `t` within the user's reach; None: none can be."""
    value = number if holder.phone else (customer.id if customer is not None else None)
    if value is None:
        return None
    return scope.scoped(statement.where(t.c[holder.key] == value), holder.branch(t), user)


def _customer(session, number) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.phone == number))


def _sees_everything(user) -> bool:
    return scope.branch_ids(user) is None


def export(number, user=None) -> dict:
    """Everything held about `number` within the user's branches (an administrator: all), as
    JSON-ready data. NotFound when nothing is."""
    number = check(number)
    customer = _customer(db.session, number)
    found = {}
    for holder in HOLDERS:
        if not holder.export:
            continue
        t = _table(holder)
        statement = _of_person(select(*(t.c[c] for c in holder.export)), holder, t, number, customer, user)
        rows = db.session.execute(statement.order_by(t.c.id)).mappings().all() if statement is not None else []
        found[holder.section] = [{key: _value(value) for key, value in row.items()} for row in rows]
    if not any(found.values()) and not (customer is not None and _sees_everything(user)):
        raise NotFound(gettext("Nothing is held about this number within your branches."))
    person = {c: _value(getattr(customer, c)) for c in CUSTOMER_EXPORT} if customer is not None else None
    return {"phone": number, "exported_at": clock.now().isoformat(), "customer": person, **found}


def summary(number, user=None) -> dict:
    """How many rows of each kind an erasure would touch: for the confirmation step."""
    number = check(number)
    customer = _customer(db.session, number)
    counts = {}
    for holder in HOLDERS:
        t = _table(holder)
        statement = _of_person(select(db.func.count()).select_from(t), holder, t, number, customer, user)
        counts[holder.section] = db.session.scalar(statement) if statement is not None else 0
    if not any(counts.values()) and not (customer is not None and _sees_everything(user)):
        raise NotFound(gettext("Nothing is held about this number within your branches."))
    return {"customer": customer is not None, **{k: v for k, v in counts.items() if v}}


def erase(number, user=None) -> dict:
    """Erase `number` within the user's branches, in one transaction: what is still to happen is
    cancelled, every row loses the number, the name and the words, and the customer record goes
    too when no branch holds anything more. Returns counts; NotFound when nothing was held."""
    number = check(number)
    counts = {}
    with write_transaction() as session:
        customer = _customer(session, number)
        for holder in HOLDERS:
            t = _table(holder)
            if holder.ends is not None:
                condition, values = holder.ends(t)
                statement = _of_person(update(t).where(condition).values(values), holder, t, number, customer, user)
                if statement is not None:
                    session.execute(statement)
            change = delete(t) if holder.delete else update(t).values(holder.scrub)
            statement = _of_person(change, holder, t, number, customer, user)
            done = session.execute(statement).rowcount if statement is not None else 0
            if done:
                counts[holder.section] = done
        if not counts and not (customer is not None and _sees_everything(user)):
            raise NotFound(gettext("Nothing is held about this number within your branches."))
        if customer is not None and not _held_anywhere(session, number, customer.id):
            customer.phone = customer.name = None  # the consent record stays: see CUSTOMER_EXPORT
            counts["customer"] = 1
    return counts


def _held_anywhere(session, number, customer_id) -> bool:
    for holder in HOLDERS:
        t = _table(holder)
        value = number if holder.phone else customer_id
        if session.scalar(select(t.c.id).where(t.c[holder.key] == value).limit(1)) is not None:
            return True
    return False


# --- the retention job -------------------------------------------------------------------------

# A run's rows are written this many to a transaction, with a pause between two: under gevent
# the scheduler's job shares the one thread with every request and screen, and a thousand rows
# in one transaction held a check-in up for 100-240 ms (a backlog of years at a million tickets).
RETENTION_STEP = 100
# The customers still named are looked through this many to a statement (see _anonymise_customers).
CUSTOMERS_LOOKED_THROUGH = 2000


def anonymise(*, days: int | None = None, batch: int | None = None) -> dict:
    """Anonymise what is older than `days` (RETENTION_DAYS), at most `batch` (RETENTION_BATCH)
    rows per table: safe to run as often as the scheduler likes, each run bounded. Each table's
    candidates come from a partial index of its rows still naming someone (ix_*_identified), so
    a run never walks the history that is already anonymised; they are written RETENTION_STEP
    to a transaction. Returns counts per section."""
    config = current_app.config
    days = days or config["RETENTION_DAYS"]
    batch = batch or config["RETENTION_BATCH"]
    cutoff = clock.now() - timedelta(days=days)
    done = {}
    for holder in HOLDERS:
        t = _table(holder)
        count = 0
        while count < batch:
            step = min(RETENTION_STEP, batch - count)
            with write_transaction() as session:
                ids = session.scalars(candidates(holder, cutoff, step)).all()
                if ids and holder.ends is not None:
                    condition, values = holder.ends(t)
                    session.execute(update(t).where(t.c.id.in_(ids), condition).values(values))
                if ids:
                    change = delete(t) if holder.delete else update(t).values(holder.scrub)
                    session.execute(change.where(t.c.id.in_(ids)))
            count += len(ids)
            if len(ids) < step:
                break
            cooperative.let_others_run()  # (requests and screens first, between two steps)
        if count:
            done[holder.section] = count
    customers = _anonymise_customers(cutoff, batch)
    if customers:
        done["customers"] = customers
    return done


def candidates(holder: Holder, cutoff: datetime, batch: int):
    """The ids of the next rows of `holder` to anonymise, oldest first."""
    t = _table(holder)
    query = select(t.c.id).where(t.c[holder.at] < cutoff)
    if not holder.delete:  # the partial index's condition; deleted rows leave the index by themselves
        query = query.where(t.c[holder.key].is_not(None))
    if holder.still_used is not None:
        query = query.where(~holder.still_used(t))
    return query.order_by(t.c[holder.at]).limit(batch)


def _anonymise_customers(cutoff: datetime, batch: int) -> int:
    """Customers seen last before `cutoff`: none of their tickets or appointments is left linked
    (recent or open ones are), and no text to or from their number is newer. Its cost per run is
    the number of customers still identified, never the history: they are looked through in
    order of creation, a stretch of at most CUSTOMERS_LOOKED_THROUGH to a statement (_stretches),
    with a pause between two (most of them came back lately, and a run that looked at fifty
    thousand at once held every request up)."""
    idle = []
    for holder in HOLDERS:
        t = _table(holder)
        if holder.phone is None:
            idle.append(~exists().where(t.c.customer_id == Customer.id))
        else:
            idle.append(~exists().where(t.c[holder.phone] == Customer.phone, t.c[holder.at] >= cutoff))
    order = (Customer.created_at, Customer.id)
    stretches = _stretches(cutoff)
    stretch, gone = next(stretches), 0
    while gone < batch:
        step = min(RETENTION_STEP, batch - gone)
        gone_quiet = select(Customer.id).where(*stretch, *idle).order_by(*order).limit(step)
        with write_transaction() as session:
            ids = session.scalars(gone_quiet).all()
            if ids:  # the consent record stays: see CUSTOMER_EXPORT
                session.execute(update(Customer).where(Customer.id.in_(ids)).values(phone=None, name=None))
        gone += len(ids)
        if len(ids) < step:  # this stretch holds no more: on to the next (a full step looks through it again)
            stretch = next(stretches, None)
            if stretch is None:
                return gone
        cooperative.let_others_run()
    return gone


def _stretches(cutoff: datetime):
    """The customers still named and created before `cutoff`, in order of creation, as stretches
    of at most CUSTOMERS_LOOKED_THROUGH: the conditions of each, one after the other. Each is a
    range of ix_customer_identified (created_at, id) on both databases, even where thousands of
    customers were created in one instant (an import): the customers before the instant of the
    next stretch's last one, then that instant's own customers by id, a stretch at a time. (Not a
    row value, (created_at, id) > (?, ?): SQLite ranges over its first column only when the
    second is the rowid, and each stretch would read the instant's customers from its first.)"""
    named = or_(Customer.phone.is_not(None), Customer.name.is_not(None))
    instant, after = None, 0  # what was created before `instant`, and in it up to id `after`, is behind
    while True:
        if instant is not None:  # the rest of one instant, by id
            rest = (named, Customer.created_at == instant, Customer.id > after)
            last = db.session.scalar(select(Customer.id).where(*rest).order_by(Customer.id)
                                     .offset(CUSTOMERS_LOOKED_THROUGH - 1).limit(1))
            if last is not None:
                yield (*rest, Customer.id <= last)
                after = last
                continue
            yield rest
        later = () if instant is None else (Customer.created_at > instant,)
        # The instant of the last customer of a whole stretch from here, or None when the rest fits in one.
        last = db.session.scalar(select(Customer.created_at).where(named, *later, Customer.created_at < cutoff)
                                 .order_by(Customer.created_at).offset(CUSTOMERS_LOOKED_THROUGH - 1).limit(1))
        if last is None:
            yield (named, *later, Customer.created_at < cutoff)
            return
        yield (named, *later, Customer.created_at < last)  # fewer than a stretch: that instant is next
        instant, after = last, 0
