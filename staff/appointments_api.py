"""Appointments through the JSON API (staff): book, list, cancel."""
from datetime import datetime, time, timedelta

from flask import request
from flask_login import current_user, login_required
from sqlalchemy import select

from core import appointments, clock, customers
from core.errors import ValidationError
from core.extensions import db
from core.models import Appointment
from kiosk.checkin import check_phone, clean_name

from . import api
from .api_routes import _owned, body, service_by_code, user_branch


def appointment_json(appointment: Appointment) -> dict:
    customer = appointment.customer
    return {"id": appointment.id, "code": appointment.booking_code, "service": appointment.service.code,
            "starts_at": appointment.starts_at.isoformat(),
            "starts_local": appointment.branch.local(appointment.starts_at).isoformat(),
            "status": appointment.status, "late_minutes": appointment.late_minutes,
            "customer": {"name": customer.name, "phone": customer.phone} if customer else None}


@api.post("/appointments")
@login_required
def book_appointment():
    data = body()
    branch = user_branch(data.get("branch"))
    service = service_by_code(branch, data.get("service"))
    raw = data.get("starts_at")
    try:
        starts_at = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        starts_at = None
    if starts_at is None:
        raise ValidationError("starts_at must be an ISO time, e.g. 2026-03-03T10:00:00+04:00.", {"starts_at": "invalid"})
    if starts_at.tzinfo is None:
        starts_at = starts_at.replace(tzinfo=branch.zone)  # a wall-clock time at the branch
    phone = check_phone(data["phone"], branch)["e164"] if data.get("phone") else None
    name = clean_name(data.get("name"))
    consent = data.get("sms_consent", False)
    if not isinstance(consent, bool):
        raise ValidationError("sms_consent must be true or false.", {"sms_consent": "not a boolean"})
    language = data.get("language", branch.default_language)
    if language not in ("en", "ja", "ka"):
        raise ValidationError("language must be en, ja or ka.", {"language": "unsupported"})
    customer_id = None
    if phone or name:
        customer_id = customers.remember(phone, name=name, language=language,
                                         consent_source="staff" if consent and phone else None,
                                         consent_text=f"Agreed with {current_user.username} when booking")
    appointment = appointments.book(service.id, starts_at, customer_id=customer_id, source="staff")
    return {"appointment": appointment_json(db.session.get(Appointment, appointment.id))}, 201


@api.get("/appointments")
@login_required
def list_appointments():
    branch = user_branch(request.args.get("branch", type=int))
    day = request.args.get("date") or branch.local_date(clock.now()).isoformat()
    try:
        first = datetime.combine(datetime.fromisoformat(day).date(), time.min, tzinfo=branch.zone)
    except ValueError:
        raise ValidationError("date must be YYYY-MM-DD.", {"date": "invalid"}) from None
    rows = db.session.scalars(select(Appointment).where(
        Appointment.branch_id == branch.id, Appointment.starts_at >= first,
        Appointment.starts_at < first + timedelta(days=1)).order_by(Appointment.starts_at)).all()
    return {"date": day, "appointments": [appointment_json(a) for a in rows]}


@api.post("/appointments/<int:appointment_id>/cancel")
@login_required
def cancel_appointment(appointment_id):
    _owned(Appointment, appointment_id, "Appointment")
    appointments.cancel(appointment_id)
    return {"appointment": appointment_json(db.session.get(Appointment, appointment_id))}


@api.post("/appointments/import")
@login_required
def import_appointments():
    """{"csv": "name,phone,service,start\\n..."}: all rows or none, with a report per row."""
    from .appointment_import import import_csv

    data = body()
    if not isinstance(data.get("csv"), str):
        raise ValidationError('Send {"csv": "<the file\'s text>"}.', {"csv": "required"})
    branch = user_branch(data.get("branch"))
    return import_csv(branch, data["csv"]), 201
