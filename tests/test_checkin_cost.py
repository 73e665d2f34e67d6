"""What a kiosk's check-in asks of the database, on SQLite and on PostgreSQL. On PostgreSQL every
statement is a round trip, and 32 kiosks at once queue behind one worker: a check-in reads once,
writes each row once, and reads nothing twice, whether its customer is new or known, and whether
the kiosk says the language or leaves it to the branch."""
import re

import pytest
from sqlalchemy import event

from core.extensions import db

from .conftest import RequestIsolatedClient
from .helpers import make_branch_setup

# A texting walk-in's statements, in order: the branch, its service and today's closures; the
# customer; the queue ahead (the wait it is told); the number, the ticket and its event, its
# welcome text and the text's notices (on PostgreSQL: the number, the ticket and its event in one
# statement, the text and its notices in another).
def texting(dialect: str) -> list[str]:
    if dialect == "postgresql":
        rows = ["INSERT ticket_sequence+ticket+ticket_event", "INSERT outbox+ticket_notice+ticket_notice"]
    else:
        rows = ["INSERT ticket_sequence", "INSERT ticket", "INSERT ticket_event", "INSERT outbox", "INSERT ticket_notice"]
    return ["SELECT branch+service+closure", "INSERT customer", "SELECT ticket+counter+counter_service", *rows]


def kinds(statements: list[str]) -> list[str]:
    seen = []
    for statement in statements:
        words = statement.split()
        if words[0] == "SELECT":
            tables = re.findall(r"\b(?:FROM|JOIN) (\w+)", statement)
            seen.append("SELECT " + "+".join(dict.fromkeys(tables)))
        elif words[0] == "INSERT":
            seen.append(f"INSERT {words[2]}")
        elif words[0] == "WITH":  # rows written together (PostgreSQL)
            seen.append("INSERT " + "+".join(re.findall(r"INSERT INTO (\w+)", statement)))
        else:
            seen.append(" ".join(words[:2]))
    return seen


@pytest.fixture
def kiosk(any_db_app):
    branch_id = make_branch_setup()[0].id
    any_db_app.test_client_class = RequestIsolatedClient
    client = any_db_app.test_client()
    statements = []

    def seen(_connection, _cursor, statement, *_):
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA", "SAVEPOINT", "RELEASE")):
            statements.append(" ".join(statement.split()))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)

    def check_in(**fields):
        db.session.remove()  # a request of its own, as on a server: nothing loaded beforehand
        statements.clear()
        answer = client.post("/api/v1/checkins", json={"branch": branch_id, "service": "A", **fields})
        assert answer.status_code == 201, answer.json
        # (The branch's own wording of a text is read once a process, then kept until it changes:
        # templates.template_for. Which wording the welcome takes depends on the place in the queue.)
        return [kind for kind in kinds(statements) if kind != "SELECT message_template"]

    yield check_in
    event.remove(engine, "before_cursor_execute", seen)


def test_a_texting_check_in_reads_once_and_writes_each_row_once(kiosk):
    expected = texting(db.engine.dialect.name)
    phone = {"phone": "+995555123456", "sms_consent": True}
    assert kiosk(language="en", **phone) == expected  # a new customer
    assert kiosk(language="en", **phone) == expected  # the same number again: the same statements
    # No language said: the branch's is read with the branch, once, and kept for the check-in.
    assert kiosk(**phone) == ["SELECT branch"] + expected


def test_a_walk_in_without_a_phone_writes_no_customer_and_no_text(kiosk):
    assert kiosk(language="en") == [kind for kind in texting(db.engine.dialect.name) if kind not in (
        "INSERT customer", "INSERT outbox", "INSERT ticket_notice", "INSERT outbox+ticket_notice+ticket_notice")]
    assert kiosk() == ["SELECT branch"] + kiosk(language="en")
