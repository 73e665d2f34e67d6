"""/metrics in Prometheus text format (README, "Operating").

Two kinds of figures:
- What the installation looks like now, read from the database at each scrape by the parts
  registered with `add_part` (core's: the queues, the counters, who runs the scheduler; messaging
  adds the outbox, the modems and the quarantine). Read there, they are right whichever process
  answers the scrape, and whichever process (a scheduler, a gateway on another host) made them so.
- What this web process saw: request latency per endpoint, and, from the ticket changes it
  committed, the wait from arrival to call, the service time and the calls per counter. With
  several gunicorn workers (run.py --workers N) every worker writes them to files in one folder
  (prometheus_client's multiprocess mode) and a scrape adds them up.

Answers this machine's loopback always; anyone else only with "Authorization: Bearer
<METRICS_TOKEN>" when a token is set. A refusal is 403, with a plain sentence saying why.
"""
from __future__ import annotations

import atexit
import hmac
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from flask import Response, current_app, request, request_finished, request_started
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, multiprocess
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy import and_, event, func, inspect, select
from sqlalchemy.orm import Session

from . import clock, leader
from .events import ticket_changing
from .extensions import db
from .models import Branch, Service, Ticket
from .models import Counter as CounterRow
from .models import TicketStatus as S
from .security import is_local_request

log = logging.getLogger(__name__)
EXTENSION = "seed.metrics"
PARTS = "seed.metrics.parts"
MOVES = "seed.metrics.moves"  # in Session.info: the ticket changes of its transaction, counted once committed
FOLDER = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's name for the workers' shared folder
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A wait is minutes to an hour or more; a service, a few minutes to half an hour.
WAIT_BUCKETS = (30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800)
SERVICE_BUCKETS = (30, 60, 120, 180, 300, 420, 600, 900, 1200, 1800, 2700, 3600)


def init_app(app) -> None:
    # The *_created series (when each label set first appeared) would double what a scrape
    # carries and tell Prometheus nothing it does not see itself.
    disable_created_metrics()
    registry = CollectorRegistry()
    app.extensions[EXTENSION] = Instruments(registry)
    app.extensions.setdefault(PARTS, [])
    if FOLDER not in os.environ:  # one process: its own memory and CPU; with several, each has its own
        ProcessCollector(registry=registry)
    add_part(app, "queues", queues)
    add_part(app, "scheduler", scheduler_leader)
    app.add_url_rule("/metrics", "metrics", scrape, methods=["GET"])
    request_started.connect(_request_started, app)
    request_finished.connect(_request_finished, app)
    ticket_changing.connect(_note_move, sender=app)
    if not event.contains(Session, "after_commit", _count_moves):  # once per process, for every app
        event.listen(Session, "after_commit", _count_moves)
        event.listen(Session, "after_rollback", _forget_moves)


def add_part(app, name: str, collect) -> None:
    """Register `collect(now)`, which reads the database and returns Prometheus metric families,
    to run at every scrape. A package calls this from its own init_app: core knows no package's
    tables but its own. A part that fails is left out of that scrape (seed_scrape_ok says so)."""
    app.extensions.setdefault(PARTS, []).append((name, collect))


class Instruments:
    """What this process counts, per app (tests build many apps in one process)."""

    def __init__(self, registry):
        self.registry = registry
        self.requests = Histogram(
            "seed_request_duration_seconds",
            "Time to answer a request, from routing to a ready response, per Flask endpoint (never the path), "
            "method and status. Socket.IO traffic is not counted.",
            ["endpoint", "method", "status"], registry=registry)
        self.waits = Histogram(
            "seed_ticket_wait_seconds",
            "From a ticket's arrival to its call, observed at each call (a ticket called again after a hold or "
            "a transfer counts again, from its arrival). Labels are ids: seed_service_info names them.",
            ["branch", "service"], buckets=WAIT_BUCKETS, registry=registry)
        self.services = Histogram(
            "seed_ticket_service_seconds",
            "From the start of service (the call, when nobody pressed start) to completion, per branch and "
            "service id.", ["branch", "service"], buckets=SERVICE_BUCKETS, registry=registry)
        self.calls = Counter(
            "seed_calls", "Tickets called to a counter (recalls not included), per branch and counter id "
            "(seed_counter_info names them).", ["branch", "counter"], registry=registry)
        self.changes = Counter(
            "seed_ticket_changes", "Ticket changes committed by the queue engine, per branch and kind "
            "(issued, called, completed, no_show, ...).", ["branch", "kind"], registry=registry)

    def observe(self, move: Move) -> None:
        branch = str(move.branch_id)
        self.changes.labels(branch, move.kind).inc()
        if move.kind == "called":
            self.calls.labels(branch, str(move.counter_id)).inc()
            if move.waited is not None:
                self.waits.labels(branch, str(move.service_id)).observe(move.waited)
        elif move.kind == "completed" and move.served is not None:
            self.services.labels(branch, str(move.service_id)).observe(move.served)


# --- who may scrape, and the scrape ----------------------------------------------------------

def refusal() -> str | None:
    """Why this request may not read /metrics, or None when it may."""
    if is_local_request():
        return None
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        return ("/metrics answers this machine only. To scrape it from elsewhere, set METRICS_TOKEN and send "
                "Authorization: Bearer <METRICS_TOKEN>.")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), str(token).encode()):
        return None
    return "Send Authorization: Bearer <METRICS_TOKEN> to read /metrics from another machine."


def scrape():
    refused = refusal()
    if refused is not None:
        return Response(refused + "\n", 403, mimetype="text/plain", headers={"Cache-Control": "no-store"})
    app = current_app._get_current_object()
    registry = CollectorRegistry()  # one per scrape: the database part is read now, for this answer
    if FOLDER in os.environ:  # several workers: what each counted is in its files in the folder
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(app.extensions[EXTENSION].registry)
    registry.register(FromTheDatabase(app))
    encode, content_type = choose_encoder(request.headers.get("Accept"))
    return Response(encode(registry), headers={"Content-Type": content_type, "Cache-Control": "no-store"})


class FromTheDatabase:
    """A prometheus_client collector: runs every registered part at each scrape, in the request's
    app context, and says which parts could be read and what each cost."""

    def __init__(self, app):
        self.app = app

    def describe(self):
        return []  # (so registering does not read the database once more to learn the names)

    def collect(self):
        now = clock.now()
        ok = GaugeMetricFamily("seed_scrape_ok", "1 when this part of the scrape could be read from the database, "
                                                 "0 when it failed (the reason is in the log).", labels=["part"])
        took = GaugeMetricFamily("seed_scrape_duration_seconds", "Time this scrape spent reading each part from "
                                                                 "the database.", labels=["part"])
        for name, part in self.app.extensions.get(PARTS, ()):
            started = time.perf_counter()
            try:
                families, read = list(part(now)), True
            except Exception as error:  # noqa: BLE001  (one unreadable part must not hide the others)
                log.warning("metrics: could not read %s: %s: %s", name, type(error).__name__, error)
                db.session.rollback()
                families, read = [], False
            yield from families
            ok.add_metric([name], 1 if read else 0)
            took.add_metric([name], time.perf_counter() - started)
        yield ok
        yield took


# --- core's parts ----------------------------------------------------------------------------

def queues(_now):
    """Who waits for which service (one grouped query: per service, its waiting tickets looked up
    in ix_ticket_queue by branch, status and service, so the past is never read), the names
    behind the ids, and which counters are open."""
    waiting = GaugeMetricFamily("seed_tickets_waiting", "Tickets waiting to be called now, per branch and service "
                                                        "id (seed_service_info names them).",
                                labels=["branch", "service"])
    services = InfoMetricFamily("seed_service", "A service's code and name, by branch and service id.",
                                labels=["branch", "service", "code", "name"])
    rows = db.session.execute(
        select(Service.branch_id, Service.id, Service.code, Service.name, func.count(Ticket.id))
        .outerjoin(Ticket, and_(Ticket.branch_id == Service.branch_id, Ticket.status == S.WAITING,
                                Ticket.service_id == Service.id))
        .group_by(Service.branch_id, Service.id, Service.code, Service.name)
        .order_by(Service.branch_id, Service.id)).all()
    for branch_id, service_id, code, name, count in rows:
        waiting.add_metric([str(branch_id), str(service_id)], count)
        services.add_metric([str(branch_id), str(service_id), code, name], {})
    counters = InfoMetricFamily("seed_counter", "A counter's name, by branch and counter id.",
                                labels=["branch", "counter", "name"])
    open_now = GaugeMetricFamily("seed_counter_open", "1 while the counter is open.", labels=["branch", "counter"])
    for branch_id, counter_id, name, is_open in db.session.execute(
            select(CounterRow.branch_id, CounterRow.id, CounterRow.name, CounterRow.is_open).order_by(CounterRow.id)):
        counters.add_metric([str(branch_id), str(counter_id), name], {})
        open_now.add_metric([str(branch_id), str(counter_id)], 1 if is_open else 0)
    branches = InfoMetricFamily("seed_branch", "A branch's name, by branch id.", labels=["branch", "name"])
    for branch_id, name in db.session.execute(select(Branch.id, Branch.name).order_by(Branch.id)):
        branches.add_metric([str(branch_id), name], {})
    return [waiting, services, counters, open_now, branches]


def scheduler_leader(_now):
    """The process that runs the scheduler's jobs now (as /api/v1/health reports it)."""
    holder = leader.holder(current_app._get_current_object(), "scheduler")
    family = GaugeMetricFamily("seed_scheduler_leader", "1 with holder=\"seed-scheduler host:pid\" of the process "
                                                        "that runs the scheduler's jobs; 0 with holder=\"\" when none "
                                                        "does (nothing is sent late, reminded or closed).",
                               labels=["holder"])
    family.add_metric([holder.split(" @")[0] if holder else ""], 1 if holder else 0)
    return [family]


# --- what this process saw: requests ---------------------------------------------------------

def _request_started(_app, **_):
    request.environ["seed.metrics.started"] = time.perf_counter()


def _request_finished(app, response, **_):
    started = request.environ.get("seed.metrics.started")
    instruments = app.extensions.get(EXTENSION)
    if started is None or instruments is None:
        return
    method = request.method if request.method in METHODS else "other"  # a client may send any word
    instruments.requests.labels(request.endpoint or "unmatched", method, str(response.status_code)) \
        .observe(time.perf_counter() - started)


# --- what this process saw: ticket changes ----------------------------------------------------

@dataclass(frozen=True)
class Move:
    kind: str
    branch_id: int
    service_id: int | None
    counter_id: int | None
    waited: float | None = None  # seconds from arrival to this call
    served: float | None = None  # seconds from the start of service to this completion


def _note_move(app, session, ticket, change, **_kwargs) -> None:
    """In the change's own transaction (core.events.ticket_changing): the move, with its ticket as
    the engine left it in the session, counted once committed. Read here because after the commit
    the ticket is expired, and reading its service and times again would cost a query per call
    and per completion; the domain event after the commit carries neither."""
    try:
        instruments = app.extensions.get(EXTENSION)
        if instruments is None:
            return
        loaded = inspect(ticket).dict  # what the session holds: reading it never sends a query
        session.info.setdefault(MOVES, []).append((instruments, Move(
            kind=change.kind, branch_id=loaded.get("branch_id"), service_id=loaded.get("service_id"),
            counter_id=change.counter_id,
            waited=_seconds(loaded.get("arrived_at"), loaded.get("called_at")) if change.kind == "called" else None,
            served=(_seconds(loaded.get("started_at"), loaded.get("finished_at"))
                    if change.kind == "completed" else None))))
    except Exception:  # noqa: BLE001  (counting must never stop a ticket change)
        log.exception("metrics: could not note a ticket change")


def _seconds(since, until) -> float | None:
    if since is None or until is None:
        return None
    return max(0.0, (until - since).total_seconds())


def _count_moves(session) -> None:
    """Committed: count what was noted. Only now, so a change rolled back is never counted."""
    moves = session.info.pop(MOVES, None)
    for instruments, move in moves or ():
        try:
            instruments.observe(move)
        except Exception:  # noqa: BLE001
            log.exception("metrics: could not count a ticket change")


def _forget_moves(session) -> None:
    session.info.pop(MOVES, None)


# --- several workers -------------------------------------------------------------------------

def share_between_workers(workers: int) -> Path | None:
    """Before gunicorn forks its workers, when there are several: a folder where each writes what
    it counts, so a scrape answered by any of them adds up all (prometheus_client's multiprocess mode). A new
    folder each start (what a previous run counted does not carry over), removed when the master
    exits. With one worker, nothing: it counts in memory. PROMETHEUS_MULTIPROC_DIR, when set, is
    used whatever the number of workers, and emptied of earlier runs' files. Must run before any
    worker counts anything."""
    given = os.environ.get(FOLDER)
    if given:  # (prometheus_client saw it when it was imported: its values already live there)
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.db"):
            old.unlink()
    elif workers > 1:
        folder = Path(tempfile.mkdtemp(prefix="seed-metrics-"))
        master = os.getpid()
        # (atexit runs in the forked workers too, when they exit: only the master removes it.)
        atexit.register(lambda: os.getpid() == master and shutil.rmtree(folder, ignore_errors=True))
        os.environ[FOLDER] = str(folder)
        # prometheus_client chose where values live when it was imported (app.py imported it long
        # before the number of workers was known): choose again. Nothing has been counted yet;
        # what is counted from now on (all of it in the workers) goes to the folder.
        from prometheus_client import values

        values.ValueClass = values.get_value_class()
    else:
        return None
    log.info("metrics of the workers add up in %s", folder)
    return folder


def worker_gone(pid: int) -> None:
    """gunicorn's worker_exit: what the worker counted stays in the sums; its live gauges go."""
    if FOLDER in os.environ:
        multiprocess.mark_process_dead(pid)
