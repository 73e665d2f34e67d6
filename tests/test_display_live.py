"""Displays on the real system: two screens in Chromium, sequential announcements, resync after a
dropped socket, and events from another process through Redis."""
import time
import uuid

import pytest
import socketio as socketio_client
from playwright.sync_api import expect, sync_playwright

from app import create_app
from core import engine
from core.extensions import db
from display import realtime

from .live import ROOT, RunningSystem, launch_chromium, wait_until

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def system(tmp_path):
    running = RunningSystem(tmp_path / "instance").start()
    running.admin = ("admin", running.admin_password)
    yield running
    running.stop()


def call(system, counter):
    status, body, _ = system.request("POST", f"/api/v1/counters/{counter}/call-next", auth=system.admin)
    assert status == 200, body
    return body["ticket"]


def issue(system, service="A"):
    status, body, _ = system.request("POST", "/api/v1/tickets", {"service": service}, auth=system.admin)
    assert status == 201, body
    return body["ticket"]


def test_two_displays_show_every_call_and_announce_one_after_another(system):
    for _ in range(3):
        issue(system)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        screens = []
        for _ in range(2):
            page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
            page.goto(system.base + "/display/1?languages=en,ja")
            wait_until(page, "window.seedDisplay && window.seedDisplay.snapshots > 0")
            screens.append(page)

        call(system, 1)
        call(system, 2)  # arrives while the first is still being announced
        for page in screens:
            expect(page.locator("#now-number")).to_have_text("A002")
            expect(page.locator("#now-counter")).to_have_text("2")
            expect(page.locator("#serving li")).to_have_count(2)
            wait_until(page, "window.seedDisplay.announced.length === 2", timeout=20_000)
            first, second = page.evaluate("window.seedDisplay.announced")
            assert (first["number"], first["counter"], second["number"], second["counter"]) == ("A001", "1", "A002", "2")
            assert second["start"] >= first["end"], "calls are announced one after another, never over each other"
            assert first["texts"] == ["Ticket A 0 0 1, please go to counter 1.",
                                      "受付番号A1番の方、1番窓口へお越しください。"]

        status, body, _ = system.request("POST", f"/api/v1/tickets/{1}/recall", auth=system.admin)
        assert status == 200
        for page in screens:
            wait_until(page, "window.seedDisplay.announced.length === 3", timeout=20_000)
            assert page.evaluate("window.seedDisplay.announced[2].kind") == "recalled"
            expect(page.locator("#now-number")).to_have_text("A001")
        screens[0].screenshot(path=str(ARTIFACTS / "display.png"))

        # Changes that reach a screen in one frame (made while the screens were being told,
        # display/realtime.py): each call in it is announced, oldest first, after those before.
        page = screens[1]
        page.evaluate("""() => {
            const api = window.seedDisplay, event = (number, counter) => (
                {kind: "called", number, counter, status: "called", service: "A", announce: true});
            api.socket.listeners("update").forEach(listener => listener({
                events: [{kind: "issued", number: "A004", counter: null, status: "waiting", service: "A",
                          announce: false}, event("A002", "2"), event("A003", "1")],
                snapshot: api.state}));
        }""")
        wait_until(page, "window.seedDisplay.announced.length === 5", timeout=30_000)
        assert [(a["number"], a["counter"]) for a in page.evaluate("window.seedDisplay.announced")[3:]] == [
            ("A002", "2"), ("A003", "1")]
        browser.close()


def test_a_display_that_lost_its_socket_shows_the_truth_on_return(system):
    issue(system)
    issue(system)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page()
        page.goto(system.base + "/display/1")
        wait_until(page, "window.seedDisplay.connected")
        page.evaluate("window.seedDisplay.socket.disconnect()")  # the network is gone for a while
        expect(page.locator("#offline")).to_be_visible()
        call(system, 1)
        call(system, 2)
        time.sleep(0.5)
        expect(page.locator("#now-number")).to_have_text("–")  # it heard nothing
        page.evaluate("window.seedDisplay.socket.connect()")
        expect(page.locator("#now-number")).to_have_text("A002")
        expect(page.locator("#offline")).to_be_hidden()
        expect(page.locator("#serving li")).to_have_count(2)

        # A dropped transport (not a clean disconnect): the client reconnects by itself and resyncs.
        snapshots = page.evaluate("window.seedDisplay.snapshots")
        page.evaluate("window.seedDisplay.socket.io.engine.close()")
        wait_until(page, f"window.seedDisplay.snapshots > {snapshots} && window.seedDisplay.connected",
                               timeout=15_000)
        browser.close()


def test_events_from_another_process_reach_displays_through_redis(tmp_path):
    queue, channel = "redis://127.0.0.1:6379/0", f"seed-test-{uuid.uuid4().hex[:8]}"
    instance = tmp_path / "instance"
    system = RunningSystem(instance, env={"SOCKETIO_MESSAGE_QUEUE": queue, "SOCKETIO_CHANNEL": channel}).start()
    client = socketio_client.Client()
    updates = []  # one {"event", "snapshot"} per change (changes that came in one frame share its snapshot)
    client.on("update", lambda update: updates.extend(
        {"event": event, "snapshot": update["snapshot"]} for event in realtime.events_of(update)), namespace="/display")
    try:
        client.connect(system.base, namespaces=["/display"], auth={"branch": 1}, transports=["websocket"])
        # Another process (this test, standing in for the scheduler or a gateway) changes the queue.
        other = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'seed.db'}", "SECRET_KEY": "x",
                            "INSTANCE_PATH": str(instance), "SOCKETIO_MESSAGE_QUEUE": queue,
                            "SOCKETIO_CHANNEL": channel})
        with other.app_context():
            from core.models import Counter, Service

            service = db.session.scalar(db.select(Service).where(Service.code == "A"))
            counter = db.session.scalar(db.select(Counter).where(Counter.name == "3"))
            engine.issue_ticket(service.id)
            engine.call_next(counter.id)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(updates) < 2:
            time.sleep(0.05)
        assert [u["event"]["kind"] for u in updates] == ["issued", "called"]
        assert updates[1]["event"]["counter"] == "3" and updates[1]["snapshot"]["serving"][0]["number"] == "A001"
    finally:
        client.disconnect()
        system.stop()
