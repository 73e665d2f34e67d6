"""The staff console: pick a counter, call and serve tickets (logging in: account.py). Thin: forms in, core, render."""
from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from core import appointments, audit, auth, clock, customers, engine, scope
from core.errors import NotFound, SeedError, ValidationError
from core.extensions import db
from core.models import Appointment, Counter, Service, Ticket
from core.queries import counter_snapshot, queue_snapshot

from . import bp
from .outbox import console_texting


def _counters():
    return db.session.scalars(scope.scoped(select(Counter), Counter).order_by(Counter.branch_id, Counter.id)).all()


def _my_counter():
    try:
        return scope.owned(Counter, session.get("counter_id") or 0)
    except NotFound:
        return None


@bp.route("/counter", methods=["GET", "POST"])
@login_required
def choose_counter():
    if request.method == "POST":
        counter = next((c for c in _counters() if str(c.id) == request.form.get("counter_id")), None)
        if counter is None:
            flash("Choose one of the counters listed.", "error")
            return render_template("staff/counter.html", counters=_counters()), 400
        engine.set_counter_open(counter.id, True, staff=current_user)
        session["counter_id"] = counter.id
        return redirect(url_for("staff.console"))
    return render_template("staff/counter.html", counters=_counters())


def _console_context(counter):
    services = db.session.scalars(
        select(Service).where(Service.branch_id == counter.branch_id, Service.active.is_(True)).order_by(Service.code)
    ).all()
    return {
        "counter": counter,
        "current": counter_snapshot(counter)["ticket"],
        "queues": queue_snapshot(counter.branch_id),
        "services": services,
        "serves": {s.id for s in counter.services},
        **console_texting(counter.branch),  # "modems" and "texting": the modem line, "degraded", the outbox link
        "appointments": _todays_appointments(counter.branch),
        "now_local": counter.branch.local(clock.now()),
    }


def _todays_appointments(branch):
    from datetime import datetime, time, timedelta

    start = datetime.combine(branch.local_date(clock.now()), time.min, tzinfo=branch.zone)
    rows = db.session.scalars(select(Appointment).where(
        Appointment.branch_id == branch.id, Appointment.starts_at >= start,
        Appointment.starts_at < start + timedelta(days=1)).order_by(Appointment.starts_at)).all()
    return [{"id": a.id, "time": branch.local(a.starts_at).strftime("%H:%M"), "code": a.booking_code,
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
    """The console's live part, re-fetched every few seconds by the page."""
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
            flash("Nobody is waiting.", "info")
        else:
            flash(f"Called {ticket.label} to counter {counter.name}.", "ok")
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
            flash(f"Counter {counter.name} closed.", "ok")
            return redirect(url_for("staff.choose_counter"))
        except SeedError as error:
            flash(error.message, "error")
    return redirect(url_for("staff.console"))


ACTIONS = {
    "recall": ("Recalled", lambda t, f, u: engine.recall(t, staff=u)),
    "start": ("Serving", lambda t, f, u: engine.start_serving(t, staff=u)),
    "complete": ("Completed", lambda t, f, u: engine.complete(t, staff=u)),
    "no-show": ("No-show:", lambda t, f, u: engine.no_show(t, staff=u)),
    "hold": ("On hold:", lambda t, f, u: engine.hold(t, staff=u)),
    "unhold": ("Back in the queue:", lambda t, f, u: engine.unhold(t, staff=u)),
    "cancel": ("Cancelled", lambda t, f, u: engine.cancel(t, staff=u)),
    "late": ("Running late:", lambda t, f, u: engine.running_late(t, _minutes(f), staff=u)),
    "transfer": ("Transferred", lambda t, f, u: engine.transfer(t, _service_id(f), staff=u)),
}


def _minutes(form):
    try:
        return int(form.get("minutes", ""))
    except ValueError:
        raise ValidationError("Minutes late must be a whole number.") from None


def _service_id(form):
    try:
        return int(form.get("service_id", ""))
    except ValueError:
        raise ValidationError("Choose the service to transfer to.") from None


@bp.post("/tickets/<int:ticket_id>/<action>")
@login_required
def ticket_action(ticket_id, action):
    if action not in ACTIONS:
        raise NotFound(f"Unknown action {action[:20]!r}.")
    counter = _my_counter()

    scope.owned(Ticket, ticket_id, "Ticket")
    words, run = ACTIONS[action]
    try:
        done = run(ticket_id, request.form, current_user)
        flash(f"{words} {done.label}.", "ok")
    except SeedError as error:
        flash(error.message, "error")
    return redirect(url_for("staff.console") if counter else url_for("staff.choose_counter"))


@bp.post("/appointments")
@login_required
def book_appointment():
    """Book from the console: service, branch-local date and time, optional phone and name."""
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
            raise ValidationError("Choose a service.")
        try:
            starts_at = datetime.fromisoformat(form.get("starts_at", "")).replace(tzinfo=branch.zone)
        except ValueError:
            raise ValidationError("Give the date and time of the appointment.") from None
        phone = check_phone(form["phone"], branch)["e164"] if form.get("phone") else None
        name = clean_name(form.get("name") or None)
        customer_id = None
        if phone or name:
            customer_id = customers.remember(
                phone, name=name, consent_source="staff" if phone and form.get("sms_consent") == "yes" else None,
                consent_text=f"Agreed with {current_user.username} when booking")
        appointment = appointments.book(service.id, starts_at, customer_id=customer_id)
        flash(f"Booked {branch.local(appointment.starts_at):%Y-%m-%d %H:%M}, code {appointment.booking_code}.", "ok")
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
        flash("Appointment cancelled.", "ok")
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
            raise ValidationError("Give the new date and time.") from None
        appointments.reschedule(appointment_id, starts_at)
        audit.record("appointment.moved", target=f"appointment:{appointment_id}", branch_id=appointment.branch_id,
                     detail={"to": starts_at.isoformat()})
        flash(f"Appointment {appointment.booking_code} moved to {starts_at:%Y-%m-%d %H:%M}.", "ok")
    except SeedError as error:
        flash(error.message, "error")
    return redirect(url_for("staff.console"))
