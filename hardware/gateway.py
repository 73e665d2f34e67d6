"""The modem gateway: the only code that touches the serial port, from one owner thread.

It connects (PIN, network), sends due outbox rows, stores received texts in the inbox before
deleting them from the modem, applies status reports, sweeps stored messages for notifications
the library lost, publishes signal and network, and reconnects with backoff when the port fails.
"""
from __future__ import annotations

import logging
import queue
import re
import threading
import time

from flask import current_app

from core import clock
from core.database import write_transaction
from messaging import inbox, outbox
from messaging.models import ModemStatus
from messaging.phones import masked
from messaging.signals import outbox_queued

from . import modem as modem_io
from .errors import ModemUnavailable, SendRejected

log = logging.getLogger(__name__)

CMTI = re.compile(r'^\+CMTI:\s*"([^"]+)",\s*(\d+)')
CDSI = re.compile(r'^\+CDSI:\s*"([^"]+)",\s*(\d+)')
CDS = re.compile(r"^\+CDS:\s*(\d+)")
HEX = re.compile(r"^[0-9A-Fa-f]+$")


class Gateway:
    def __init__(self, app, *, port: str, baudrate=115200, pin=None, smsc=None, branch_id=None, name=None):
        self.app = app
        self.port, self.baudrate, self.pin, self.smsc = port, baudrate, pin, smsc
        self.branch_id = branch_id
        self.name = name or f"gateway:{branch_id or 'all'}:{port}"
        config = app.config
        self.sweep_seconds = config["MODEM_SWEEP_SECONDS"]
        self.health_seconds = config["MODEM_HEALTH_SECONDS"]
        self.lease_seconds = config["OUTBOX_LEASE_SECONDS"]
        self.backoff_max = config["MODEM_RECONNECT_MAX_SECONDS"]
        self.notifications: queue.Queue = queue.Queue()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.modem: modem_io.SeedModem | None = None
        self.thread: threading.Thread | None = None
        self.state = "disconnected"
        self.signal = self.network = self.last_error = None
        self.sent_total = 0
        self.connections = 0
        self._cds_pending = False
        self._next_sweep = self._next_health = 0.0

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Gateway:
        outbox_queued.connect(self._on_queued, sender=self.app, weak=False)
        self.thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout=10) -> None:
        self.stopping.set()
        self.wake.set()
        self.notifications.put(None)
        outbox_queued.disconnect(self._on_queued, sender=self.app)
        if self.thread and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def _on_queued(self, _sender, **_kwargs):
        self.wake.set()
        self.notifications.put([])  # an idle owner waits on this queue: wake it for the new text

    def run(self) -> None:
        with self.app.app_context():
            released = outbox.release_leases(self.name)
            if released:
                log.warning("%s: %d text(s) in flight when the last run stopped are queued again", self.name, released)
            delay = 1.0
            while not self.stopping.is_set():
                if self.modem is None:
                    if not self._connect():
                        self._wait(delay)
                        delay = min(delay * 2, self.backoff_max)
                        continue
                    delay = 1.0
                try:
                    self._step()
                except ModemUnavailable as error:
                    self._disconnect(str(error))
                except Exception as error:  # noqa: BLE001  (the gateway must outlive any one bad row)
                    log.exception("%s: unexpected error", self.name)
                    self._disconnect(f"{type(error).__name__}: {error}")
            self._disconnect("stopped", state="stopped")

    def _wait(self, seconds):
        self.wake.wait(seconds)
        self.wake.clear()

    # --- connection ---------------------------------------------------------------------------

    def _connect(self) -> bool:
        self._publish("connecting")
        try:
            modem = modem_io.connect(self.port, self.baudrate, self.pin, self.notifications)
            if self.smsc:
                modem.smsc = self.smsc
        except ModemUnavailable as error:
            self.last_error = str(error)
            log.warning("%s: %s", self.name, error)
            self._publish("disconnected")
            return False
        self.modem = modem
        self.connections += 1
        self.last_error = None
        self._next_sweep = 0.0  # whatever arrived while we were away is read now
        self._next_health = 0.0
        log.info("%s: modem ready on %s", self.name, self.port)
        return True

    def _disconnect(self, reason: str, state="disconnected") -> None:
        if self.modem is not None:
            modem_io.close(self.modem)
            self.modem = None
            if reason != "stopped":
                log.warning("%s: modem lost (%s); reconnecting", self.name, reason)
        self.last_error = None if reason == "stopped" else reason
        self._publish(state)

    def _alive(self):
        modem = self.modem
        if modem is None or not modem.alive:
            raise ModemUnavailable(f"the port closed: {getattr(modem, 'fatal_error', None)}")
        return modem

    def _command(self, call, *args):
        """Run one modem operation; a silent or vanished modem becomes ModemUnavailable."""
        modem = self._alive()
        try:
            return call(modem, *args)
        except (modem_io.TimeoutException, modem_io.serial.SerialException, OSError) as error:
            raise ModemUnavailable(f"no answer from the modem: {type(error).__name__}") from error

    # --- one turn of the loop ----------------------------------------------------------------

    def _step(self) -> None:
        self._alive()
        self._drain_notifications()
        now = time.monotonic()
        if now >= self._next_health:
            self._refresh_health()
            self._next_health = now + self.health_seconds
        if now >= self._next_sweep:
            self._sweep()
            self._next_sweep = now + self.sweep_seconds
        if self.state != "ready":
            self._wait(1.0)  # no network: texts wait in the outbox, unspent
            self._next_health = 0.0
            return
        row = outbox.claim(self.name, self.branch_id, self.lease_seconds)
        if row is None:
            self._idle()
            return
        self._send(row)

    def _idle(self):
        try:
            lines = self.notifications.get(timeout=0.5)
        except queue.Empty:
            return
        if lines is not None:
            self._handle(lines)

    def _send(self, row) -> None:
        try:
            references = self._command(lambda m: m.send_text(row["to"], row["body"], row["parts"] or 1))
        except SendRejected as error:
            self._rejected(row, error)
            return
        except Exception as error:  # noqa: BLE001  (a lost port, or an answer the library misread)
            # The modem may or may not have sent it: queue it again, flagged, and reconnect.
            outbox.retry_later(row["id"], self.name, f"{type(error).__name__}: {error}", delay_seconds=0,
                               ambiguous=True)
            if isinstance(error, ModemUnavailable):
                raise
            raise ModemUnavailable(f"the modem's answer could not be understood: {error!r}") from error
        outbox.mark_sent(row["id"], self.name, references)
        self.sent_total += 1
        log.info("%s: outbox %s sent to %s (%s)", self.name, row["id"], masked(row["to"]), references)

    def _rejected(self, row, error: SendRejected):
        if error.permanent:
            outbox.fail(row["id"], self.name, error.reason)
            log.warning("%s: outbox %s failed for good: %s", self.name, row["id"], error.reason)
        elif error.code in modem_io.NETWORK_CMS:
            outbox.retry_later(row["id"], self.name, error.reason, delay_seconds=0, ambiguous=error.ambiguous,
                               counts=False)
            self.state = "no_network"
            self._next_health = 0.0
        else:
            status = outbox.retry_later(row["id"], self.name, error.reason, ambiguous=error.ambiguous,
                                        delay_seconds=outbox.backoff_seconds(row["attempts"]))
            log.warning("%s: outbox %s refused (%s): %s", self.name, row["id"], error.reason, status)

    # --- notifications, sweeps, status reports -----------------------------------------------

    def _drain_notifications(self):
        while True:
            try:
                lines = self.notifications.get_nowait()
            except queue.Empty:
                return
            if lines is not None:
                self._handle(lines)

    def _handle(self, lines):
        for line in lines:
            if self._cds_pending and HEX.match(line):
                self._cds_pending = False
                self._report_from_pdu(line)
            elif match := CMTI.match(line):
                self._receive(match.group(1), int(match.group(2)))
            elif match := CDSI.match(line):
                self._stored_report(match.group(1), int(match.group(2)))
            elif CDS.match(line):
                self._cds_pending = True

    def _receive(self, memory, index):
        decoded = self._command(lambda m: m.read(index, memory))
        self._store(decoded)
        self._command(lambda m: m.delete(index, memory))  # only after the inbox row is committed

    def _store(self, decoded):
        if decoded.get("type") != "SMS-DELIVER":
            return
        inbox.store_received(
            decoded["number"], decoded.get("text", ""), decoded.get("time"),
            concatenation=modem_io.concatenation_of(decoded), branch_id=self.branch_id, gateway=self.name,
        )

    def _stored_report(self, memory, index):
        decoded = self._command(lambda m: m.read(index, memory))
        self._apply_report(decoded)
        self._command(lambda m: m.delete(index, memory))

    def _report_from_pdu(self, pdu):
        try:
            self._apply_report(modem_io.decodeSmsPdu(pdu))
        except modem_io.GsmModemException:
            log.warning("%s: undecodable status report ignored", self.name)

    def _apply_report(self, decoded):
        if decoded.get("type") == "SMS-STATUS-REPORT":
            outbox.apply_status_report(self.name, decoded["reference"], decoded["status"])

    def _sweep(self):
        """Read everything stored on the modem: texts whose +CMTI the library swallowed, status
        reports whose +CDSI it did, and parts that waited too long to be joined."""
        for memory in ("ME", "SR"):
            for index, decoded in self._command(lambda m: m.stored(memory)):
                if decoded.get("type") == "SMS-DELIVER":
                    self._store(decoded)
                else:
                    self._apply_report(decoded)
                self._command(lambda m: m.delete(index, memory))
        inbox.join_stale_parts()

    def _refresh_health(self):
        signal = self._command(lambda m: m.signalStrength)
        registered = self._command(lambda m: m.write("AT+CREG?", parseError=False))
        status = next((l for l in registered if l.startswith("+CREG:")), "")
        on_network = bool(re.match(r"^\+CREG:\s*\d,\s*[15]\b", status))
        self.signal = signal if signal >= 0 else None
        self.network = self._command(lambda m: m.networkName) if on_network else None
        self._publish("ready" if on_network else "no_network")

    def _publish(self, state):
        self.state = state
        try:
            with write_transaction() as session:
                row = session.get(ModemStatus, self.name) or ModemStatus(gateway=self.name, port=self.port)
                row.branch_id, row.port, row.state = self.branch_id, self.port, state
                row.signal, row.network, row.last_error = self.signal, self.network, self.last_error
                row.sent_total, row.updated_at = self.sent_total, clock.now()
                session.add(row)
        except Exception:  # noqa: BLE001  (status is advisory; never stop the gateway for it)
            log.exception("%s: could not record modem status", self.name)


def from_config(app, **overrides) -> Gateway:
    config = app.config
    settings = {
        "port": config["MODEM_PORT"], "baudrate": config["MODEM_BAUDRATE"], "pin": config["MODEM_PIN"],
        "smsc": config["MODEM_SMSC"], "branch_id": config["MODEM_BRANCH_ID"],
    }
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return Gateway(app, **settings)


def current_gateway_status():
    """For /api/v1/health: what every gateway last reported."""
    from sqlalchemy import select

    from core.extensions import db

    stale_after = current_app.config["MODEM_HEALTH_SECONDS"] * 3
    now = clock.now()
    result = []
    for row in db.session.scalars(select(ModemStatus).order_by(ModemStatus.gateway)):
        fresh = (now - row.updated_at).total_seconds() <= stale_after
        result.append({"gateway": row.gateway, "branch": row.branch_id, "port": row.port,
                       "state": row.state if fresh else "silent", "signal": row.signal, "network": row.network,
                       "last_error": row.last_error, "updated_at": row.updated_at.isoformat()})
    return result
