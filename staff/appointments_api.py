"""Appointments through the JSON API (staff): book, list, cancel."""
from datetime import datetime, time, timedelta

from flask_login import current_user, login_required
from sqlalchemy import select

from core import appointments, audit, clock, customers, scope
from core.database import write_transaction
from core.extensions import db
from core.models import Appointment
from core.openapi import (DATE, INTEGER, STRING, TIME, Day, Flag, Moment, Text, array, body_values, endpoint, model,
                          nullable, query_values)
from core.web import moment
from kiosk.checkin import check_phone, clean_name

from . import api
from .api_routes import BRANCH_ID, LANGUAGES, chosen_branch, service_by_code

MAX_CSV = 500_000  # characters: MAX_ROWS lines with room to spare

# What the answers hold (the description at /api/v1/openapi.json; core/openapi.py).
APPOINTMENT = model("Appointment", {
    "id": INTEGER, "code": {**STRING, "description": "The booking code the customer checks in with"},
    "service": {**STRING, "description": "The service's code"}, "starts_at": TIME,
    "starts_local": {**TIME, "description": "starts_at on the branch's wall clock"},
    "status": {"type": "string", "enum": ["booked", "confirmed", "cancelled", "checked_in", "no_show"]},
    "late_minutes": nullable({**INTEGER, "description": "How late the customer said they will be"}),
    "language": nullable({**STRING, "description": "The language of its texts (null: booked before it was asked)"}),
    "customer": nullable(model("AppointmentCustomer", {"name": nullable(STRING), "phone": nullable(STRING)})),
})
APPOINTMENT_ANSWER = model("AppointmentAnswer", {"appointment": APPOINTMENT})


def appointment_json(appointment: Appointment) -> dict:
    customer = appointment.customer
    return {"id": appointment.id, "code": appointment.booking_code, "service": appointment.service.code,
            "starts_at": appointment.starts_at.isoformat(),
            "starts_local": appointment.branch.local(appointment.starts_at).isoformat(),
            "status": appointment.status, "late_minutes": appointment.late_minutes, "language": appointment.language,
            "customer": {"name": customer.name, "phone": customer.phone} if customer else None}


@api.post("/appointments")
@login_required
@endpoint("Book an appointment", body={
    "branch": BRANCH_ID, "service": Text("The service's code", max_length=10, required=True),
    "starts_at": Moment("When it starts: a slot of the service within opening hours (without a zone: the "
                        "branch's wall clock)", required=True),
    "phone": Text("The customer's mobile number", max_length=32),
    "name": Text("The customer's name", max_length=appointments.NAME_LENGTH),
    "sms_consent": Flag("The customer agreed to texts about it", default=False),
    "language": Text("The language of its texts: one the branch offers (default: the branch's)", choices=LANGUAGES)},
    responses={201: ("Booked", APPOINTMENT_ANSWER)})
def book_appointment():
    data = body_values()
    branch = chosen_branch(data)
    service = service_by_code(branch, data)
    starts_at = moment(data["starts_at"], "starts_at", zone=branch.zone)  # without a zone: the branch's wall clock
    phone = check_phone(data["phone"], branch)["e164"] if data["phone"] else None
    name = clean_name(data["name"])
    consent = data["sms_consent"]
    # One the branch offers, else a clear refusal; none given: the branch's default language.
    language = appointments.booking_language(branch, data["language"])
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
@endpoint("The appointments of one day at the branch, by time",
          query={"branch": BRANCH_ID, "date": Day("The day, on the branch's calendar (default: today)")},
          responses={200: model("Appointments", {"date": DATE, "appointments": array(APPOINTMENT)})})
def list_appointments():
    branch = chosen_branch()
    wanted = query_values()["date"] or branch.local_date(clock.now())
    first = datetime.combine(wanted, time.min, tzinfo=branch.zone)
    rows = db.session.scalars(select(Appointment).where(
        Appointment.branch_id == branch.id, Appointment.starts_at >= first,
        Appointment.starts_at < first + timedelta(days=1)).order_by(Appointment.starts_at)).all()
    return {"date": wanted.isoformat(), "appointments": [appointment_json(a) for a in rows]}


@api.post("/appointments/<int:appointment_id>/cancel")
@login_required
@endpoint("Cancel an appointment", body={}, empty_body=True, responses={200: APPOINTMENT_ANSWER})
def cancel_appointment(appointment_id):
    appointment = scope.owned(Appointment, appointment_id, "Appointment")
    appointments.cancel(appointment_id)
    audit.record("appointment.cancelled", target=f"appointment:{appointment_id}", branch_id=appointment.branch_id)
    return {"appointment": appointment_json(db.session.get(Appointment, appointment_id))}


IMPORT_LINE = model("ImportLine", {
    "line": {**INTEGER, "description": "The file's line (1 is the header)"},
    "status": {"type": "string", "enum": ["ok", "error"]}, "problems": array(STRING)})


@api.post("/appointments/import")
@login_required
@endpoint("Import appointments from a CSV file: all rows or none",
          description="The file's text in `csv`: a header `name,phone,service,start` (and optionally `language`), "
                      "then one appointment a line, its start on the branch's wall clock (YYYY-MM-DD HH:MM). A "
                      "refusal's `detail.rows` reports on every line.",
          body={"branch": BRANCH_ID,
                "csv": Text("The CSV file's text", max_length=MAX_CSV, multiline=True, required=True)},
          responses={201: ("Imported", model("AppointmentImport", {
              "imported": INTEGER, "rows": array(IMPORT_LINE),
              "codes": {**array(STRING), "description": "The booking codes, in the file's order"}}))})
def import_appointments():
    """{"csv": "name,phone,service,start\\n..."}: all rows or none, with a report per row."""
    from .appointment_import import import_csv

    data = body_values()
    return import_csv(chosen_branch(data), data["csv"]), 201
