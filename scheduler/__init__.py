"""APScheduler setup. Started by run.py (in the web process, embedded) or by
`flask --app run scheduler run` (its own process, scaled out): never by create_app.

However many processes could run it, one is active at a time (`elect`, core/leader.py): the
others wait as hot standbys and one of them starts the jobs when the active one dies. The jobs'
state is in rows, so a takeover loses nothing; each job is safe to run twice."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)


def _in_app(app, job):
    def run():
        with app.app_context():
            try:
                job()
            except Exception:  # noqa: BLE001  (one failed run must not stop the schedule)
                log.exception("scheduled job %s failed", job.__name__)

    run.__name__ = job.__name__
    return run


def start(app) -> BackgroundScheduler:
    from .jobs import JOBS, RUN_AT_START

    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1,
                                                                  "misfire_grace_time": 60})
    intervals = app.config.get("SCHEDULER_JOB_SECONDS") or {}
    for job_id, (job, seconds) in JOBS.items():
        seconds = intervals.get(job_id, seconds)
        at_start = {"next_run_time": datetime.now(timezone.utc)} if job_id in RUN_AT_START else {}
        scheduler.add_job(_in_app(app, job), "interval", seconds=seconds, id=job_id, replace_existing=True,
                          **at_start)
    scheduler.start()
    app.extensions["seed.scheduler"] = scheduler
    log.info("scheduler started: %s", ", ".join(JOBS))
    return scheduler


def stop(app) -> None:
    scheduler = app.extensions.pop("seed.scheduler", None)
    if scheduler is not None:
        scheduler.shutdown(wait=False)


LOCK = "scheduler"


def elect(app):
    """Start the scheduler in this process when it holds the scheduler's lock, now or whenever it
    gets it; a core.leader.Leader (stop() it to step down)."""
    from core import leader

    return leader.elect(app, LOCK, lambda: start(app), lambda: stop(app), role="scheduler")


def active(app) -> str | None:
    """Who runs the scheduler now ("seed-scheduler host:pid @since"), or None. In an app context."""
    from core import leader

    return leader.holder(app, LOCK)


def init_app(app) -> None:
    from . import cli

    cli.init_app(app)
