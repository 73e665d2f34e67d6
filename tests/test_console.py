"""The staff console through HTTP: login, counter, every action button, CSRF, refusals."""
import pytest

from core import engine
from core.extensions import db
from core.models import Counter, Ticket

from .helpers import csrf_token, login


@pytest.fixture
def at_counter(client, setup):
    """Logged in as alice at counter 1; returns a function that posts a console form."""
    _, _, (c1, _c2), _ = setup
    login(client)
    page = client.get("/staff/counter")
    client.post("/staff/counter", data={"counter_id": c1.id, "csrf_token": csrf_token(page.text)})

    def post(path, **data):
        token = csrf_token(client.get("/staff/", follow_redirects=True).text)
        return client.post(path, data={"csrf_token": token, **data}, follow_redirects=True)

    return post


def test_pages_redirect_anonymous_users_to_login(client, setup):
    for path in ("/staff/", "/staff/counter", "/staff/panel"):
        response = client.get(path)
        assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    assert "/staff/" in client.get("/").text and "/kiosk/" in client.get("/").text


def test_login_refuses_wrong_password_and_missing_token(client, setup):
    assert "Wrong username or password" in login(client, password="nope").text
    response = client.post("/staff/login", data={"username": "alice", "password": "correct horse"})
    assert response.status_code == 400  # no CSRF token
    assert client.get("/staff/").status_code == 302


def test_login_goes_to_counter_choice_then_console(client, setup):
    _, _, (c1, _c2), _ = setup
    assert login(client).headers["Location"].endswith("/staff/")
    assert client.get("/staff/").headers["Location"].endswith("/staff/counter")
    page = client.get("/staff/counter")
    assert 'data-counter="1"' in page.text and 'data-counter="2"' in page.text
    chosen = client.post("/staff/counter", data={"counter_id": c1.id, "csrf_token": csrf_token(page.text)})
    assert chosen.headers["Location"].endswith("/staff/")
    console = client.get("/staff/")
    assert "At counter 1" in console.text and "Call next" in console.text
    assert db.session.get(Counter, c1.id).is_open


def test_login_never_redirects_off_site(client, setup):
    page = client.get("/staff/login")
    response = client.post(
        "/staff/login?next=//evil.example/x",
        data={"username": "alice", "password": "correct horse", "csrf_token": csrf_token(page.text)},
    )
    assert response.headers["Location"] == "/staff/"


def test_call_next_and_complete_from_the_console(client, setup, at_counter):
    _, (a, _b), _, _ = setup
    engine.issue_ticket(a.id)
    engine.issue_ticket(a.id)
    page = at_counter("/staff/counter/call-next")
    assert "Called A001 to counter 1" in page.text
    assert 'id="current-number">A001<' in page.text
    ticket = db.session.scalar(db.select(Ticket).where(Ticket.label == "A001"))
    for action, status in (("recall", "called"), ("start", "serving"), ("complete", "completed")):
        at_counter(f"/staff/tickets/{ticket.id}/{action}")
        db.session.expire_all()
        assert db.session.get(Ticket, ticket.id).status == status
    page = client.get("/staff/")
    assert "No ticket" in page.text and 'data-ticket="A002"' in page.text


def test_queue_actions_from_the_console(client, setup, at_counter):
    _, (a, b), _, _ = setup
    first = engine.issue_ticket(a.id).id
    second = engine.issue_ticket(a.id).id
    at_counter(f"/staff/tickets/{first}/hold")
    assert "on hold" in client.get("/staff/panel").text
    at_counter(f"/staff/tickets/{first}/unhold")
    at_counter(f"/staff/tickets/{first}/transfer", service_id=b.id)
    at_counter(f"/staff/tickets/{second}/late", minutes="10")
    page = client.get("/staff/panel").text
    assert 'class="badge late"' in page
    at_counter(f"/staff/tickets/{second}/cancel", confirm="1")
    db.session.expire_all()
    assert db.session.get(Ticket, first).service_id == b.id
    assert db.session.get(Ticket, second).status == "cancelled"


def test_refusals_show_a_message_and_change_nothing(client, setup, at_counter):
    _, (a, _b), _, _ = setup
    ticket = engine.issue_ticket(a.id).id
    page = at_counter(f"/staff/tickets/{ticket}/complete")
    assert "A001 is waiting: it cannot be completed" in page.text
    page = at_counter(f"/staff/tickets/{ticket}/late", minutes="lots")
    assert "whole number" in page.text
    db.session.expire_all()
    assert db.session.get(Ticket, ticket).status == "waiting"
    assert at_counter("/staff/tickets/999/complete").status_code == 404


def test_forms_without_csrf_token_are_refused(client, setup, at_counter):
    _, (a, _b), _, _ = setup
    engine.issue_ticket(a.id)
    response = client.post("/staff/counter/call-next")
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.scalar(db.select(Ticket.status)) == "waiting"


def test_close_counter_and_logout(client, setup, at_counter):
    _, _, (c1, _c2), _ = setup
    page = at_counter("/staff/counter/close")
    assert "Counter 1 closed" in page.text
    assert not db.session.get(Counter, c1.id).is_open
    at_counter("/staff/logout")
    assert client.get("/staff/").status_code == 302


def test_console_shows_branch_local_times(client, setup, at_counter, clock):
    branch, (a, _b), _, _ = setup
    branch.timezone = "Asia/Tokyo"
    db.session.commit()
    engine.issue_ticket(a.id)  # 09:00 UTC is 18:00 in Tokyo
    assert ">18:00</time>" in client.get("/staff/panel").text


def test_console_shows_the_modem_state(client, setup, at_counter, clock):
    from messaging.models import ModemStatus

    assert "Modem: no gateway running" in client.get("/staff/panel").text
    db.session.add(ModemStatus(gateway="g1", port="/dev/ttyUSB0", state="ready", signal=17, network="MAGTI",
                               updated_at=clock.now()))
    db.session.commit()
    assert "Modem: ready · MAGTI · signal 17/31" in client.get("/staff/panel").text
