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


CALL_CHILD = r"""
from gevent import monkey
monkey.patch_all()
import json, os, sys, tempfile
import gevent
sys.path.insert(0, sys.argv[1])
from sqlalchemy import select
from app import create_app
from core.extensions import db
from messaging.models import OutboxMessage

folder = tempfile.mkdtemp()
app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite:///" + os.path.join(folder, "seed.db"),
                  "SECRET_KEY": "tests-only", "INSTANCE_PATH": os.path.join(folder, "instance"),
                  "MODEM_RATE_PER_MINUTE": 0})
client = app.test_client()

def kinds():
    with app.app_context():
        return sorted(db.session.scalars(select(OutboxMessage.kind)).all())

with app.app_context():
    db.create_all()
    from tests.helpers import bearer, make_branch_setup
    branch, (service, _b), counters, _alice = make_branch_setup()
    branch_id, code, counter = branch.id, service.code, counters[0].id
    headers = bearer()
for n in range(4):  # four texting customers waiting
    answer = client.post("/api/v1/checkins", json={"branch": branch_id, "service": code, "language": "en",
                                                    "phone": f"+99559912000{n}", "sms_consent": True})
    assert answer.status_code == 201, answer.text
gevent.sleep(0.1)
result = {"before": kinds()}
answer = client.post(f"/api/v1/counters/{counter}/call-next", headers=headers, json={})
result["status"] = answer.status_code
result["answered"] = kinds()  # the answer is here; this greenlet has not waited since
gevent.sleep(0.2)
result["after"] = kinds()
print(json.dumps(result))
"""


def test_a_call_answers_before_it_texts_those_it_brought_closer():
    """Under gevent (run.py) the texts a call owes the customers it brought closer ("you're next",
    "nearly your turn") are written once the call has answered, in a greenlet of their own: a third
    of a call's time, which the staff member no longer waits for. Its own "go to counter" commits
    with the call, as before. (Elsewhere, as in the other tests, they are written before it answers.)"""
    done = subprocess.run([sys.executable, "-c", CALL_CHILD, str(ROOT)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 200, result
    assert result["before"] == ["welcome"] * 4, result
    assert result["answered"] == ["called"] + ["welcome"] * 4, result
    assert result["after"] == ["called", "next"] + ["welcome"] * 4, result  # ("nearly": the welcomes said it)
