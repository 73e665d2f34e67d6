"""The appointments calendar (staff/calendar.py): a service's slots by day and by week with their
appointments, booking a free slot, moving, cancelling after a question, and correcting whom an
appointment is for (core.appointments.change_customer), every change in the audit log and refused
to staff of another branch. Then in Chromium against `python run.py`: the whole round by mouse and
by keyboard, and every calendar page in en, ja and ka measured (nothing overflows, is clipped or
wraps beyond two lines), screenshot (test-artifacts/calendar/<language>/) and audited by axe-core."""
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import event, func, select

from core import appointments
from core.audit import AuditEntry
from core.errors import InvalidTransition, NotFound, ValidationError
from core.extensions import db
from core.models import Appointment, Branch, Closure, Customer

from .axe import audit
from .constants import START
from .helpers import at_once, csrf_token, login, make_branch, make_service, make_staff
from .live import ROOT, chromium, running_system, signed_in

TBILISI = timezone(timedelta(hours=4))
MONDAY = date(2026, 3, 2)  # START is 13:00 on this Monday in Tbilisi
NINO, GIORGI, NEW = "+995555123456", "+995577246813", "+995599112233"


def at(day, hour, minute=0):
    return datetime(2026, 3, day, hour, minute, tzinfo=TBILISI)


@pytest.fixture
def clinic(app, clock):
    """A Tbilisi clinic open Monday to Friday 9-17 (half-hour slots of one place) and a closure on
    Thursday 5 March; alice works there, bob at another branch."""
    branch = make_branch("Clinic", timezone="Asia/Tbilisi", country="GE", default_language="ka",
                         opening_hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")})
    service = make_service(branch, "B", "Appointments", slot_minutes=30, slot_capacity=1,
                           names={"en": "Appointments", "ja": "予約の方", "ka": "ვიზიტები"})
    other = make_branch("Elsewhere")
    make_service(other, "A")
    make_staff("alice", branch=branch)
    make_staff("bob", branch=other)
    db.session.add(Closure(branch_id=branch.id, first_day=date(2026, 3, 5), last_day=date(2026, 3, 5),
                           message="Water pipes under repair", created_at=START))
    nino = Customer(phone=NINO, name="Nino Gelashvili", language="ka", sms_consent=True, consent_at=START,
                    consent_source="kiosk", consent_text="Yes", created_at=START)
    db.session.add(nino)
    db.session.commit()
    return branch, service, nino


def book(clinic, when, customer=None, **fields):
    return appointments.book(clinic[1].id, when, customer_id=customer.id if customer else None, **fields)


def rows(model) -> list:
    db.session.rollback()
    return [tuple(getattr(r, c.name) for c in model.__table__.columns) for r in db.session.scalars(
        select(model).order_by(model.id))]


def fresh(appointment) -> Appointment:
    db.session.rollback()
    return db.session.get(Appointment, appointment.id)


# --- core: whom an appointment is for ----------------------------------------------------------

def test_the_same_number_corrects_the_customers_name_and_language(clinic):
    appointment = book(clinic, at(3, 10), clinic[2], language="ka")
    appointments.change_customer(appointment.id, name="  Nino Beridze ", phone="555 12 34 56", language="en")
    moved = fresh(appointment)
    assert moved.customer_id == clinic[2].id and moved.language == "en"
    assert (moved.customer.name, moved.customer.language, moved.customer.sms_consent) == ("Nino Beridze", "en", True)


def test_a_number_another_customer_has_makes_the_appointment_theirs(any_db_app, clock):
    """The phone column is unique: the number's own record is attached, never a second one made."""
    branch = make_branch("Clinic", timezone="Asia/Tbilisi", country="GE",
                         opening_hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed")})
    service = make_service(branch, "B", slot_minutes=30)
    nino = Customer(phone=NINO, name="Nino", created_at=START)
    giorgi = Customer(phone=GIORGI, name="Giorgi Abashidze", language="ka", created_at=START)
    db.session.add_all([nino, giorgi])
    db.session.commit()
    appointment = appointments.book(service.id, at(3, 10), customer_id=nino.id)
    appointments.change_customer(appointment.id, name="", phone="+995 577 24 68 13", language="ja")
    moved = fresh(appointment)
    assert moved.customer_id == giorgi.id and moved.language == "ja"
    assert moved.customer.name == "Giorgi Abashidze"  # no name given: theirs stays
    assert db.session.scalar(select(func.count(Customer.id))) == 2
    assert db.session.get(Customer, nino.id).phone == NINO  # the other record keeps its number


def test_a_new_number_is_a_new_record_without_the_old_numbers_consent(clinic):
    appointment = book(clinic, at(3, 10), clinic[2])
    appointments.change_customer(appointment.id, name="Nino", phone=NEW, language="ka")
    moved = fresh(appointment)
    assert moved.customer_id != clinic[2].id and moved.customer.phone == NEW
    assert moved.customer.sms_consent is False and moved.customer.name == "Nino"
    old = db.session.get(Customer, clinic[2].id)
    assert (old.phone, old.name, old.sms_consent) == (NINO, "Nino Gelashvili", True)

    appointments.change_customer(appointment.id, name="Nino", phone=NEW, language="ka", consent="Agreed with alice")
    agreed = fresh(appointment).customer
    assert agreed.sms_consent and agreed.consent_source == "staff" and agreed.consent_text == "Agreed with alice"


def test_a_customer_without_a_number_gets_one_and_none_at_all_is_no_one(clinic):
    appointment = book(clinic, at(3, 10))
    appointments.change_customer(appointment.id, name="Eka", phone="", language=None)
    named = fresh(appointment)
    assert named.customer.name == "Eka" and named.customer.phone is None and named.language == "ka"  # the branch's
    appointments.change_customer(appointment.id, name="Eka", phone="0577 24 68 13", language="ka")
    numbered = fresh(appointment)
    assert numbered.customer_id == named.customer_id and numbered.customer.phone == GIORGI
    appointments.change_customer(appointment.id, name=None, phone=None, language="ka")
    assert fresh(appointment).customer_id is None


BAD_DETAILS = [  # (fields, what the refusal's detail says)
    ({"phone": "12"}, {"phone": "invalid"}),
    ({"phone": "not a number"}, {"phone": "not a phone number"}),
    ({"phone": "+995 32 212 34 56"}, {"phone": "not a mobile"}),  # a Tbilisi landline
    ({"name": "N" * 61}, {"name": "too long"}),
    ({"name": "<b>Nino</b>"}, {"name": "invalid characters"}),
    ({"name": "Nino\nGelashvili"}, {"name": "invalid characters"}),
    ({"language": "fr"}, {"language": "not offered"}),
    ({"name": "N" * 61, "phone": "12", "language": "fr"}, {"name": "too long", "phone": "invalid",
                                                            "language": "not offered"}),
]


def test_bad_input_is_refused_clearly_and_changes_nothing(clinic):
    clinic[0].languages = ["ka", "en"]
    db.session.commit()
    appointment = book(clinic, at(3, 10), clinic[2], language="ka")
    before = (rows(Customer), rows(Appointment))
    for fields, reasons in BAD_DETAILS:
        with pytest.raises(ValidationError) as refused:
            appointments.change_customer(appointment.id, **{"name": "Nino", "phone": NEW, "language": "en", **fields})
        assert refused.value.detail == reasons and refused.value.message, fields
        assert (rows(Customer), rows(Appointment)) == before, fields


def test_only_an_active_appointment_changes_hands(clinic):
    appointment = book(clinic, at(3, 10), clinic[2])
    appointments.cancel(appointment.id)
    before = rows(Customer)
    with pytest.raises(InvalidTransition):
        appointments.change_customer(appointment.id, name="Someone", phone=NEW, language="ka")
    with pytest.raises(NotFound):
        appointments.change_customer(10_000, name="Someone", phone=NEW, language="ka")
    assert rows(Customer) == before


def test_booking_for_a_customer_is_one_transaction(clinic):
    booked = appointments.book_for(clinic[1].id, at(3, 10), name="Giorgi", phone="577 24 68 13", language="en",
                                   consent="Agreed with alice when booking")
    assert booked.customer.phone == GIORGI and booked.customer.sms_consent and booked.language == "en"
    again = appointments.book_for(clinic[1].id, at(3, 11), name=None, phone=NINO)
    assert again.customer_id == clinic[2].id and again.customer.name == "Nino Gelashvili" and again.language == "ka"
    before = (rows(Customer), rows(Appointment))
    for slot in (at(3, 10), at(5, 10), at(3, 10, 10)):  # full, closed, not a slot
        with pytest.raises(Exception) as refused:
            appointments.book_for(clinic[1].id, slot, name="Eka", phone=NEW, consent="yes")
        assert refused.value.message
    with pytest.raises(ValidationError):
        appointments.book_for(clinic[1].id, at(3, 12), name="Eka", phone="12")
    assert (rows(Customer), rows(Appointment)) == before  # no customer row or consent left behind


def test_two_changes_to_one_new_number_at_once_share_one_record(any_db_app, clock):
    """PostgreSQL lets both look before either inserts: the second insert meets the unique
    index, and the change is made again against the record the first stored."""
    branch = make_branch("Clinic", timezone="Asia/Tbilisi", country="GE",
                         opening_hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed")})
    service = make_service(branch, "B", slot_minutes=30, slot_capacity=4)
    db.session.commit()
    ids = [appointments.book(service.id, at(3, 10)).id for _ in range(4)]
    db.session.remove()
    outcomes = at_once(any_db_app, ids, lambda ident: appointments.change_customer(
        ident, name="Eka", phone=NEW, language="en"))
    assert outcomes == ["done"] * 4
    owners = {a.customer_id for a in db.session.scalars(select(Appointment))}
    assert len(owners) == 1 and db.session.scalar(select(func.count(Customer.id))) == 1


# --- core: the range a calendar reads ----------------------------------------------------------

class Statements:
    def __init__(self, engine):
        self.engine, self.seen = engine, []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, *_):
        self.seen.append(statement)


def test_the_appointments_of_a_range_in_one_query_bounded_by_the_branchs_days(any_db_app, clock):
    branch = make_branch("Clinic", timezone="Asia/Tbilisi", country="GE")
    service, other = make_service(branch, "B"), make_service(branch, "C")
    customers = [Customer(phone=f"+99555512340{n}", name=f"Customer {n}", created_at=START) for n in range(3)]
    db.session.add_all(customers)
    db.session.flush()

    def row(moment, service=service, status="booked", customer=None):
        made = Appointment(branch_id=branch.id, service_id=service.id, starts_at=moment, status=status,
                           customer_id=customer.id if customer else None, created_at=START)
        db.session.add(made)
        return made

    inside = [row(moment, customer=customers[n]) for n, moment in enumerate([at(3, 0, 0), at(3, 23, 59), at(4, 12)])]
    cancelled = row(at(3, 12), status="cancelled")
    outside = [row(at(2, 23, 59)), row(at(5, 0, 0)), row(at(3, 12), other)]  # before, after, another service
    db.session.commit()
    ids = {"branch": branch.id, "service": service.id, "other": outside[2].id, "inside": [a.id for a in inside],
           "cancelled": cancelled.id}
    db.session.remove()
    branch = db.session.get(Branch, ids["branch"])
    with Statements(db.engine) as statements:
        found = appointments.appointments_between(branch, date(2026, 3, 3), 2, service_id=ids["service"])
        names = [a.customer.name for a in found]
    assert [a.id for a in found] == ids["inside"] and names == ["Customer 0", "Customer 1", "Customer 2"]
    assert len(statements.seen) == 1  # the customers come with it
    with_cancelled = appointments.appointments_between(branch, date(2026, 3, 3), 2, service_id=ids["service"],
                                                       cancelled=True)
    assert ids["cancelled"] in [a.id for a in with_cancelled]
    whole_branch = appointments.appointments_between(branch, date(2026, 3, 3), 2)
    assert {a.id for a in whole_branch} == {*ids["inside"], ids["other"]}


def test_a_calendar_week_shows_slots_closures_past_and_times_that_are_no_slot(clinic, clock):
    _branch, service, nino = clinic
    booked = book(clinic, at(3, 10), nino)
    off_grid = Appointment(branch_id=clinic[0].id, service_id=service.id, starts_at=at(4, 10, 10),
                           created_at=START, status="booked")  # before the slots changed
    on_closed_day = Appointment(branch_id=clinic[0].id, service_id=service.id, starts_at=at(5, 11),
                                created_at=START, status="confirmed")  # before the closure
    db.session.add_all([off_grid, on_closed_day])
    db.session.commit()
    days = appointments.calendar(service, MONDAY, 7)
    assert [d.day for d in days] == [MONDAY + timedelta(days=n) for n in range(7)]
    monday, tuesday, wednesday, thursday, _friday, saturday, sunday = days
    assert len(monday.slots) == 16 and [s.past for s, _ in monday.slots].count(True) == 9  # 9:00-13:00 passed
    slot, held = tuesday.slots[2]
    assert slot.starts_at == at(3, 10) and [a.id for a in held] == [booked.id] and not slot.free
    assert [a.id for a in wednesday.others] == [off_grid.id]
    assert thursday.closed and thursday.closure.message == "Water pipes under repair" and not thursday.slots
    assert [a.id for a in thursday.others] == [on_closed_day.id]
    assert saturday.closed and saturday.closure is None and sunday.closed


# --- the pages ---------------------------------------------------------------------------------

class Page(HTMLParser):
    """Every element with an id, its attributes and its text."""

    def __init__(self, html):
        super().__init__()
        self.by_id, self._open = {}, []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.by_id[attrs["id"]] = {"tag": tag, "text": "", **attrs}
            if tag not in ("input", "img", "br", "hr", "meta", "link"):  # void: no text, no end tag
                self._open.append(attrs["id"])

    def handle_data(self, data):
        for ident in self._open:
            self.by_id[ident]["text"] += data

    def handle_endtag(self, tag):
        if self._open and self.by_id[self._open[-1]]["tag"] == tag:
            self._open.pop()


@pytest.fixture
def desk(client, clinic):
    """alice signed in, reading English: post(path, **form) posts with a fresh CSRF token."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(client)

    def post(path, **data):
        token = csrf_token(client.get("/staff/calendar").text)
        return client.post(path, data={"csrf_token": token, **data})

    return post


def last_entries(before=0) -> list[tuple]:
    db.session.rollback()
    return [(e.action, e.actor, e.branch_id, e.target, e.detail) for e in db.session.scalars(
        select(AuditEntry).where(AuditEntry.id > before).order_by(AuditEntry.id))]


def test_the_day_shows_each_slot_its_appointments_and_what_is_free(client, desk, clinic):
    branch, service, nino = clinic
    booked = book(clinic, at(2, 15), nino)
    page = client.get(f"/staff/calendar?service={service.id}&day=2026-03-02")
    assert page.status_code == 200
    found = Page(page.text)
    link = found.by_id[f"appointment-{booked.id}"]
    assert booked.booking_code in link["text"] and "Nino" in link["text"] and "Gelashvili" not in page.text
    assert "booked" in found.by_id[f"slot-202603021500"]["text"]
    assert found.by_id["time-1500"]["text"] == "15:00"  # Tbilisi's clock, 24-hour
    assert "past" in found.by_id["slot-202603021200"]["text"] and "book-202603021200" not in found.by_id
    free = found.by_id["book-202603021530"]
    assert free["href"] == f"/staff/calendar/book?service={service.id}&starts_at=2026-03-02T15:30"
    assert "places-202603021530" not in found.by_id  # one place a slot: "Book" says it all
    service.slot_capacity = 2
    db.session.commit()
    found = Page(client.get(f"/staff/calendar?service={service.id}&day=2026-03-02").text)
    assert "1 place free" in found.by_id["places-202603021500"]["text"] and "book-202603021500" in found.by_id
    assert "2 places free" in found.by_id["places-202603021530"]["text"]
    assert "Monday 2026-03-02" in found.by_id["shown-title"]["text"]
    closed = Page(client.get(f"/staff/calendar?service={service.id}&day=2026-03-05").text)
    assert "Clinic is closed on 2026-03-05: Water pipes under repair" in closed.by_id["closed-note"]["text"]


def test_the_week_has_a_column_per_day_and_speaks_the_readers_language(client, desk, clinic):
    _branch, service, nino = clinic
    book(clinic, at(4, 9), nino)
    week = Page(client.get(f"/staff/calendar?service={service.id}&day=2026-03-04&view=week").text)
    assert [k for k in week.by_id if k.startswith("day-")] == [f"day-202603{d:02}" for d in range(2, 9)]
    assert "Water pipes under repair" in week.by_id["closed-20260305"]["text"]
    assert "Closed" in week.by_id["closed-20260307"]["text"]
    assert week.by_id["earlier"]["href"].endswith("day=2026-02-23&view=week")
    assert week.by_id["later"]["href"].endswith("day=2026-03-09&view=week")
    ja = Page(client.get(f"/staff/calendar?service={service.id}&day=2026-03-04&view=week&lang=ja").text)
    assert "水" in ja.by_id["day-20260304"]["text"] and "2026/03/04" in ja.by_id["day-20260304"]["text"]
    assert "予約の方" in ja.by_id["shown-title"]["text"] and ja.by_id["time-0900"]["text"] == "9:00"
    ka = Page(client.get(f"/staff/calendar?service={service.id}&day=2026-03-02&lang=ka").text)
    assert "ორშაბათი" in ka.by_id["shown-title"]["text"] and "02.03.2026" in ka.by_id["shown-title"]["text"]


def test_booking_a_free_slot_from_its_form(client, desk, clinic):
    _branch, service, _nino = clinic
    shown = client.get(f"/staff/calendar/book?service={service.id}&starts_at=2026-03-03T10:30").text
    assert Page(shown).by_id["booking-when"]["text"].strip() == "2026-03-03 10:30"
    assert '<option value="ka" lang="ka" selected>' in shown  # the branch's language first
    done = desk("/staff/calendar/book", service=service.id, starts_at="2026-03-03T10:30", name="Giorgi Abashidze",
                phone="577 24 68 13", language="en", sms_consent="yes")
    booked = db.session.scalar(select(Appointment).where(Appointment.starts_at == at(3, 10, 30)))
    assert done.status_code == 302 and done.location.endswith(f"day=2026-03-03&view=day#appointment-{booked.id}")
    assert (booked.customer.phone, booked.language, booked.customer.sms_consent) == (GIORGI, "en", True)
    assert last_entries() == [("appointment.booked", "alice", clinic[0].id, f"appointment:{booked.id}",
                               {"code": booked.booking_code, "starts_at": "2026-03-03T10:30:00+04:00"})]
    assert f"Booked 2026-03-03 10:30, code {booked.booking_code}." in client.get(done.location).text


def test_a_refused_booking_says_why_keeps_what_was_typed_and_stores_nothing(client, desk, clinic):
    service = clinic[1]
    before = (rows(Customer), rows(Appointment), last_entries())
    for fields, words in [({"phone": "12"}, "That number is not valid"),
                          ({"phone": "+995 32 212 34 56"}, "landline"),
                          ({"name": "N" * 61}, "Names are at most 60 characters."),
                          ({"language": "fr"}, "The language must be one this branch offers"),
                          ({"starts_at": "2026-03-03T10:10"}, "is not a Appointments slot"),
                          ({"starts_at": "2026-03-05T10:00"}, "Clinic is closed on 2026-03-05"),
                          ({"starts_at": "2026-03-02T10:00"}, "That time has passed.")]:
        refused = desk("/staff/calendar/book", **{"service": service.id, "starts_at": "2026-03-03T10:30",
                                                  "name": "Giorgi", "phone": "577 24 68 13", "language": "en",
                                                  **fields})
        assert refused.status_code == 400 and words in Page(refused.text).by_id["form-error"]["text"], fields
        typed = Page(refused.text).by_id
        assert typed["f-name"]["value"] == fields.get("name", "Giorgi"), fields
        assert typed["f-phone"]["value"] == fields.get("phone", "577 24 68 13"), fields
        assert (rows(Customer), rows(Appointment), last_entries()) == before, fields


def test_a_full_slot_is_a_conflict(client, desk, clinic):
    book(clinic, at(3, 10), clinic[2])
    before = rows(Appointment)
    refused = desk("/staff/calendar/book", service=clinic[1].id, starts_at="2026-03-03T10:00", name="Eka")
    assert refused.status_code == 409 and "The 10:00 slot is full." in refused.text
    assert rows(Appointment) == before


def test_moving_to_a_free_slot_chosen_on_the_calendar(client, desk, clinic):
    _branch, service, nino = clinic
    appointment = book(clinic, at(3, 10), nino)
    other = book(clinic, at(3, 11))
    detail = Page(client.get(f"/staff/calendar/appointments/{appointment.id}").text)
    moving = Page(client.get(detail.by_id["move-link"]["href"]).text)
    assert appointment.booking_code in moving.by_id["moving"]["text"]
    assert moving.by_id["move-to-202603031130"]["value"] == "2026-03-03T11:30"
    assert "move-to-202603031100" not in moving.by_id  # taken
    before = last_entries()
    taken = desk(f"/staff/calendar/appointments/{appointment.id}/move", starts_at="2026-03-03T11:00")
    assert taken.status_code == 302 and "move=" in taken.location
    assert fresh(appointment).starts_at == at(3, 10) and last_entries() == before
    assert "The 11:00 slot is full." in client.get(taken.location).text
    moved = desk(f"/staff/calendar/appointments/{appointment.id}/move", starts_at="2026-03-03T11:30")
    assert fresh(appointment).starts_at == at(3, 11, 30) and fresh(other).starts_at == at(3, 11)
    assert last_entries() == [("appointment.moved", "alice", clinic[0].id, f"appointment:{appointment.id}",
                               {"to": "2026-03-03T11:30:00+04:00"})]
    assert f"{appointment.booking_code} moved to 2026-03-03 11:30" in client.get(moved.location).text


def test_cancelling_asks_first(client, desk, clinic):
    appointment = book(clinic, at(3, 10), clinic[2])
    detail = Page(client.get(f"/staff/calendar/appointments/{appointment.id}").text)
    assert detail.by_id["cancel-form"]["data-confirm"] == (
        f"Cancel appointment {appointment.booking_code} on 2026-03-03 10:00?")
    for answer in ({}, {"confirm": "0"}, {"confirm": "yes"}):
        asked = desk(f"/staff/calendar/appointments/{appointment.id}/cancel", **answer)
        assert asked.status_code == 200 and "confirm-yes" in Page(asked.text).by_id
        assert fresh(appointment).status == "booked" and last_entries() == []
    done = desk(f"/staff/calendar/appointments/{appointment.id}/cancel", confirm="1")
    assert done.status_code == 302 and fresh(appointment).status == "cancelled"
    assert last_entries() == [("appointment.cancelled", "alice", clinic[0].id, f"appointment:{appointment.id}", {})]
    again = desk(f"/staff/calendar/appointments/{appointment.id}/cancel", confirm="1")
    assert "is cancelled" in client.get(again.location).text and len(last_entries()) == 1
    assert "cancel-form" not in Page(client.get(f"/staff/calendar/appointments/{appointment.id}").text).by_id


def test_editing_whom_the_appointment_is_for(client, desk, clinic):
    appointment = book(clinic, at(3, 10), clinic[2], language="ka")
    form = Page(client.get(f"/staff/calendar/appointments/{appointment.id}").text)
    assert form.by_id["f-name"]["value"] == "Nino Gelashvili" and form.by_id["f-phone"]["value"] == NINO
    saved = desk(f"/staff/calendar/appointments/{appointment.id}/customer", name="Nino Beridze", phone=NINO,
                 language="en")
    assert saved.status_code == 302 and fresh(appointment).customer.name == "Nino Beridze"
    assert last_entries() == [("appointment.customer_changed", "alice", clinic[0].id, f"appointment:{appointment.id}",
                               {"customer": clinic[2].id, "language": "en"})]
    assert "The customer details are saved." in client.get(saved.location).text
    before = (rows(Customer), rows(Appointment), last_entries())
    refused = desk(f"/staff/calendar/appointments/{appointment.id}/customer", name="Nino", phone="12", language="en")
    page = Page(refused.text)
    assert refused.status_code == 400 and "That number is not valid" in page.by_id["form-error"]["text"]
    assert page.by_id["f-phone"]["aria-invalid"] == "true" and page.by_id["f-phone"]["value"] == "12"
    assert (rows(Customer), rows(Appointment), last_entries()) == before


def test_staff_of_another_branch_are_refused_everything(app, client, clinic):
    branch, service, nino = clinic
    appointment = book(clinic, at(3, 10), nino)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(client, "bob")
    token = csrf_token(client.get("/staff/calendar").text)
    before = (rows(Customer), rows(Appointment), last_entries())
    for path in (f"/staff/calendar?branch={branch.id}", f"/staff/calendar?move={appointment.id}",
                 f"/staff/calendar/book?service={service.id}&starts_at=2026-03-03T10:30",
                 f"/staff/calendar/appointments/{appointment.id}"):
        assert client.get(path).status_code == 404, path
    for path, form in ((f"/staff/calendar/book", {"service": service.id, "starts_at": "2026-03-03T10:30"}),
                       (f"/staff/calendar/appointments/{appointment.id}/move", {"starts_at": "2026-03-03T11:00"}),
                       (f"/staff/calendar/appointments/{appointment.id}/cancel", {"confirm": "1"}),
                       (f"/staff/calendar/appointments/{appointment.id}/customer", {"name": "X", "language": "en"})):
        refused = client.post(path, data={"csrf_token": token, **form})
        assert refused.status_code == 404 and appointment.booking_code not in refused.text, path
    own = Page(client.get("/staff/calendar").text)
    assert "Elsewhere" in client.get("/staff/calendar").text and "Clinic" not in own.by_id["calendar"]["text"]
    assert (rows(Customer), rows(Appointment), last_entries()) == before


# --- in Chromium, on the real server -----------------------------------------------------------

SHOTS = ROOT / "test-artifacts" / "calendar"
LANGUAGES = {"en": "en-GB", "ja": "ja-JP", "ka": "ka-GE"}
LIVE_CONFIG = 'DEFAULT_COUNTRY = "GE"\nDEFAULT_TIMEZONE = "Asia/Tbilisi"\n'
WIDE, PHONE = {"width": 1920, "height": 1080}, {"width": 360, "height": 740}
# Names as long as real ones get, one per script, on the demo branch's service A.
SEEDED = [("09:00", "Alexandrina Montgomery-Worthington", "+995 555 12 34 01", "en"),
          ("09:15", "山田 花子", "+995 555 12 34 02", "ja"),
          ("09:30", "ნინო გელაშვილი-ჯავახიშვილი", "+995 555 12 34 03", "ka")]

# What the page is measured by: every box that holds words. No text wider than its box (clipped or
# spilling), nothing sticking out of its container or the screen, no control or label in more than
# two lines, no scrolling sideways (the grid's own box included).
MEASURE = """() => {
  const shown = n => {
    if (n.closest("[hidden], dialog:not([open])")) return false;
    const r = n.getBoundingClientRect(), s = getComputedStyle(n);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none";
  };
  const name = n => n.tagName.toLowerCase() + (n.id ? "#" + n.id : "") + ' "' + (n.value || n.textContent).trim()
    .replace(/\\s+/g, " ").slice(0, 40) + '"';
  // Lines of text: its words' boxes, one line per run of boxes that overlap in height (a smaller
  // badge beside a bigger word is on the same line).
  const lines = n => {
    const boxes = [], walk = document.createTreeWalker(n, NodeFilter.SHOW_TEXT);
    for (let text = walk.nextNode(); text; text = walk.nextNode()) {
      if (!text.textContent.trim() || !shown(text.parentElement)) continue;
      const range = document.createRange();
      range.selectNodeContents(text);
      boxes.push(...[...range.getClientRects()].filter(r => r.width > 1));
    }
    boxes.sort((a, b) => a.top - b.top);
    let count = 0, bottom = -Infinity;
    for (const r of boxes) {
      if (r.top >= bottom - 2) { count += 1; bottom = r.bottom; } else bottom = Math.max(bottom, r.bottom);
    }
    return count;
  };
  const vw = document.documentElement.clientWidth, problems = [];
  const boxes = [...document.querySelectorAll(
    "main :is(h1, h2, h3, label, button, a, th, td, dt, dd, p, li, select, input, .badge, .places, .state)")].filter(shown);
  for (const n of boxes) {
    const r = n.getBoundingClientRect(), s = getComputedStyle(n), parent = n.parentElement.getBoundingClientRect();
    if (s.display !== "inline" && n.scrollWidth > n.clientWidth + 1)
      problems.push(`text wider than its box (${n.scrollWidth} > ${n.clientWidth}): ${name(n)}`);
    if (s.display !== "inline" && s.overflowY !== "visible" && n.scrollHeight > n.clientHeight + 1)
      problems.push(`text taller than its box (${n.scrollHeight} > ${n.clientHeight}): ${name(n)}`);
    const span = box => `${Math.round(box.left)}..${Math.round(box.right)}`;
    if (r.left < -0.5 || r.right > vw + 0.5) problems.push(`outside the screen (${span(r)} of ${vw}): ${name(n)}`);
    if (n.tagName !== "TD" && n.tagName !== "TH" && (r.left < parent.left - 1 || r.right > parent.right + 1))
      problems.push(`sticks out of its container (${span(r)} in ${span(parent)}): ${name(n)}`);
    if (n.matches("h1, h2, label, button, a, th, dt, .badge, .places, .state") && lines(n) > 2)
      problems.push(`text in ${lines(n)} lines: ${name(n)}`);
    if (n.matches("th.time, .code") && lines(n) > 1) problems.push(`a time or a code broken over lines: ${name(n)}`);
  }
  for (const box of document.querySelectorAll(".grid-box"))
    if (box.scrollWidth > box.clientWidth + 1)
      problems.push(`the grid scrolls sideways by ${box.scrollWidth - box.clientWidth}px`);
  const sideways = document.documentElement.scrollWidth - vw;
  if (sideways > 1) problems.push(`the page scrolls sideways by ${sideways}px`);
  return problems;
}"""


def weekday_after(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() > 4:
        day += timedelta(days=1)
    return day


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


@pytest.fixture(scope="module")
def live(tmp_path_factory, browser):
    """`python run.py` (the demo branch in Tbilisi, open Monday to Friday 9-17, service A in slots
    of 15 minutes), with three appointments on the next weekday and a closure in its week."""
    with running_system(tmp_path_factory.mktemp("calendar"), LIVE_CONFIG) as system:
        day = weekday_after(datetime.now(ZoneInfo("Asia/Tbilisi")).date())
        monday = day - timedelta(days=day.weekday())
        closed = monday + timedelta(days=2 if day.weekday() != 2 else 3)
        context, page = signed_in(browser, system)
        try:
            page.goto(system.base + "/admin/branches/1")
            page.fill("#closure-form [name=first_day]", closed.isoformat())
            page.fill("#closure-form [name=message]", "Staff training day")
            page.click("#closure-form button[type=submit]")
            expect(page.locator("#closures")).to_contain_text("Staff training day")
            for when, name, phone, language in SEEDED:
                page.goto(f"{system.base}/staff/calendar/book?service=1&starts_at={day}T{when}")
                page.fill("#f-name", name)
                page.fill("#f-phone", phone)
                page.select_option("#f-language", language)
                page.click("#book-button")
                expect(page.locator(".flash.ok")).to_contain_text("Booked")
        finally:
            context.close()
        system.day, system.closed = day, closed
        yield system


def calendar_url(system, view="day", day=None) -> str:
    return f"{system.base}/staff/calendar?branch=1&service=1&day={day or system.day}&view={view}"


FOCUSED = "document.activeElement && (document.activeElement.id || document.activeElement.tagName)"


def tab_to(page, ident: str, most: int = 200) -> list[str]:
    """Press Tab until the element `ident` has the focus; the ids passed on the way."""
    passed = []
    for _ in range(most):
        page.keyboard.press("Tab")
        passed.append(page.evaluate(FOCUSED))
        if passed[-1] == ident:
            return passed
    raise AssertionError(f"#{ident} was not reached by Tab; passed {passed[-12:]}")


def test_book_move_edit_and_cancel_by_mouse_and_keyboard(live, browser):
    day = live.day
    slot = f"{day:%Y%m%d}"
    context, page = signed_in(browser, live)
    try:
        page.goto(calendar_url(live))
        controls = page.evaluate("[...document.querySelectorAll('#grid :is(a, button)')].map(n => n.id)")
        assert f"book-{slot}1000" in controls and all(controls)
        # Every slot's control is reached by Tab, in the order of the grid.
        passed = tab_to(page, controls[-1], most=300)
        assert [ident for ident in passed if ident in controls] == controls

        # Book by keyboard: a free slot opens its form, prefilled with the slot and the branch's language.
        page.focus("body")
        tab_to(page, f"book-{slot}1000", most=300)
        page.keyboard.press("Enter")
        expect(page.locator("#booking-when")).to_contain_text(f"{day} 10:00")
        # (the Enter's navigation is not waited for: the form may still be arriving)
        expect(page.locator("#f-language")).to_have_value("en")
        tab_to(page, "f-name")
        page.keyboard.type("Giorgi Abashidze")
        page.keyboard.press("Tab")
        page.keyboard.type("577 24 68 13")
        tab_to(page, "f-consent")
        page.keyboard.press("Space")
        tab_to(page, "book-button")
        page.keyboard.press("Enter")
        expect(page.locator(".flash.ok")).to_contain_text(f"Booked {day} 10:00")
        booked = page.locator(f"#slot-{slot}1000 a.appointment")
        expect(booked).to_contain_text("Giorgi")
        code = booked.get_attribute("data-code")
        expect(page.locator(f"#slot-{slot}1000")).not_to_contain_text("Abashidze")  # first names on the grid

        # Move by mouse: the appointment's page, then a free slot chosen on the calendar.
        booked.click()
        expect(page.locator("#appointment-title")).to_contain_text(code)
        page.click("#move-link")
        expect(page.locator("#moving")).to_contain_text(code)
        page.click(f"#move-to-{slot}1100")
        expect(page.locator(".flash.ok")).to_contain_text(f"{code} moved to {day} 11:00")
        expect(page.locator(f"#slot-{slot}1100 a.appointment")).to_contain_text(code)
        expect(page.locator(f"#slot-{slot}1000 a.appointment")).to_have_count(0)

        # Edit whom it is for.
        page.click(f"#slot-{slot}1100 a.appointment")
        page.fill("#f-name", "Nino Beridze")
        page.fill("#f-phone", "555 12 34 09")
        page.select_option("#f-language", "ka")
        page.click("#customer-save")
        expect(page.locator(".flash.ok")).to_contain_text("The customer details are saved.")
        expect(page.locator("#appointment-name")).to_have_text("Nino Beridze")
        expect(page.locator("#appointment-language")).to_have_text("ქართული")

        # Cancel by keyboard, with the question: Escape keeps it, the question's yes cancels it.
        page.focus("#cancel-button")
        page.keyboard.press("Enter")
        dialog = page.locator("#confirm-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text(f"Cancel appointment {code} on {day} 11:00?")
        assert page.evaluate(FOCUSED) == "confirm-dialog-no"  # the safe answer has the focus
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        assert page.evaluate(FOCUSED) == "cancel-button"
        expect(page.locator("#appointment-status")).to_have_text("booked")
        page.keyboard.press("Enter")
        expect(dialog).to_be_visible()
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(FOCUSED) == "confirm-dialog-yes"
        with page.expect_navigation():  # the dialog's yes submits the cancel form
            page.keyboard.press("Enter")
        expect(page.locator(".flash.ok")).to_contain_text("Appointment cancelled.")
        expect(page.locator(f"#slot-{slot}1100")).not_to_contain_text(code)
        expect(page.locator(f"#book-{slot}1100")).to_be_visible()  # free again
    finally:
        context.close()


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_calendar_page_fits_reads_and_passes_axe(live, browser, language):
    folder = SHOTS / language
    folder.mkdir(parents=True, exist_ok=True)
    context, page = signed_in(browser, live, locale=LANGUAGES[language])
    found = []

    def check(name, sizes=(WIDE,)):
        # A page a click opened: the click waits for its navigation to commit, not for the page
        # (its stylesheet, the rest of its document) to load; measured once it has.
        page.wait_for_load_state("load")
        assert page.locator("html").get_attribute("lang") == language, name
        for size in sizes:
            page.set_viewport_size(size)
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(folder / f"{size['width']}x{size['height']}-{name}.png"), full_page=True)
            found.extend(f"{language} {size['width']}x{size['height']} {name}: {problem}"
                         for problem in page.evaluate(MEASURE))
        found.extend(f"{language} {name}: axe {v['id']} ({v['impact']}): {v['help']} {v['nodes'][:3]}"
                     for v in audit(page))

    try:
        page.goto(calendar_url(live))
        expect(page.locator(f"#slot-{live.day:%Y%m%d}0915 a.appointment")).to_contain_text("山田")
        check("day", (WIDE, PHONE))
        page.goto(calendar_url(live, "week"))
        expect(page.locator(f"#closed-{live.closed:%Y%m%d}")).to_contain_text("Staff training day")
        check("week")
        page.goto(calendar_url(live, "day", live.closed))
        check("closed-day", (WIDE, PHONE))
        page.goto(calendar_url(live))
        page.click(f"#book-{live.day:%Y%m%d}1200")
        check("book", (WIDE, PHONE))
        page.goto(calendar_url(live))
        page.click(f"#slot-{live.day:%Y%m%d}0930 a.appointment")
        check("appointment", (WIDE, PHONE))
        page.click("#cancel-button")
        expect(page.locator("#confirm-dialog")).to_be_visible()
        check("cancel-question", (WIDE, PHONE))
        page.keyboard.press("Escape")
        with page.expect_navigation():  # without the dialog (no JS): the server asks
            page.evaluate("document.getElementById('cancel-form').submit()")
        expect(page.locator("#confirm-step")).to_be_visible()
        check("cancel-asked", (WIDE, PHONE))
        page.click("#move-link")
        check("move")
    finally:
        context.close()
    assert not found, "\n".join(found)


def test_the_measure_finds_a_label_in_three_lines_and_a_grid_too_wide(live, browser):
    """The measurement above can fail."""
    context, page = signed_in(browser, live)
    try:
        page.goto(calendar_url(live, "week"))
        page.evaluate("""() => { const link = document.querySelector('#grid a.take');
                                 link.style.width = '40px';
                                 link.textContent = 'Book this slot for the customer now'; }""")
        page.set_viewport_size(PHONE)
        problems = page.evaluate(MEASURE)
        assert any("lines" in p and "Book this slot" in p for p in problems), problems
        assert any("the grid scrolls sideways" in p for p in problems), problems
    finally:
        context.close()
