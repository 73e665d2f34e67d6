"""Online self-booking (issue 16): a public page per branch where a customer picks a service, a day
and a free time, gives a name and a mobile number with consent to texts, and is texted a
confirmation with a link to cancel or move it; the texted X/C/R replies act on it too.

Units: every bad input is refused and changes nothing; closed days and opening hours are kept; the
switch turns it off; a slot goes to one booking only (many threads at once, on SQLite and on
PostgreSQL); the pages, their refusals in the customer's language, the rate limits, the manage page
by its link. Then in Chromium against `python run.py`: booking on a phone in Japanese, the text
arriving on the virtual phone, R answered by text, then moving and cancelling on the link's page;
every page in en, ja and ka at a 360×740 phone, 1080×1920 upright and 1920×1080 measured from element boxes
(nothing overflows, is clipped or wraps beyond two lines), screenshot to
test-artifacts/booking/<language>/ and audited by axe-core."""
import re
import threading
import time
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import pytest
from babel.support import Translations
from flask_babel import force_locale, gettext
from playwright.sync_api import expect
from sqlalchemy import func, select, text

from core import self_booking
from core.errors import Conflict, ValidationError
from core.extensions import db
from core.models import Appointment, Closure, Customer
from messaging import inbox
from messaging.models import OutboxMessage

from . import axe
from .constants import START
from .helpers import csrf_token, make_branch, make_service, make_staff
from .live import ROOT, chromium, running_system

TBILISI = timezone(timedelta(hours=4))
MONDAY = date(2026, 3, 2)  # START is 13:00 on this Monday in Tbilisi
NINO, GIORGI = "+995555123456", "+995577246813"
HOURS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
LIMITS = ("BOOKING_PAGE_RATE_LIMIT", "BOOKING_RATE_LIMIT", "BOOKING_PHONE_RATE_LIMIT", "BOOKING_CHANGE_RATE_LIMIT")


def at(day, hour, minute=0):
    return datetime(2026, 3, day, hour, minute, tzinfo=TBILISI)


def shop():
    """A Tbilisi clinic, open Monday to Friday 9-17, closed on Thursday 5 March: a check-up of
    15 minutes for one person at a time, and a paused service."""
    branch = make_branch("Vake Clinic", timezone="Asia/Tbilisi", country="GE", default_language="ka",
                         languages=["ka", "en", "ja"], opening_hours=HOURS)
    service = make_service(branch, "A", "Check-up", slot_minutes=15, slot_capacity=1,
                           names={"en": "Check-up", "ja": "健康診断", "ka": "შემოწმება"})
    make_service(branch, "P", "Paused", active=False)
    db.session.add(Closure(branch_id=branch.id, first_day=date(2026, 3, 5), last_day=date(2026, 3, 5),
                           message="Holiday", created_at=START))
    db.session.commit()
    return branch, service


@pytest.fixture
def clinic(app, clock):
    return shop()


@pytest.fixture
def web(app, clinic):
    """A stranger's browser: no CSRF token to fetch first (one test checks it), the limits out of
    the way but where a test sets them."""
    app.config["WTF_CSRF_ENABLED"] = False
    for key in LIMITS:
        app.config[key] = "1000 per minute"
    return app.test_client()


GOOD = {"service": "A", "starts_at": at(3, 10), "name": "Nino Beridze", "phone": "555 12 34 56", "language": "ka",
        "consent": True}


def book(branch, **changes):
    return self_booking.book(branch, **{**GOOD, **changes})


def snapshot() -> tuple:
    db.session.rollback()
    customers = db.session.execute(select(Customer.id, Customer.phone, Customer.name, Customer.language,
                                          Customer.sms_consent, Customer.consent_text).order_by(Customer.id)).all()
    booked = db.session.execute(select(Appointment.id, Appointment.starts_at, Appointment.status)
                                .order_by(Appointment.id)).all()
    return customers, booked, db.session.scalar(select(func.count(OutboxMessage.id)))


def in_language(language, msgid, **values):
    with force_locale(language):
        return gettext(msgid, **values)


# --- the service layer ------------------------------------------------------------------------------

def test_a_booking_records_the_customer_and_their_consent_in_the_words_they_saw(clinic):
    branch, service = clinic
    appointment = book(branch)
    assert (appointment.service_id, appointment.starts_at, appointment.status) == (service.id, at(3, 10), "booked")
    assert (appointment.source, appointment.language) == ("online", "ka")
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", appointment.access_token)
    customer = db.session.get(Customer, appointment.customer_id)
    assert (customer.phone, customer.name, customer.language) == (NINO, "Nino Beridze", "ka")
    assert (customer.sms_consent, customer.consent_source) == (True, "online")
    assert customer.consent_text == self_booking.consent_text(branch, "ka")  # the words in the language it was booked in
    assert branch.sender_name in self_booking.consent_text(branch, "en")
    assert self_booking.by_token(appointment.access_token).id == appointment.id
    assert book(branch, starts_at=at(3, 10, 15)).access_token != appointment.access_token


def test_a_known_number_gives_its_consent_again_and_keeps_its_record(clinic, clock):
    branch, _service = clinic
    db.session.add(Customer(phone=NINO, name="N.", language="en", sms_consent=False, opted_out_at=START,
                            created_at=START))
    db.session.commit()
    appointment = book(branch, language="ja")
    customer = db.session.get(Customer, appointment.customer_id)
    assert db.session.scalar(select(func.count(Customer.id))) == 1
    assert (customer.name, customer.language, customer.sms_consent, customer.opted_out_at) == (
        "Nino Beridze", "ja", True, None)


BAD = [
    ({"name": ""}, "name"), ({"name": "   "}, "name"), ({"name": None}, "name"), ({"name": "N" * 61}, "name"),
    ({"name": "<script>"}, "name"), ({"name": "Nino\x00"}, "name"), ({"name": ["Nino"]}, "name"),
    ({"phone": ""}, "phone"), ({"phone": None}, "phone"), ({"phone": "12345"}, "phone"),
    ({"phone": "+995 32 212 34 56"}, "phone"),  # a Tbilisi landline: texts cannot reach it
    ({"phone": "5" * 40}, "phone"), ({"phone": 555123456}, "phone"),
    ({"consent": False}, "consent"), ({"consent": "yes"}, "consent"), ({"consent": None}, "consent"),
    ({"language": "fr"}, "language"),
    ({"service": "Z"}, "service"), ({"service": "P"}, "service"), ({"service": ""}, "service"),
    ({"service": None}, "service"),
    ({"starts_at": None}, "time"), ({"starts_at": "2026-03-03T10:00"}, "time"),
    ({"starts_at": at(3, 10).replace(tzinfo=None)}, "time"),
    ({"starts_at": at(2, 12)}, "time"),  # an hour ago
    ({"starts_at": at(16, 10)}, "time"),  # beyond the 14 days
    ({"starts_at": at(3, 10, 7)}, "time"),  # between two slots
    ({"starts_at": at(3, 8, 45)}, "time"), ({"starts_at": at(3, 16, 50)}, "time"),  # outside opening hours
    ({"starts_at": at(7, 10)}, "time"),  # a Saturday
    ({"starts_at": at(5, 10)}, "time"),  # the closure
]


def test_bad_input_is_refused_with_a_clear_word_and_changes_nothing(clinic):
    branch, _service = clinic
    db.session.add(Customer(phone=NINO, name="Nino", language="ka", created_at=START))  # no consent given yet
    db.session.commit()
    before = snapshot()
    for changes, field in BAD:
        with pytest.raises(ValidationError) as refused:
            book(branch, **changes)
        assert field in refused.value.detail, (changes, refused.value.detail)
        assert refused.value.detail[field] and refused.value.message, changes
        assert snapshot() == before, changes


def test_every_field_wrong_is_named_at_once(clinic):
    with pytest.raises(ValidationError) as refused:
        book(clinic[0], name="", phone="12", consent=False, service="Z", starts_at=None)
    assert set(refused.value.detail) == {"name", "phone", "consent", "service", "time"}


def test_closed_days_and_opening_hours_are_kept_in_what_is_offered(clinic):
    branch, service = clinic
    days = {d.day: d for d in self_booking.days(service)}
    assert sorted(days) == [MONDAY + timedelta(days=n) for n in range(14)]
    assert [d.day.day for d in days.values() if d.closed] == [5, 7, 8, 14, 15]  # the closure, the weekends
    assert days[date(2026, 3, 3)].free == 32 and days[MONDAY].free == 15  # 13:15 to 16:45 are left today
    assert days[date(2026, 3, 5)].free == 0
    times = self_booking.free_times(service, MONDAY)
    assert (times[0], times[-1]) == (at(2, 13, 15), at(2, 16, 45))
    assert self_booking.free_times(service, date(2026, 3, 5)) == []  # closed
    assert self_booking.free_times(service, date(2026, 3, 16)) == []  # beyond the window
    book(clinic[0], starts_at=at(3, 10))
    assert at(3, 10) not in self_booking.free_times(service, date(2026, 3, 3))
    assert {d.day: d for d in self_booking.days(service)}[date(2026, 3, 3)].free == 31


def test_a_full_slot_is_refused_and_leaves_no_customer_behind(clinic):
    branch, _service = clinic
    book(branch)
    before = snapshot()
    with pytest.raises(Conflict) as refused:
        book(branch, phone="577 24 68 13", name="Giorgi")
    assert refused.value.message == "Sorry, that time was just taken. Please choose another."
    assert refused.value.detail == {"time": refused.value.message}
    assert snapshot() == before


def test_the_switch_turns_online_booking_off_and_on(clinic):
    branch, _service = clinic
    assert self_booking.enabled(branch)
    self_booking.set_enabled(branch, False)
    before = snapshot()
    with pytest.raises(self_booking.BookingOff) as refused:
        book(branch)
    assert refused.value.status == 403 and branch.name in refused.value.message
    assert snapshot() == before
    with pytest.raises(ValidationError):
        self_booking.set_enabled(branch, "off")
    self_booking.set_enabled(branch, True)
    assert book(branch).status == "booked"


def test_cancel_and_move_by_the_link(clinic, clock):
    branch, _service = clinic
    appointment = book(branch)
    with pytest.raises(ValidationError):
        self_booking.cancel(appointment, "yes")  # only a confirmation cancels
    with pytest.raises(ValidationError) as same:
        self_booking.move(appointment, at(3, 10))
    assert same.value.detail == {"time": "Your appointment is at that time already. Please choose another."}
    other = book(branch, starts_at=at(3, 11), phone="577 24 68 13")
    with pytest.raises(Conflict):
        self_booking.move(appointment, at(3, 11))
    with pytest.raises(ValidationError):
        self_booking.move(appointment, at(5, 11))  # closed
    assert self_booking.move(appointment, at(4, 9, 30)).starts_at == at(4, 9, 30)
    assert self_booking.cancel(appointment, True).status == "cancelled"
    with pytest.raises(self_booking.Refused):
        self_booking.move(db.session.get(Appointment, appointment.id), at(4, 10))
    clock.set(at(3, 11, 1))  # the other one has begun
    with pytest.raises(self_booking.Refused):
        self_booking.cancel(db.session.get(Appointment, other.id), True)
    assert db.session.get(Appointment, other.id).status == "booked"
    for token in ("nope", "x" * 80, "", None, "bad\x00token-xxxxxxxxxxxxx"):
        with pytest.raises(self_booking.LinkGone):
            self_booking.by_token(token)


# --- two people, one slot -----------------------------------------------------------------------------

THREADS = 10


def test_many_people_booking_one_slot_at_once_one_gets_it(any_db_app, clock):
    """Ten customers press "book" for the last place in a slot at the same moment, on SQLite and on
    PostgreSQL: one booking, nine clear refusals, and no customer record left by the refused."""
    branch, service = shop()
    branch_id = branch.id
    phones = [f"+9955551234{n:02d}" for n in range(THREADS)]
    barrier, outcomes, lock = threading.Barrier(THREADS), [], threading.Lock()

    def customer(phone):
        with any_db_app.app_context():
            try:
                from core.models import Branch

                mine = db.session.get(Branch, branch_id)
                # Its connection back to the pool before the race: ten holding one each while
                # they wait would need more than a process's connections to PostgreSQL.
                db.session.commit()
                barrier.wait()
                with force_locale("en"):
                    booked = self_booking.book(mine, **{**GOOD, "phone": phone, "language": "en"})
                result = ("booked", booked.id)
            except Conflict as refused:
                result = ("full", refused.message)
            except BaseException as error:  # noqa: BLE001  (shown by the assertion below)
                result = ("error", repr(error))
            finally:
                db.session.remove()
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=customer, args=(phone,)) for phone in phones]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), outcomes
    assert sorted(kind for kind, _ in outcomes) == ["booked"] + ["full"] * (THREADS - 1), outcomes
    assert {detail for kind, detail in outcomes if kind == "full"} == {
        "Sorry, that time was just taken. Please choose another."}
    db.session.rollback()
    held = db.session.scalars(select(Appointment).where(Appointment.service_id == service.id)).all()
    assert len(held) == 1 and held[0].starts_at == GOOD["starts_at"]
    assert db.session.scalar(select(func.count(Customer.id))) == 1  # the refused left nothing behind
    assert db.session.get(Customer, held[0].customer_id).phone in phones


# --- the pages ------------------------------------------------------------------------------------------

def page_url(branch, language="ka", **chosen) -> str:
    query = "&".join(f"{key}={value}" for key, value in {"language": language, **chosen}.items())
    return f"/book/{branch.id}?{query}"


FORM = {"language": "ka", "service": "A", "day": "2026-03-03", "time": "10:00", "name": "Nino Beridze",
        "phone": "555 12 34 56", "consent": "yes"}


def post_booking(web, branch, headers=None, **changes):
    return web.post(f"/book/{branch.id}", data={**FORM, **changes}, headers=headers)


def test_the_steps_offer_what_can_be_booked_in_the_customers_language(web, clinic):
    branch, _service = clinic
    first = web.get(f"/book/{branch.id}")  # the branch's own language first
    assert first.status_code == 200 and '<html lang="ka">' in first.text
    assert re.findall(r'data-service="(\w)"', first.text) == ["A"]  # the paused one is not offered
    assert "შემოწმება" in first.text
    assert re.findall(r'hreflang="(\w+)"', first.text) == ["ka", "en", "ja"]

    days = web.get(page_url(branch, "ja", service="A"))
    assert '<html lang="ja">' in days.text and "健康診断" in days.text
    links = re.findall(r'<a class="day" href="[^"]+" data-day="([\d-]+)"', days.text)
    shut = re.findall(r'<span class="day is-off" data-day="([\d-]+)"', days.text)
    assert len(links) + len(shut) == 14 and "2026-03-05" in shut and "2026-03-07" in shut and "2026-03-03" in links
    assert "3月3日(火)" in days.text  # the day in Japanese

    times = web.get(page_url(branch, "en", service="A", day="2026-03-02"))
    assert re.findall(r'data-time="([\d:]+)"', times.text)[:2] == ["13:15", "13:30"]  # Tbilisi's clock, 24-hour

    details = web.get(page_url(branch, "en", service="A", day="2026-03-02", time="13:15"))
    assert 'name="consent"' in details.text and "Vake Clinic may text me" in details.text
    assert re.search(r"<dd>Mon 2 Mar</dd>.*<dd>13:15</dd>", details.text, re.S)

    for refused, step in ((page_url(branch, "en", service="Z"), "service"),
                          (page_url(branch, "en", service="A", day="2026-03-05"), "day"),  # closed
                          (page_url(branch, "en", service="A", day="2026-02-28"), "day"),  # past
                          (page_url(branch, "en", service="A", day="2026-03-02", time="12:00"), "time")):  # gone
        answer = web.get(refused)
        assert f'data-step="{step}"' in answer.text and 'role="alert"' in answer.text, refused
    assert web.get(page_url(branch, "fr")).text.count('<html lang="ka">') == 1  # not offered: the branch's own


def test_booking_on_the_page_texts_a_confirmation_with_the_link(web, app, clinic):
    branch, _service = clinic
    answer = post_booking(web, branch, language="en")
    assert answer.status_code == 303
    location = urlparse(answer.location)
    token = location.path.rsplit("/", 1)[1]
    assert parse_qs(location.query) == {"done": ["booked"]}
    appointment = self_booking.by_token(token)
    assert (appointment.starts_at, appointment.language, appointment.source) == (at(3, 10), "en", "online")
    sent = db.session.scalars(select(OutboxMessage).where(OutboxMessage.appointment_id == appointment.id)).all()
    assert [m.kind for m in sent] == ["appointment_booked"] and sent[0].to == NINO
    assert sent[0].body == (f"Vake Clinic: your Check-up appointment on Tue 3 Mar 10:00 is booked "
                            f"(code {appointment.booking_code}). Reply X to cancel or R to change the time, or open "
                            f"http://localhost/a/{token}")
    page = web.get(answer.location)
    assert page.status_code == 200 and "Your appointment is booked" in page.text
    assert appointment.booking_code in page.text and "Tuesday 3 March 2026, 10:00" in page.text

    app.config["PUBLIC_URL"] = "https://book.example.ge/"  # the address texts give, whatever the request's Host
    second = post_booking(web, branch, time="10:15", phone="577 24 68 13", headers={"Host": "evil.example"})
    token = urlparse(second.location).path.rsplit("/", 1)[1]
    body = db.session.scalar(select(OutboxMessage.body).where(OutboxMessage.to == GIORGI))
    assert body.endswith(f" https://book.example.ge/a/{token}"), body


def test_a_refused_form_comes_back_with_each_word_in_the_customers_language(web, clinic):
    branch, _service = clinic
    before = snapshot()
    answer = post_booking(web, branch, language="ja", name="", phone="abc", consent="")
    assert answer.status_code == 400 and '<html lang="ja">' in answer.text and 'data-step="details"' in answer.text
    assert snapshot() == before
    for field, msgid in (("name", "Please enter your name."), ("phone", "That is not a phone number."),
                         ("consent", "Please tick the box: we send your confirmation and reminders by text.")):
        shown = re.search(rf'<p class="error" id="{field}-error">([^<]+)</p>', answer.text).group(1)
        assert shown == in_language("ja", msgid), field
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', answer.text), field
    assert 'value="abc"' in answer.text  # nothing typed is lost


def test_a_slot_taken_meanwhile_sends_the_customer_back_to_the_times(web, clinic):
    branch, _service = clinic
    book(branch, phone="577 24 68 13")
    before = snapshot()
    answer = post_booking(web, branch, language="en")
    assert answer.status_code == 409 and 'data-step="time"' in answer.text
    assert "Sorry, that time was just taken. Please choose another." in answer.text
    assert 'data-time="10:00"' not in answer.text and 'data-time="10:15"' in answer.text
    assert snapshot() == before


def test_switched_off_the_page_says_so_politely_and_books_nothing(web, clinic, client):
    branch, _service = clinic
    make_staff("manny", role="manager", branch=branch)
    db.session.commit()
    client.post("/staff/login", data={"username": "manny", "password": "correct horse"})  # no CSRF here (web)
    form = client.get(f"/admin/branches/{branch.id}")
    assert 'name="online_booking" type="checkbox" value="on" checked' in form.text
    assert f"/book/{branch.id}" in form.text
    data = {"name": branch.name, "sender_name": branch.sender_name,
            "timezone": branch.timezone, "country": branch.country, "language": "ka", "languages": ["ka", "en", "ja"],
            "online_booking_shown": "1", **{f"hours-{d}-open-1": "09:00" for d in HOURS},
            **{f"hours-{d}-close-1": "17:00" for d in HOURS}, "hours-sat-closed": "on", "hours-sun-closed": "on"}
    assert client.post(f"/admin/branches/{branch.id}", data=data).status_code == 302  # the box left unticked
    db.session.refresh(branch)
    assert not self_booking.enabled(branch)

    page = web.get(page_url(branch, "ja", service="A"))
    off = in_language("ja", "%(branch)s does not take bookings online at the moment. Please call or visit us.",
                      branch=branch.name)
    assert page.status_code == 200 and off in page.text and "data-day" not in page.text
    before = snapshot()
    answer = post_booking(web, branch, language="ja")
    assert answer.status_code == 403 and off in answer.text
    assert snapshot() == before

    assert client.post(f"/admin/branches/{branch.id}", data={**data, "online_booking": "on"}).status_code == 302
    db.session.refresh(branch)
    assert self_booking.enabled(branch) and post_booking(web, branch).status_code == 303


def test_a_form_without_its_token_is_refused_politely(web, app, client, clinic):
    branch, _service = clinic
    app.config["WTF_CSRF_ENABLED"] = True
    before = snapshot()
    answer = post_booking(client, branch, language="ja")
    assert answer.status_code == 400 and '<html lang="ja">' in answer.text
    assert in_language("ja", "Please try again") in answer.text
    assert snapshot() == before
    details = client.get(page_url(branch, "ja", service="A", day="2026-03-03", time="10:00"))
    assert post_booking(client, branch, language="ja", csrf_token=csrf_token(details.text)).status_code == 303


def test_the_manage_page_cancels_after_asking_and_moves_to_a_free_time(web, clinic):
    branch, _service = clinic
    appointment = book(branch, language="en")
    book(branch, starts_at=at(4, 9, 15), phone="577 24 68 13")
    base = f"/a/{appointment.access_token}"
    page = web.get(base)
    assert page.status_code == 200 and appointment.booking_code in page.text and 'id="cancel-open"' in page.text

    moving = web.get(f"{base}?change=move&day=2026-03-04")
    offered = re.findall(r'data-time="([\d:]+)"', moving.text)
    assert offered[:2] == ["09:00", "09:30"]  # 09:15 is someone else's
    taken = web.post(f"{base}/move", data={"day": "2026-03-04", "time": "09:15"})
    assert taken.status_code == 409 and "Sorry, that time was just taken" in taken.text
    moved = web.post(f"{base}/move", data={"day": "2026-03-04", "time": "09:30"})
    assert moved.status_code == 303 and moved.location.endswith("?done=moved")
    db.session.rollback()
    assert db.session.get(Appointment, appointment.id).starts_at == at(4, 9, 30)
    assert "Your appointment has a new time" in web.get(moved.location).text
    texts = db.session.scalars(select(OutboxMessage.kind).where(OutboxMessage.appointment_id == appointment.id)).all()
    assert texts == ["appointment_moved"]

    asking = web.get(f"{base}?change=cancel")
    assert 'id="cancel-yes"' in asking.text and 'name="confirm" value="yes"' in asking.text
    unconfirmed = web.post(f"{base}/cancel", data={})
    assert unconfirmed.status_code == 400 and db.session.get(Appointment, appointment.id).status == "booked"
    done = web.post(f"{base}/cancel", data={"confirm": "yes"})
    assert done.status_code == 303
    db.session.rollback()
    assert db.session.get(Appointment, appointment.id).status == "cancelled"
    after = web.get(done.location)
    assert "Your appointment is cancelled" in after.text and 'id="cancel-open"' not in after.text
    again = web.post(f"{base}/cancel", data={"confirm": "yes"})
    assert again.status_code == 409 and "This appointment is cancelled" in again.text


def test_a_dead_link_is_a_friendly_page_in_the_browsers_language(web, clinic):
    for path in ("/a/not-a-real-link-at-all-xx", "/a/x", "/a/bad%00token"):
        answer = web.get(path, headers={"Accept-Language": "ja"})
        assert answer.status_code == 404 and '<html lang="ja">' in answer.text, path
        assert in_language("ja", "This link no longer works") in answer.text
        assert web.post(f"{path}/cancel", data={"confirm": "yes"}).status_code == 404
    missing = web.get("/book/999999", headers={"Accept-Language": "ka"})
    assert missing.status_code == 404 and '<html lang="ka">' in missing.text
    assert web.get(f"/book/{2 ** 40}").status_code == 404


def test_texted_replies_act_on_an_online_booking(web, clinic):
    branch, _service = clinic
    appointment = book(branch, language="en")
    inbox.store_received(NINO, "C", START, gateway="g")
    assert db.session.get(Appointment, appointment.id).status == "confirmed"
    inbox.store_received(NINO, "X", START, gateway="g")
    db.session.rollback()
    assert db.session.get(Appointment, appointment.id).status == "cancelled"


def test_bookings_per_number_are_limited_and_the_customer_reads_why(web, app, clinic):
    branch, _service = clinic
    app.config["BOOKING_PHONE_RATE_LIMIT"] = "2 per hour"
    for time_of_day in ("10:00", "10:15"):
        assert post_booking(web, branch, time=time_of_day).status_code == 303
    before = snapshot()
    limited = post_booking(web, branch, time="10:30", language="ja", phone="+995 555 12-34-56")  # the same number
    assert limited.status_code == 429 and '<html lang="ja">' in limited.text
    assert in_language("ja", "Too many requests: wait a moment and try again.") in limited.text
    assert snapshot() == before
    assert post_booking(web, branch, time="10:30", phone="577 24 68 13").status_code == 303  # another number


def test_bookings_and_pages_per_address_are_limited(web, app, clinic):
    branch, _service = clinic
    app.config["BOOKING_RATE_LIMIT"] = "2 per hour"  # every booking and change from one address
    app.config["BOOKING_PAGE_RATE_LIMIT"] = "3 per minute"
    assert post_booking(web, branch, time="10:00").status_code == 303
    assert post_booking(web, branch, time="10:15", phone="577 24 68 13").status_code == 303
    before = snapshot()
    assert post_booking(web, branch, time="10:30", phone="599 11 22 33").status_code == 429
    assert snapshot() == before
    assert [web.get(page_url(branch, "en")).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_changes_by_one_link_are_limited(web, app, clinic):
    branch, _service = clinic
    app.config["BOOKING_CHANGE_RATE_LIMIT"] = "2 per hour"
    appointment = book(branch, language="ka")
    base = f"/a/{appointment.access_token}"
    assert [web.post(f"{base}/cancel", data={}).status_code for _ in range(2)] == [400, 400]
    limited = web.post(f"{base}/cancel", data={"confirm": "yes"})
    assert limited.status_code == 429 and '<html lang="ka">' in limited.text  # the booking's language
    assert db.session.get(Appointment, appointment.id).status == "booked"


# --- the migration --------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migration_gives_every_earlier_appointment_its_own_link(backend, tmp_path, request):
    from flask_migrate import upgrade

    from app import create_app
    from core.database import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'm.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_database")
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        upgrade(directory=MIGRATIONS, revision="f4b8d2c6a915")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO branch (id, name, sender_name, timezone, country, default_language, "
                              "opening_hours, languages, branding, show_names, messaging, created_at) VALUES "
                              "(1, 'B', 'B', 'UTC', 'GB', 'en', '{}', '[\"en\"]', '{}', false, '{}', :now)"),
                         {"now": START.replace(tzinfo=None)})
            conn.execute(text("INSERT INTO service (id, branch_id, code, name, names, avg_service_minutes, active, "
                              "target_wait_minutes, priority, position, slot_minutes, slot_capacity) VALUES "
                              "(1, 1, 'A', 'A', '{}', 5, true, 15, 0, 0, 15, 1)"))
            for n in range(3):
                conn.execute(text("INSERT INTO appointment (branch_id, service_id, starts_at, status, booking_code, "
                                  "reminders_sent, source, created_at) VALUES (1, 1, :at, 'booked', :code, '[]', "
                                  "'staff', :at)"), {"at": START.replace(tzinfo=None), "code": f"CODE{n}"})
        upgrade(directory=MIGRATIONS)
        with db.engine.connect() as conn:
            tokens = conn.execute(text("SELECT access_token FROM appointment")).scalars().all()
        assert len(tokens) == 3 == len(set(tokens)) and all(re.fullmatch(r"[A-Za-z0-9_-]{24}", t) for t in tokens)
        db.drop_all()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE alembic_version")
        db.engine.dispose()


# --- in Chromium, on the real server -------------------------------------------------------------------

SHOTS = ROOT / "test-artifacts" / "booking"
PHONE, PORTRAIT, WIDE = (360, 740), (1080, 1920), (1920, 1080)  # a phone, a kiosk screen upright, a computer
JAPANESE_MOBILE = "090-1234-5678"  # +819012345678, the virtual phone's number below
JA_NUMBER = "+819012345678"
CATALOGUES = {language: Translations.load(str(ROOT / "translations"), [language]) for language in ("ja", "ka")}


def words(language: str, msgid: str, **values) -> str:
    """What the page says in `language` (the catalogue as committed; English where it has no entry yet)."""
    said = CATALOGUES[language].gettext(msgid) if language in CATALOGUES else msgid
    return said % values if values else said


# Every visible text and control, its box against its text's box, its container's and the screen's.
MEASURE_JS = """
() => {
  const vw = document.documentElement.clientWidth;
  const shown = n => {
    if (n.closest("[hidden]")) return false;
    const r = n.getBoundingClientRect(), s = getComputedStyle(n);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none";
  };
  const name = n => n.tagName.toLowerCase() + (n.id ? "#" + n.id : "") + (n.className ? "." + n.className : "")
    + ' "' + (n.value || n.textContent).trim().replace(/\\s+/g, " ").slice(0, 40) + '"';
  const lines = n => {
    const range = document.createRange();
    range.selectNodeContents(n);
    return new Set([...range.getClientRects()].filter(l => l.width > 0).map(l => Math.round(l.bottom))).size;
  };
  const nodes = [...document.querySelectorAll(
    "header :is(a, .branch-name), main :is(a, button, label, h1, h2, p, dt, dd, li, input)")].filter(shown);
  const problems = [], controls = [];
  for (const n of nodes) {
    const r = n.getBoundingClientRect(), parent = n.parentElement.getBoundingClientRect();
    const block = getComputedStyle(n).display !== "inline";
    if (block && n.scrollWidth > n.clientWidth + 1) problems.push(`text wider than its box (${n.scrollWidth} > ${n.clientWidth}): ${name(n)}`);
    if (r.left < -0.5 || r.right > vw + 0.5) problems.push(`outside the screen (${Math.round(r.left)}..${Math.round(r.right)} of ${vw}): ${name(n)}`);
    if (r.left < parent.left - 1 || r.right > parent.right + 1)
      problems.push(`sticks out of its container (${Math.round(r.left)}..${Math.round(r.right)} in ${Math.round(parent.left)}..${Math.round(parent.right)}): ${name(n)}`);
    const control = n.matches("a, button");
    if (control || n.matches("h1, h2, dt, dd, label:not(.consent label)")) {
      for (const part of control && n.children.length ? [...n.children] : [n]) {
        const count = lines(part);
        if (count > 2) problems.push(`text in ${count} lines: ${name(part)}`);
      }
    }
    if (control && n.textContent.trim()) {
      const range = document.createRange();
      range.selectNodeContents(n);
      const t = range.getBoundingClientRect();
      if (block && (t.top < r.top - 1 || t.bottom > r.bottom + 1 || t.left < r.left - 1 || t.right > r.right + 1))
        problems.push(`text outside its control: ${name(n)}`);
      controls.push({name: name(n), width: r.width, height: r.height});
    }
  }
  return {problems, controls, sideways: document.documentElement.scrollWidth - document.documentElement.clientWidth};
}
"""


class Inspector:
    """Each page as it stands: screenshot at a phone's size and a wide screen's, every problem of its
    boxes noted, and axe-core's audit of it."""

    def __init__(self, page, language):
        self.page, self.language, self.found = page, language, []
        self.folder = SHOTS / language
        self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str) -> None:
        # Each page comes from a click, which waits for its navigation to commit, and an expect on
        # its title: its stylesheet and the rest of it may still be on the way.
        self.page.wait_for_load_state("load")
        for width, height in (PHONE, PORTRAIT, WIDE):
            self.page.set_viewport_size({"width": width, "height": height})
            self.page.evaluate("window.scrollTo(0, 0)")
            self.page.screenshot(path=str(self.folder / f"{width}x{height}-{name}.png"), full_page=True)
            measured = self.page.evaluate(MEASURE_JS)
            where = f"{self.language} {width}x{height} {name}"
            self.found += [f"{where}: {problem}" for problem in measured["problems"]]
            if measured["sideways"] > 0:
                self.found.append(f"{where}: the page scrolls sideways by {measured['sideways']} px")
            self.found += [f"{where}: control {c['width']:.0f}×{c['height']:.0f} px, under 44 px: {c['name']}"
                           for c in measured["controls"] if c["height"] < 44 or c["width"] < 44]
        self.page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
        violations = axe.audit(self.page)
        if violations:
            self.found.append(f"{self.language} {name}: axe-core:\n{axe.describe(violations)}")


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """A Tokyo clinic's Seed (the demo branch: Japanese first, open Monday to Friday 9-17), its texts
    on the virtual phone, the limits out of the way."""
    config = ('DEFAULT_TIMEZONE = "Asia/Tokyo"\nDEFAULT_LANGUAGE = "ja"\nDEFAULT_COUNTRY = "JP"\n'
              "VIRTUAL_MODEM_LATENCY = 0.05\nMODEM_SWEEP_SECONDS = 1\n"
              + "".join(f'{key} = "1000 per minute"\n' for key in LIMITS))
    with running_system(tmp_path_factory.mktemp("booking"), config) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


def texts_to(system, number: str) -> list[str]:
    status, body, _ = system.request("GET", f"/api/v1/virtual-phone/messages?number={number.replace('+', '%2B')}")
    assert status == 200, body
    return [message["body"] for message in body["messages"]]


def wait_for_text(system, number: str, count: int, timeout=20.0) -> list[str]:
    """The texts the phone has once it has at least `count` (the gateway sends within a second or two)."""
    deadline = time.monotonic() + timeout
    while True:
        received = texts_to(system, number)
        if len(received) >= count or time.monotonic() > deadline:
            assert len(received) >= count, received
            return received
        time.sleep(0.2)


def book_on_the_page(page, system, check, language, phone) -> str:
    """Through every step on the page (each one checked), to the booked page; its URL."""
    page.goto(f"{system.base}/book/1?language={language}")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("#title")).to_have_attribute("data-step", "service")
    check("1-service")
    page.locator("#services a").first.click()
    expect(page.locator("#title")).to_have_attribute("data-step", "day")
    check("2-day")
    page.locator("#days a.day").first.click()
    expect(page.locator("#title")).to_have_attribute("data-step", "time")
    check("3-time")
    page.locator("#times a.time").first.click()
    expect(page.locator("#title")).to_have_attribute("data-step", "details")
    check("4-details")
    page.locator("#book").click()  # nothing filled in: every field refused, in the page's language
    expect(page.locator("#consent-error")).to_have_text(
        words(language, "Please tick the box: we send your confirmation and reminders by text."))
    expect(page.locator("#name")).to_be_focused()
    check("5-details-refused")
    page.fill("#name", {"en": "Ann Lee", "ja": "山田 花子", "ka": "ნინო ბერიძე"}[language])
    page.fill("#phone", phone)
    page.check("#consent")
    page.locator("#book").click()
    expect(page.locator("#title")).to_have_text(words(language, "Your appointment is booked"))
    check("6-booked")
    return page.url


def manage_and_cancel(page, check, language) -> None:
    """From the booking's page: choose another time, then cancel (asked first)."""
    before = page.locator("#when").inner_text()
    page.locator("#move-open").click()
    expect(page.locator("#title")).to_have_text(words(language, "Choose a new time"))
    check("7-move-day")
    page.locator("#days a.day").last.click()
    expect(page.locator("#times")).to_be_visible()
    check("8-move-time")
    page.locator("#times button.time").last.click()
    expect(page.locator("#title")).to_have_text(words(language, "Your appointment has a new time"))
    assert page.locator("#when").inner_text() != before
    check("9-moved")
    page.locator("#cancel-open").click()
    expect(page.locator("#title")).to_have_text(words(language, "Cancel your appointment?"))
    expect(page.locator("#cancel-no")).to_be_visible()
    check("10-cancel-question")
    page.locator("#cancel-yes").click()
    expect(page.locator("#title")).to_have_text(words(language, "Your appointment is cancelled"))
    expect(page.locator("#cancel-open")).to_have_count(0)
    check("11-cancelled")


def test_booking_on_a_japanese_phone_then_by_text_and_by_its_link(system, browser):
    """A Japanese phone books, gets the text with the link on the virtual phone, answers R and 1 by
    text (moved), then moves and cancels on the link's page. Every page measured and audited."""
    context = browser.new_context(bypass_csp=True, locale="ja-JP", viewport={"width": PHONE[0], "height": PHONE[1]})
    page = context.new_page()
    check = Inspector(page, "ja")
    url = book_on_the_page(page, system, check, "ja", JAPANESE_MOBILE)
    link = url.split("?")[0]
    code = page.locator("#code").inner_text()
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{6}", code)

    confirmation = wait_for_text(system, JA_NUMBER, 1)[0]
    assert confirmation.startswith("Demo Branch") and confirmation.endswith(link), confirmation
    assert page.locator("#when").inner_text().split()[-1] in confirmation  # the time, on Tokyo's clock

    status, _body, _ = system.request("POST", "/api/v1/virtual-phone/send", {"from": JA_NUMBER, "text": "R"})
    assert status == 202
    offer = wait_for_text(system, JA_NUMBER, 2)[1]
    first = re.search(r"1\) (.+?) 2\)", offer).group(1)  # the first free time offered
    system.request("POST", "/api/v1/virtual-phone/send", {"from": JA_NUMBER, "text": "1"})
    moved = wait_for_text(system, JA_NUMBER, 3)[2]
    assert first in moved, (first, moved)
    page.goto(link)
    expect(page.locator("#when")).to_contain_text(first.split()[-1])  # the page shows the time moved by text
    expect(page.locator("#code")).to_have_text(code)

    manage_and_cancel(page, check, "ja")
    assert len(wait_for_text(system, JA_NUMBER, 4)) == 4  # the move on the page was texted too

    page.goto(f"{system.base}/a/this-link-was-never-ours-xx")
    expect(page.locator("#title")).to_have_text(words("ja", "This link no longer works"))
    check("12-dead-link")
    context.close()
    assert not check.found, "\n".join(check.found)


@pytest.mark.parametrize("language", ["en", "ka"])
def test_every_page_fits_and_passes_axe_in_english_and_georgian(system, browser, language):
    context = browser.new_context(bypass_csp=True, locale={"en": "en-GB", "ka": "ka-GE"}[language],
                                  viewport={"width": PHONE[0], "height": PHONE[1]})
    page = context.new_page()
    check = Inspector(page, language)
    book_on_the_page(page, system, check, language, {"en": "080-2345-6789", "ka": "070-3456-7890"}[language])
    manage_and_cancel(page, check, language)
    page.goto(f"{system.base}/a/this-link-was-never-ours-xx")
    check("12-dead-link")
    context.close()
    assert not check.found, "\n".join(check.found)
