"""The console's nudge (staff/live.py): who may join a branch's console room, that a committed
change there sends one small "changed" event and a change elsewhere sends nothing; and in Chromium
on the real server, that the open console shows a check-in from another client at once, without
a reload and without polling while nothing changes."""
import threading
import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from core import engine
from core.extensions import db, socketio
from core.models import Counter
from display import realtime
from staff import live

from .helpers import login, make_branch, make_counter, make_service, make_staff
from .live import chromium, running_system, sign_in, wait_until


@pytest.fixture
def world(app):
    one, two = make_branch("One"), make_branch("Two")
    for branch in (one, two):
        make_counter(branch, "1", [make_service(branch, "A")], is_open=True)
    make_staff("alice", branch=one)
    make_staff("bob", branch=two)
    make_staff("admin", role="admin")
    db.session.commit()
    return {"one": one.id, "two": two.id}


def connect(app, client, branch_id):
    return socketio.test_client(app, namespace=live.NAMESPACE, auth={"branch": branch_id}, flask_test_client=client)


def changes(socket) -> list[dict]:
    realtime.settle()
    return [m["args"][0] for m in socket.get_received(live.NAMESPACE) if m["name"] == live.EVENT]


def check_in(app, branch_id):
    """At the kiosk: another client, signed in as nobody."""
    response = app.test_client().post("/api/v1/checkins", json={"branch": branch_id, "service": "A"})
    assert response.status_code == 201, response.json


def test_only_staff_who_reach_the_branch_may_watch_its_console(app, client, world):
    assert not connect(app, client, world["one"]).is_connected(live.NAMESPACE)  # signed out
    login(client, "bob")
    assert not connect(app, client, world["one"]).is_connected(live.NAMESPACE)  # branch 2's staff
    assert connect(app, client, world["two"]).is_connected(live.NAMESPACE)
    for name in ("alice", "admin"):
        login(client, name)
        socket = connect(app, client, world["one"])
        assert socket.is_connected(live.NAMESPACE), name
        socket.disconnect(namespace=live.NAMESPACE)
    for asked in (None, "1", True, 10**6):  # no branch, not a number, a boolean, no such branch
        assert not connect(app, client, asked).is_connected(live.NAMESPACE), asked


def test_a_check_in_nudges_the_branchs_consoles_and_no_other(app, client, world, clock):
    login(client, "alice")
    socket = connect(app, client, world["one"])
    assert socket.is_connected(live.NAMESPACE)
    assert changes(socket) == []  # the page has just rendered the panel: nothing to say on connect

    check_in(app, world["one"])
    assert changes(socket) == [{"branch": world["one"], "at": clock.now().isoformat(), "waiting": 1}]
    check_in(app, world["one"])
    check_in(app, world["one"])
    found = changes(socket)
    assert 1 <= len(found) <= 2 and found[-1]["waiting"] == 3  # once per batch of changes

    check_in(app, world["two"])  # another branch's change reaches no one here
    assert changes(socket) == []

    socket.disconnect(namespace=live.NAMESPACE)
    assert not live.watchers(app).watched(world["one"])


def test_a_push_overtaken_by_a_held_check_in_waits_for_it_and_goes_once(app, client, world, monkeypatch):
    """Consoles owed a push for a call, overtaken by a check-in that waits for company
    (realtime.HOLD_SECONDS): they are pushed once, when the check-in goes, not once before it (out
    of date) and again after."""
    login(client, "alice")
    socket = connect(app, client, world["one"])
    counter = db.session.scalar(select(Counter.id).where(Counter.branch_id == world["one"]))
    for _ in range(2):
        check_in(app, world["one"])
    changes(socket)
    monkeypatch.setattr(realtime, "HOLD_SECONDS", 0.5)
    let_requests_in, came = realtime.let_requests_in, []

    def a_check_in_comes_in_before_the_followers():
        let_requests_in()
        if not came and realtime.updates(app).owed_since:  # (the followers' turn: the call told)
            came.append(1)
            def kiosk_check_in():
                with app.app_context():
                    check_in(app, world["one"])

            kiosk = threading.Thread(target=kiosk_check_in)  # (a request of its own)
            kiosk.start()
            kiosk.join()

    monkeypatch.setattr(realtime, "let_requests_in", a_check_in_comes_in_before_the_followers)
    started = time.monotonic()
    engine.call_next(counter)
    assert realtime.settle() and came
    assert time.monotonic() - started >= 0.5  # the push went with the check-in, after its hold
    assert [change["waiting"] for change in changes(socket)] == [2]  # one push, the call's and the check-in's


def test_nobody_watching_costs_the_check_in_nothing(app, client, world):
    login(client, "alice")
    connect(app, client, world["one"]).disconnect(namespace=live.NAMESPACE)
    before = realtime.updates(app).builds
    check_in(app, world["one"])
    realtime.settle()
    assert not live.watchers(app).watched(world["one"]) and realtime.updates(app).builds == before


# --- in Chromium, on the real server -----------------------------------------------------------

PANEL_FETCHES = ("performance.getEntriesByType('resource')"
                 ".filter(function (e) { return e.name.endsWith('/staff/panel'); }).length")


@pytest.fixture(scope="module")
def browser():
    with chromium() as found:
        yield found


@pytest.fixture
def console(tmp_path, browser):
    """The admin at counter 1 of the demo branch, the console connected and its first fetch done."""
    with running_system(tmp_path) as system:
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        page = sign_in(context.new_page(), system)
        page.click("button[data-counter='1']")
        page.wait_for_load_state("load")
        wait_until(page, "window.seedConsole && window.seedConsole.connected && " + PANEL_FETCHES + " >= 1")
        page.evaluate("window.seedLoaded = true")  # gone if the page reloads
        yield system, page
        context.close()


def test_a_check_in_elsewhere_appears_on_the_open_console_and_nothing_polls(console):
    system, page = console
    expect(page.locator("tr[data-ticket='A001']")).to_have_count(0)
    status, body, _ = system.request("POST", "/api/v1/checkins", {"branch": 1, "service": "A"})
    assert status == 201, body
    expect(page.locator("tr[data-ticket='A001']")).to_be_visible(timeout=2_000)
    assert page.evaluate("window.seedLoaded") is True and page.evaluate("window.seedConsole.changes") >= 1

    page.wait_for_timeout(500)  # let the fetch that showed A001 finish
    # ... and any fetch still under way (a second of the burst, however slow): its entry counted
    wait_until(page, PANEL_FETCHES + " === window.seedConsole.fetches")
    quiet = page.evaluate(PANEL_FETCHES)
    page.wait_for_timeout(8_000)
    assert page.evaluate(PANEL_FETCHES) == quiet, "the console asked for its panel while nothing changed"


def test_a_burst_of_changes_costs_one_fetch_and_one_more(console):
    _, page = console
    before = page.evaluate(PANEL_FETCHES)
    # Twenty nudges in one go, as a busy branch's worker could send them back to back.
    page.evaluate("var s = window.seedConsole.socket; for (var i = 0; i < 20; i++)"
                  " s.listeners('changed').forEach(function (f) { f({}); })")
    wait_until(page, f"{PANEL_FETCHES} >= {before + 2}")  # the two, one after the other, however slow
    page.wait_for_timeout(1_500)  # and time for a third, which must not come
    assert page.evaluate(PANEL_FETCHES) == before + 2


def test_the_panel_waits_while_someone_chooses_in_it(console):
    system, page = console
    system.request("POST", "/api/v1/checkins", {"branch": 1, "service": "A"})
    expect(page.locator("tr[data-ticket='A001']")).to_be_visible(timeout=2_000)
    page.focus("tr[data-ticket='A001'] input[name=minutes]")
    changes = page.evaluate("window.seedConsole.changes")
    system.request("POST", "/api/v1/checkins", {"branch": 1, "service": "A"})
    wait_until(page, f"window.seedConsole.changes > {changes}")
    page.wait_for_timeout(500)
    expect(page.locator("tr[data-ticket='A002']")).to_have_count(0)  # not while choosing
    page.evaluate("document.activeElement.blur()")
    expect(page.locator("tr[data-ticket='A002']")).to_be_visible(timeout=2_000)


def test_the_panel_waits_while_a_button_is_held_down_so_the_click_lands(console):
    """A push arriving between pressing "Call next" and letting go must not draw the panel again:
    the release would land on a new button and the click, the call, be lost."""
    system, page = console
    system.request("POST", "/api/v1/checkins", {"branch": 1, "service": "A"})
    expect(page.locator("tr[data-ticket='A001']")).to_be_visible(timeout=2_000)
    page.wait_for_timeout(300)  # the fetch that showed A001 is over
    box = page.locator("#call-next-button").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    changes = page.evaluate("window.seedConsole.changes")
    system.request("POST", "/api/v1/checkins", {"branch": 1, "service": "A"})
    wait_until(page, f"window.seedConsole.changes > {changes}")
    page.wait_for_timeout(500)
    expect(page.locator("tr[data-ticket='A002']")).to_have_count(0)  # held back while pressed
    with page.expect_navigation():
        page.mouse.up()
    expect(page.locator("#current-number")).to_have_text("A001")
    expect(page.locator("tr[data-ticket='A002']")).to_be_visible()


def test_without_the_socket_a_slow_poll_stands_in_and_a_reconnect_catches_up(console):
    system, page = console
    page.evaluate("window.seedConsole.socket.disconnect()")
    assert page.evaluate("window.seedConsole.connected") is False
    assert page.evaluate("window.seedConsole.polling") is True
    system.request("POST", "/api/v1/checkins", {"branch": 1, "service": "A"})
    page.wait_for_timeout(1_000)
    expect(page.locator("tr[data-ticket='A001']")).to_have_count(0)  # nobody told it; the poll is 30 s away
    started = time.monotonic()
    page.evaluate("window.seedConsole.socket.connect()")
    expect(page.locator("tr[data-ticket='A001']")).to_be_visible(timeout=2_000)
    assert time.monotonic() - started < 2 and page.evaluate("window.seedConsole.polling") is False
