"""Replies as a customer sends them: from a handset, through the virtual modem and the gateway,
to the router, and the answers back on the handset."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core import appointments
from core.extensions import db
from core.models import Appointment, Customer
from hardware.gateway import Gateway
from messaging.models import InboxMessage

from .helpers import make_branch, make_service
from .modem_helpers import KA, wait_until

TBILISI = timezone(timedelta(hours=4))


@pytest.fixture
def world(app, vm, clock):
    app.config.update(MODEM_SWEEP_SECONDS=0.5, MODEM_HEALTH_SECONDS=0.5)
    branch = make_branch("Clinic", timezone="Asia/Tbilisi", country="GE",
                         opening_hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")})
    branch.sender_name = "Tbilisi Clinic"
    service = make_service(branch, "B", "Appointments", slot_minutes=30)
    customer = Customer(phone=KA, sms_consent=True, consent_at=clock.now(), language="ka", created_at=clock.now())
    db.session.add(customer)
    db.session.commit()
    appointment = appointments.book(service.id, datetime(2026, 3, 4, 10, tzinfo=TBILISI), customer_id=customer.id)
    gateway = Gateway(app, port=vm.port).start()
    yield appointment
    gateway.stop()


def exchange(vm, clock, text, count):
    """Send `text` from the handset and wait until it has `count` texts from us."""
    clock.advance(seconds=5)
    vm.inject(KA, text)
    wait_until(lambda: len(vm.messages_for(KA)) >= count, message=f"answer to {text!r}")
    return vm.messages_for(KA)[-1]["body"]


def test_keywords_over_the_modem(world, vm, clock):
    assert exchange(vm, clock, "R", 1).startswith("Tbilisi Clinic: თავისუფალი დრო: 1) ორშ 2 მარ 13:30")
    moved = exchange(vm, clock, "２", 2)  # a full-width choice
    assert moved.startswith("Tbilisi Clinic: თქვენი ვიზიტი (Appointments) გადატანილია ორშ 2 მარ 14:00-ზე")
    db.session.rollback()
    assert db.session.get(Appointment, world.id).starts_at == datetime(2026, 3, 2, 14, tzinfo=TBILISI)
    assert "დადასტურებულია" in exchange(vm, clock, "c", 3)
    assert exchange(vm, clock, "ГAMARJOBA?", 4).startswith("Tbilisi Clinic: გმადლობთ, თქვენი შეტყობინება")
    assert "შეწყვეტა" in exchange(vm, clock, "დახმარება", 5)  # the Georgian reply words
    assert exchange(vm, clock, "გაჩერება", 6).startswith("Tbilisi Clinic: აღარ მიიღებთ")
    assert exchange(vm, clock, "START", 7).startswith("Tbilisi Clinic: SMS-ები ისევ ჩართულია")
    assert "გაუქმდა" in exchange(vm, clock, "X", 8)
    db.session.rollback()
    outcomes = [m.outcome for m in db.session.scalars(select(InboxMessage).order_by(InboxMessage.id))]
    assert outcomes == ["reschedule: slots offered", "appointment rescheduled", "appointment confirmed", "to staff",
                        "help sent", "opted out", "opted in", "appointment cancelled"]
