"""The status page's buttons (issue 16): "I'm running late" and "Cancel my ticket" through the HTTP
routes, on SQLite and PostgreSQL. Running late is the engine's move the texted L 20 makes, with the
same result; cancelling needs the page's confirmation; a called or finished ticket is refused with
a message for the customer, in the ticket's language; a dead link is a 404; the routes take only
the page's JSON and are rate-limited. The page then hears of the change by its push. Last, in
Chromium on the real server: a Japanese ticket's journey, and the branch's clock on a New York phone."""
import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.support import Translations
from flask_babel import force_locale, gettext
from playwright.sync_api import expect
from sqlalchemy import select

from core import engine
from core.extensions import db, socketio
from core.models import Customer, Ticket, TicketEvent
from display import realtime
from kiosk import live
from messaging import inbox

from .helpers import make_branch, make_counter, make_service
from .live import ROOT, chromium, running_system, wait_until
from .modem_helpers import JA

HEADERS = {"X-Requested-With": "fetch"}
CLOSED_MESSAGE = "This ticket is closed, so it can no longer be changed."
CALLED_MESSAGE = ("You have already been called, so this can no longer be changed here. "
                  "Please speak to the staff at the counter.")


@pytest.fixture
def tokyo(any_db_app):
    """A Japanese clinic in Tokyo (09:00 UTC is 18:00 there): service A, counter 1 open."""
    branch = make_branch("Minato Clinic", timezone="Asia/Tokyo", country="JP", default_language="ja",
                         languages=["ja", "en"])
    service = make_service(branch, "A")
    counter = make_counter(branch, "1", [service], is_open=True)
    db.session.commit()
    return {"branch": branch, "service": service, "counter": counter}


@pytest.fixture
def web(any_db_app):
    """A phone's browser; the limits out of the way but where a test sets them."""
    any_db_app.config["STATUS_ACTION_RATE_LIMIT"] = any_db_app.config["STATUS_ACTION_ADDRESS_RATE_LIMIT"] = "1000/minute"
    return any_db_app.test_client()


def issue(tokyo, language="ja", **fields) -> Ticket:
    return engine.issue_ticket(tokyo["service"].id, language=language, **fields)


def press(web, ticket, action, body, headers=HEADERS):
    return web.post(f"/t/{ticket.access_token}/{action}", json=body, headers=headers)


def in_language(language, msgid):
    """What the customer reads: the msgid through the catalogue of the ticket's language."""
    with force_locale(language):
        return gettext(msgid)


def fresh(ticket) -> Ticket:
    db.session.rollback()
    return db.session.get(Ticket, ticket.id)


def events(ticket) -> list[tuple[str, dict]]:
    db.session.rollback()
    return [(event.kind, event.detail) for event in db.session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id))]


def test_late_from_the_page_is_what_the_texted_reply_does(tokyo, web, clock):
    customer = Customer(phone=JA, sms_consent=True, consent_at=clock.now(), language="ja", created_at=clock.now())
    db.session.add(customer)
    db.session.commit()
    texted = issue(tokyo, customer_id=customer.id)
    paged = issue(tokyo)
    behind = issue(tokyo)

    inbox.store_received(JA, "L 20", clock.now(), gateway="g")  # the texted reply, through the router
    answer = press(web, paged, "late", {"minutes": 20})

    assert answer.status_code == 200, answer.json
    texted, paged = fresh(texted), fresh(paged)
    assert texted.late_until == paged.late_until == clock.now() + timedelta(minutes=20)
    assert events(paged) == events(texted)  # one engine move: the same TicketEvent, issued then late
    assert [kind for kind, _ in events(paged)] == ["issued", "late"]
    status = answer.json["status"]
    assert (status["status"], status["late_until"], status["actions"]) == ("waiting", "18:20", ["late", "cancel"])
    assert engine.call_next(tokyo["counter"].id).id == behind.id  # both keep their place, skipped till 18:20


def test_late_only_with_a_time_the_page_offers(tokyo, web):
    ticket = issue(tokyo, language="en")
    for minutes in (15, 0, -10, 999, "20", True, None):
        answer = press(web, ticket, "late", {"minutes": minutes})
        assert answer.status_code == 400, minutes
        assert answer.json["message"] == "Please choose one of the times offered."
    assert fresh(ticket).late_until is None
    assert press(web, ticket, "late", {"minutes": 30}).json["status"]["late_until"] == "18:30"


def test_cancel_only_with_the_confirmation(tokyo, web):
    ticket = issue(tokyo, language="en")
    for body in ({}, {"confirm": "yes"}, {"confirm": 1}, {"confirm": False}):
        answer = press(web, ticket, "cancel", body)
        assert answer.status_code == 400, body
        assert answer.json["message"] == "Please confirm that you want to cancel your ticket."
        assert fresh(ticket).status == "waiting"

    answer = press(web, ticket, "cancel", {"confirm": True})
    assert answer.status_code == 200
    assert (answer.json["status"]["status"], answer.json["status"]["actions"]) == ("cancelled", [])
    assert fresh(ticket).status == "cancelled"
    assert events(ticket)[-1] == ("cancelled", {"reason": "customer, on the status page"})


def called(tokyo, ticket):
    assert engine.call_next(tokyo["counter"].id).id == ticket.id


def serving(tokyo, ticket):
    called(tokyo, ticket)
    engine.start_serving(ticket.id)


def completed(tokyo, ticket):
    serving(tokyo, ticket)
    engine.complete(ticket.id)


def no_show(tokyo, ticket):
    called(tokyo, ticket)
    engine.no_show(ticket.id)


def cancelled(_tokyo, ticket):
    engine.cancel(ticket.id)


def yesterdays(_tokyo, ticket):
    """A ticket of an earlier day, never closed: the texted reply would not move it either."""
    row = db.session.get(Ticket, ticket.id)
    row.service_day -= timedelta(days=1)
    db.session.commit()


@pytest.mark.parametrize(("make", "message"), [
    (called, CALLED_MESSAGE), (serving, CALLED_MESSAGE), (completed, CLOSED_MESSAGE), (no_show, CLOSED_MESSAGE),
    (cancelled, CLOSED_MESSAGE), (yesterdays, CLOSED_MESSAGE)])
@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_called_or_finished_ticket_is_refused_in_its_language(tokyo, web, make, message, language):
    ticket = issue(tokyo, language=language)
    make(tokyo, ticket)
    before = (fresh(ticket).status, fresh(ticket).late_until, len(events(ticket)))
    for action, body in (("late", {"minutes": 10}), ("cancel", {"confirm": True})):
        answer = press(web, ticket, action, body)
        assert answer.status_code == 409, (action, answer.json)
        assert answer.json["error"] == "refused"
        assert answer.json["message"] == in_language(language, message)
    assert (fresh(ticket).status, fresh(ticket).late_until, len(events(ticket))) == before
    page = web.get(f"/t/{ticket.access_token}")
    assert 'id="late-open" aria-expanded="false" aria-controls="late-panel" hidden' in page.text
    assert 'id="cancel-open" aria-expanded="false" aria-controls="cancel-panel" hidden' in page.text


def test_a_held_ticket_cannot_be_late_but_can_be_cancelled(tokyo, web):
    ticket = issue(tokyo, language="en")
    engine.hold(ticket.id)
    answer = press(web, ticket, "late", {"minutes": 10})
    assert (answer.status_code, answer.json["message"]) == (409, "Your ticket is on hold. Please ask at the desk.")
    assert press(web, ticket, "cancel", {"confirm": True}).json["status"]["status"] == "cancelled"


@pytest.mark.parametrize("token", ["not-a-real-token-at-all-xx", "x" * 80, "bad%00token", "a.b"])
def test_a_dead_link_is_a_404_and_changes_nothing(tokyo, web, token):
    ticket = issue(tokyo)
    for action, body in (("late", {"minutes": 10}), ("cancel", {"confirm": True})):
        answer = web.post(f"/t/{token}/{action}", json=body, headers={**HEADERS, "Accept-Language": "en"})
        assert answer.status_code == 404
        assert answer.json["error"] == "not_found" and "day of the visit" in answer.json["message"]
    assert fresh(ticket).status == "waiting" and fresh(ticket).late_until is None


def test_only_the_pages_own_json_is_taken(tokyo, web):
    """No form from another site can press the buttons: a form sends neither JSON nor the header,
    and needs no cookie here (there is no session to ride on)."""
    ticket = issue(tokyo, language="en")
    form = web.post(f"/t/{ticket.access_token}/cancel", data={"confirm": "true"}, headers=HEADERS)
    assert form.status_code == 415
    plain = web.post(f"/t/{ticket.access_token}/cancel", data='{"confirm": true}', content_type="text/plain",
                     headers=HEADERS)
    assert plain.status_code == 415
    no_header = press(web, ticket, "cancel", {"confirm": True}, headers={})
    assert no_header.status_code == 400 and no_header.json["message"] == in_language(
        "en", "Something went wrong. Please try again or ask at the desk.")
    assert fresh(ticket).status == "waiting"
    assert press(web, ticket, "late", {"minutes": 10}).status_code == 200  # no CSRF cookie or form token needed


def test_the_buttons_are_rate_limited_per_ticket(tokyo, web, any_db_app):
    any_db_app.config["STATUS_ACTION_RATE_LIMIT"] = "2 per minute"
    mine, other = issue(tokyo), issue(tokyo)
    assert [press(web, mine, "late", {"minutes": 10}).status_code for _ in range(2)] == [200, 200]
    limited = press(web, mine, "cancel", {"confirm": True})  # one limit for both of a ticket's buttons
    assert limited.status_code == 429
    assert limited.json == {"error": "too_many_requests", "detail": None,
                            "message": in_language("ja", "Too many requests: wait a moment and try again.")}
    assert fresh(mine).status == "waiting"
    assert press(web, other, "late", {"minutes": 10}).status_code == 200  # another ticket has its own


def test_the_buttons_are_rate_limited_per_address(tokyo, web, any_db_app):
    """Looser: the customers of one waiting room may share its Wi-Fi's address."""
    any_db_app.config["STATUS_ACTION_ADDRESS_RATE_LIMIT"] = "3 per minute"
    tickets = [issue(tokyo) for _ in range(4)]
    assert [press(web, ticket, "late", {"minutes": 10}).status_code for ticket in tickets] == [200, 200, 200, 429]
    assert fresh(tickets[3]).late_until is None


def test_the_page_offers_what_the_status_allows_in_its_language_and_zone(tokyo, web):
    ticket = issue(tokyo)
    page = web.get(f"/t/{ticket.access_token}")
    assert page.status_code == 200 and '<html lang="ja">' in page.text
    data = json.loads(re.search(r'id="status-data" type="application/json">(.+?)</script>', page.text).group(1))
    assert (data["language"], data["timezone"]) == ("ja", "Asia/Tokyo")
    assert data["status"]["actions"] == ["late", "cancel"] and data["status"]["late_until"] is None
    assert data["late_url"].endswith(f"/t/{ticket.access_token}/late")
    assert data["words"]["late"] == in_language("ja", "I'm running late")
    assert data["words"]["cancel_question"] == in_language("ja", "Cancel your ticket? You will lose your place in the queue.")
    assert re.findall(r'data-minutes="(\d+)"', page.text) == ["10", "20", "30"]
    assert 'id="late-open" aria-expanded="false" aria-controls="late-panel">' in page.text  # shown


def pushed(socket):
    realtime.settle()
    return [m["args"][0] for m in socket.get_received(live.NAMESPACE) if m["name"] == live.EVENT]


def test_the_open_page_hears_of_the_change_by_its_push(tokyo, web, any_db_app, clock):
    ticket = issue(tokyo)
    socket = socketio.test_client(any_db_app, namespace=live.NAMESPACE, auth={"token": ticket.access_token})
    assert [s["actions"] for s in pushed(socket)] == [["late", "cancel"]]

    press(web, ticket, "late", {"minutes": 20})
    assert [(s["status"], s["late_until"]) for s in pushed(socket)] == [("waiting", "18:20")]
    clock.advance(minutes=21)  # past it: the branch's next change takes the time away
    issue(tokyo)
    assert [(s["status"], s["late_until"]) for s in pushed(socket)] == [("waiting", None)]
    engine.call_next(tokyo["counter"].id)
    assert [(s["status"], s["actions"]) for s in pushed(socket)] == [("called", [])]
    socket.disconnect(namespace=live.NAMESPACE)


def test_a_cancel_is_pushed_and_the_buttons_go(tokyo, web, any_db_app):
    ticket = issue(tokyo)
    socket = socketio.test_client(any_db_app, namespace=live.NAMESPACE, auth={"token": ticket.access_token})
    pushed(socket)
    press(web, ticket, "cancel", {"confirm": True})
    assert [(s["status"], s["actions"]) for s in pushed(socket)] == [("cancelled", [])]
    socket.disconnect(namespace=live.NAMESPACE)


# --- in Chromium, on the real server ----------------------------------------------------------------

CATALOGUE = Translations.load(str(ROOT / "translations"), ["ja"])


def ja(msgid: str, **values) -> str:
    return CATALOGUE.gettext(msgid) % values if values else CATALOGUE.gettext(msgid)


def ja_minutes(minutes: int) -> str:
    return CATALOGUE.pgettext("minutes late", "%(minutes)s min") % {"minutes": minutes}


def tokyo_times(**later) -> set[str]:
    """The branch's clock now (and a minute on, should it turn meanwhile), 24-hour."""
    now = datetime.now(ZoneInfo("Asia/Tokyo")) + timedelta(**later)
    return {(now + timedelta(minutes=step)).strftime("%H:%M") for step in (0, 1)}


@pytest.fixture(scope="module")
def browser():
    with chromium() as found:
        yield found


def test_a_japanese_ticket_in_a_new_york_browser(tmp_path, browser):
    """An en-US phone in New York opens a Tokyo clinic's Japanese ticket: the page is Japanese, the
    clock Tokyo's in 24 hours; 遅れます → 20分 updates the page by push; cancelling asks first."""
    config = 'DEFAULT_TIMEZONE = "Asia/Tokyo"\nDEFAULT_LANGUAGE = "ja"\nDEFAULT_COUNTRY = "JP"\n'
    with running_system(tmp_path, config) as system:
        status, body, _ = system.request("POST", "/api/v1/checkins", {"branch": 1, "service": "A", "language": "ja"})
        assert status == 201, body
        url = body["ticket"]["status_url"]
        context = browser.new_context(locale="en-US", timezone_id="America/New_York",
                                      viewport={"width": 360, "height": 740})
        page = context.new_page()
        page.goto(url)
        expect(page.locator("html")).to_have_attribute("lang", "ja")
        wait_until(page, "window.seedStatusLive && window.seedStatusLive.connected")
        assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/New_York"
        updated = page.locator("#updated").inner_text()
        shown = re.search(r"\d{2}:\d{2}", updated).group()
        assert shown in tokyo_times(minutes=-1) | tokyo_times(), (updated, tokyo_times())
        assert updated == ja("Updated %(time)s", time=shown)
        assert not re.search(r"AM|PM|午前|午後", updated)

        late = page.locator("#late-open")
        expect(late).to_have_text(ja("I'm running late"))
        late.click()
        expect(page.locator("#late-panel")).to_be_visible()
        expect(page.locator("#late-question")).to_have_text(ja("How late will you be?"))
        pushes = page.evaluate("window.seedStatusLive.pushes")
        twenty = page.locator("#late-panel [data-minutes='20']")
        expect(twenty).to_have_text(ja_minutes(20))
        expected = tokyo_times(minutes=20)
        twenty.click()
        expect(page.locator("#late-until")).to_be_visible()
        until = re.search(r"\d{2}:\d{2}", page.locator("#late-until").inner_text()).group()
        assert until in expected | tokyo_times(minutes=19), (until, expected)
        expect(page.locator("#late-until")).to_have_text(ja("We will keep your place and call you from %(time)s.",
                                                            time=until))
        assert page.evaluate("window.seedStatusLive.pushes") == pushes + 1  # the page heard it by push
        expect(page.locator("#late-panel")).to_be_hidden()
        expect(late).to_be_visible()
        assert page.locator("#action-message").inner_text() == ""

        cancel = page.locator("#cancel-open")
        expect(cancel).to_have_text(ja("Cancel my ticket"))
        cancel.click()
        expect(page.locator("#cancel-question")).to_have_text(
            ja("Cancel your ticket? You will lose your place in the queue."))
        expect(page.locator("#cancel-no")).to_be_focused()
        page.locator("#cancel-no").click()  # not yet: nothing happens, the question goes
        expect(page.locator("#cancel-panel")).to_be_hidden()
        expect(cancel).to_be_focused()
        assert system.request("GET", url.replace(system.base, "") + ".json")[1]["status"] == "waiting"

        cancel.click()
        page.locator("#cancel-yes").click()
        expect(page.locator("#state")).to_have_text(ja("Your ticket has been cancelled. Thank you for letting us know."))
        expect(late).to_be_hidden()
        expect(cancel).to_be_hidden()
        expect(page.locator("#late-until")).to_be_hidden()
        assert page.evaluate("window.seedStatusLive.pushes") == pushes + 2
        assert system.request("GET", url.replace(system.base, "") + ".json")[1]["status"] == "cancelled"
        context.close()


def test_a_refusal_reads_in_the_tickets_language(tmp_path, browser):
    """Called while the page was open, with the late panel open: the press is refused, in Japanese."""
    config = 'DEFAULT_TIMEZONE = "Asia/Tokyo"\nDEFAULT_LANGUAGE = "ja"\nDEFAULT_COUNTRY = "JP"\n'
    with running_system(tmp_path, config) as system:
        status, body, _ = system.request("POST", "/api/v1/checkins", {"branch": 1, "service": "A", "language": "ja"})
        assert status == 201, body
        page = browser.new_page(locale="en-US")
        page.goto(body["ticket"]["status_url"])
        wait_until(page, "window.seedStatusLive && window.seedStatusLive.connected")
        page.locator("#late-open").click()
        page.evaluate("window.seedStatusLive.socket.disconnect()")  # it does not hear of the call
        status, answer, _ = system.request("POST", "/api/v1/counters/1/call-next", auth=True)
        assert status == 200, answer
        page.locator("#late-panel [data-minutes='10']").click()
        expect(page.locator("#action-message")).to_have_text(ja(CALLED_MESSAGE))
        page.close()
