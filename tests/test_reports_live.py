"""Today, live, on the report page: who may join a branch's live figures, what they say, that a
change pushes them (once per batch, never for a branch nobody watches), and in Chromium on the
real server that a check-in updates an open report page without a reload."""
import pytest
from playwright.sync_api import expect

from core import engine
from core.extensions import db, socketio
from display import realtime
from reports import live

from .helpers import login, make_branch, make_counter, make_service, make_staff
from .live import RunningSystem, chromium, signed_in


@pytest.fixture
def world(app, clock):
    one, two = make_branch("One"), make_branch("Two")
    a = make_service(one, "A", target_wait_minutes=10)
    make_service(two, "A")
    counter = make_counter(one, "1", [a], is_open=True)
    make_counter(one, "2", [a])
    make_staff("manager", role="manager", branch=one)
    make_staff("other", role="manager", branch=two)
    make_staff("clerk", branch=one)
    make_staff("admin", role="admin")
    db.session.commit()
    return {"one": one, "two": two, "a": a, "counter": counter}


def connect(app, client, branch):
    return socketio.test_client(app, namespace=live.NAMESPACE, auth={"branch": branch.id}, flask_test_client=client)


def pushed(socket):
    realtime.settle()
    return [m["args"][0] for m in socket.get_received(live.NAMESPACE) if m["name"] == live.EVENT]


def test_only_the_branchs_managers_and_admins_may_watch(app, client, world):
    assert not connect(app, client, world["one"]).is_connected(live.NAMESPACE)  # signed out
    for name, allowed in (("clerk", False), ("other", False), ("manager", True), ("admin", True)):
        login(client, name)
        socket = connect(app, client, world["one"])
        assert socket.is_connected(live.NAMESPACE) is allowed, name
        if allowed:
            socket.disconnect(namespace=live.NAMESPACE)


def test_the_figures_follow_the_queue(app, client, world, clock):
    """09:00 two arrive; 09:04 the first is called (4 minutes: within A's 10) and served by 09:10."""
    a, counter = world["a"], world["counter"]
    login(client, "manager")
    socket = connect(app, client, world["one"])
    assert pushed(socket) == [{"branch": world["one"].id, "at": "2026-03-02T09:00:00+00:00", "waiting": 0,
                               "longest_wait_minutes": None, "counters_open": 1, "served": 0, "service_level": None}]
    first = engine.issue_ticket(a.id)
    engine.issue_ticket(a.id)
    found = pushed(socket)
    assert 1 <= len(found) <= 2 and found[-1]["waiting"] == 2  # once per batch of changes
    clock.advance(minutes=4)
    engine.call_next(counter.id)
    clock.advance(minutes=1)
    engine.start_serving(first.id)
    clock.advance(minutes=5)
    engine.complete(first.id)
    latest = pushed(socket)[-1]
    assert (latest["waiting"], latest["longest_wait_minutes"], latest["served"], latest["service_level"]) == (
        1, 10.0, 1, 1.0)

    # Another branch's change reaches no one here, and nothing is built for a branch nobody watches.
    engine.issue_ticket(db.session.scalar(db.select(type(a)).where(type(a).branch_id == world["two"].id)).id)
    assert pushed(socket) == []
    socket.disconnect(namespace=live.NAMESPACE)
    assert not live.watchers(app).watched(world["one"].id)


@pytest.fixture(scope="module")
def browser():
    with chromium() as found:
        yield found


def test_a_check_in_updates_the_open_report_page_without_a_reload(tmp_path, browser):
    system = RunningSystem(tmp_path / "instance").start()
    try:
        context, page = signed_in(browser, system)
        page.goto(system.base + "/reports/?branch=1")
        expect(page.locator("#live-waiting")).to_have_text("0")
        page.evaluate("window.seedLoaded = true")  # gone if the page reloads
        status, body, _ = system.request("POST", "/api/v1/checkins", {"branch": 1, "service": "A"})
        assert status == 201, body
        expect(page.locator("#live-waiting")).to_have_text("1")
        system.request("POST", "/api/v1/checkins", {"branch": 1, "service": "A"})
        expect(page.locator("#live-waiting")).to_have_text("2")
        assert page.evaluate("window.seedLoaded") is True and page.evaluate("window.seedLive.updates") >= 2
        context.close()
    finally:
        system.stop()
