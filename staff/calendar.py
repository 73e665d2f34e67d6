"""The appointments calendar: a branch's service by day or by week, each slot with its appointments
and free places, in the branch's time zone and the reader's language. A free slot opens a booking
form; an appointment's page moves it (to a free slot chosen on the calendar), cancels it (after a
question) and corrects whom it is for. Thin: arguments checked, core called, an audit entry written,
a page rendered. Every row is reached through the scope rule (core/scope.py)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from babel.dates import format_date
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext, pgettext
from flask_login import current_user, login_required

from core import appointments, audit, clock, language, scope
from core.errors import SeedError, ValidationError
from core.models import Appointment, Branch, Service
from core.storefront import offered_languages
from core.web import MAX_ID, arg_number, day as a_day, moment

from . import bp

VIEWS = {"day": 1, "week": 7}
SLOT_FORMAT = "%Y-%m-%dT%H:%M"  # a slot in links and forms: the branch's wall clock


# --- words -------------------------------------------------------------------------------------

def _speaks() -> str:
    return language.current_language()


def day_words(day: date) -> dict:
    """A day as the calendar names it, in the reader's language: "Monday 2026-03-02"."""
    speaks = _speaks()
    weekday, short = format_date(day, "EEEE", locale=speaks), format_date(day, "EEE", locale=speaks)
    written = language.local_date(day)
    return {"weekday": weekday, "short": short, "date": written,
            "long": pgettext("calendar day", "%(weekday)s %(date)s", weekday=weekday, date=written)}


def _first_name(customer) -> str:
    """The calendar shows the first word of a name only: a screen that others may see."""
    return (customer.name or "").split()[0] if customer is not None and customer.name else ""


# --- reading the request -----------------------------------------------------------------------

def _service_of(branch: Branch, ident) -> Service | None:
    """The branch's service `ident`, else its first taking tickets, else its first; None: it has none."""
    services = branch.services
    chosen = next((s for s in services if s.id == ident), None)
    return chosen or next((s for s in services if s.active), None) or (services[0] if services else None)


def _view(args) -> str:
    return args.get("view") if args.get("view") in VIEWS else "day"


def _slot_time(raw, branch: Branch) -> datetime:
    return moment(raw, "starts_at", zone=branch.zone)


def _form_id(form, key: str, message: str) -> int:
    raw = form.get(key, "")
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        raise ValidationError(message, {key: "required"})
    return int(raw)


def calendar_url(service: Service, day: date, view="day", **extra) -> str:
    return url_for("staff.calendar_page", branch=service.branch_id, service=service.id, day=day.isoformat(),
                   view=view, **extra)


# --- the calendar ------------------------------------------------------------------------------

def _entry(appointment: Appointment, moving: Appointment | None) -> dict:
    return {"id": appointment.id, "code": appointment.booking_code, "name": _first_name(appointment.customer),
            "status": appointment.status, "moving": moving is not None and moving.id == appointment.id,
            "time": language.local_time(appointment.starts_at, appointment.branch),
            "at": appointment.starts_at.isoformat()}


def _cell(slot, held, moving) -> dict:
    return {"slot": slot, "at": slot.starts_at.strftime(SLOT_FORMAT), "key": slot.starts_at.strftime("%Y%m%d%H%M"),
            "appointments": [_entry(a, moving) for a in held], "places": max(slot.capacity - slot.booked, 0)}


def _grid(days: list, branch: Branch, moving) -> dict:
    """Rows of times (the union of every day's slot times), a cell per day (None: no slot then)."""
    cells = {(d.day, c["at"][11:]): c for d in days for c in (_cell(s, held, moving) for s, held in d.slots)}
    times = sorted({at for _day, at in cells})
    sample = days[0].day
    rows = [{"key": at.replace(":", ""),
             "time": language.local_time(datetime.combine(sample, datetime.strptime(at, "%H:%M").time(),
                                                          tzinfo=branch.zone)),
             "cells": [cells.get((d.day, at)) for d in days]} for at in times]
    return {"rows": rows, "columns": [{"day": d, "words": day_words(d.day), "key": d.day.strftime("%Y%m%d"),
                                       "others": [_entry(a, moving) for a in d.others]} for d in days]}


@bp.get("/calendar")
@login_required
def calendar_page():
    args = request.args
    moving = None
    if args.get("move"):
        moving = scope.owned(Appointment, arg_number("move"), "Appointment")
        if moving.status not in appointments.ACTIVE:  # its page says what it is, and offers no move
            return redirect(url_for("staff.calendar_appointment", appointment_id=moving.id))
        branch, service = moving.branch, moving.service
    else:
        ident = arg_number("branch")
        branch = scope.branch(ident) if ident is not None else (language.working_branch() or scope.branch())
        service = _service_of(branch, arg_number("service"))
    today = branch.local_date(clock.now())
    shown = a_day(args["day"], "day") if args.get("day") else (
        branch.local_date(moving.starts_at) if moving is not None else today)
    view = _view(args)
    first = shown - timedelta(days=shown.weekday()) if view == "week" else shown
    days = appointments.calendar(service, first, VIEWS[view]) if service is not None else []
    step = timedelta(days=VIEWS[view])
    extra = {"move": moving.id} if moving is not None else {}
    context = {
        "counter": None, "branch": branch, "branches": scope.branches(), "service": service, "view": view,
        "shown": shown, "today": today, "first": first, "days": days, "moving": moving,
        "grid": _grid(days, branch, moving) if days else None,
        "words": {d.day: day_words(d.day) for d in days}, "zone": branch.timezone,
        "link": (lambda d, v=view: calendar_url(service, d, v, **extra)) if service is not None else None,
        "earlier": first - step, "later": first + step,
        "moving_when": language.local_datetime(moving.starts_at, branch) if moving is not None else None,
        "range": pgettext("date range", "%(first)s – %(last)s", first=language.local_date(first),
                          last=language.local_date(first + step - timedelta(days=1))),
    }
    return render_template("staff/calendar.html", **context)


# --- booking a free slot -----------------------------------------------------------------------

def _booking_page(service: Service, starts_at: datetime, values: dict, error: SeedError | None = None, status=200):
    branch = service.branch
    return render_template(
        "staff/calendar_book.html", counter=None, branch=branch, service=service, starts_at=starts_at,
        at=starts_at.strftime(SLOT_FORMAT), when=language.local_datetime(starts_at, branch), values=values,
        languages=offered_languages(branch), error=error, invalid=(error.detail or {}) if error else {},
        back=calendar_url(service, branch.local_date(starts_at))), status


@bp.get("/calendar/book")
@login_required
def calendar_book_form():
    service = scope.owned(Service, arg_number("service") or 0, "Service")
    starts_at = _slot_time(request.args.get("starts_at"), service.branch)
    return _booking_page(service, starts_at, {"language": appointments.booking_language(service.branch, None)})


@bp.post("/calendar/book")
@login_required
def calendar_book():
    form = request.form
    service = scope.owned(Service, _form_id(form, "service", gettext("Choose a service.")), "Service")
    branch = service.branch
    starts_at = _slot_time(form.get("starts_at"), branch)
    values = {key: form.get(key, "") for key in ("name", "phone", "language", "sms_consent")}
    try:
        booked = appointments.book_for(
            service.id, starts_at, name=values["name"], phone=values["phone"], language=values["language"] or None,
            consent=f"Agreed with {current_user.username} when booking" if values["sms_consent"] == "yes" else None)
    except SeedError as error:
        return _booking_page(service, starts_at, values, error, error.status)
    audit.record("appointment.booked", target=f"appointment:{booked.id}", branch_id=branch.id,
                 detail={"code": booked.booking_code, "starts_at": starts_at.isoformat()})
    flash(gettext("Booked %(when)s, code %(code)s.", when=language.local_datetime(booked.starts_at, branch),
                  code=booked.booking_code), "ok")
    return redirect(calendar_url(service, branch.local_date(starts_at)) + f"#appointment-{booked.id}")


# --- one appointment: its page, move, cancel, whom it is for -----------------------------------

def _appointment_page(appointment: Appointment, *, values=None, error=None, confirm=False, status=200):
    branch, customer = appointment.branch, appointment.customer
    service, day = appointment.service, branch.local_date(appointment.starts_at)
    if values is None:
        values = {"name": customer.name if customer else "", "phone": customer.phone if customer else "",
                  "language": appointment.language or (customer.language if customer else None)
                  or appointments.booking_language(branch, None)}
    return render_template(
        "staff/calendar_appointment.html", counter=None, appointment=appointment, branch=branch, customer=customer,
        when=language.local_datetime(appointment.starts_at, branch), values=values,
        languages=offered_languages(branch), error=error, invalid=(error.detail or {}) if error else {},
        active=appointment.status in appointments.ACTIVE, confirm=confirm,
        back=calendar_url(service, day) + f"#appointment-{appointment.id}",
        move=calendar_url(service, day, "week", move=appointment.id)), status


@bp.get("/calendar/appointments/<int:appointment_id>")
@login_required
def calendar_appointment(appointment_id):
    return _appointment_page(scope.owned(Appointment, appointment_id, "Appointment"))


@bp.post("/calendar/appointments/<int:appointment_id>/move")
@login_required
def calendar_move(appointment_id):
    appointment = scope.owned(Appointment, appointment_id, "Appointment")
    branch, service = appointment.branch, appointment.service
    starts_at = _slot_time(request.form.get("starts_at"), branch)
    try:
        appointments.reschedule(appointment_id, starts_at)
    except SeedError as error:
        flash(error.message, "error")
        return redirect(calendar_url(service, branch.local_date(starts_at), request.form.get("view") or "week",
                                     move=appointment_id))
    audit.record("appointment.moved", target=f"appointment:{appointment_id}", branch_id=branch.id,
                 detail={"to": starts_at.isoformat()})
    flash(gettext("Appointment %(code)s moved to %(when)s.", code=appointment.booking_code,
                  when=language.local_datetime(starts_at, branch)), "ok")
    return redirect(calendar_url(service, branch.local_date(starts_at)) + f"#appointment-{appointment_id}")


@bp.post("/calendar/appointments/<int:appointment_id>/cancel")
@login_required
def calendar_cancel(appointment_id):
    """Asks first: without confirm=1 the page shows the question (calendar.js asks in a dialog)."""
    appointment = scope.owned(Appointment, appointment_id, "Appointment")
    if request.form.get("confirm") != "1":
        return _appointment_page(appointment, confirm=True)
    try:
        appointments.cancel(appointment_id)
    except SeedError as error:
        flash(error.message, "error")
        return redirect(url_for("staff.calendar_appointment", appointment_id=appointment_id))
    audit.record("appointment.cancelled", target=f"appointment:{appointment_id}", branch_id=appointment.branch_id)
    flash(gettext("Appointment cancelled."), "ok")
    return redirect(calendar_url(appointment.service, appointment.branch.local_date(appointment.starts_at)))


@bp.post("/calendar/appointments/<int:appointment_id>/customer")
@login_required
def calendar_customer(appointment_id):
    appointment = scope.owned(Appointment, appointment_id, "Appointment")
    form = request.form
    values = {key: form.get(key, "") for key in ("name", "phone", "language", "sms_consent")}
    try:
        changed = appointments.change_customer(
            appointment_id, name=values["name"], phone=values["phone"], language=values["language"] or None,
            consent=(f"Agreed with {current_user.username} when the appointment was changed"
                     if values["sms_consent"] == "yes" else None))
    except SeedError as error:
        return _appointment_page(appointment, values=values, error=error, status=error.status)
    audit.record("appointment.customer_changed", target=f"appointment:{appointment_id}",
                 branch_id=appointment.branch_id,
                 detail={"customer": changed.customer_id, "language": changed.language})
    flash(gettext("The customer details are saved."), "ok")
    return redirect(url_for("staff.calendar_appointment", appointment_id=appointment_id))
