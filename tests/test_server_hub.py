"""run.py serves with gevent: a request that computes without waiting (a year's report) must not
hold up every other request and screen. Report paths run on a native thread (run.OffTheHub);
other paths stay greenlets. Checked in a child process, monkey-patched as run.py is, by counting
how often another greenlet gets to run while a request computes for a second."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
from gevent import monkey
monkey.patch_all()
import json, sys, time
import gevent
sys.path.insert(0, sys.argv[1])
from run import OffTheHub

def busy(environ, start_response):  # a report: Python work, no waiting, for about a second
    end = time.perf_counter() + 1.0
    total = 0
    while time.perf_counter() < end:
        total += 1
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done"]

app = OffTheHub(busy)
result = {}
for path in ("/reports/summary", "/api/v1/reports/heatmap", "/staff/"):
    ticks = []
    def ticker():
        while True:
            ticks.append(time.perf_counter())
            gevent.sleep(0.01)
    tick = gevent.spawn(ticker)
    gevent.sleep(0.05)
    before = len(ticks)
    body = app({"PATH_INFO": path}, lambda status, headers: None)
    result[path] = {"ticks": len(ticks) - before, "body": b"".join(body).decode()}
    tick.kill()
print(json.dumps(result))
"""


def test_report_paths_leave_the_hub_free_and_others_stay_greenlets():
    done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for path in ("/reports/summary", "/api/v1/reports/heatmap"):
        assert result[path]["body"] == "done"
        assert result[path]["ticks"] >= 10, result  # ~100 possible in the second; the hub kept running
    # A console request is not sent to a thread: it is short, and a greenlet is cheaper. Here it
    # computes for a second, and nothing else runs meanwhile: what the report paths are spared.
    assert result["/staff/"]["body"] == "done" and result["/staff/"]["ticks"] <= 1, result
