"""The language of an appointment's texts (issue 16), on SQLite and PostgreSQL: the console's booking
form and the API ask it (the branch's languages, its default chosen) and the appointment keeps it;
the CSV import takes a language column or the branch's default; reminders and answers go out in the
language of the customer's latest ticket or appointment; a number we do not know is answered in the
default language of the branch whose gateway it wrote to."""
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core import engine
from core.extensions import db
from core.models import Appointment, Customer
from messaging import inbox
from messaging.appointment_texts import send_reminders
from messaging.models import InboxMessage, OutboxMessage

from .conftest import RequestIsolatedClient
from .helpers import bearer, csrf_token, login, make_branch, make_counter, make_service, make_staff

TOKYO = timezone(timedelta(hours=9))
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
GEORGIAN = re.compile(r"[\u10d0-\u10ff]")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def language_of(body: str) -> str:
    return "ja" if JAPANESE.search(body) else "ka" if GEORGIAN.search(body) else "en"


@pytest.fixture
def clinic(any_db_app):
    """A Japanese clinic that offers Japanese and English (not Georgian), Japanese by default."""
    branch = make_branch("Sakura Clinic", timezone="Asia/Tokyo", country="JP", default_language="ja",
                         languages=["ja", "en"], opening_hours={d: [["09:00", "17:00"]] for d in WEEKDAYS})
    branch.sender_name = "Sakura Clinic"
    service = make_service(branch, "B", "Appointments", slot_minutes=30, slot_capacity=2)
    counter = make_counter(branch, "1", [service])
    make_staff("desk", branch=branch)
    db.session.commit()
    any_db_app.test_client_class = RequestIsolatedClient
    return branch, service, counter, any_db_app.test_client()


def console(client, counter):
    login(client, "desk")
    page = client.get("/staff/counter")
    client.post("/staff/counter", data={"counter_id": counter.id, "csrf_token": csrf_token(page.text)})
    return client.get("/staff/").text


def reminders_for(phone, clock, when):
    """Move the clock to 24 h before `when`, run the sweep, and give the reminder texts to `phone`."""
    clock.set(when - timedelta(hours=24))
    send_reminders()
    db.session.rollback()
    return db.session.scalars(select(OutboxMessage.body).where(OutboxMessage.kind == "reminder",
                                                                OutboxMessage.to == phone)).all()


def appointment_by_phone(phone):
    db.session.rollback()
    return db.session.scalar(select(Appointment).join(Customer, Appointment.customer_id == Customer.id)
                             .where(Customer.phone == phone))


def test_the_console_form_asks_the_language_and_the_reminder_speaks_it(clinic, clock):
    branch, service, counter, client = clinic
    page = console(client, counter)
    form = page[page.index('name="language"'):]
    form = form[:form.index("</select>")]
    assert re.findall(r'value="(\w+)"', form) == ["ja", "en"]  # the branch's languages, not Georgian
    assert re.search(r'value="ja"[^>]*selected', form)  # its default chosen
    token = csrf_token(page)

    def book(phone, when, **extra):
        return client.post("/staff/appointments", data={"service_id": service.id, "starts_at": when, "phone": phone,
                                                        "sms_consent": "yes", "csrf_token": token, **extra},
                           follow_redirects=True)

    book("090-1111-2222", "2026-03-04T10:00")  # as the form sends it by default: no language picked
    book("090-3333-4444", "2026-03-04T10:00", language="en")
    refused = book("090-5555-6666", "2026-03-04T10:30", language="ka")
    # the console speaks the branch's language (Japanese) to staff who chose none
    assert "言語は、この拠点で選べる言語（ja, en）からお選びください。" in refused.text
    assert appointment_by_phone("+819055556666") is None

    japanese, english = appointment_by_phone("+819011112222"), appointment_by_phone("+819033334444")
    assert (japanese.language, english.language) == ("ja", "en")
    assert db.session.scalar(select(Customer.language).where(Customer.phone == "+819033334444")) == "en"
    when = datetime(2026, 3, 4, 10, tzinfo=TOKYO)
    [to_japanese] = reminders_for("+819011112222", clock, when)
    [to_english] = reminders_for("+819033334444", clock, when)
    assert language_of(to_japanese) == "ja" and language_of(to_english) == "en", (to_japanese, to_english)


def test_the_api_books_in_a_language_the_branch_offers(clinic, clock):
    _branch, _service, _counter, client = clinic
    headers = bearer("desk")

    def book(**extra):
        return client.post("/api/v1/appointments", json={"service": "B", "starts_at": "2026-03-04T10:00",
                                                         "phone": "090-1111-2222", "sms_consent": True, **extra},
                           headers=headers)

    refused = book(language="ka")
    assert refused.status_code == 400 and refused.json["detail"] == {"language": "not offered"}
    assert "ja, en" in refused.json["message"]
    assert book(language=5).status_code == 400
    by_default = book()
    assert by_default.status_code == 201 and by_default.json["appointment"]["language"] == "ja"
    english = book(language="en", phone="090-3333-4444")
    assert english.status_code == 201 and english.json["appointment"]["language"] == "en"
    [reminder] = reminders_for("+819033334444", clock, datetime(2026, 3, 4, 10, tzinfo=TOKYO))
    assert language_of(reminder) == "en"


def test_the_csv_import_takes_a_language_column_or_the_branchs_default(clinic, clock):
    _branch, _service, _counter, client = clinic
    headers = bearer("desk")
    wrong = ("name,phone,service,start,language\n"
             "Aiko,090-1111-2222,B,2026-03-04 10:00,ja\nEka,090-3333-4444,B,2026-03-04 10:30,ka\n")
    refused = client.post("/api/v1/appointments/import", json={"csv": wrong}, headers=headers)
    assert refused.status_code == 400
    report = {line["line"]: line for line in refused.json["detail"]["rows"]}
    assert report[2]["status"] == "ok" and report[3]["problems"] == [
        "言語 'ka' はこの拠点では選べません（選べる言語：ja, en）"]
    assert db.session.scalar(select(Appointment)) is None

    with_column = ("name,phone,service,start,language\n"
                   "Aiko,090-1111-2222,B,2026-03-04 10:00,\nTom,090-3333-4444,B,2026-03-04 10:30,EN\n")
    assert client.post("/api/v1/appointments/import", json={"csv": with_column}, headers=headers).status_code == 201
    without = "name,phone,service,start\nKen,090-5555-6666,B,2026-03-04 11:00\n"
    assert client.post("/api/v1/appointments/import", json={"csv": without}, headers=headers).status_code == 201
    languages = {phone: appointment_by_phone(phone).language
                 for phone in ("+819011112222", "+819033334444", "+819055556666")}
    assert languages == {"+819011112222": "ja", "+819033334444": "en", "+819055556666": "ja"}
    assert db.session.scalar(select(Customer.language).where(Customer.phone == "+819055556666")) == "ja"
    clock.set(datetime(2026, 3, 3, 11, tzinfo=TOKYO))  # 24 h before the last: all three are due
    send_reminders()
    db.session.rollback()
    spoken = {m.to: language_of(m.body) for m in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == "reminder"))}
    assert spoken == {"+819011112222": "ja", "+819033334444": "en", "+819055556666": "ja"}


def text_in(body, sender, clock, branch_id=None):
    clock.advance(seconds=5)
    ident = inbox.store_received(sender, body, clock.now(), gateway="g", branch_id=branch_id)
    db.session.rollback()
    return db.session.get(InboxMessage, ident)


def answers(kind, to):
    db.session.rollback()
    return [language_of(body) for body in db.session.scalars(
        select(OutboxMessage.body).where(OutboxMessage.kind == kind, OutboxMessage.to == to).order_by(OutboxMessage.id))]


def test_an_unknown_number_is_answered_in_the_gateways_branchs_language(clinic, clock):
    tokyo = clinic[0]
    tbilisi = make_branch("Vake Clinic", timezone="Asia/Tbilisi", country="GE", default_language="ka")
    tbilisi.sender_name = "Vake Clinic"
    db.session.commit()
    assert text_in("hello", "+819099990000", clock, branch_id=tokyo.id).outcome == "to staff"
    assert text_in("hello", "+995555990000", clock, branch_id=tbilisi.id).outcome == "to staff"
    assert answers("unknown_ack", "+819099990000") == ["ja"]
    assert answers("unknown_ack", "+995555990000") == ["ka"]
    assert text_in("HELP", "+995555990000", clock, branch_id=tbilisi.id).outcome == "help sent"
    assert answers("help", "+995555990000") == ["ka"]


def test_answers_follow_the_latest_ticket_or_appointment(clinic, clock):
    branch, service, _counter, client = clinic
    phone = "+819011112222"
    ticket = client.post("/api/v1/checkins", json={"service": "B", "phone": phone, "language": "en",
                                                   "sms_consent": True}, headers=bearer("desk"))
    assert ticket.status_code == 201, ticket.json
    assert text_in("HELP", phone, clock).outcome == "help sent"
    clock.advance(minutes=1)
    booked = client.post("/api/v1/appointments", json={"service": "B", "starts_at": "2026-03-04T10:00",
                                                        "phone": phone, "language": "ja"}, headers=bearer("desk"))
    assert booked.status_code == 201
    assert text_in("HELP", phone, clock).outcome == "help sent"
    clock.advance(minutes=1)
    customer_id = db.session.scalar(select(Customer.id).where(Customer.phone == phone))
    engine.issue_ticket(service.id, customer_id=customer_id, language="en")
    assert text_in("HELP", phone, clock).outcome == "help sent"
    assert answers("help", phone) == ["en", "ja", "en"]
