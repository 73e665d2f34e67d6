"""`flask --app run scheduler run`: the one scheduler process of a scaled-out installation."""
import signal
import threading

import click
from flask import current_app
from flask.cli import AppGroup

from core.database import upgrade_database

scheduler_cli = AppGroup("scheduler", help="The periodic jobs.")


def init_app(app) -> None:
    app.cli.add_command(scheduler_cli)


@scheduler_cli.command("run")
def run_scheduler():
    """Run the scheduler in the foreground until Ctrl-C. Run exactly one per installation."""
    from . import start, stop

    app = current_app._get_current_object()
    upgrade_database(app)
    scheduler = start(app)
    click.echo("Scheduler running: " + ", ".join(job.id for job in scheduler.get_jobs()) + ". Ctrl-C stops it.")
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    done.wait()
    stop(app)
    click.echo("Scheduler stopped.")


@scheduler_cli.command("jobs")
def list_jobs():
    """List the jobs and how often they run."""
    from .jobs import JOBS

    for job_id, (job, seconds) in JOBS.items():
        click.echo(f"{job_id:18} every {seconds:>4} s  {job.__doc__.splitlines()[0]}")
