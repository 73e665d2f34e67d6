"""The staff inbox: every conversation by number, unread counts, replies through the outbox and
its policy, and the customer's ticket beside it."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import case, func, or_, select

from core import clock
from core.errors import SeedError
from core.extensions import db
from core.models import Appointment, Branch, Customer, Ticket
from messaging import outbox
from messaging.models import InboxMessage, OutboxMessage
from messaging.phones import e164

from . import bp

MAX_REPLY = 600


def _mine(query, model):
    if current_user.branch_id is None:
        return query
    return query.where(or_(model.branch_id.is_(None), model.branch_id == current_user.branch_id))


def conversations():
    rows = db.session.execute(_mine(
        select(InboxMessage.sender, func.max(InboxMessage.received_at), func.count(InboxMessage.id),
               func.sum(case((InboxMessage.read_at.is_(None), 1), else_=0)))
        .group_by(InboxMessage.sender), InboxMessage)).all()
    result = []
    for sender, last, total, unread in sorted(rows, key=lambda r: r[1], reverse=True):
        waiting = db.session.scalar(_mine(select(func.count(InboxMessage.id)).where(
            InboxMessage.sender == sender, InboxMessage.status.in_(("unhandled", "failed"))), InboxMessage))
        customer = db.session.scalar(select(Customer).where(Customer.phone == sender))
        result.append({"number": sender, "last": last, "total": total, "unread": int(unread or 0),
                       "needs_staff": waiting, "name": customer.name if customer else None})
    return result


@bp.get("/inbox")
@login_required
def inbox_page():
    return render_template("staff/inbox.html", conversations=conversations(), counter=None)


def _thread(number):
    incoming = db.session.scalars(_mine(select(InboxMessage).where(InboxMessage.sender == number), InboxMessage)).all()
    outgoing = db.session.scalars(_mine(select(OutboxMessage).where(OutboxMessage.to == number), OutboxMessage)).all()
    items = [{"direction": "in", "at": m.sent_at or m.received_at, "body": m.body, "status": m.status,
              "note": m.outcome, "id": m.id} for m in incoming]
    items += [{"direction": "out", "at": m.sent_at or m.created_at, "body": m.body, "status": m.status,
               "note": m.policy_note or m.last_error, "kind": m.kind, "id": m.id} for m in outgoing]
    return sorted(items, key=lambda item: (item["at"], item["direction"] == "out"))


@bp.get("/inbox/<number>")
@login_required
def conversation(number):
    if not number.startswith("+") or not number[1:].isdigit():
        abort(404)
    thread = _thread(number)
    if not thread:
        abort(404, "No conversation with this number.")
    now = clock.now()
    for message in db.session.scalars(_mine(select(InboxMessage).where(
            InboxMessage.sender == number, InboxMessage.read_at.is_(None)), InboxMessage)):
        message.read_at = now
    db.session.commit()
    customer = db.session.scalar(select(Customer).where(Customer.phone == number))
    tickets = db.session.scalars(select(Ticket).where(Ticket.customer_id == customer.id)
                                 .order_by(Ticket.arrived_at.desc()).limit(3)).all() if customer else []
    booked = db.session.scalars(select(Appointment).where(Appointment.customer_id == customer.id)
                                .order_by(Appointment.starts_at.desc()).limit(3)).all() if customer else []
    return render_template("staff/conversation.html", number=number, thread=thread, customer=customer,
                           tickets=tickets, appointments=booked, counter=None, max_reply=MAX_REPLY)


@bp.post("/inbox/<number>/reply")
@login_required
def reply(number):
    text = (request.form.get("body") or "").strip()
    try:
        number = e164(number)
        if not text or len(text) > MAX_REPLY:
            raise SeedError(f"Write a reply of 1 to {MAX_REPLY} characters.")
        branch_id = current_user.branch_id or db.session.scalar(select(InboxMessage.branch_id).where(
            InboxMessage.sender == number).order_by(InboxMessage.id.desc()).limit(1))
        branch = db.session.get(Branch, branch_id) if branch_id else db.session.scalar(select(Branch).order_by(Branch.id))
        if branch is not None and not text.startswith(branch.sender_name):
            text = f"{branch.sender_name}: {text}"  # every text names the business
        outbox.enqueue(number, text, "reply", branch_id=branch.id if branch else None)
        flash("Reply queued. It goes out as soon as the modem is free (the sending policy still applies).", "ok")
    except SeedError as error:
        flash(error.message, "error")
    return redirect(url_for("staff.conversation", number=number))


@bp.post("/inbox/message/<int:message_id>/done")
@login_required
def mark_done(message_id):
    message = db.session.get(InboxMessage, message_id)
    if message is None:
        abort(404)
    message.status, message.outcome, message.handled_at = "handled", f"done by {current_user.username}"[:40], clock.now()
    db.session.commit()
    return redirect(url_for("staff.conversation", number=message.sender))
