"""Appointments through the JSON API (staff): book, list, cancel."""
from datetime import datetime, time, timedelta

from flask import request
from flask_login import current_user, login_required
from sqlalchemy import select

from core import appointments, audit, clock, customers, scope
from core.database import write_transaction
from core.errors import ValidationError
from core.extensions import db
from core.models import Appointment
from core.web import clean_text, day, moment
from kiosk.checkin import check_phone, clean_name

from . import api
from .api_routes import body, chosen_branch, service_by_code

MAX_CSV = 500_000  # characters: MAX_ROWS lines with room to spare


def appointment_json(appointment: Appointment) -> dict:
    customer = appointment.customer
    return {"id": appointment.id, "code": appointment.booking_code, "service": appointment.service.code,
            "starts_at": appointment.starts_at.isoformat(),
            "starts_local": appointment.branch.local(appointment.starts_at).isoformat(),
            "status": appointment.status, "late_minutes": appointment.late_minutes, "language": appointment.language,
            "customer": {"name": customer.name, "phone": customer.phone} if customer else None}


@api.post("/appointments")
@login_required
def book_appointment():
    data = body()
    branch = chosen_branch(data)
    service = service_by_code(branch, data)
    starts_at = moment(data.get("starts_at"), "starts_at", zone=branch.zone)  # without a zone: the branch's wall clock
    phone = check_phone(data["phone"], branch)["e164"] if data.get("phone") else None
    name = clean_name(data.get("name"))
    consent = data.get("sms_consent", False)
    if not isinstance(consent, bool):
        raise ValidationError("sms_consent must be true or false.", {"sms_consent": "not a boolean"})
    # One the branch offers, else a clear refusal; none given: the branch's default language.
    language = appointments.booking_language(branch, data.get("language"))
    # Booked before the customer is remembered: a slot refused (full, closed, passed) leaves no
    # customer row or consent behind for a booking that never was.
    appointment = appointments.book(service.id, starts_at, source="staff", language=language)
    if phone or name:
        customer_id = customers.remember(phone, name=name, language=language,
                                         consent_source="staff" if consent and phone else None,
                                         consent_text=f"Agreed with {current_user.username} when booking")
        with write_transaction() as session:
            session.get(Appointment, appointment.id).customer_id = customer_id
    return {"appointment": appointment_json(db.session.get(Appointment, appointment.id))}, 201


@api.get("/appointments")
@login_required
def list_appointments():
    branch = chosen_branch()
    wanted = day(request.args["date"], "date") if request.args.get("date") else branch.local_date(clock.now())
    first = datetime.combine(wanted, time.min, tzinfo=branch.zone)
    rows = db.session.scalars(select(Appointment).where(
        Appointment.branch_id == branch.id, Appointment.starts_at >= first,
        Appointment.starts_at < first + timedelta(days=1)).order_by(Appointment.starts_at)).all()
    return {"date": wanted.isoformat(), "appointments": [appointment_json(a) for a in rows]}


@api.post("/appointments/<int:appointment_id>/cancel")
@login_required
def cancel_appointment(appointment_id):
    appointment = scope.owned(Appointment, appointment_id, "Appointment")
    appointments.cancel(appointment_id)
    audit.record("appointment.cancelled", target=f"appointment:{appointment_id}", branch_id=appointment.branch_id)
    return {"appointment": appointment_json(db.session.get(Appointment, appointment_id))}


@api.post("/appointments/import")
@login_required
def import_appointments():
    """{"csv": "name,phone,service,start\\n..."}: all rows or none, with a report per row."""
    from .appointment_import import import_csv

    data = body()
    if not isinstance(data.get("csv"), str):
        raise ValidationError('Send {"csv": "<the file\'s text>"}.', {"csv": "required"})
    csv = clean_text(data, "csv", max_length=MAX_CSV, required=True, multiline=True)
    return import_csv(chosen_branch(data), csv), 201
