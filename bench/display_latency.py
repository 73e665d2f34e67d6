"""Call-to-display latency: from the start of the "call next" API request to the "update" event
arriving on each of 50 connected Socket.IO clients. Runs the real system (`python run.py`).
Prints p50/p95/p99; asserts nothing.

    .venv/bin/python -m bench.display_latency [--clients 50] [--calls 100] [--client light|full]

The clients share this machine's two cores with the server. `light` clients speak the Socket.IO
protocol over a plain WebSocket and time the frame's arrival (a display's own decoding happens on
its own machine); `full` clients are python-socketio's, which decode every snapshot in Python.
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import socketio
import websocket

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_system(port):
    instance = tempfile.mkdtemp()
    env = {**os.environ, "SEED_INSTANCE_PATH": instance, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "run.py", "--port", str(port), "--connections", "4000"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    password = None
    for line in process.stdout:
        match = re.search(r"Admin login: admin, password in (.+)$", line)
        if match:
            password = Path(match.group(1)).read_text().strip()
        if "Booting worker" in line:
            break
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # keep the pipe drained
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if requests.get(base + "/api/v1/health", timeout=1).ok:
                return process, base, password
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("run.py did not start")


class LightClient:
    """Engine.IO 4 / Socket.IO 5 over one WebSocket: connect to /display, answer pings, and note
    when each "update" frame for a call arrives."""

    def __init__(self, base, on_called):
        self.ws = websocket.create_connection(base.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket")
        self.ws.recv()  # engine.io open packet
        self.ws.send('40/display,{"branch":1}')
        self.on_called = on_called
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        pattern = re.compile(r'"kind":\s*"called".*?"number":\s*"([A-Z]\d+)"|"number":\s*"([A-Z]\d+)"[^}]*?"kind":\s*"called"')
        while True:
            try:
                frame = self.ws.recv()
            except Exception:  # noqa: BLE001  (closed at the end)
                return
            now = time.perf_counter()
            if frame == "2":
                self.ws.send("3")
            elif frame.startswith('42/display,["update"'):
                head = frame[:frame.find('"snapshot"')]  # the changes (one or several), not the snapshot
                for match in pattern.finditer(head):
                    self.on_called(match.group(1) or match.group(2), now)

    def disconnect(self):
        self.ws.close()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--client", choices=["light", "full"], default="light")
    args = parser.parse_args()

    process, base, password = start_system(free_port())
    arrivals: dict[str, list[float]] = {}
    lock = threading.Lock()
    clients = []
    try:
        def called(number, when):
            with lock:
                arrivals.setdefault(number, []).append(when)

        def on_update(update):
            for event in update.get("events") or [update.get("event")]:  # several changes may share a frame
                if (event or {}).get("kind") == "called":
                    called(event["number"], time.perf_counter())

        for _ in range(args.clients):
            if args.client == "light":
                clients.append(LightClient(base, called))
                continue
            client = socketio.Client()
            client.on("update", on_update, namespace="/display")
            client.connect(base, namespaces=["/display"], auth={"branch": 1}, transports=["websocket"])
            clients.append(client)

        # Log in once like the console does (HTTP Basic would pay a password hash on every call).
        api = requests.Session()
        page = api.get(base + "/staff/login").text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        api.post(base + "/staff/login", data={"username": "admin", "password": password, "csrf_token": token})
        api.headers["Content-Type"] = "application/json"
        latencies, request_times = [], []
        for _ in range(args.calls):
            api.post(base + "/api/v1/tickets", json={"service": "A"}).raise_for_status()
            start = time.perf_counter()
            response = api.post(base + "/api/v1/counters/1/call-next", json={})
            request_times.append(time.perf_counter() - start)
            ticket = response.json()["ticket"]
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with lock:
                    got = list(arrivals.get(ticket["number"], []))
                if len(got) >= args.clients:
                    break
                time.sleep(0.001)
            latencies.extend((t - start) * 1000 for t in got)
            missing = args.clients - len(got)
            if missing:
                print(f"{ticket['number']}: {missing} client(s) never got the call")
            api.post(base + f"/api/v1/tickets/{ticket['id']}/complete", json={}).raise_for_status()

        print(f"{args.clients} {args.client} display clients, {args.calls} calls, {len(latencies)} deliveries")
        print(f"call-to-display latency ms: p50 {percentile(latencies, .50):.1f}  p95 {percentile(latencies, .95):.1f}  "
              f"p99 {percentile(latencies, .99):.1f}  max {max(latencies):.1f}  mean {statistics.mean(latencies):.1f}")
        print(f"call-next API round trip ms: p50 {1000 * percentile(request_times, .5):.1f}  "
              f"p99 {1000 * percentile(request_times, .99):.1f}")
    finally:
        for client in clients:
            client.disconnect()
        process.terminate()
        process.wait(15)


if __name__ == "__main__":
    main()
