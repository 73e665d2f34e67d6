"""SQLite's write-ahead log is copied back into the database beside the requests, not inside one
(core/wal.py): in the server a commit no longer checkpoints (it took one commit in a hundred 20 ms
longer, with every greenlet of the worker waiting), a checkpointer does it on a native thread
while the hub goes on. Checked in a child process monkey-patched as run.py is, through the hook
gunicorn calls in each worker."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
from gevent import monkey
monkey.patch_all()
import json, os, sys, time
import gevent
sys.path.insert(0, sys.argv[1])
folder = sys.argv[2]
from app import create_app
from core import wal
from core.extensions import db
import run

path = os.path.join(folder, "seed.db")
app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite:///" + path, "SECRET_KEY": "tests-only",
                  "INSTANCE_PATH": os.path.join(folder, "instance"), "MODEM_RATE_PER_MINUTE": 0})
result = {}

def autocheckpoint():
    with db.engine.connect() as connection:
        return connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()

with app.app_context():
    db.create_all()
    with db.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE filler (x BLOB)")
    result["before"] = autocheckpoint()
run.start_in_worker(app, role="web")["post_worker_init"](None)  # as gunicorn does in each worker
checkpointer = wal.current
result["started"] = checkpointer is not None
with app.app_context():
    result["after"] = autocheckpoint()
    checkpointer.stop()  # (its turns paused: the log below is left to one checkpoint)

    def write(commits):
        for _ in range(commits):
            with db.engine.begin() as connection:
                connection.exec_driver_sql("INSERT INTO filler SELECT randomblob(4000) FROM (SELECT 1 UNION ALL SELECT 2 "
                                           "UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5)")
            gevent.sleep(0)

    write(500)  # some 3,500 pages: SQLite's own commits would have checkpointed at 1,000
    result["log_pages"] = (os.path.getsize(path + "-wal") - 32) // (4096 + 24)  # (a header, then frames)
    ticks = []
    def ticker():
        while True:
            ticks.append(time.perf_counter())
            gevent.sleep(0.001)
    tick = gevent.spawn(ticker)
    gevent.sleep(0.01)
    before = len(ticks)
    started = time.perf_counter()
    busy, pages, copied = checkpointer.checkpoint()
    result.update(ticks=len(ticks) - before, checkpoint_ms=(time.perf_counter() - started) * 1000,
                  pages=pages, copied=copied)
    tick.kill()

    turns = wal.Checkpointer(path, every=0.02).start()  # its own turns, while commits go on
    write(50)
    gevent.sleep(0.2)
    result["turns_copied"] = turns.checkpoints
    turns.stop()
print(json.dumps(result))
"""


def test_the_server_leaves_the_log_to_a_checkpointer_off_the_hub(tmp_path):
    done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["before"] == 1000  # SQLite's own, outside the server (tests, commands)
    assert result["started"] and result["after"] == 0, result  # the worker's connections never checkpoint
    assert result["log_pages"] > 2000, result  # no commit checkpointed: the log kept every page
    assert result["pages"] >= result["log_pages"] - 5 and result["copied"] == result["pages"], result
    # The hub went on while SQLite copied some 10 MB back (on the hub, not one tick could run).
    assert result["ticks"] >= 1, result
    assert result["turns_copied"] >= 1, result
