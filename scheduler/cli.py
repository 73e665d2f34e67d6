"""`flask --app run scheduler run`: a scheduler process of a scaled-out installation. Start two
(on two hosts, say): one runs the jobs, the other waits as a hot standby and takes over when the
first dies (core/leader.py)."""
import signal
import threading

import click
from flask import current_app
from flask.cli import AppGroup

from core import leader, logs
from core.database import upgrade_database

scheduler_cli = AppGroup("scheduler", help="The periodic jobs.")


def init_app(app) -> None:
    app.cli.add_command(scheduler_cli)


def until_stopped(app, leading) -> None:
    """Wait for Ctrl-C or SIGTERM, then step down (a standby takes over at once)."""
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    done.wait()
    leading.stop()


def upgraded(app) -> None:
    """The schema at its newest, one process at a time (they often start together)."""
    with leader.exclusively(app, "upgrade"):
        upgrade_database(app)


def serve(app, echo=click.echo, upgrade=True) -> None:
    """Run the elected scheduler in this process until Ctrl-C or SIGTERM (also `run.py --role scheduler`)."""
    from . import elect
    from .jobs import JOBS

    if upgrade:
        upgraded(app)
    leading = elect(app)
    if leading.leading:
        echo("Scheduler running: " + ", ".join(JOBS) + ". Ctrl-C stops it.")
    else:
        with app.app_context():
            echo(f"Standby scheduler: {active_or_none(app)} runs the jobs; this one takes over if it stops. "
                 "Ctrl-C stops it.")
    until_stopped(app, leading)
    echo("Scheduler stopped.")


def active_or_none(app) -> str:
    from . import active

    try:
        return active(app) or "nobody"
    except Exception:  # noqa: BLE001  (only words for the console)
        return "another process"


@scheduler_cli.command("run")
def run_scheduler():
    """Run the scheduler in the foreground until Ctrl-C. Start one or more: one is active, the
    others wait as standbys and take over within LEADER_RETRY_SECONDS when it stops."""
    app = current_app._get_current_object()
    upgraded(app)
    logs.configure()  # as run.py logs (LOG_FORMAT, LOG_LEVEL); after the migrations, whose alembic.ini replaces it
    serve(app, upgrade=False)


@scheduler_cli.command("status")
def scheduler_status():
    """Which process runs the jobs now. Exit code 1 when none does."""
    holder = active_or_none(current_app._get_current_object())
    click.echo(f"Active scheduler: {holder}")
    click.get_current_context().exit(0 if holder != "nobody" else 1)


@scheduler_cli.command("jobs")
def list_jobs():
    """List the jobs and how often they run."""
    from .jobs import JOBS

    intervals = current_app.config.get("SCHEDULER_JOB_SECONDS") or {}
    for job_id, (job, seconds) in JOBS.items():
        click.echo(f"{job_id:18} every {intervals.get(job_id, seconds):>4} s  {job.__doc__.splitlines()[0]}")
