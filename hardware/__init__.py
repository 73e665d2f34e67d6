"""The modem gateway over python-gsmmodem, the virtual modem, (later) the ticket printer.

`start(app)` is called by run.py and the CLI, never by create_app: it opens ports and starts threads.
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def virtual_modem_link(app) -> Path:
    return Path(app.instance_path) / "virtual-modem" / "ttyVM0"


def start(app, **gateway_settings):
    """Start this process's gateway; with no modem port configured, on a new virtual modem.
    Returns (gateway, virtual_modem or None)."""
    from .gateway import from_config
    from .virtual_modem import VirtualModem

    virtual = None
    port = gateway_settings.get("port") or app.config["MODEM_PORT"]
    if not port or port == "virtual":
        virtual = VirtualModem(virtual_modem_link(app), latency=app.config["VIRTUAL_MODEM_LATENCY"],
                               profile=app.config["VIRTUAL_MODEM_PROFILE"]).start()
        app.extensions["seed.virtual_modem"] = virtual
        gateway_settings["port"] = virtual.port
        log.info("no modem configured: using the virtual modem at %s (see /virtual-phone)", virtual.port)
    gateway = from_config(app, **gateway_settings).start()
    app.extensions["seed.gateway"] = gateway
    return gateway, virtual


def stop(app) -> None:
    gateway = app.extensions.pop("seed.gateway", None)
    if gateway:
        gateway.stop()
    virtual = app.extensions.pop("seed.virtual_modem", None)
    if virtual:
        virtual.stop()


def init_app(app) -> None:
    from . import cli, virtual_phone

    virtual_phone.init_app(app)
    cli.init_app(app)
