"""Each branch sees only its own: staff of branch 2 try every route in the app's URL map against
branch 1's tickets, appointments, texts and settings. A route added later is walked too: the
walker fails on an argument it has no branch-1 value for, so the new route cannot slip by."""
import hashlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, text

from core import engine, tokens
from core.extensions import db
from core.models import Appointment, Closure, Customer, StaffUser
from messaging import inbox
from messaging.models import InboxMessage, InboxQuarantine, OutboxMessage

from .constants import START
from .helpers import csrf_token, login, make_branch, make_counter, make_service, make_staff

SECRET_NAME = "Nino Secretova"
SECRET_NUMBER = "+995577246813"
SECRET_WORDS = "SECRET-B1"
LEAKS = (SECRET_NAME, SECRET_WORDS, "7246813", "577 24 68 13")

# Routes anyone may open, and why. Walked too: they must not show branch 1's private data.
# Changes anyone may make to branch 1: a kiosk check-in adds a ticket, whoever sends it (what it
# answers is still checked for branch 1's other data).
OPEN_TO_ALL = {"kiosk_api.checkins"}
PUBLIC = {
    "index": "home page with links", "api.health": "monitoring: states and counts, no customer data",
    "staff.login": "the way in", "staff.logout": "the way out",
    "kiosk.kiosk_index": "kiosk chooser", "kiosk.screen": "the kiosk of a branch",
    "kiosk.status_late": "the status page's running-late button, by the same token",
    "kiosk.status_cancel": "the status page's cancel button, by the same token",
    "kiosk_api.checkins": "check-in at a kiosk", "kiosk_api.phone_check": "kiosk phone check",
    "display.index": "display chooser", "display.screen": "waiting-room display: ticket numbers only",
    "kiosk.status": "customer's own status page, by unguessable token", "kiosk.status_json": "same, JSON",
    "kiosk.status_qr": "same, its QR code", "kiosk.status_elsewhere": "a status link cut short or run on", "branding.logo": "a branch's logo (on its kiosk anyway)",
    "booking.page": "a branch's online booking page: its services and free times",
    "booking.book": "booking online, no account", "booking.manage": "the customer's own appointment, by unguessable token",
    "booking.cancel": "same, its cancel button", "booking.move": "same, its move button",
}


@pytest.fixture
def branches(app, clock):
    one, two = make_branch("Branch One"), make_branch("Branch Two")
    service1, service2 = make_service(one, "A"), make_service(two, "A")
    counter1, counter2 = make_counter(one, "1", [service1]), make_counter(two, "1", [service2])
    make_staff("alice", branch=one)
    make_staff("bob", branch=two)
    customer = Customer(phone=SECRET_NUMBER, name=SECRET_NAME, sms_consent=True, consent_at=START, created_at=START)
    db.session.add(customer)
    db.session.commit()
    ticket = engine.issue_ticket(service1.id, customer_id=customer.id)
    appointment = Appointment(branch_id=one.id, service_id=service1.id, customer_id=customer.id,
                              starts_at=START + timedelta(days=1), created_at=START)
    db.session.add(appointment)
    db.session.add(InboxQuarantine(branch_id=one.id, pdu="00", error=SECRET_WORDS, received_at=START))
    db.session.commit()
    reply_id = inbox.store_received(SECRET_NUMBER, f"{SECRET_WORDS} reply", START, gateway="gw")
    failed = OutboxMessage(branch_id=one.id, to=SECRET_NUMBER, body=f"{SECRET_WORDS} out", kind="reply",
                           status="failed", send_after=START, created_at=START)
    db.session.add(failed)
    db.session.commit()
    kiosk, _secret = tokens.create_kiosk(one.id, "Entrance")
    closure = Closure(branch_id=one.id, first_day=START.date() + timedelta(days=30),
                      last_day=START.date() + timedelta(days=31), message="Holiday", created_at=START)
    db.session.add(closure)
    db.session.commit()
    alice = db.session.scalar(select(StaffUser).where(StaffUser.username == "alice"))
    alice.display_name = f"Alice {SECRET_WORDS}"  # branch 1's people are branch 1's business
    db.session.commit()
    return {"kiosk": kiosk.id, "closure": closure.id, "service1": service1, "alice": alice.id, "one": one, "two": two, "ticket": ticket, "appointment": appointment, "inbox": reply_id,
            "outbox": failed.id, "counter1": counter1, "counter2": counter2}


def values_for(rule, data) -> dict:
    """Branch 1's object for each argument of `rule`."""
    per_argument = {
        "ticket_id": data["ticket"].id, "appointment_id": data["appointment"].id,
        "counter_id": data["counter1"].id, "message_id": data["inbox"], "number": SECRET_NUMBER,
        "branch_id": data["one"].id, "token": data["ticket"].access_token, "kind": "welcome", "language": "en",
        "action": "cancel", "state": "close", "token_id": data["kiosk"],
        "rest": f"{data['ticket'].access_token}/more", "filename": "branch-1-00000000.png", "service_id": data["service1"].id, "user_id": data["alice"], "closure_id": data["closure"],
    }
    if rule.endpoint == "staff.outbox_action":
        per_argument["message_id"] = data["outbox"]
    missing = set(rule.arguments) - set(per_argument)
    assert not missing, (f"{rule.rule}: the isolation walker has no branch-1 value for {sorted(missing)}; "
                         f"add one in tests/test_isolation.py")
    return {name: per_argument[name] for name in rule.arguments}


def branch_one_rows(branch_id) -> str:
    """A fingerprint of every row that belongs to branch 1."""
    digest = hashlib.sha256()
    engine_ = db.engine
    for table in sorted(inspect(engine_).get_table_names()):
        columns = [c["name"] for c in inspect(engine_).get_columns(table)]
        if "branch_id" in columns:
            rows = db.session.execute(text(f'SELECT * FROM "{table}" WHERE branch_id = :b ORDER BY 1'),
                                      {"b": branch_id}).all()
        elif table in ("ticket_event",):
            rows = db.session.execute(text('SELECT * FROM ticket_event ORDER BY 1')).all()
        else:
            continue
        digest.update(f"{table}:{rows!r}".encode())
    return digest.hexdigest()


def payload(data) -> dict:
    return {"branch": data["one"].id, "service": "A", "body": f"{data['one'].sender_name}: hello",
            "phone": "+995599888777", "starts_at": (START + timedelta(days=2)).isoformat(), "minutes": 10,
            "reason": "test", "csv": "service,starts_at,phone\n", "start": START.isoformat(),
            "end": (START + timedelta(hours=1)).isoformat(), "kind": "welcome",
            "first_day": (START + timedelta(days=30)).date().isoformat()}


def logout(client):
    page = client.get("/staff/inbox")
    client.post("/staff/logout", data={"csrf_token": csrf_token(page.text)})


def walk(client, app, data, *, expect_refusal):
    app.config["WTF_CSRF_ENABLED"] = False  # reach the scope rule; CSRF is tested elsewhere
    checked = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        if rule.endpoint.startswith("virtual_phone") and "seed.virtual_modem" not in app.extensions:
            continue  # exists only with the virtual modem running
        url = app.url_map.bind("localhost").build(rule.endpoint, values_for(rule, data))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if rule.endpoint == "staff.logout":
                continue  # would end the walk's own session
            before = branch_one_rows(data["one"].id)
            query = {"branch": data["one"].id}
            spec = getattr(app.view_functions[rule.endpoint], "openapi", None)
            if rule.rule.startswith("/api/"):
                body = payload(data) if method in ("POST", "PUT") else None
                if spec is not None:  # what the endpoint takes (core/openapi.py refuses the rest with a 400)
                    query = {key: value for key, value in query.items() if key in spec.query}
                    body = None if body is None or spec.body is None else \
                        {key: value for key, value in body.items() if key in spec.body}
                response = client.open(url, method=method, query_string=query, json=body)
            else:
                response = client.open(url, method=method, query_string=query, data=payload(data))
            db.session.rollback()
            body = response.get_data(as_text=True)
            where = f"{method} {rule.rule} ({rule.endpoint}) -> {response.status_code}"
            assert response.status_code < 500, where
            assert not any(leak in body for leak in LEAKS), f"{where} shows branch 1's data"
            targets_branch_one = bool(rule.arguments - {"kind", "language", "action", "state"})
            if expect_refusal and targets_branch_one and rule.endpoint not in PUBLIC:
                assert response.status_code in (403, 404), where
            if (rule.endpoint not in PUBLIC or method != "GET") and rule.endpoint not in OPEN_TO_ALL:
                assert branch_one_rows(data["one"].id) == before, f"{where} changed branch 1's data"
            checked.append(where)
    return checked


def test_staff_of_another_branch_can_neither_see_nor_change_anything(client, app, branches):
    login(client, "bob")
    page = client.get("/staff/counter")
    client.post("/staff/counter", data={"counter_id": branches["counter2"].id, "csrf_token": csrf_token(page.text)})
    checked = walk(client, app, branches, expect_refusal=True)
    assert len(checked) > 40  # every route, every method


def test_a_manager_of_another_branch_can_neither_see_nor_change_anything(client, app, branches):
    """The settings pages and /api/v1/admin are a manager's: walk them as branch 2's manager."""
    bob = db.session.scalar(select(StaffUser).where(StaffUser.username == "bob"))
    bob.role = "manager"
    db.session.commit()
    login(client, "bob")
    checked = walk(client, app, branches, expect_refusal=True)
    assert any("/admin/" in where for where in checked)


def test_the_walk_covers_the_virtual_phone_too(client, app, branches, vm):
    """From another computer the demo's virtual phone is an admin's page, not bob's."""
    app.extensions["seed.virtual_modem"] = vm
    client.environ_base["REMOTE_ADDR"] = "10.0.0.5"
    try:
        login(client, "bob")
        checked = walk(client, app, branches, expect_refusal=True)
        assert any("virtual-phone" in where for where in checked)
    finally:
        app.extensions.pop("seed.virtual_modem")


def test_the_owner_branch_does_see_its_data(client, app, branches):
    """The walk's refusals are the scope rule at work, not routes that are broken for everyone."""
    login(client, "alice")
    assert SECRET_WORDS in client.get(f"/staff/inbox/{SECRET_NUMBER}").text
    assert client.get(f"/api/v1/tickets/{branches['ticket'].id}").status_code == 200
    assert SECRET_WORDS in client.get("/staff/outbox").text


def test_a_reply_from_a_number_only_branch_one_knows_is_branch_ones(app, branches):
    db.session.rollback()
    assert db.session.get(InboxMessage, branches["inbox"]).branch_id == branches["one"].id
    unknown = inbox.store_received("+995599000111", "who is this?", START, gateway="gw")
    assert db.session.get(InboxMessage, unknown).branch_id is None  # unassigned: admins only


def test_unassigned_texts_are_for_admins_who_give_them_a_branch(client, app, branches):
    stranger = "+995599000111"
    inbox.store_received(stranger, "who is this?", START, gateway="gw")
    login(client, "bob")
    assert "who is this" not in client.get("/staff/inbox").text
    assert client.get(f"/staff/inbox/{stranger}").status_code == 404
    logout(client)
    make_staff("root", role="admin")
    db.session.commit()
    login(client, "root")
    page = client.get(f"/staff/inbox/{stranger}")
    assert page.status_code == 200 and "No branch knows this number" in page.text
    message_id = db.session.scalar(select(InboxMessage.id).where(InboxMessage.sender == stranger))
    client.post(f"/staff/inbox/message/{message_id}/assign",
                data={"branch_id": branches["two"].id, "csrf_token": csrf_token(page.text)})
    logout(client)
    login(client, "bob")
    assert "who is this" in client.get(f"/staff/inbox/{stranger}").text


def test_a_person_in_two_branches_sees_both_and_a_manager_edits_texts(client, app, branches):
    bob = db.session.scalar(select(StaffUser).where(StaffUser.username == "bob"))
    bob.other_branches.append(branches["one"])
    db.session.commit()
    login(client, "bob")
    assert client.get(f"/api/v1/tickets/{branches['ticket'].id}").status_code == 200
    assert client.get("/api/v1/templates", query_string={"branch": branches["one"].id}).status_code == 403
    bob.role = "manager"
    db.session.commit()
    assert client.get("/api/v1/templates", query_string={"branch": branches["one"].id}).status_code == 200
    assert client.get("/api/v1/templates", query_string={"branch": 999}).status_code == 404
    assert json.loads(client.get("/api/v1/queues", query_string={"branch": branches["two"].id}).text)


def test_cli_creates_a_manager_of_two_branches(runner, branches):
    result = runner.invoke(args=["user", "create", "carol", "--role", "manager", "--password", "long enough pw",
                                 "--branch", str(branches["two"].id), "--branch", str(branches["one"].id)])
    assert result.exit_code == 0, result.output
    db.session.rollback()
    carol = db.session.scalar(select(StaffUser).where(StaffUser.username == "carol"))
    assert carol.branch_ids == [branches["two"].id, branches["one"].id] and carol.role == "manager"
    refused = runner.invoke(args=["user", "create", "dave", "--role", "chief", "--password", "long enough pw"])
    assert refused.exit_code != 0
