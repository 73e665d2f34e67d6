"""Dates and times in a customer's texts and on a printed ticket (issue 16): Babel-formatted in the
customer's language on the branch's clock, short, with the weekday and a 24-hour clock; never ISO."""
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core import appointments
from core.extensions import db
from core.models import Customer
from hardware import printer
from messaging import inbox, templates
from messaging.appointment_texts import choices_text, send_reminders, when_text
from messaging.models import OutboxMessage

from .helpers import make_branch, make_service
from .modem_helpers import KA

TOKYO = ZoneInfo("Asia/Tokyo")
VISIT = datetime(2026, 12, 3, 1, 0, tzinfo=timezone.utc)  # Thursday 3 December, 10:00 in Tokyo
# How each language writes that moment, and the three next free times on the evening before.
WHEN = {"ja": "12月3日(木) 10:00", "en": "Thu 3 Dec 10:00", "ka": "ხუთ 3 დეკ 10:00"}
CHOICES = {"ja": "1) 12月3日(木) 09:00 2) 12月3日(木) 09:30 3) 12月3日(木) 10:30",
           "en": "1) Thu 3 Dec 09:00 2) Thu 3 Dec 09:30 3) Thu 3 Dec 10:30",
           "ka": "1) ხუთ 3 დეკ 09:00 2) ხუთ 3 დეკ 09:30 3) ხუთ 3 დეკ 10:30"}


@pytest.fixture
def tokyo(app, clock):
    branch = make_branch("Tokyo", timezone="Asia/Tokyo", country="JP",
                         opening_hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")})
    service = make_service(branch, "B", "Appointments", slot_minutes=30, slot_capacity=1)
    db.session.commit()
    return branch, service


def body(kind):
    db.session.rollback()
    return db.session.scalars(select(OutboxMessage.body).where(OutboxMessage.kind == kind)).all()


@pytest.mark.parametrize("language", ["ja", "en", "ka"])
def test_a_tokyo_reminder_and_its_choices_give_tokyo_time_in_the_customers_language(tokyo, clock, language):
    _branch, service = tokyo
    clock.set(datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc))
    customer = Customer(phone=KA, sms_consent=True, consent_at=clock.now(), language=language, created_at=clock.now())
    db.session.add(customer)
    db.session.commit()
    appointment = appointments.book(service.id, VISIT, customer_id=customer.id)
    assert appointment.starts_at.astimezone(timezone.utc) == VISIT  # stored as the UTC moment

    clock.set(datetime(2026, 12, 2, 17, 30, tzinfo=TOKYO))  # the evening before, after closing
    assert send_reminders() == 1
    [reminder] = body("reminder")
    assert WHEN[language] in reminder and "2026" not in reminder, reminder

    inbox.store_received(KA, "R", clock.now(), gateway="g")
    [offer] = body("reschedule_offer")
    assert CHOICES[language] in offer and "2026" not in offer, offer


def test_the_formats_are_short_unambiguous_and_24_hour(tokyo):
    branch, _service = tokyo
    evening = datetime(2026, 5, 28, 14, 5, tzinfo=timezone.utc)  # 23:05 on Thursday 28 May in Tokyo
    assert templates.clock_text(branch, evening) == "23:05"
    assert [when_text(branch, evening, language) for language in ("en", "ja", "ka", "fr")] == [
        "Thu 28 May 23:05", "5月28日(木) 23:05", "ხუთ 28 მაი 23:05", "Thu 28 May 23:05"]
    assert choices_text(branch, [VISIT, evening], "en") == "1) Thu 3 Dec 10:00 2) Thu 28 May 23:05"
    english = when_text(branch, evening, "en")
    assert english.isascii()  # an English text stays GSM-7


@pytest.mark.parametrize("language", ["en", "ja", "ka"])
def test_a_printed_ticket_gives_the_check_in_time_as_the_texts_do(app, monkeypatch, tmp_path, language):
    seen = []
    real_lines = printer.ticket_lines
    monkeypatch.setattr(printer, "ticket_lines", lambda *args: seen.append(real_lines(*args)) or seen[-1])
    out = tmp_path / "printed.bin"
    words = {"your_ticket": "Your ticket", "ahead": "People ahead of you: 2", "wait": "Estimated wait: about 9 min",
             "scan": "Scan to follow your place."}
    ticket = {"number": "A012", "service_name": "General", "status_url": "https://example.org/t/1", "print_words": words}
    printer.print_ticket({"kind": "file", "path": str(out)}, ticket, "Tokyo", language, VISIT.astimezone(TOKYO))
    assert WHEN[language] in [text for text, _, _ in seen[-1]]
    if language == "en":  # plain ASCII: sent as the printer's own text
        assert WHEN["en"].encode() in out.read_bytes()
