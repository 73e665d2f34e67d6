"""The staff inbox: every conversation by number, unread counts, replies through the outbox and
its policy, and the customer's ticket beside it."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from sqlalchemy import case, func, select

from core import audit, clock, language, privacy, scope
from core.errors import NotFound, SeedError
from core.extensions import db
from core.models import Appointment, Branch, Customer, Ticket
from messaging import inbox, outbox
from messaging.models import InboxMessage, OutboxMessage

from . import bp
from .outbox import status_words

MAX_REPLY = 600


def _mine(query, model):
    return scope.scoped(query, model)


def _listed(query):
    """The inbox list's texts: within reach and, once a branch is picked in the header, that
    branch's (an administrator also keeps the texts no branch knows yet: only they can give one)."""
    query = _mine(query, InboxMessage)
    picked = language.chosen_branch()
    if picked is None:
        return query
    if scope.branch_ids() is None:
        return query.where((InboxMessage.branch_id == picked.id) | InboxMessage.branch_id.is_(None))
    return query.where(InboxMessage.branch_id == picked.id)


def _zones(branch_ids) -> dict:
    """Each branch's time zone, for rows of several branches (a row of none: the reader's branch's)."""
    ids = sorted(i for i in branch_ids if i is not None)
    return {b.id: b.zone for b in db.session.scalars(select(Branch).where(Branch.id.in_(ids)))} if ids else {}


def conversations():
    rows = db.session.execute(_listed(
        select(InboxMessage.sender, func.max(InboxMessage.received_at), func.count(InboxMessage.id),
               func.sum(case((InboxMessage.read_at.is_(None), 1), else_=0)), func.max(InboxMessage.branch_id))
        .where(InboxMessage.sender.is_not(None))  # anonymised texts belong to no conversation
        .group_by(InboxMessage.sender))).all()
    zones = _zones({row[4] for row in rows})
    result = []
    for sender, last, total, unread, branch_id in sorted(rows, key=lambda r: r[1], reverse=True):
        waiting = db.session.scalar(_listed(select(func.count(InboxMessage.id)).where(
            InboxMessage.sender == sender, InboxMessage.status.in_(("unhandled", "failed")))))
        customer = db.session.scalar(select(Customer).where(Customer.phone == sender))
        result.append({"number": sender, "last": last, "zone": zones.get(branch_id), "total": total,
                       "unread": int(unread or 0), "needs_staff": waiting, "name": customer.name if customer else None})
    return result


@bp.get("/inbox")
@login_required
def inbox_page():
    return render_template("staff/inbox.html", conversations=conversations(), counter=None)


def _thread(number):
    incoming = db.session.scalars(_mine(select(InboxMessage).where(InboxMessage.sender == number), InboxMessage)).all()
    outgoing = db.session.scalars(_mine(select(OutboxMessage).where(OutboxMessage.to == number), OutboxMessage)).all()
    items = [{"direction": "in", "at": m.sent_at or m.received_at, "body": m.body, "status": m.status,
              "note": m.outcome, "id": m.id, "branch_id": m.branch_id} for m in incoming]
    items += [{"direction": "out", "at": m.sent_at or m.created_at, "body": m.body, "status": m.status,
               "note": m.policy_note or m.last_error, "kind": m.kind, "id": m.id, "branch_id": m.branch_id}
              for m in outgoing]
    return sorted(items, key=lambda item: (item["at"], item["direction"] == "out"))


@bp.get("/inbox/<number>")
@login_required
def conversation(number):
    if not number.startswith("+") or not number[1:].isdigit():
        abort(404)
    thread = _thread(number)
    if not thread:
        abort(404, gettext("No conversation with this number."))
    now = clock.now()
    for message in db.session.scalars(_mine(select(InboxMessage).where(
            InboxMessage.sender == number, InboxMessage.read_at.is_(None)), InboxMessage)):
        message.read_at = now
    db.session.commit()
    customer = db.session.scalar(select(Customer).where(Customer.phone == number))
    tickets = db.session.scalars(_mine(select(Ticket).where(Ticket.customer_id == customer.id), Ticket)
                                 .order_by(Ticket.arrived_at.desc()).limit(3)).all() if customer else []
    booked = db.session.scalars(_mine(select(Appointment).where(Appointment.customer_id == customer.id), Appointment)
                                .order_by(Appointment.starts_at.desc()).limit(3)).all() if customer else []
    unassigned = next((m["id"] for m in thread if m["direction"] == "in" and m["branch_id"] is None), None)
    return render_template("staff/conversation.html", number=number, thread=thread, customer=customer,
                           tickets=tickets, appointments=booked, counter=None, max_reply=MAX_REPLY,
                           zones=_zones({m["branch_id"] for m in thread}), status_names=status_words(),
                           unassigned=unassigned, branches=scope.branches() if unassigned else [])


@bp.post("/inbox/<number>/reply")
@login_required
def reply(number):
    latest = db.session.scalar(_mine(select(InboxMessage).where(InboxMessage.sender == number), InboxMessage)
                               .order_by(InboxMessage.id.desc()).limit(1))
    if latest is None:
        raise NotFound(gettext("No conversation with this number."))
    # the branch the customer wrote to; a text no branch knew yet: the admin's first branch
    branch = db.session.get(Branch, latest.branch_id) if latest.branch_id else scope.branch()
    text = (request.form.get("body") or "").strip()
    try:
        if not text or len(text) > MAX_REPLY:
            raise SeedError(gettext("Write a reply of 1 to %(count)s characters.", count=MAX_REPLY))
        if not text.startswith(branch.sender_name):
            text = f"{branch.sender_name}: {text}"  # every text names the business
        outbox.enqueue(number, text, "reply", branch_id=branch.id)
        audit.record("text.sent", target=privacy.target(number), branch_id=branch.id, detail={"kind": "reply"})
        flash(gettext("Reply queued. It goes out as soon as the modem is free (the sending policy still applies)."),
              "ok")
    except SeedError as error:
        flash(error.message, "error")
    return redirect(url_for("staff.conversation", number=number))


@bp.post("/inbox/message/<int:message_id>/done")
@login_required
def mark_done(message_id):
    message = scope.owned(InboxMessage, message_id, "Message")
    message.status, message.outcome, message.handled_at = "handled", f"done by {current_user.username}"[:40], clock.now()
    db.session.commit()
    return redirect(url_for("staff.conversation", number=message.sender))


@bp.post("/inbox/message/<int:message_id>/assign")
@login_required
@scope.require_role("admin")
def assign(message_id):
    """A text from a number no branch knew: an admin gives it (and the rest of that number's
    unassigned texts) to a branch, whose staff then see the conversation."""
    message = scope.owned(InboxMessage, message_id, "Message")
    branch = scope.owned(Branch, request.form.get("branch_id", type=int) or 0, "Branch")
    inbox.assign(message.sender, branch.id)
    audit.record("inbox.assigned", target=privacy.target(message.sender), branch_id=branch.id)
    flash(gettext("The conversation now belongs to %(branch)s.", branch=branch.name), "ok")
    return redirect(url_for("staff.conversation", number=message.sender))
