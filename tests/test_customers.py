"""Customers remembered by phone number (core/customers.py), on SQLite and on PostgreSQL: one row a
number whatever comes with it, what was said before kept unless said anew, and a number that
checks in twice at the same moment still one customer."""

import threading

from sqlalchemy import event, func, select

from core import customers
from core.database import write_transaction
from core.extensions import db
from core.models import Customer

from .helpers import at_once

NUMBER = "+995555123456"


def everyone() -> list[tuple]:
    db.session.rollback()
    return db.session.execute(select(Customer.phone, Customer.name, Customer.language, Customer.sms_consent,
                                     Customer.consent_source, Customer.opted_out_at)
                              .order_by(Customer.id)).all()


def test_a_number_is_one_customer_and_keeps_what_it_was_not_told_anew(any_db_app, clock):
    first = customers.remember(NUMBER, name="Nino", language="ka", consent_source="kiosk", consent_text="Yes, texts")
    assert everyone() == [(NUMBER, "Nino", "ka", True, "kiosk", None)]
    created = db.session.get(Customer, first).created_at

    clock.advance(days=30)
    # A later visit without a name or a yes: the name and the consent stay, the language is the new one.
    assert customers.remember(NUMBER, language="ja") == first
    assert everyone() == [(NUMBER, "Nino", "ja", True, "kiosk", None)]
    assert db.session.get(Customer, first).created_at == created  # made once, not made again

    # STOP, then a yes at a kiosk: the yes lifts it, with the words seen this time.
    with write_transaction() as session:
        session.get(Customer, first).opted_out_at = clock.now()
        session.get(Customer, first).sms_consent = False
    assert customers.remember(NUMBER, name="Nino B.", consent_source="staff", consent_text="Yes again") == first
    customer = db.session.get(Customer, first)
    assert (customer.name, customer.sms_consent, customer.opted_out_at, customer.consent_source,
            customer.consent_text, customer.consent_at) == ("Nino B.", True, None, "staff", "Yes again", clock.now())

    # Nothing new at all: the same customer, nothing changed.
    assert customers.remember(NUMBER) == first
    assert everyone() == [(NUMBER, "Nino B.", "ja", True, "staff", None)]


def test_a_new_number_without_a_yes_is_remembered_without_consent(any_db_app):
    customers.remember(NUMBER, language="en")
    assert everyone() == [(NUMBER, None, "en", False, None, None)]


def test_a_name_alone_is_someone_new_each_time(any_db_app):
    one, other = customers.remember(None, name="Giorgi"), customers.remember(None, name="Giorgi")
    assert one != other
    assert everyone() == [(None, "Giorgi", "en", False, None, None)] * 2


def test_remembered_in_the_callers_transaction_the_customer_is_the_sessions_own(any_db_app):
    with write_transaction() as session:
        customer = customers.remember_in(session, NUMBER, name="Ana")
        assert customer in session and customer.id is not None and customer.name == "Ana"
        again = customers.remember_in(session, NUMBER, language="ka")
        assert again is customer and (again.name, again.language) == ("Ana", "ka")


def test_one_number_checking_in_at_the_same_moment_is_one_customer(any_db_app):
    """Two kiosks, the same new number, the same instant (a double tap, a family sharing a phone):
    neither fails and there is one customer. On PostgreSQL every writer is held at its write to
    the customer table until all have come that far: a select, then an insert, lost this race (the
    later inserts broke the phone's uniqueness). SQLite's writers queue for its one write lock."""
    languages = ["ka", "ja", "en", "ka"]
    engine = db.engine
    together = threading.Barrier(len(languages), timeout=10)

    def hold(_connection, _cursor, statement, *_):
        if statement.startswith("INSERT INTO customer"):
            together.wait()

    if engine.dialect.name == "postgresql":
        event.listen(engine, "before_cursor_execute", hold)
    try:
        outcomes = at_once(any_db_app, languages, lambda language: customers.remember(
            NUMBER, language=language, consent_source="kiosk", consent_text="Yes"))
    finally:
        if event.contains(engine, "before_cursor_execute", hold):
            event.remove(engine, "before_cursor_execute", hold)
    assert outcomes == ["done"] * 4
    assert db.session.scalar(select(func.count(Customer.id))) == 1
    assert everyone()[0][2] in set(languages) and everyone()[0][3] is True
