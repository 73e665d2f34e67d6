"""Open screens cost no thread: with more displays connected than the old server had threads
(64), the real system (run.py) still checks people in and calls them, every screen hears every
call, and one address cannot hold more connections than SOCKETS_PER_ADDRESS."""
import json
import time

import pytest
import websocket

from display import realtime

from .live import running_system

SCREENS = 90  # more than the 64 threads one open display each used to hold
CAP = 100


def open_display(base: str, timeout: float = 20) -> websocket.WebSocket:
    """A display's connection: Engine.IO over one WebSocket, then Socket.IO's /display namespace."""
    ws = websocket.create_connection(base.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
                                     timeout=timeout)
    assert ws.recv().startswith("0{")  # Engine.IO's open packet
    ws.send('40/display,{"branch":1}')
    return ws


def next_event(ws: websocket.WebSocket, name: str) -> list:
    """The next Socket.IO event `name` on /display (answering pings meanwhile)."""
    while True:
        frame = ws.recv()
        if frame == "2":
            ws.send("3")
        elif frame.startswith(f'42/display,["{name}"'):
            return json.loads(frame[len("42/display,"):])


@pytest.fixture
def system(tmp_path):
    with running_system(tmp_path, config=f"SOCKETS_PER_ADDRESS = {CAP}\n") as system:
        yield system


def test_more_screens_than_threads_and_the_branch_keeps_working(system):
    screens = []
    try:
        for _ in range(SCREENS):
            screens.append(open_display(system.base))
        for ws in screens:
            assert next_event(ws, "snapshot")[1]["branch"]["id"] == 1

        # With every screen connected, a check-in and a call answer (with threads they hung).
        status, issued, _ = system.request("POST", "/api/v1/tickets", {"service": "A"}, auth=True)
        assert status == 201, issued
        status, called, _ = system.request("POST", "/api/v1/counters/1/call-next", {}, auth=True)
        assert status == 200, called
        number = called["ticket"]["number"]

        heard = 0
        for ws in screens:
            while True:
                update = next_event(ws, "update")[1]
                called = [event for event in realtime.events_of(update) if (event or {}).get("kind") == "called"]
                if called:
                    assert called[0]["number"] == number and called[0]["announce"]
                    heard += 1
                    break
        assert heard == SCREENS

        # The cap: this address may open CAP connections, and no more.
        while len(screens) < CAP:
            screens.append(open_display(system.base))
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            open_display(system.base)
        assert refused.value.status_code == 401

        # Closing one frees its place.
        screens.pop().close()
        for _ in range(50):
            try:
                screens.append(open_display(system.base))
                break
            except websocket.WebSocketBadStatusException:
                time.sleep(0.1)  # the server notices the close a moment later
        assert len(screens) == CAP
    finally:
        for ws in screens:
            ws.close()
    assert "Traceback" not in "".join(system.output)
