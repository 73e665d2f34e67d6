"""The virtual modem itself: its state, its pseudo-terminal and the thread that reads it.
What it answers lives in the mixins: parser (AT syntax), commands (27.007: identity, SIM,
network), memories (27.005 storage), network (sending, reports, handsets), faults."""
from __future__ import annotations

import logging
import os
import select
import threading
import time
import tty
from pathlib import Path

from .commands import Commands
from .faults import Faults
from .memories import MEMORIES, Memories, Stored
from .network import Network
from .parser import Parser
from .profiles import Profile, profile_named

log = logging.getLogger("hardware.virtual_modem")

PIN_TRIES, PUK_TRIES = 3, 10


class VirtualModem(Parser, Commands, Memories, Network, Faults):
    def __init__(self, link: str | os.PathLike | None = None, *, latency: float = 3.0,
                 profile: str | Profile | None = None, pin: str | None = None, puk: str = "12345678",
                 no_sim: bool = False, imei: str = "356938035643809", imsi: str = "234150000000000",
                 own_number="+447700900000", operator="Seed Virtual", smsc="+447785016005",
                 by_id: str | os.PathLike | None = None, handset_log: str | os.PathLike | None = None):
        self.link = Path(link) if link else None
        self.by_id = Path(by_id) if by_id else None  # a second name that follows the device, as udev's does
        self.latency = latency
        self.profile = profile_named(profile)
        self.pin, self.puk = pin, puk
        self.imei, self.imsi = imei, imsi
        self.own_number, self.operator, self.smsc = own_number, operator, smsc or ""
        self.handset_log = Path(handset_log) if handset_log else None
        self._lock = threading.RLock()  # state shared between the I/O thread and callers
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._master = self._slave = None
        self._reset_settings()
        self.sim = "absent" if no_sim else "pin" if pin is not None else "ready"
        self.pin_attempts_left, self.puk_attempts_left = PIN_TRIES, PUK_TRIES
        self.pin_attempts = 0  # AT+CPIN= commands received: a probe must never add to it
        self.storage: dict[str, dict[int, Stored]] = {m: {} for m in MEMORIES}
        self.capacity = 100
        self.waiting_in_network: list[Stored] = []  # inbound held while memory is full
        self.handsets = {}
        self.handset_senders: dict[str, list[dict]] = {}  # what each handset sent to the modem
        self._partial: dict[tuple, dict[int, tuple[str, int]]] = {}
        self._reference = 0
        self._inbound_reference = 0
        self.dropped_reports = 0
        self.commands_seen: list[str] = []
        self._init_faults()
        self._prefill_reports()

    def _reset_settings(self):
        """ATZ, AT&F and a power cycle: volatile settings back to the model's defaults."""
        self.echo = True
        self.cmee = 0
        self.text_mode = self.profile.text_mode_at_start
        self.charset = "GSM"
        self.cnmi = (0, 0, 0, 0, 0)
        self.first_octet = 17  # AT+CSMP: 17 = no status report requested, 49 = requested
        self.memories = list(self.profile.initial_memories)
        self.creg_mode = self.cgreg_mode = 0

    def _power_cycle(self):
        self._reset_settings()
        if self.sim == "ready" and self.pin is not None:
            self.sim = "pin"  # a SIM asks for its PIN again after every power-up

    @property
    def pin_ok(self) -> bool:
        return self.sim == "ready"

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> str:
        return str(self.link) if self.link else os.ttyname(self._slave)

    def start(self) -> VirtualModem:
        self._open_pty()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="virtual-modem", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self._close_pty()
        self._remove_links()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _open_pty(self):
        master, slave = os.openpty()
        tty.setraw(slave)
        with self._lock:
            self._master, self._slave = master, slave
            self._buffer = b""
            self._pdu_target = None
            self._pdu_echoed = 0
        # The by-id link first: once the port's own name is there, so is every name of it (a
        # client that waits for the port never finds the by-id link missing).
        for link in (self.by_id, self.link):
            if link:
                link.parent.mkdir(parents=True, exist_ok=True)
                tmp = link.with_name(link.name + ".new")
                if tmp.is_symlink():
                    tmp.unlink()
                tmp.symlink_to(os.ttyname(slave))
                tmp.replace(link)  # atomic: a client never sees a missing or half-made link
        log.info("virtual modem (%s) on %s", self.profile.name, self.port)

    def _close_pty(self):
        with self._lock:
            for fd in (self._master, self._slave):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._master = self._slave = None

    def _remove_links(self):
        for link in (self.link, self.by_id):
            if link and link.is_symlink():
                link.unlink()

    # --- I/O ----------------------------------------------------------------------------------

    def _write(self, data: bytes):
        with self._write_lock:
            fd = self._master
            if fd is None:
                return
            try:
                os.write(fd, data)
            except OSError:
                pass

    def _unsolicited(self, line: str):
        self._write(f"\r\n{line}\r\n".encode())

    def _run(self):
        while not self._stop.is_set():
            fd = self._master
            if fd is None:
                time.sleep(0.05)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(fd, 4096)
            except (OSError, ValueError):
                time.sleep(0.05)  # the port vanished; wait for it to come back
                continue
            if time.monotonic() < self._silent_until:
                continue
            try:
                self._feed(data)
            except Exception:  # noqa: BLE001  (a modem answers ERROR; it does not die)
                log.exception("virtual modem: command failed")
                self._write(b"\r\nERROR\r\n")


def main(argv=None):
    """`python -m hardware.virtual_modem --link /tmp/ttyVM0`: a virtual modem for a terminal or Gammu."""
    import argparse

    from .profiles import PROFILES

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--link", default="/tmp/ttyVM0", help="path of the serial device to create")
    parser.add_argument("--latency", type=float, default=3.0, help="seconds per text part")
    parser.add_argument("--profile", default="default", choices=sorted(PROFILES), help="modem model to play")
    parser.add_argument("--pin", help="SIM PIN to ask for")
    parser.add_argument("--no-sim", action="store_true", help="play a modem with no SIM in it")
    parser.add_argument("--imei", default="356938035643809")
    parser.add_argument("--handset-log", help="append every delivered text to this JSON-lines file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    modem = VirtualModem(args.link, latency=args.latency, profile=args.profile, pin=args.pin, no_sim=args.no_sim,
                         imei=args.imei, handset_log=args.handset_log).start()
    print(f"Virtual modem ({args.profile}) on {modem.port}; Ctrl-C stops it.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        modem.stop()
