"""APScheduler setup. Started by run.py (in the web process, embedded) or by
`flask --app run scheduler run` (its own process, scaled out): never by create_app or by web
workers, as APScheduler's job stores cannot be shared between processes."""
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
    for job_id, (job, seconds) in JOBS.items():
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


def init_app(app) -> None:
    from . import cli

    cli.init_app(app)
