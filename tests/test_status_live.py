"""The customer's status page by push (kiosk/live.py): who may connect, what a change pushes (only
to the pages of that ticket, only when its status changed), that a push costs the same few
queries however many pages are open, and in Chromium on the real server that the page follows the
queue without asking for its .json while connected."""
import re
import threading

import pytest
from playwright.sync_api import expect
from sqlalchemy import event

from core import engine
from core.extensions import db, socketio
from display import realtime
from kiosk import live

from .helpers import make_branch, make_counter, make_service
from .live import RunningSystem, chromium, wait_until


@pytest.fixture
def world(app):
    return build_world()


def build_world():
    one, two = make_branch("One"), make_branch("Two")
    a = make_service(one, "A")
    b = make_service(two, "A")
    first = make_counter(one, "1", [a], is_open=True)
    second = make_counter(one, "2", [a], is_open=True)
    make_counter(two, "1", [b], is_open=True)
    db.session.commit()
    return {"a": a, "b": b, "first": first, "second": second}


def connect(app, token):
    return socketio.test_client(app, namespace=live.NAMESPACE, auth={"token": token})


def pushed(socket):
    realtime.settle()
    return [m["args"][0] for m in socket.get_received(live.NAMESPACE) if m["name"] == live.EVENT]


def test_a_page_gets_its_status_then_every_change_of_it(app, client, world):
    tickets = [engine.issue_ticket(world["a"].id) for _ in range(3)]
    mine = tickets[2]
    socket = connect(app, mine.access_token)
    assert socket.is_connected(live.NAMESPACE)
    first = pushed(socket)
    assert first == [client.get(f"/t/{mine.access_token}.json").json]  # the same dict as the page's JSON
    assert (first[0]["status"], first[0]["ahead"], first[0]["number"]) == ("waiting", 2, "A003")

    engine.call_next(world["first"].id)  # a ticket ahead is called
    assert [(s["status"], s["ahead"]) for s in pushed(socket)] == [("waiting", 1)]

    engine.issue_ticket(world["a"].id)  # behind: this ticket's status is the same, nothing is sent
    assert pushed(socket) == []

    engine.call_next(world["second"].id)
    assert [s["ahead"] for s in pushed(socket)] == [0]
    engine.complete(tickets[0].id)  # counter 1 is free again, and calls this ticket
    assert pushed(socket) == []
    engine.call_next(world["first"].id)
    called = pushed(socket)
    assert [(s["status"], s["counter"], s["ahead"]) for s in called] == [("called", "1", None)]

    socket.disconnect(namespace=live.NAMESPACE)
    assert not live.watchers(app).watched(mine.branch_id) and not live.watchers(app).sent


def test_a_push_overtaken_by_a_newer_change_stops_and_every_page_ends_on_the_latest(app, client, world, monkeypatch):
    """A push gives way to the requests waiting every few pages; when one of them changed the
    queue, what the push was sending is out of date: it stops, and the pages get the newest status
    after the screens heard the newer change. None is left behind, none gets the stale one."""
    tickets = [engine.issue_ticket(world["a"].id) for _ in range(13)]
    pages = {ticket.access_token: connect(app, ticket.access_token) for ticket in tickets[1:]}
    assert sorted(pushed(page)[0]["ahead"] for page in pages.values()) == list(range(1, 13))
    monkeypatch.setattr(live, "YIELD_EVERY", 5)
    # Pushes give way for at most a second (then they go on, stale or not, so a stream of changes
    # never starves them): a loaded machine must not run this push past that bound.
    monkeypatch.setattr(realtime, "FOLLOWERS_WAIT_SECONDS", 60.0)
    let_requests_in, overtaken = realtime.let_requests_in, []

    def a_call_comes_in_mid_push():
        let_requests_in()
        if not overtaken and live.watchers(app).sending.locked():  # (inside the pages' push)
            def call():
                with app.app_context():
                    overtaken.append(engine.call_next(world["second"].id).label)
            caller = threading.Thread(target=call)
            caller.start()
            caller.join()

    monkeypatch.setattr(realtime, "let_requests_in", a_call_comes_in_mid_push)
    engine.call_next(world["first"].id)
    assert realtime.settle() and overtaken == ["A002"]
    db.session.rollback()  # (this thread's read began before the worker's call)
    for token, page in pages.items():
        got = pushed(page)
        now = client.get(f"/t/{token}.json").json
        if now["status"] == "called":  # (A002: the ticket the second call took)
            assert [s["status"] for s in got] == ["called"]
        else:
            assert got == [now], "one status, the newest: two places ahead of where it was"
    assert sorted(client.get(f"/t/{token}.json").json["ahead"] or 0 for token in pages) == [0] + list(range(0, 11))


def test_two_pages_of_one_ticket_both_follow_it(app, world):
    engine.issue_ticket(world["a"].id)
    mine = engine.issue_ticket(world["a"].id)
    pages = [connect(app, mine.access_token) for _ in range(2)]
    assert [[s["ahead"] for s in pushed(page)] for page in pages] == [[1], [1]]
    engine.call_next(world["first"].id)
    assert [[s["ahead"] for s in pushed(page)] for page in pages] == [[0], [0]]
    pages[0].disconnect(namespace=live.NAMESPACE)
    engine.call_next(world["second"].id)
    assert [s["status"] for s in pushed(pages[1])] == ["called"]


@pytest.mark.parametrize("auth", [{"token": "not-a-real-token-at-all-xx"}, {"token": "x" * 500}, {"token": "%00bad"},
                                  {"token": 42}, {}, None, "just-a-string"])
def test_anything_but_a_real_tickets_token_is_refused(app, world, auth):
    engine.issue_ticket(world["a"].id)
    socket = socketio.test_client(app, namespace=live.NAMESPACE, auth=auth)
    assert not socket.is_connected(live.NAMESPACE)
    assert not live.watchers(app).sessions


def test_a_page_of_another_branch_hears_nothing(app, world):
    theirs = engine.issue_ticket(world["b"].id)
    socket = connect(app, theirs.access_token)
    assert [s["ahead"] for s in pushed(socket)] == [0]
    for _ in range(2):
        engine.issue_ticket(world["a"].id)
    engine.call_next(world["first"].id)
    assert pushed(socket) == []
    assert not live.watchers(app).watched(world["a"].branch_id)


def statements_of_one_push(app, world, pages: int) -> tuple[int, int]:
    """Open `pages` status pages of waiting tickets, call a ticket ahead of them all, and count the SQL
    statements the worker (not this thread) ran to push, and the pages that got a status."""
    tickets = [engine.issue_ticket(world["a"].id) for _ in range(pages + 1)]
    sockets = [connect(app, ticket.access_token) for ticket in tickets[1:]]
    for socket in sockets:
        pushed(socket)
    here, worker = threading.get_ident(), []

    def count(conn, cursor, statement, *args):
        if threading.get_ident() != here:
            worker.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        called = engine.call_next(world["first"].id)  # ahead of every page's ticket
        got = [pushed(socket) for socket in sockets]
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert all(len(statuses) == 1 for statuses in got), "each page gets exactly one new status"
    engine.complete(called.id)
    for socket in sockets:
        socket.disconnect(namespace=live.NAMESPACE)
    return len(worker), sum(len(statuses) for statuses in got)


def test_a_push_costs_the_same_queries_for_5_pages_as_for_50(any_db_app):
    world = build_world()
    few, sent_few = statements_of_one_push(any_db_app, world, 5)
    many, sent_many = statements_of_one_push(any_db_app, world, 50)
    assert (sent_few, sent_many) == (5, 50)
    assert few == many and few <= 6, (few, many)


@pytest.fixture(scope="module")
def browser():
    with chromium() as found:
        yield found


def test_the_page_follows_the_queue_by_push_without_asking(tmp_path, browser):
    system = RunningSystem(tmp_path / "instance").start()
    system.admin = True
    try:
        urls = []
        for _ in range(3):
            status, body, _ = system.request("POST", "/api/v1/checkins", {"branch": 1, "service": "A"})
            assert status == 201, body
            urls.append(body["ticket"]["status_url"])
        page = browser.new_page()
        asked = []  # the page's requests for its .json, as the browser sends them
        page.on("request", lambda request: asked.append(request.url) if ".json" in request.url else None)
        page.goto(urls[2])
        expect(page.locator("#state")).to_have_text(re.compile(r"^People ahead of you: 2 "))
        wait_until(page, "window.seedStatusLive && window.seedStatusLive.connected")

        status, body, _ = system.request("POST", "/api/v1/counters/1/call-next", auth=True)
        assert status == 200, body
        expect(page.locator("#state")).to_have_text(re.compile(r"^People ahead of you: 1 "), timeout=2000)
        system.request("POST", "/api/v1/counters/2/call-next", auth=True)
        expect(page.locator("#state")).to_have_text("You're next. Please stay close.", timeout=2000)
        status, body, _ = system.request("POST", "/api/v1/counters/3/call-next", auth=True)
        assert status == 200 and body["ticket"]["number"] == page.locator("#number").inner_text(), body
        expect(page.locator("#state")).to_have_text("It is your turn: please go to counter 3.", timeout=2000)
        page.wait_for_timeout(4500)  # longer than the old page's 4-s poll
        entries = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        assert any("socket.io.min.js" in name for name in entries), entries  # the entries are being kept
        assert [name for name in entries if ".json" in name] == [] and asked == []
        assert page.evaluate("[window.seedStatusLive.connects, window.seedStatusLive.pushes]") == [1, 4]

        # Without its socket, the page asks for its .json every 30 s (of a fake clock), and shows it.
        page.clock.install()
        page.evaluate("window.seedStatusLive.socket.disconnect()")
        system.request("POST", f"/api/v1/tickets/{body['ticket']['id']}/start", auth=True)
        page.clock.run_for(29_000)
        assert asked == []
        page.clock.run_for(1_000)
        expect(page.locator("#state")).to_have_text("You are being served at counter 3.")
        assert len(asked) == 1 and asked[0].endswith(".json")
        page.close()
    finally:
        system.stop()
