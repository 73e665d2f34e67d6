"""What a kiosk's check-in asks of the database, on SQLite and on PostgreSQL. On PostgreSQL every
statement is a round trip, and 32 kiosks at once queue behind one worker: a check-in reads once,
writes each row once, and reads nothing twice, whether its customer is new or known, and whether
the kiosk says the language or leaves it to the branch."""
import json
import re
import subprocess
import sys
from pathlib import Path

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


PRINTERLESS = r"""
import json, sys, tempfile, os
sys.path.insert(0, sys.argv[1])
from app import create_app
from core.extensions import db
folder = tempfile.mkdtemp()
app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite:///" + os.path.join(folder, "seed.db"),
                  "SECRET_KEY": "tests-only", "INSTANCE_PATH": os.path.join(folder, "instance"), "PRINTER": None})
with app.app_context():
    db.create_all()
    from tests.helpers import make_branch_setup
    branch, (service, _b), _counters, _alice = make_branch_setup()
    body = {"branch": branch.id, "service": service.code, "language": "en"}
answer = app.test_client().post("/api/v1/checkins", json=body)
result = {"status": answer.status_code, "print": answer.json["print"]["status"],
          "loaded": sorted(name for name in sys.modules if name.split(".")[0] in ("escpos", "PIL", "hardware"))}
import run
app.config["PRINTER"] = {"kind": "file", "path": os.path.join(folder, "printed.bin")}
run.start_in_worker(app, role="web")["post_worker_init"](None)  # a worker starting, with a printer
result["at_start"] = "hardware.printer" in sys.modules
print(json.dumps(result))
"""


def test_a_kiosk_without_a_printer_never_loads_the_printing_libraries():
    """python-escpos (with the printer's fonts) took a worker's first check-in ~80 ms to import;
    without a printer none of it is loaded (with one, run.py loads it when the worker starts)."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", PRINTERLESS, str(root)], capture_output=True, text=True, timeout=120,
                          cwd=root)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 201 and result["print"] == "off", result
    assert not [name for name in result["loaded"] if name.startswith(("escpos", "hardware.printer", "hardware.ticket"))], result
    assert result["at_start"], result
