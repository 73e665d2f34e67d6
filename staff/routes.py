"""The staff console: pick a counter, call and serve tickets (logging in: account.py). Thin: forms in, core, render."""
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from sqlalchemy import select

from core import appointments, audit, auth, clock, customers, engine, language, scope
from core.errors import NotFound, SeedError, ValidationError
from core.extensions import db
from core.models import Appointment, Counter, Service, Ticket
from core.queries import counter_snapshot, queue_snapshot

from . import bp
from .outbox import console_texting


def _counters():
    return db.session.scalars(scope.scoped(select(Counter), Counter).order_by(Counter.branch_id, Counter.id)).all()


def _by_branch(counters) -> list[tuple]:
    """(branch, its counters) for every branch within reach, by branch name."""
    return [(branch, [c for c in counters if c.branch_id == branch.id]) for branch in scope.branches()]


def _my_counter():
    """The counter picked this session, while the person works in its branch (the header's
    switcher moves them to another branch, and the console to that branch's counters)."""
    try:
        counter = scope.owned(Counter, session.get("counter_id") or 0)
    except NotFound:
        return None
    picked = language.chosen_branch()
    return counter if picked is None or picked.id == counter.branch_id else None


@bp.route("/counter", methods=["GET", "POST"])
@login_required
def choose_counter():
    counters = _counters()
    if request.method == "POST":
        counter = next((c for c in counters if str(c.id) == request.form.get("counter_id")), None)
        if counter is None:
            flash(gettext("Choose one of the counters listed."), "error")
            return render_template("staff/counter.html", groups=_by_branch(counters)), 400
        engine.set_counter_open(counter.id, True, staff=current_user)
        session["counter_id"] = counter.id
        language.choose_branch(counter.branch_id)
        return redirect(url_for("staff.console"))
    return render_template("staff/counter.html", groups=_by_branch(counters))


@bp.post("/branch")
@login_required
def switch_branch():
    """The header's switcher: work in another branch within reach (404 for any other); the
    console, the inbox and the outbox follow it."""
    ident = request.form.get("branch", type=int)
    if ident is None:
        raise ValidationError(gettext("Choose one of the branches listed."), {"branch": "required"})
    language.choose_branch(ident)
    return redirect(_same_site(request.form.get("next")))


def _same_site(target) -> str:
    """A path on this site to go back to; never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("staff.console")


def _console_context(counter):
    services = db.session.scalars(
        select(Service).where(Service.branch_id == counter.branch_id, Service.active.is_(True)).order_by(Service.code)
    ).all()
    spoken = language.current_language()
    return {
        "counter": counter,
        "current": counter_snapshot(counter)["ticket"],
        "queues": queue_snapshot(counter.branch_id),
        "services": services,
        "service_names": {s.code: s.name_in(spoken) for s in counter.branch.services},
        "serves": {s.id for s in counter.services},
        **console_texting(counter.branch),  # "modems" and "degraded": the modem line and why texting is degraded
        "appointments": _todays_appointments(counter.branch),
        "shortcuts": current_user.shortcuts,
        "plan": CURRENT_PLAN,
        "confirmable": CONFIRM,
        "confirm_question": lambda action, ticket: CONFIRM[action][0](ticket),
        "confirm_yes": lambda action: CONFIRM[action][1](),
        "confirm": None,
    }


# The ticket at the counter: per state, the one obvious next step (the big button), the other
# usual ones beside it, and the rest under "More actions". Nothing current: "Call next" is the big one.
CURRENT_PLAN = {
    "called": {"primary": "start", "secondary": ("recall", "no-show"), "more": ("complete", "hold", "transfer")},
    "serving": {"primary": "complete", "secondary": (), "more": ("hold", "transfer")},
}
# Actions that end a customer's visit ask first: the form is posted again with confirm=1
# (console.js asks in a <dialog>; without JS the console shows the question).
CONFIRM = {
    "no-show": (lambda ticket: gettext("Mark %(ticket)s as a no-show?", ticket=ticket),
                lambda: gettext("Mark as no-show")),
    "cancel": (lambda ticket: gettext("Cancel ticket %(ticket)s?", ticket=ticket),
               lambda: gettext("Cancel the ticket")),
}


def _todays_appointments(branch):
    from datetime import datetime, time, timedelta

    start = datetime.combine(branch.local_date(clock.now()), time.min, tzinfo=branch.zone)
    rows = db.session.scalars(select(Appointment).where(
        Appointment.branch_id == branch.id, Appointment.starts_at >= start,
        Appointment.starts_at < start + timedelta(days=1)).order_by(Appointment.starts_at)).all()
    return [{"id": a.id, "time": language.local_time(a.starts_at, branch), "code": a.booking_code,
             "service": a.service.code, "status": a.status, "late": a.late_minutes,
             "name": a.customer.name if a.customer else None} for a in rows]


@bp.get("/")
@login_required
def console():
    counter = _my_counter()
    if counter is None:
        return redirect(url_for("staff.choose_counter"))
    return render_template("staff/console.html", **_console_context(counter))


@bp.get("/panel")
@login_required
@auth.background
def panel():
    """The console's live part, fetched again by the page when the branch's queue changed (staff/live.py)."""
    counter = _my_counter()
    if counter is None:
        return "", 409
    return render_template("staff/_panel.html", **_console_context(counter))


@bp.post("/counter/call-next")
@login_required
def call_next():
    counter = _my_counter()
    if counter is None:
        return redirect(url_for("staff.choose_counter"))
    try:
        ticket = engine.call_next(counter.id, staff=current_user)
        if ticket is None:
            flash(gettext("Nobody is waiting."), "info")
        else:
            flash(gettext("Called %(ticket)s to counter %(counter)s.", ticket=ticket.label, counter=counter.name), "ok")
    except SeedError as error:
        flash(error.message, "error")
    return redirect(url_for("staff.console"))


@bp.post("/counter/close")
@login_required
def close_counter():
    counter = _my_counter()
    if counter is not None:
        try:
            engine.set_counter_open(counter.id, False, staff=current_user)
            session.pop("counter_id", None)
            flash(gettext("Counter %(name)s closed.", name=counter.name), "ok")
            return redirect(url_for("staff.choose_counter"))
        except SeedError as error:
            flash(error.message, "error")
    return redirect(url_for("staff.console"))


ACTIONS = {
    "recall": lambda t, f, u: engine.recall(t, staff=u),
    "start": lambda t, f, u: engine.start_serving(t, staff=u),
    "complete": lambda t, f, u: engine.complete(t, staff=u),
    "no-show": lambda t, f, u: engine.no_show(t, staff=u),
    "hold": lambda t, f, u: engine.hold(t, staff=u),
    "unhold": lambda t, f, u: engine.unhold(t, staff=u),
    "cancel": lambda t, f, u: engine.cancel(t, staff=u),
    "late": lambda t, f, u: engine.running_late(t, _minutes(f), staff=u),
    "transfer": lambda t, f, u: engine.transfer(t, _service_id(f), staff=u),
}


def _done_words(action: str, ticket: str) -> str:
    return {
        "recall": gettext("Recalled %(ticket)s.", ticket=ticket),
        "start": gettext("Serving %(ticket)s.", ticket=ticket),
        "complete": gettext("Completed %(ticket)s.", ticket=ticket),
        "no-show": gettext("No-show: %(ticket)s.", ticket=ticket),
        "hold": gettext("On hold: %(ticket)s.", ticket=ticket),
        "unhold": gettext("Back in the queue: %(ticket)s.", ticket=ticket),
        "cancel": gettext("Cancelled %(ticket)s.", ticket=ticket),
        "late": gettext("Running late: %(ticket)s.", ticket=ticket),
        "transfer": gettext("Transferred %(ticket)s.", ticket=ticket),
    }[action]


def _minutes(form):
    try:
        return int(form.get("minutes", ""))
    except ValueError:
        raise ValidationError(gettext("Minutes late must be a whole number.")) from None


def _service_id(form):
    try:
        return int(form.get("service_id", ""))
    except ValueError:
        raise ValidationError(gettext("Choose the service to transfer to.")) from None


@bp.post("/tickets/<int:ticket_id>/<action>")
@login_required
def ticket_action(ticket_id, action):
    if action not in ACTIONS:
        raise NotFound(gettext("There is no action %(action)s.", action=action[:20]))
    counter = _my_counter()

    ticket = scope.owned(Ticket, ticket_id, "Ticket")
    if action in CONFIRM and request.form.get("confirm") != "1":
        if counter is None:
            return redirect(url_for("staff.choose_counter"))
        question, yes = CONFIRM[action]
        asked = {"action": action, "ticket": ticket, "question": question(ticket.label), "yes": yes()}
        return render_template("staff/console.html", **{**_console_context(counter), "confirm": asked})
    try:
        done = ACTIONS[action](ticket_id, request.form, current_user)
        flash(_done_words(action, done.label), "ok")
    except SeedError as error:
        flash(error.message, "error")
    return redirect(url_for("staff.console") if counter else url_for("staff.choose_counter"))


@bp.post("/appointments")
@login_required
def book_appointment():
    """Book from the console: service, branch-local date and time, optional phone and name, and the
    language its texts go out in (one the branch offers; its default when none is chosen)."""
    from datetime import datetime

    from kiosk.checkin import check_phone, clean_name

    counter = _my_counter()
    if counter is None:
        return redirect(url_for("staff.choose_counter"))
    branch = counter.branch
    form = request.form
    try:
        service = next((s for s in branch.services if str(s.id) == form.get("service_id")), None)
        if service is None:
            raise ValidationError(gettext("Choose a service."))
        try:
            starts_at = datetime.fromisoformat(form.get("starts_at", "")).replace(tzinfo=branch.zone)
        except ValueError:
            raise ValidationError(gettext("Give the date and time of the appointment.")) from None
        phone = check_phone(form["phone"], branch)["e164"] if form.get("phone") else None
        name = clean_name(form.get("name") or None)
        spoken = appointments.booking_language(branch, form.get("language") or None)
        customer_id = None
        if phone or name:
            customer_id = customers.remember(
                phone, name=name, language=spoken,
                consent_source="staff" if phone and form.get("sms_consent") == "yes" else None,
                consent_text=f"Agreed with {current_user.username} when booking")
        appointment = appointments.book(service.id, starts_at, customer_id=customer_id, language=spoken)
        flash(gettext("Booked %(when)s, code %(code)s.", when=language.local_datetime(appointment.starts_at, branch),
                      code=appointment.booking_code), "ok")
    except SeedError as error:
        flash(error.message, "error")
    return redirect(url_for("staff.console"))


@bp.post("/appointments/<int:appointment_id>/cancel")
@login_required
def cancel_appointment(appointment_id):
    appointment = scope.owned(Appointment, appointment_id, "Appointment")
    try:
        appointments.cancel(appointment_id)
        audit.record("appointment.cancelled", target=f"appointment:{appointment_id}", branch_id=appointment.branch_id)
        flash(gettext("Appointment cancelled."), "ok")
    except SeedError as error:
        flash(error.message, "error")
    return redirect(url_for("staff.console"))


@bp.post("/appointments/<int:appointment_id>/move")
@login_required
def move_appointment(appointment_id):
    """Edit the time of an appointment; the new slot is checked like a new booking."""
    from datetime import datetime

    appointment = scope.owned(Appointment, appointment_id, "Appointment")
    try:
        try:
            starts_at = datetime.fromisoformat(request.form.get("starts_at", "")).replace(tzinfo=appointment.branch.zone)
        except ValueError:
            raise ValidationError(gettext("Give the new date and time.")) from None
        appointments.reschedule(appointment_id, starts_at)
        audit.record("appointment.moved", target=f"appointment:{appointment_id}", branch_id=appointment.branch_id,
                     detail={"to": starts_at.isoformat()})
        flash(gettext("Appointment %(code)s moved to %(when)s.", code=appointment.booking_code,
                      when=language.local_datetime(starts_at, appointment.branch)), "ok")
    except SeedError as error:
        flash(error.message, "error")
    return redirect(url_for("staff.console"))
