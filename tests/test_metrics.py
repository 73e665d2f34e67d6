"""/metrics in Prometheus text format (issue 14, README "Operating"): who may read it, that the
queue, the texts and the modems it shows follow what happens, that what a process counted
(requests, waits, service times, calls) is right and costs the engine no statement, that a scrape
never reads the history, and that with several gunicorn workers the counts add up."""
import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app import create_app
from core import engine, leader, metrics, tokens
from core.events import ticket_changing
from core.extensions import db
from core.models import TicketEvent
from messaging.models import InboxQuarantine, ModemStatus

from .conftest import RequestIsolatedClient, build_app, new_postgres_database
from .helpers import bearer, make_branch_setup, text as a_text
from .live import ROOT, RunningSystem
from .test_query_plans import Capture, assert_no_walks, branch, migrated_app  # noqa: F401  (fixtures)
from .test_request_cost import Statements

OUTSIDE = {"REMOTE_ADDR": "203.0.113.7"}  # (TEST-NET-3: never this machine)
TOKEN = "metrics-token-for-tests-0123456789"
REDIS = "redis://127.0.0.1:6379/0"
PORT = 5611


class Scrape:
    """One answer of /metrics, parsed as Prometheus parses it."""

    def __init__(self, body: str):
        self.families = {family.name: family for family in text_string_to_metric_families(body)}

    def value(self, sample: str, **labels) -> float | None:
        """The sample's value with these labels (others may differ), or None when it is absent."""
        found = [s.value for family in self.families.values() for s in family.samples
                 if s.name == sample and all(s.labels.get(k) == str(v) for k, v in labels.items())]
        assert len(found) <= 1, f"{sample} {labels} matches {len(found)} samples: name every label that differs"
        return found[0] if found else None

    def total(self, sample: str, **labels) -> float:
        return sum(s.value for family in self.families.values() for s in family.samples
                   if s.name == sample and all(s.labels.get(k) == str(v) for k, v in labels.items()))


def scrape(client, **kwargs) -> Scrape:
    answer = client.get("/metrics", **kwargs)
    assert answer.status_code == 200, answer.text
    return Scrape(answer.text)


@pytest.fixture
def any_client(any_db_app):
    any_db_app.test_client_class = RequestIsolatedClient
    return any_db_app.test_client()


# --- who may read it -------------------------------------------------------------------------

def test_this_machine_reads_prometheus_text_and_no_cookie_is_set(client):
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "Set-Cookie" not in answer.headers and answer.headers["Cache-Control"] == "no-store"
    names = set(Scrape(answer.text).families)
    assert {"seed_tickets_waiting", "seed_service_info", "seed_counter_info", "seed_scheduler_leader",
            "seed_texts_queued", "seed_texts_last_hour", "seed_inbox_quarantine", "seed_scrape_ok"} <= names
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    # Prometheus asks for OpenMetrics: it gets it.
    open_metrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert open_metrics.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert open_metrics.text.endswith("# EOF\n")
    assert client.post("/metrics").status_code == 405


def test_another_machine_needs_the_token(app, client):
    refused = client.get("/metrics", environ_base=OUTSIDE)
    assert refused.status_code == 403 and "METRICS_TOKEN" in refused.text and "seed_" not in refused.text
    app.config["METRICS_TOKEN"] = TOKEN
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 403
    for wrong in ("Bearer metrics-token-for-tests", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN):
        assert client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": wrong}).status_code == 403
    allowed = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200 and "seed_tickets_waiting" in allowed.text
    # A proxy on this machine that Seed was not told to trust: the client behind it is not local.
    app.config["METRICS_TOKEN"] = None
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 403


def test_behind_a_trusted_proxy_the_forwarded_address_decides(tmp_path, clock):
    app = build_app(f"sqlite:///{tmp_path / 'seed.db'}", clock, tmp_path, TRUSTED_PROXIES=1)
    with app.app_context():
        db.create_all()
        client = app.test_client()
        assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 403
        assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
        db.session.remove()
        db.engine.dispose()


# --- the queue, and what this process counted --------------------------------------------------

def test_a_check_in_a_call_and_a_completion_show_on_the_metrics(any_db_app, any_client, clock):
    branch, (a, b), counters, _staff = make_branch_setup()
    headers = bearer()
    labels = {"branch": branch.id, "service": a.id}
    before = scrape(any_client)
    assert before.value("seed_tickets_waiting", **labels) == 0
    assert before.value("seed_service_info", branch=branch.id, service=b.id, code="B") == 1

    for _ in range(2):
        answer = any_client.post("/api/v1/checkins", json={"service": "A", "branch": branch.id})
        assert answer.status_code == 201, answer.json
    clock.advance(minutes=4)
    called = any_client.post(f"/api/v1/counters/{counters[0].id}/call-next", headers=headers, json={})
    assert called.status_code == 200, called.json
    clock.advance(minutes=6)
    done = any_client.post(f"/api/v1/tickets/{called.json['ticket']['id']}/complete", headers=headers, json={})
    assert done.status_code == 200, done.json

    after = scrape(any_client)
    assert after.value("seed_tickets_waiting", **labels) == 1
    assert after.value("seed_tickets_waiting", branch=branch.id, service=b.id) == 0
    assert after.value("seed_ticket_wait_seconds_count", **labels) == 1
    assert after.value("seed_ticket_wait_seconds_sum", **labels) == 240
    assert after.value("seed_ticket_wait_seconds_bucket", le="120.0", **labels) == 0
    assert after.value("seed_ticket_wait_seconds_bucket", le="300.0", **labels) == 1
    assert after.value("seed_ticket_service_seconds_sum", **labels) == 360
    assert after.value("seed_calls_total", branch=branch.id, counter=counters[0].id) == 1
    assert after.value("seed_calls_total", branch=branch.id, counter=counters[1].id) is None
    assert after.value("seed_ticket_changes_total", branch=branch.id, kind="issued") == 2
    assert after.value("seed_counter_open", branch=branch.id, counter=counters[0].id) == 1
    # Request latency per endpoint, never per path (the ticket's id is not a label).
    assert after.value("seed_request_duration_seconds_count", endpoint="kiosk_api.checkins", method="POST",
                       status=201) == 2
    assert after.value("seed_request_duration_seconds_count", endpoint="api.ticket_action", method="POST",
                       status=200) == 1
    assert after.value("seed_request_duration_seconds_count", endpoint="metrics", method="GET", status=200) >= 1
    paths = {s.labels.get("endpoint") for s in after.families["seed_request_duration_seconds"].samples}
    assert not any("/" in (p or "") for p in paths), paths
    any_client.get("/no/such/page/12345")
    assert scrape(any_client).value("seed_request_duration_seconds_count", endpoint="unmatched", method="GET",
                                     status=404) == 1


def test_counting_calls_and_completions_costs_the_engine_no_statement(app, setup, clock):
    """The wait and service time come from the ticket as the engine left it in the session,
    before its commit expired it: not one statement more for a call or a completion."""
    branch, (a, _b), counters, _staff = setup
    tickets = [engine.issue_ticket(a.id).id for _ in range(5)]  # some wait behind each call
    clock.advance(minutes=3)
    hooks = (("after_commit", metrics._count_moves), ("after_rollback", metrics._forget_moves))

    def call_and_complete():
        db.session.rollback()
        with Statements() as statements:
            ticket = engine.call_next(counters[0].id)
            engine.complete(ticket.id)
        return statements, ticket.id

    call_and_complete()  # the first call opens the counter
    ticket_changing.disconnect(metrics._note_move, sender=app)
    for name, hook in hooks:
        event.remove(Session, name, hook)
    try:
        unobserved, second = call_and_complete()
    finally:
        ticket_changing.connect(metrics._note_move, sender=app)
        for name, hook in hooks:
            event.listen(Session, name, hook)
    observed, third = call_and_complete()
    assert [second, third] == tickets[1:3]
    assert len(observed) == len(unobserved), f"{observed}\n\n{unobserved}"
    assert scrape(app.test_client()).value("seed_calls_total", branch=branch.id, counter=counters[0].id) == 2


def test_a_change_that_is_rolled_back_is_not_counted(app, client, setup):
    branch, (a, _b), counters, _staff = setup
    engine.issue_ticket(a.id)
    db.session.commit()
    engine.issue_ticket(a.id)
    first = engine.call_next(counters[0].id)

    def refused(_app, session, **_kwargs):  # as a change refused after its writes (a full disk)
        session.flush()
        raise RuntimeError("the disk is full")

    ticket_changing.connect(refused, sender=app)  # after the metrics' own: the move is noted, then undone
    try:
        with pytest.raises(RuntimeError):
            engine.call_next(counters[1].id)
    finally:
        ticket_changing.disconnect(refused, sender=app)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(TicketEvent).where(
        TicketEvent.counter_id == counters[1].id)) == 0
    engine.complete(first.id)  # the session's next commit counts its own change, not the undone one
    found = scrape(client)
    assert found.value("seed_calls_total", branch=branch.id, counter=counters[0].id) == 1
    assert found.value("seed_calls_total", branch=branch.id, counter=counters[1].id) is None
    assert found.total("seed_ticket_changes_total", kind="called") == 1
    assert found.total("seed_ticket_changes_total", kind="completed") == 1


def test_the_scheduler_leader_is_named(app, client):
    assert scrape(client).value("seed_scheduler_leader", holder="") == 0
    lock = leader.lock_for(app, "scheduler")
    assert lock.acquire()
    try:
        found = scrape(client).families["seed_scheduler_leader"].samples
        assert [(s.labels["holder"], s.value) for s in found] == [(leader.identity("scheduler"), 1)]
    finally:
        lock.release()


def test_a_part_that_cannot_be_read_leaves_the_others(app, client):
    def broken(_now):
        raise RuntimeError("no such table")

    metrics.add_part(app, "broken", broken)
    found = scrape(client)
    assert found.value("seed_scrape_ok", part="broken") == 0
    assert found.value("seed_scrape_ok", part="queues") == 1 and found.value("seed_scrape_ok", part="texting") == 1
    assert found.value("seed_scheduler_leader", holder="") == 0 and found.value("seed_inbox_quarantine") == 0


# --- texts, modems, quarantine ---------------------------------------------------------------

def test_the_outbox_the_modems_and_the_quarantine_show_on_the_metrics(any_db_app, any_client, clock):
    branch, *_ = make_branch_setup()
    now = clock.now()
    gateway = "gw-1-0123456789"
    assert scrape(any_client).value("seed_texts_last_hour", lane="queue", gateway="", status="failed") == 0
    for _ in range(2):
        a_text(branch, "welcome", now=now - timedelta(minutes=3))
    a_text(branch, "welcome", now=now, send_after=now + timedelta(minutes=30))  # not due yet
    a_text(branch, "called", "sending", now=now, lease_owner=gateway)
    a_text(branch, "called", "sent", now=now, sent_by=gateway, sent_at=now)
    a_text(branch, "position", "delivered", now=now, sent_by=gateway, sent_at=now)
    a_text(branch, "welcome", "failed", now=now, failed_at=now, last_error="refused")
    two_hours_ago = now - timedelta(hours=2)
    a_text(branch, "called", "sent", created_at=two_hours_ago, send_after=two_hours_ago, sent_by=gateway,
           sent_at=two_hours_ago)  # older than the hour counted
    db.session.add(ModemStatus(gateway=gateway, branch_id=branch.id, port="/dev/ttyUSB0", state="ready",
                               state_since=now, signal=17, network="Magti", sent_total=5, updated_at=now))
    db.session.add_all([InboxQuarantine(pdu="07zz", error="bad PDU", received_at=now) for _ in range(2)])
    db.session.commit()

    found = scrape(any_client)
    assert found.value("seed_texts_queued", lane="queue") == 3
    assert found.value("seed_texts_due", lane="queue") == 2
    assert found.value("seed_texts_oldest_due_seconds", lane="queue") == 180
    assert found.value("seed_texts_queued", lane="call") == 0
    assert found.value("seed_texts_sending", lane="call", gateway=gateway) == 1
    assert found.value("seed_texts_last_hour", lane="call", gateway=gateway, status="sent") == 1  # not the old one
    assert found.value("seed_texts_last_hour", lane="queue", gateway=gateway, status="delivered") == 1
    assert found.value("seed_texts_last_hour", lane="queue", gateway="", status="failed") == 1
    assert found.value("seed_texts_last_hour", lane="queue", gateway="", status="queued") == 3
    assert found.value("seed_modem_state", gateway=gateway, state="ready") == 1
    assert found.value("seed_modem_state", gateway=gateway, state="no_sim") == 0
    assert found.value("seed_modem_signal", gateway=gateway) == 17
    assert found.value("seed_modem_info", gateway=gateway, branch=branch.id, network="Magti") == 1
    assert found.value("seed_gateway_texts_sent_total", gateway=gateway) == 5
    assert found.value("seed_modem_last_report_timestamp_seconds", gateway=gateway) == now.timestamp()
    assert found.value("seed_inbox_quarantine") == 2

    clock.advance(minutes=10)  # the gateway stopped reporting
    found = scrape(any_client)
    assert found.value("seed_modem_state", gateway=gateway, state="silent") == 1
    assert found.value("seed_modem_state", gateway=gateway, state="ready") == 0


# --- cost ------------------------------------------------------------------------------------

def test_a_scrape_never_walks_the_history(migrated_app, branch, clock):
    """Three days of visits, texts and events behind (test_query_plans' history): every statement
    of a scrape is explained by the database, and none walks a table that grows with history."""
    branch, services, counters = branch
    for service in services:
        engine.issue_ticket(service.id)
    a_text(branch, "welcome", now=clock.now())
    client = migrated_app.test_client()
    with Capture(db.engine) as captured:
        found = scrape(client)
    assert found.value("seed_tickets_waiting", branch=branch.id, service=services[0].id) == 1
    assert found.value("seed_texts_queued", lane="queue") == 1
    assert len(captured.statements) <= 10, [s for s, _ in captured.statements]
    assert_no_walks(captured.statements)


# --- several workers -------------------------------------------------------------------------

@pytest.fixture
def workers_database():
    with new_postgres_database("seed_metrics") as url:
        yield url


def test_with_two_workers_the_counts_add_up(tmp_path, workers_database):
    """run.py --workers 2 on PostgreSQL and Redis: check-ins land on both workers, and a scrape,
    whichever worker answers it, counts every one of them."""
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text('KIOSK_RATE_LIMIT = "100000 per minute"\n')
    system = RunningSystem(instance, port=PORT, args=["--workers", "2", "--role", "web"],
                           env={"DATABASE_URL": workers_database, "REDIS_URL": REDIS,
                                "SOCKETIO_CHANNEL": f"seed-test-{uuid.uuid4().hex[:8]}"})
    system.start(timeout=90)
    try:
        folder = Path(re.search(r"metrics of the workers add up in (\S+)", "".join(system.output)).group(1))
        workers = system.workers()
        assert len(workers) == 2
        checked_in, lock = [], threading.Lock()

        def kiosk(times):
            for _ in range(times):
                status, body, _ = system.request("POST", "/api/v1/checkins", {"service": "A"})
                assert status == 201, body
                with lock:
                    checked_in.append(body["ticket"]["id"])

        for _round in range(10):  # until both workers have served some
            kiosks = [threading.Thread(target=kiosk, args=(5,)) for _ in range(4)]
            for thread in kiosks:
                thread.start()
            for thread in kiosks:
                thread.join(60)
            if all((folder / f"histogram_{pid}.db").exists() for pid in workers):
                break
        assert all((folder / f"histogram_{pid}.db").exists() for pid in workers), list(folder.iterdir())

        token = {"Authorization": f"Bearer {admin_token(workers_database, instance)}"}
        counters = json.loads(_get(system, "/api/v1/counters", token))["counters"]
        calls = 0
        for counter in counters[:2]:
            called = json.loads(_get(system, f"/api/v1/counters/{counter['id']}/call-next", token, method="POST"))
            assert called["ticket"]["status"] == "called", called
            calls += 1

        for _ in range(6):  # several scrapes: both workers answer some, each with the sums of both
            answer = Scrape(_get(system, "/metrics"))
            assert answer.value("seed_request_duration_seconds_count", endpoint="kiosk_api.checkins",
                                method="POST", status=201) == len(checked_in)
            assert answer.total("seed_ticket_changes_total", kind="issued") == len(checked_in)
            assert answer.total("seed_calls_total") == calls
            assert answer.total("seed_ticket_wait_seconds_count") == calls
            assert answer.total("seed_tickets_waiting") == len(checked_in) - calls
    finally:
        system.stop()
    assert not folder.exists(), "the master removes the workers' folder when it stops"


def test_a_folder_the_operator_chose_is_emptied_of_an_earlier_run(tmp_path):
    """PROMETHEUS_MULTIPROC_DIR set by hand (prometheus_client reads it when imported, so in a
    process of its own): used even with one worker, and what an earlier run left is gone."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_99999.db").write_bytes(b"from an earlier run")
    (folder / "notes.txt").write_text("not ours")
    script = ("from core import metrics; print(metrics.share_between_workers(1)); "
              "print(metrics.share_between_workers(1) == metrics.share_between_workers(3))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(folder), "True"]
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def admin_token(url, instance) -> str:
    made = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(instance)})
    with made.app_context():
        _token, secret = tokens.create("metrics test", "admin")
        db.session.remove()
        db.engine.dispose()
    return secret


def _get(system, path, headers=None, method="GET") -> str:
    request = urllib.request.Request(system.base + path, data=b"{}" if method == "POST" else None, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()
