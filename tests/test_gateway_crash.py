"""kill -9 during a burst of 200 queued texts, then restart: every text reaches the handset,
at most one is sent twice (the one in flight), and that one is flagged."""
import collections
import os
import signal
import subprocess
import sys

from sqlalchemy import func, select

from core.extensions import db
from hardware.virtual_modem import VirtualModem
from messaging import outbox
from messaging.models import OutboxMessage

from .live import ROOT
from .modem_helpers import wait_until

NUMBER = "+995555123456"
BURST = 200


def start_gateway(app, port, tmp_path, log):
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    # The virtual modem answers in 10 ms; the carrier-safe pace would make the burst take minutes.
    (instance / "config.py").write_text("MODEM_RATE_PER_MINUTE = 0\n")
    env = {**os.environ, "SEED_INSTANCE_PATH": str(tmp_path / "instance"),
           "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "run", "modem", "run", "--port", port],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def statuses():
    db.session.rollback()
    return dict(db.session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())


def test_kill_9_mid_burst_loses_nothing(app, tmp_path):
    bodies = [f"Burst text {i:03d}" for i in range(BURST)]
    for body in bodies:
        outbox.enqueue(NUMBER, body, "test")
    log = open(tmp_path / "gateway.log", "w")
    with VirtualModem(tmp_path / "ttyVM0", latency=0.01) as modem:
        first = start_gateway(app, modem.port, tmp_path, log)
        try:
            wait_until(lambda: len(modem.messages_for(NUMBER)) >= 60, timeout=60, message="burst under way")
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        at_kill = statuses()
        assert at_kill.get("sending", 0) <= 1, at_kill
        assert 60 <= len(modem.messages_for(NUMBER)) < BURST, "the kill must land mid-burst"

        second = start_gateway(app, modem.port, tmp_path, log)
        try:
            wait_until(lambda: statuses().get("delivered", 0) == BURST, timeout=120, message="all delivered")
        finally:
            second.terminate()
            second.wait(15)
        received = collections.Counter(m["body"] for m in modem.messages_for(NUMBER))

    assert set(received) == set(bodies)  # none lost
    duplicates = {body: n for body, n in received.items() if n > 1}
    assert sum(n - 1 for n in duplicates.values()) <= 1, duplicates  # at most the one in flight
    db.session.rollback()
    flagged = {m.body for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.possible_duplicate))}
    assert set(duplicates) <= flagged
    assert len(flagged) <= 1
    assert outbox.counts_by_status() == {"delivered": BURST}
