"""Customers: found by phone, remembered with their language and name, and their consent to
texts recorded with its source and the exact words they agreed to."""
import functools

from sqlalchemy import bindparam, select

from . import clock
from .database import conflict_insert, write_transaction
from .models import Customer


def remember(phone: str | None, *, name=None, language=None, consent_source=None, consent_text=None) -> int:
    """Create or update the customer (by E.164 phone when given). A consent given now also lifts
    an earlier STOP: the customer has just asked for texts again. Returns the customer's id."""
    with write_transaction() as session:
        return remember_in(session, phone, name=name, language=language, consent_source=consent_source,
                           consent_text=consent_text).id


@functools.cache  # built once per dialect and set of fields, bound at each use (see core/queries.py)
def _upsert(dialect: str, fields: frozenset):
    """The customer of a phone number made, or found and given `fields`, in one statement (INSERT
    ... ON CONFLICT (phone) DO UPDATE ... RETURNING): a check-in's select and insert were two round
    trips to the database, in the ticket's transaction."""
    # On the table, loaded as the session's Customer (from_statement): an ORM-enabled INSERT goes
    # through SQLAlchemy's bulk insert path, most of the statement's cost in the worker's CPU.
    table = Customer.__table__
    statement = conflict_insert(dialect)(table).values({column: bindparam(column) for column in _COLUMNS})
    # Nothing to change: the phone given itself, so that RETURNING still returns the existing row.
    changed = {column: statement.excluded[column] for column in sorted(fields)} or {"phone": statement.excluded.phone}
    upsert = statement.on_conflict_do_update(index_elements=["phone"], set_=changed).returning(*table.c)
    return select(Customer).from_statement(upsert).execution_options(populate_existing=True)


_COLUMNS = ("phone", "name", "language", "sms_consent", "consent_at", "consent_source", "consent_text",
            "opted_out_at", "created_at")


def remember_in(session, phone: str | None, *, name=None, language=None, consent_source=None,
                consent_text=None) -> Customer:
    """remember(), in a write transaction the caller holds (a check-in's: the customer and the
    ticket in one, under one write lock); the customer, for the ticket to hold (the session
    holds a flushed row only weakly: held by id alone, it would be read again for the welcome)."""
    now = clock.now()
    given = {}
    if language:
        given["language"] = language
    if name:
        given["name"] = name
    if consent_source:
        given.update(sms_consent=True, consent_at=now, opted_out_at=None, consent_source=consent_source,
                     consent_text=consent_text)
    if phone is None:  # a name alone: always someone new
        customer = Customer(created_at=now, **given)
        session.add(customer)
        session.flush()
        return customer
    row = {"phone": phone, "name": None, "language": "en", "sms_consent": False, "consent_at": None,
           "consent_source": None, "consent_text": None, "opted_out_at": None, "created_at": now, **given}
    statement = _upsert(session.get_bind().dialect.name, frozenset(given))
    return session.scalars(statement, row).one()
