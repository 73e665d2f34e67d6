"""`flask --app run modem ...`: run a gateway on its own, send a test text, or probe a modem."""
import signal
import tempfile
import threading
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from core import logs
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
@click.option("--rate", "rate_per_minute", type=click.IntRange(0, 600),
              help="Text parts a minute at most for this modem (0: no limit). Default: MODEM_RATE_PER_MINUTE.")
@click.option("--name", help="This gateway's id in the outbox (default: made from the port; keep it when the "
                             "port changes).")
def run_gateway(port, baudrate, pin, smsc, branch_id, rate_per_minute, name):
    """Run a gateway in the foreground until Ctrl-C (one per modem). A second one started for the
    same modem waits as a standby and takes over when the first stops."""
    from core import leader

    app = current_app._get_current_object()
    with leader.exclusively(app, "upgrade"):
        upgrade_database(app)
    logs.configure()  # as run.py logs (LOG_FORMAT, LOG_LEVEL); after the migrations, whose alembic.ini replaces it
    serve(app, upgrade=False, port=port, baudrate=baudrate, pin=pin, smsc=smsc, branch_id=branch_id,
          rate_per_minute=rate_per_minute, name=name)


def serve(app, echo=click.echo, upgrade=True, **settings) -> None:
    """The elected gateway in this process until Ctrl-C or SIGTERM (also `run.py --role gateway`)."""
    from core import leader

    from . import role

    if upgrade:
        with leader.exclusively(app, "upgrade"):
            upgrade_database(app)
    leading = role.elect(app, **settings)
    name = role.gateway_name(app, **settings)
    if leading.leading:
        virtual = app.extensions.get("seed.virtual_modem")
        echo(f"Gateway {name} running" + (f" on the virtual modem {virtual.port}" if virtual else "") + ". Ctrl-C stops it.")
    else:
        echo(f"Gateway {name}: another process runs it; this one waits as a standby. Ctrl-C stops it.")
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    while not done.wait(1):
        gateway = app.extensions.get("seed.gateway")
        if leading.leading and gateway is not None and not gateway.thread.is_alive():
            leading.stop()
            raise click.ClickException("The gateway thread ended unexpectedly; see the log above.")
    leading.stop()
    echo("Gateway stopped.")


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
        message = outbox.enqueue(number, text, "test", branch_id=branch_id)
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


@modem_cli.command("settings")
@click.argument("branch_id", type=int)
@click.option("--port", help="Where the branch's modem is: a device, a /dev/serial/by-id path or imei:<IMEI>; "
                             "'' for the gateway's own configuration.")
@click.option("--pin", "ask_pin", is_flag=True, help="Ask for the SIM's PIN (not shown as typed) and save it.")
@click.option("--no-pin", is_flag=True, help="Remove the saved PIN.")
def modem_settings(branch_id, port, ask_pin, no_pin):
    """Show or change the modem of branch BRANCH_ID, as its settings page does: the branch's
    gateway connects again with them within seconds. The PIN is never shown."""
    from core.errors import ValidationError
    from core.models import Branch
    from core.settings import modem as settings

    branch = db.session.get(Branch, branch_id)
    if branch is None:
        raise click.ClickException(f"No branch {branch_id}.")
    data = {} if port is None else {"port": port}
    if ask_pin:
        data["pin"] = click.prompt("SIM PIN", hide_input=True)
    elif no_pin:
        data["pin"] = None
    try:
        shown = settings.update(branch, data) if data else settings.get(branch)
    except ValidationError as error:
        raise click.ClickException(" ".join(str(reason) for reason in (error.detail or {}).values()) or error.message)
    click.echo(f"Branch {branch.id} ({branch.name}): port {shown['port'] or 'from the gateway configuration'}, "
               f"PIN {'set' if shown['pin_set'] else 'not set'}, version {shown['version']}.")


@modem_cli.command("probe")
@click.argument("port", required=False)
@click.option("--baudrate", type=int, help="Default: MODEM_BAUDRATE (115200).")
@click.option("--profile", help="With no port: which model the temporary virtual modem plays "
                                "(default: VIRTUAL_MODEM_PROFILE).")
def probe_modem(port, baudrate, profile):
    """Ask the modem on PORT (default: MODEM_PORT) whether it can carry texts, without the gateway.

    PORT may be a device, a /dev/serial/by-id path or imei:<IMEI>. With none configured, a
    temporary virtual modem is probed. Never sends the SIM's PIN. Exit code 0 when ready."""
    from . import probe as probing
    from .virtual_modem import PROFILES, VirtualModem

    config = current_app.config
    port = port or config["MODEM_PORT"]
    baudrate = baudrate or config["MODEM_BAUDRATE"]
    profile = profile or config.get("VIRTUAL_MODEM_PROFILE") or "default"
    if profile not in PROFILES:
        raise click.BadParameter(f"known profiles: {', '.join(PROFILES)}", param_hint="--profile")
    virtual = None
    with tempfile.TemporaryDirectory(prefix="seed-probe-") as folder:
        if not port or port == "virtual":
            virtual = VirtualModem(Path(folder) / "ttyVM0", latency=0, profile=profile).start()
            port = virtual.port
            click.echo(f"No modem configured: probing a temporary virtual modem ({profile}).")
        elif port.startswith("imei:"):
            port = _find_by_imei(port[5:], config, baudrate)
        try:
            result = probing.probe(port, baudrate, pin_configured=bool(config["MODEM_PIN"]),
                                   smsc_configured=bool(config["MODEM_SMSC"]))
        finally:
            if virtual is not None:
                virtual.stop()
    for line in result.report():
        click.echo(line)
    click.get_current_context().exit(0 if result.ready else 1)


def _find_by_imei(imei, config, baudrate) -> str:
    from . import ports

    patterns = config.get("MODEM_SEARCH_PATHS") or ports.DEFAULT_SEARCH
    found = ports.find_by_imei(imei, patterns, baudrate)
    if found is None:
        raise click.ClickException(f"No modem with IMEI {imei} answers on {', '.join(patterns)}.")
    click.echo(f"IMEI {imei} is on {found}.")
    return found
