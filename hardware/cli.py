"""`flask --app run modem ...`: run a gateway on its own, or send a test text."""
import signal
import threading
import time

import click
from flask import current_app
from flask.cli import AppGroup

from core.database import upgrade_database
from core.errors import SeedError
from core.extensions import db

modem_cli = AppGroup("modem", help="The GSM modem gateway.")


def init_app(app) -> None:
    app.cli.add_command(modem_cli)


def gateway_options(command):
    for option in reversed([
        click.option("--port", help="Serial device, e.g. /dev/ttyUSB0; 'virtual' for the virtual modem "
                                     "(default: MODEM_PORT, else virtual)."),
        click.option("--baudrate", type=int, help="Default: MODEM_BAUDRATE (115200)."),
        click.option("--pin", help="SIM PIN, if the SIM asks for one. Default: MODEM_PIN."),
        click.option("--smsc", help="SMS centre number, if the SIM lacks one. Default: MODEM_SMSC."),
        click.option("--branch", "branch_id", type=int, help="Send only this branch's texts. Default: all."),
    ]):
        command = option(command)
    return command


@modem_cli.command("run")
@gateway_options
def run_gateway(port, baudrate, pin, smsc, branch_id):
    """Run a gateway in the foreground until Ctrl-C (one per modem)."""
    from . import start, stop

    app = current_app._get_current_object()
    upgrade_database(app)
    gateway, virtual = start(app, port=port, baudrate=baudrate, pin=pin, smsc=smsc, branch_id=branch_id)
    click.echo(f"Gateway {gateway.name} running" + (" on the virtual modem" if virtual else "") + ". Ctrl-C stops it.")
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    while not done.wait(1):
        if not gateway.thread.is_alive():
            raise click.ClickException("The gateway thread ended unexpectedly; see the log above.")
    stop(app)
    click.echo("Gateway stopped.")


@modem_cli.command("test")
@click.argument("number")
@click.option("--text", default="Seed test message: your modem works.", show_default=True)
@click.option("--wait", "wait_seconds", type=int, default=90, show_default=True, help="Seconds to wait for the result.")
@click.option("--queue-only", is_flag=True, help="Only queue it, for the gateway of the running system to send.")
@gateway_options
def test_text(number, text, wait_seconds, queue_only, port, baudrate, pin, smsc, branch_id):
    """Send a test text to NUMBER through the outbox and a gateway, and report what happened.

    Stop the running system first (one program per serial port), or use --queue-only."""
    from messaging import outbox
    from messaging.models import OutboxMessage

    from . import start, stop

    app = current_app._get_current_object()
    upgrade_database(app)
    try:
        message = outbox.enqueue(number, text, "test", branch_id=branch_id, priority=10)
    except SeedError as error:
        raise click.ClickException(error.message)
    message_id = message.id
    click.echo(f"Queued test text {message_id} to {message.to}.")
    gateway = None
    if not queue_only:
        gateway, _virtual = start(app, port=port, baudrate=baudrate, pin=pin, smsc=smsc, branch_id=branch_id)
    try:
        deadline = time.monotonic() + wait_seconds
        status = None
        while time.monotonic() < deadline:
            db.session.rollback()
            row = db.session.get(OutboxMessage, message_id)
            if row.status != status:
                status = row.status
                click.echo(f"  {status}" + (f": {row.last_error}" if row.last_error else ""))
            if status in ("delivered", "failed") or (status == "sent" and time.monotonic() > deadline - wait_seconds / 2):
                break
            time.sleep(0.2)
        if gateway is not None and gateway.last_error:
            click.echo(f"  modem: {gateway.last_error}")
    finally:
        if gateway is not None:
            stop(app)
    if status not in ("sent", "delivered"):
        raise click.ClickException(f"The test text was not sent (status: {status}).")
    click.echo("Done.")
