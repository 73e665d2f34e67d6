"""The suite's own guard (tests/column_lengths.py): a string longer than its column fails the test
that wrote it, whether the row was flushed as an object or written as a statement."""
import pytest
from sqlalchemy import insert

from core.database import write_transaction
from core.models import Customer, TicketEvent

from .column_lengths import TooLong
from .constants import START


def test_an_oversize_string_fails_a_flush_and_a_statement_alike(any_db_app):
    with pytest.raises(TooLong, match="Customer.phone holds 16 characters; the code wrote 17"):
        with write_transaction() as session:
            session.add(Customer(phone="+" + "9" * 16, created_at=START))
    with pytest.raises(TooLong, match="kind holds 20 characters; the code wrote 21"):
        with write_transaction() as session:
            session.execute(insert(TicketEvent.__table__), {"ticket_id": 1, "at": START, "kind": "k" * 21,
                                                            "to_status": "waiting", "detail": {}})
    with write_transaction() as session:  # what fits goes through
        session.execute(insert(Customer.__table__), {"phone": "+" + "9" * 15, "created_at": START, "language": "en",
                                                     "sms_consent": False})
