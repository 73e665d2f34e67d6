"""The gateway as a process's role (`flask --app run modem run`, `run.py --role gateway`, and the
embedded process): one process per modem is active. The lock is named after the gateway
(core/leader.py), so a second process started for the same modem (a restart overlapping the old
one, or one of several web workers of `run.py --workers N`) waits as a standby instead of writing
to the same serial port, and takes over when the active one dies.

With no modem port, the gateway plays on a virtual modem that its process creates: in
instance/virtual-modem/ttyVM0, or ttyVM0-branch<id> for a gateway of one branch, so that each
branch's gateway has a pty of its own."""
from __future__ import annotations

from pathlib import Path

from core import leader

from . import start, stop, virtual_modem_link
from .gateway import gateway_id, settings_of


def virtual_link(app, branch_id) -> Path:
    link = virtual_modem_link(app)
    return link if branch_id is None else link.with_name(f"{link.name}-branch{branch_id}")


def is_virtual(port) -> bool:
    return not port or port == "virtual"


def gateway_name(app, **overrides) -> str:
    """The name the gateway will have (its outbox leases' owner, and its lock's name)."""
    settings = settings_of(app, **overrides)
    port = settings["port"]
    if is_virtual(port):
        port = str(virtual_link(app, settings["branch_id"]))
    return settings["name"] or gateway_id(port, settings["branch_id"])


def start_gateway(app, **overrides):
    """Start the gateway now (no election); (gateway, virtual modem or None), as hardware.start."""
    settings = settings_of(app, **overrides)
    if is_virtual(settings["port"]) and settings["branch_id"] is not None:
        from .virtual_modem import VirtualModem

        virtual = VirtualModem(virtual_link(app, settings["branch_id"]), latency=app.config["VIRTUAL_MODEM_LATENCY"],
                               profile=app.config["VIRTUAL_MODEM_PROFILE"]).start()
        app.extensions["seed.virtual_modem"] = virtual  # hardware.stop stops it with the gateway
        settings["port"] = virtual.port
    return start(app, **{key: value for key, value in settings.items() if value is not None})


def elect(app, **overrides) -> leader.Leader:
    """Run this modem's gateway in this process while it holds the gateway's lock."""
    name = gateway_name(app, **overrides)
    overrides = {**overrides, "name": name}
    return leader.elect(app, f"gateway:{name}", lambda: start_gateway(app, **overrides), lambda: stop(app),
                        role="gateway")
