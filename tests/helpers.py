"""Builders for test data: short calls that say only what a test cares about."""
import re
import threading

from core.errors import ValidationError
from core.extensions import db
from core.models import Branch, Counter, Service, StaffUser
from messaging import kinds
from messaging.models import OutboxMessage

from .constants import START

NUMBER = "+995555123456"


def make_branch(name="Test Branch", timezone="UTC", country="GB", **fields) -> Branch:
    branch = Branch(name=name, sender_name=name, timezone=timezone, country=country, created_at=START, **fields)
    db.session.add(branch)
    db.session.flush()
    return branch


def make_service(branch, code="A", name=None, minutes=5, **fields) -> Service:
    service = Service(branch=branch, code=code, name=name or f"Service {code}", avg_service_minutes=minutes, **fields)
    db.session.add(service)
    db.session.flush()
    return service


def make_counter(branch, name="1", services=(), is_open=False) -> Counter:
    counter = Counter(branch=branch, name=name, services=list(services), is_open=is_open)
    db.session.add(counter)
    db.session.flush()
    return counter


def make_staff(username="alice", password="correct horse", role="staff", branch=None) -> StaffUser:
    user = StaffUser(
        username=username, display_name=username.title(), role=role,
        branch_id=branch.id if branch else None, created_at=START,
    )
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def make_branch_setup(counters=2, services="AB"):
    """A branch with the given services, every counter serving all of them, and a staff member."""
    branch = make_branch()
    svc = [make_service(branch, code) for code in services]
    ctrs = [make_counter(branch, str(i + 1), svc) for i in range(counters)]
    staff = make_staff(branch=branch)
    db.session.commit()
    return branch, svc, ctrs, staff


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "page carries no CSRF token"
    return match.group(1)


def submit(client, path, data):
    """Open a form page (it must answer 200) and post `data` to it with the page's CSRF token."""
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return client.post(path, data={**data, "csrf_token": csrf_token(page.text)})


def at_once(app, arguments, work) -> list:
    """`work(argument)` in a thread per argument, all let go together, each in its own app context
    and session. Per thread, in the order they finish: "done", the ValidationError's detail, or the
    repr of anything else it raised (for the caller's assertion to show)."""
    barrier, outcomes = threading.Barrier(len(arguments)), []

    def run(argument):
        with app.app_context():
            try:
                barrier.wait()
                work(argument)
                outcomes.append("done")
            except ValidationError as error:
                outcomes.append(error.detail)
            except BaseException as error:  # noqa: BLE001  (reported by the caller's assertion)
                outcomes.append(repr(error))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(argument,)) for argument in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), outcomes
    return outcomes


def login(client, username="alice", password="correct horse"):
    page = client.get("/staff/login")
    return client.post(
        "/staff/login", data={"username": username, "password": password, "csrf_token": csrf_token(page.text)}
    )


def text(branch, kind="welcome", status="queued", to=None, **fields) -> OutboxMessage:
    """An outbox row as the gateway and the policy leave it; created now unless told otherwise."""
    now = fields.pop("now", None) or fields.get("created_at")
    values = {"to": to or NUMBER, "body": f"{kind} text", "send_after": now, "created_at": now, **fields}
    message = OutboxMessage(branch_id=branch.id if branch else None, kind=kind, status=status,
                            priority=kinds.get(kind).rank, **values)
    db.session.add(message)
    db.session.commit()
    return message


def bearer(username="alice") -> dict:
    """Headers that call the API as an integration with this staff member's role and branches
    (HTTP Basic is off unless API_BASIC_AUTH: integrations use tokens)."""
    from sqlalchemy import select

    from core import tokens

    user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    _token, secret = tokens.create(f"as {username}", user.role, user.branch_ids)
    return {"Authorization": f"Bearer {secret}"}


# Alembic compares an index with a descending column on PostgreSQL, not on SQLite (it warns and
# reports it missing): there, its columns and their order are read from SQLite itself.
DESCENDING_INDEXES = {"ix_ticket_service_queue_order": [("service_id", 0), ("status", 0), ("priority", 1),
                                                        ("arrived_at", 0), ("id", 0)]}


def schema_differences(connection) -> list:
    """What the migrated schema on `connection` lacks or has beyond the models (Alembic's
    compare_metadata); on SQLite, the descending indexes checked column by column instead."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    sqlite = connection.dialect.name == "sqlite"

    def compared(_obj, name, type_, _reflected, _compare_to):
        return not (sqlite and type_ == "index" and name in DESCENDING_INDEXES)

    found = compare_metadata(MigrationContext.configure(connection, opts={"include_object": compared}), db.metadata)
    if sqlite:
        for name, columns in DESCENDING_INDEXES.items():
            built = [(row.name, row.desc) for row in connection.exec_driver_sql(f"PRAGMA index_xinfo({name})") if row.key]
            if built != columns:
                found.append(("index differs", name, built, columns))
    return found
