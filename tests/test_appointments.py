"""Appointments: booking rules, reminders, and C / X / R by reply, in every language."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core import appointments
from core.errors import Conflict, ValidationError
from core.extensions import db
from core.models import Appointment, Customer
from core.settings import branches as branch_settings
from messaging import inbox
from messaging.appointment_texts import send_reminders
from messaging.models import InboxMessage, OutboxMessage, RescheduleOffer

from .helpers import make_branch, make_service
from .modem_helpers import KA

TBILISI = timezone(timedelta(hours=4))


@pytest.fixture
def clinic(app, clock):
    branch = make_branch("Clinic", timezone="Asia/Tbilisi", country="GE",
                         opening_hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")})
    branch.sender_name = "Tbilisi Clinic"
    service = make_service(branch, "B", "Appointments", slot_minutes=30, slot_capacity=1)
    customer = Customer(phone=KA, sms_consent=True, consent_at=clock.now(), language="ka", created_at=clock.now())
    db.session.add(customer)
    db.session.commit()
    return branch, service, customer


def at(day, hour, minute=0):
    return datetime(2026, 3, day, hour, minute, tzinfo=TBILISI)  # March 2026: the 2nd is a Monday


def book(clinic, when):
    _branch, service, customer = clinic
    return appointments.book(service.id, when, customer_id=customer.id)


def kinds():
    db.session.rollback()
    return [m.kind for m in db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]


def text_in(body, clock):
    ident = inbox.store_received(KA, body, clock.now(), gateway="g")
    db.session.rollback()
    return db.session.get(InboxMessage, ident)


def test_booking_rules(clinic):
    booked = book(clinic, at(4, 10))
    assert len(booked.booking_code) == 6 and booked.status == "booked"
    with pytest.raises(Conflict):
        book(clinic, at(4, 10))  # capacity 1
    for refused in (at(4, 10, 15), at(4, 8, 30), at(4, 16, 45), at(7, 10), at(1, 10)):  # off grid, early, late, Saturday, past
        with pytest.raises(ValidationError):
            book(clinic, refused)
    slots = appointments.free_slots(clinic[1], at(4, 9, 0) - timedelta(minutes=1))
    assert slots == [at(4, 9), at(4, 9, 30), at(4, 10, 30)]


def test_a_day_open_until_midnight_has_its_last_slot(app, clinic):
    branch, service, _customer = clinic
    branch.opening_hours = {"wed": [["18:00", "24:00"]]}
    db.session.commit()
    days = appointments.slots(service, at(4, 0).date())
    assert [slot.starts_at for slot in days][-1] == at(4, 23, 30)  # 23:30-24:00, the slot that ends the day
    assert book(clinic, at(4, 23, 30)).starts_at == at(4, 23, 30)
    with pytest.raises(ValidationError):
        book(clinic, at(4, 17, 30))  # before opening
    assert len(days) == 12


def test_no_reminder_for_a_visit_on_a_day_the_branch_closed_after_the_booking(clinic, clock):
    booked = book(clinic, at(4, 10))
    closure = branch_settings.add_closure(clinic[0], "2026-03-04", message="Water pipes under repair")
    clock.set(at(3, 10, 1))
    assert send_reminders() == 0 and "reminder" not in kinds()
    branch_settings.remove_closure(clinic[0], closure.id)
    assert send_reminders() == 1 and booked  # the day is open again: the reminder goes


def test_reminders_at_each_lead_time_once_and_not_inside_the_lead(clinic, clock):
    far = book(clinic, at(4, 10))  # booked two days ahead: both reminders
    clock.set(at(3, 10, 1))  # 24 h before, a minute after
    assert send_reminders() == 1
    assert send_reminders() == 0  # safe to rerun
    clock.set(at(4, 8, 1))
    assert send_reminders() == 1
    reminder = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reminder"))
    assert reminder.body.startswith("Tbilisi Clinic: შეხსენება: Appointments, ოთხ 4 მარ 10:00") and far.booking_code in reminder.body
    late_booking = book(clinic, at(4, 12))  # booked 3 h 59 min ahead: inside the 24 h lead
    assert send_reminders() == 0
    clock.set(at(4, 10, 1))
    assert send_reminders() == 1  # its 2 h reminder
    assert kinds().count("reminder") == 3 and late_booking


def test_a_reminder_is_marked_sent_only_with_its_text_written(clinic, clock, monkeypatch):
    """The lead time is marked done in the transaction that writes the text: a crash between the
    two (here the outbox refusing once) loses neither, and the next run writes it."""
    from messaging import outbox

    appointment = book(clinic, at(4, 10))
    clock.set(at(3, 10, 1))
    real_add = outbox.add

    def crash(*args, **kwargs):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(outbox, "add", crash)
    with pytest.raises(RuntimeError):
        send_reminders()
    db.session.rollback()
    assert db.session.get(Appointment, appointment.id).reminders_sent == [] and kinds() == []
    monkeypatch.setattr(outbox, "add", real_add)
    assert send_reminders() == 1 and kinds() == ["reminder"]


def test_one_unreachable_stored_number_costs_nobody_else_their_reminder(clinic, clock):
    broken = Customer(phone="+99532", created_at=clock.now(), sms_consent=True)  # stored before numbers were checked
    db.session.add(broken)
    db.session.commit()
    appointments.book(clinic[1].id, at(4, 10), customer_id=broken.id)
    other = book(clinic, at(4, 10, 30))
    clock.set(at(3, 10, 31))
    assert send_reminders() == 1
    reminder = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reminder"))
    assert reminder.appointment_id == other.id


@pytest.mark.parametrize("word", ["C", "ｃ", "confirm", "確認", "დიახ"])
def test_confirm_in_every_language(clinic, clock, word):
    appointment = book(clinic, at(4, 10))
    assert text_in(word, clock).outcome == "appointment confirmed"
    assert db.session.get(Appointment, appointment.id).status == "confirmed"
    assert kinds() == ["appointment_confirmed"]


@pytest.mark.parametrize("word", ["X", "x", "キャンセル", "გაუქმება"])
def test_cancel_in_every_language(clinic, clock, word):
    appointment = book(clinic, at(4, 10))
    assert text_in(word, clock).outcome == "appointment cancelled"
    assert db.session.get(Appointment, appointment.id).status == "cancelled"


@pytest.mark.parametrize("word", ["R", "r", "変更", "გადატანა"])
def test_reschedule_by_reply(clinic, clock, word):
    appointment = book(clinic, at(4, 10))
    assert text_in(word, clock).outcome == "reschedule: slots offered"
    offer = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reschedule_offer"))
    assert "1) ორშ 2 მარ 13:30 2)" in offer.body  # 09:00 UTC Monday is 13:00 in Tbilisi: the next slot
    assert text_in("2", clock).outcome == "appointment rescheduled"
    moved = db.session.get(Appointment, appointment.id)
    assert moved.starts_at == at(2, 14) and moved.status == "booked"
    assert kinds() == ["reschedule_offer", "appointment_moved"]


def test_r_after_a_cancellation_books_another_time(clinic, clock):
    """The cancellation text says "Reply R to book another time": it does."""
    appointment = book(clinic, at(4, 10))
    assert text_in("X", clock).outcome == "appointment cancelled"
    clock.advance(seconds=30)
    assert text_in("R", clock).outcome == "reschedule: slots offered"
    assert text_in("1", clock).outcome == "appointment rescheduled"
    again = db.session.get(Appointment, appointment.id)
    assert again.status == "booked" and again.starts_at == at(2, 13, 30)
    assert kinds() == ["appointment_cancelled", "reschedule_offer", "appointment_moved"]


def test_r_long_after_a_past_cancelled_visit_goes_to_staff(clinic, clock):
    book(clinic, at(4, 10))
    text_in("X", clock)
    clock.set(at(12, 10))  # eight days after the visit that was cancelled
    assert text_in("R", clock).outcome == "reschedule: no appointment"


def test_a_slot_taken_in_between_gets_new_choices(clinic, clock):
    appointment = book(clinic, at(4, 10))
    text_in("R", clock)
    offered = db.session.scalar(select(RescheduleOffer))
    first = datetime.fromisoformat(offered.slots[0])
    other = Customer(phone="+995555000777", created_at=clock.now())
    db.session.add(other)
    db.session.commit()
    appointments.book(clinic[1].id, first, customer_id=other.id)  # someone else books it meanwhile
    assert text_in("1", clock).outcome == "reschedule: taken, new slots offered"
    assert db.session.get(Appointment, appointment.id).starts_at == at(4, 10)
    assert kinds() == ["reschedule_offer", "reschedule_taken", "reschedule_offer"]
    clock.advance(seconds=30)  # the same "1" again, a new text
    assert text_in("1", clock).outcome == "appointment rescheduled"


def test_the_offer_expires(clinic, clock):
    book(clinic, at(4, 10))
    text_in("R", clock)
    clock.advance(minutes=31)
    message = text_in("1", clock)
    assert message.status == "unhandled"  # not a choice any more: to staff


def test_keywords_without_an_appointment_go_to_staff(clinic, clock):
    assert text_in("C", clock).outcome == "confirm: no appointment"


def test_booking_through_the_api(client, clinic, clock):
    from .helpers import bearer, make_staff

    make_staff("desk", branch=clinic[0])
    db.session.commit()
    headers = bearer("desk")
    response = client.post("/api/v1/appointments", headers=headers, json={
        "service": "B", "starts_at": "2026-03-04T11:00:00", "phone": "555 22 33 44", "name": "Giorgi",
        "sms_consent": True, "language": "ka"})
    assert response.status_code == 201, response.json
    booked = response.json["appointment"]
    assert booked["starts_local"] == "2026-03-04T11:00:00+04:00" and booked["customer"]["phone"] == "+995555223344"
    full = client.post("/api/v1/appointments", headers=headers, json={"service": "B", "starts_at": "2026-03-04T11:00:00"})
    assert full.status_code == 409
    listing = client.get("/api/v1/appointments?date=2026-03-04", headers=headers).json
    assert [a["code"] for a in listing["appointments"]] == [booked["code"]]
    assert client.post(f"/api/v1/appointments/{booked['id']}/cancel", json={}, headers=headers).json["appointment"]["status"] == "cancelled"


def test_check_in_by_code_or_phone_waits_for_the_slot_with_priority(client, clinic, clock):
    from core import engine
    from core.models import Counter, Ticket

    branch, service, customer = clinic
    counter = Counter(branch=branch, name="1", services=[service])
    db.session.add(counter)
    db.session.commit()
    clock.set(at(2, 13, 5))  # Monday 13:05 in Tbilisi
    appointment = book(clinic, at(2, 13, 30))
    walk_in = engine.issue_ticket(service.id)
    response = client.post("/api/v1/checkins", json={"booking_code": appointment.booking_code.lower(), "branch": branch.id})
    assert response.status_code == 201, response.json
    ticket = response.json["ticket"]
    assert ticket["appointment"] == {"code": appointment.booking_code, "time": "13:30"}
    assert db.session.get(Appointment, appointment.id).status == "checked_in"
    assert engine.call_next(counter.id).id == walk_in.id  # early: it waits for its slot
    engine.complete(walk_in.id)
    later = engine.issue_ticket(service.id)
    clock.set(at(2, 13, 30))
    assert engine.call_next(counter.id).id == ticket["id"]  # at its time it goes first
    assert db.session.get(Ticket, later.id).status == "waiting"  # arrived earlier, still waits behind it

    again = client.post("/api/v1/checkins", json={"booking_code": appointment.booking_code, "branch": branch.id})
    assert again.status_code == 404  # checked in already: no second ticket
    by_phone = client.post("/api/v1/checkins", json={"phone": "555 12 34 56", "branch": branch.id, "language": "ja"})
    assert by_phone.status_code == 404 and by_phone.json["message"].startswith("本日のご予約が見つかりません")


def test_very_late_arrivals_follow_the_branch_policy(client, clinic, clock, app):
    branch, service, _customer = clinic
    appointment = book(clinic, at(2, 14))
    clock.set(at(2, 14, 30))  # half an hour late; grace is 15 minutes
    ticket = client.post("/api/v1/checkins", json={"phone": "555123456", "branch": branch.id}).json["ticket"]
    from core.models import Ticket

    assert db.session.get(Ticket, ticket["id"]).priority == 0  # walk_in policy
    assert db.session.get(Appointment, appointment.id).status == "checked_in"


def test_late_for_todays_appointment_shows_in_the_console(client, clinic, clock):
    from core.models import Counter

    from .helpers import csrf_token, login, make_staff

    branch, service, _customer = clinic
    counter = Counter(branch=branch, name="1", services=[service])
    db.session.add(counter)
    make_staff("desk", branch=branch)
    db.session.commit()
    appointment = book(clinic, at(2, 15))
    assert text_in("LATE 20", clock).outcome == "appointment late 20 min"
    assert db.session.get(Appointment, appointment.id).late_minutes == 20
    assert "15:00-ის ვიზიტზე დაახლ. 20 წთ" in db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "appointment_late")).body
    login(client, "desk")
    page = client.get("/staff/counter")
    client.post("/staff/counter", data={"counter_id": counter.id, "csrf_token": csrf_token(page.text)})
    console = client.get("/staff/").text
    assert appointment.booking_code in console and "late 20 min" in console

    booked = client.post("/staff/appointments", data={"service_id": service.id, "starts_at": "2026-03-02T16:00",
                                                      "phone": "555 22 33 44", "name": "Giorgi", "sms_consent": "yes",
                                                      "csrf_token": csrf_token(console)}, follow_redirects=True)
    assert "Booked 2026-03-02 16:00" in booked.text
    full = client.post("/staff/appointments", data={"service_id": service.id, "starts_at": "2026-03-02T16:00",
                                                    "csrf_token": csrf_token(console)}, follow_redirects=True)
    assert "slot is full" in full.text
    moved = client.post(f"/staff/appointments/{appointment.id}/move", data={"starts_at": "2026-03-02T16:30",
                                                                             "csrf_token": csrf_token(console)},
                        follow_redirects=True)
    assert "moved to 2026-03-02 16:30" in moved.text
    taken = client.post(f"/staff/appointments/{appointment.id}/move", data={"starts_at": "2026-03-02T16:00",
                                                                             "csrf_token": csrf_token(console)},
                        follow_redirects=True)
    assert "slot is full" in taken.text
    assert appointment.booking_code in client.get(f"/staff/inbox/{KA}").text
    client.post(f"/staff/appointments/{appointment.id}/cancel", data={"csrf_token": csrf_token(console)})
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).status == "cancelled"


CSV_OK = """name,phone,service,start
Nino,555 12 34 56,B,2026-03-04 10:00
Giorgi,+995555223344,b,2026-03-04 10:30
,,B,2026-03-04 11:00
"""


def test_csv_import_all_or_nothing_with_a_row_report(client, clinic, runner, tmp_path):
    from .helpers import bearer, make_staff

    make_staff("desk", branch=clinic[0])
    db.session.commit()
    headers = bearer("desk")
    bad = CSV_OK + "Eka,12,B,2026-03-04 11:30\nLevan,555998877,Q,2026-03-04 12:00\nMari,555998866,B,tomorrow\n" \
        "Dato,555998855,B,2026-03-07 10:00\nNino,555 12 34 56,B,2026-03-04 10:00\n"
    response = client.post("/api/v1/appointments/import", json={"csv": bad}, headers=headers)
    assert response.status_code == 400 and response.json["message"].startswith("Nothing was imported")
    report = {line["line"]: line for line in response.json["detail"]["rows"]}
    assert [report[n]["status"] for n in (2, 3, 4)] == ["ok", "ok", "ok"]
    assert "phone" in report[5]["problems"][0] and "unknown service" in report[6]["problems"][0]
    assert "YYYY-MM-DD" in report[7]["problems"][0] and "opening hours" in report[8]["problems"][0]
    assert "twice" in report[9]["problems"][0]
    assert db.session.scalar(select(Appointment)) is None

    full = CSV_OK + "Eka,555998844,B,2026-03-04 10:00\n"  # the 10:00 slot takes one
    refused = client.post("/api/v1/appointments/import", json={"csv": full}, headers=headers)
    assert refused.status_code == 400 and "Row 4" in refused.json["message"]
    assert db.session.scalar(select(Appointment)) is None

    path = tmp_path / "day.csv"
    path.write_text(CSV_OK, encoding="utf-8")
    result = runner.invoke(args=["appointment", "import", str(path), "--branch", str(clinic[0].id)])
    assert result.exit_code == 0 and "Imported 3 appointment(s)." in result.output
    assert len(db.session.scalars(select(Appointment)).all()) == 3
    wrong_header = client.post("/api/v1/appointments/import", json={"csv": "who,when\nx,y\n"}, headers=headers)
    assert wrong_header.status_code == 400 and "columns" in wrong_header.json["message"]
    # A lone carriage return (an old Mac's line end, or one pasted into a field) once ended in a
    # 500 (found by tests/test_openapi.py): now it is a line end, and an unreadable file a 400.
    mac = client.post("/api/v1/appointments/import", json={"csv": CSV_OK.replace("\n", "\r")}, headers=headers)
    # (every row read; booked already by the command above, so its slot is full)
    assert mac.status_code == 400 and "slot is full" in mac.json["message"], mac.json
    assert [row["status"] for row in mac.json["detail"]["rows"]] == ["ok", "ok", "ok"]
    unreadable = client.post("/api/v1/appointments/import", headers=headers,
                             json={"csv": "name,phone,service,start\n" + "x" * 200_000 + "\n"})
    assert unreadable.status_code == 400 and unreadable.json["detail"] == {"csv": "not CSV"}


def test_a_reply_answers_the_newest_open_question(clinic, clock):
    from messaging import outbox
    from messaging.models import SurveyResponse

    branch = clinic[0]
    appointment = book(clinic, at(4, 10))
    text_in("R", clock)  # slots offered at 09:00 UTC
    clock.advance(minutes=5)
    survey = outbox.enqueue(KA, "Tbilisi Clinic: how was it?", "survey", branch_id=branch.id)
    row = db.session.get(OutboxMessage, survey.id)
    row.status, row.sent_at = "sent", clock.now()
    db.session.add(SurveyResponse(branch_id=branch.id, outbox_id=survey.id, phone=KA, created_at=clock.now()))
    db.session.commit()
    clock.advance(seconds=30)
    assert text_in("2", clock).outcome == "survey score 2"  # the survey came last: "2" is a score
    assert db.session.get(Appointment, appointment.id).starts_at == at(4, 10)
