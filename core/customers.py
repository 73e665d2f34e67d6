"""Customers: found by phone, remembered with their language and name, and their consent to
texts recorded with its source and the exact words they agreed to."""
import functools

from sqlalchemy import bindparam, select

from . import clock
from .database import write_transaction
from .models import Customer


def remember(phone: str | None, *, name=None, language=None, consent_source=None, consent_text=None) -> int:
    """Create or update the customer (by E.164 phone when given). A consent given now also lifts
    an earlier STOP: the customer has just asked for texts again. Returns the customer's id."""
    with write_transaction() as session:
        return remember_in(session, phone, name=name, language=language, consent_source=consent_source,
                           consent_text=consent_text).id


@functools.cache  # built once, bound at each use (see core/queries.py)
def _by_phone():
    return select(Customer).where(Customer.phone == bindparam("phone"))


def remember_in(session, phone: str | None, *, name=None, language=None, consent_source=None,
                consent_text=None) -> Customer:
    """remember(), in a write transaction the caller holds (a check-in's: the customer and the
    ticket in one, under one write lock); the customer, for the ticket to hold (the session
    holds a flushed row only weakly: held by id alone, it would be read again for the welcome)."""
    now = clock.now()
    customer = session.scalar(_by_phone(), {"phone": phone}) if phone else None
    if customer is None:
        customer = Customer(phone=phone, created_at=now)
        session.add(customer)
    if language:
        customer.language = language
    if name:
        customer.name = name
    if consent_source:
        customer.sms_consent, customer.consent_at, customer.opted_out_at = True, now, None
        customer.consent_source, customer.consent_text = consent_source, consent_text
    session.flush()
    return customer
