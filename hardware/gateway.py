"""The modem gateway: the only code that touches the serial port, from one owner thread.

It connects (PIN, network), sends due outbox rows at the modem's rate, stores received texts in
the inbox before deleting them from the modem, applies status reports, sweeps the memories the
modem has for notifications the library lost, publishes its state, and reconnects with backoff
when the port fails, finding the modem again by its IMEI when it comes back on another port.

Nothing received can stop it: a text that cannot be decoded, stored or handled is quarantined,
raw, and deleted from the modem. A SIM that refused the PIN is never offered it again. A modem
that fails three sends in a row is set aside for a while, so that other gateways take over.

The port and the PIN follow the branch's modem settings when its manager set them in the browser
(gateway_settings.py): a change makes the gateway close the port and connect again.
"""
from __future__ import annotations

import hashlib
import logging
import queue
import re
import threading
import time
from datetime import timedelta

from core import clock
from core.database import write_transaction
from core.extensions import db
from messaging import inbox, outbox
from messaging.models import ModemStatus
from messaging.modem_report import SIM_PROBLEMS
from messaging.phones import masked
from messaging.signals import outbox_queued

from . import modem as modem_io
from . import ports
from .errors import ModemUnavailable, SendRejected, SimProblem
from .gateway_settings import LIBRARY_LOGS, NO_PIN, FollowsSettings

log = logging.getLogger(__name__)

CMTI = re.compile(r'^\+CMTI:\s*"([^"]+)",\s*(\d+)')
CDSI = re.compile(r'^\+CDSI:\s*"([^"]+)",\s*(\d+)')
CDS = re.compile(r"^\+CDS:\s*(\d+)")
HEX = re.compile(r"^[0-9A-Fa-f]+$")


def gateway_id(port: str, branch_id=None) -> str:
    """A short, stable name for the gateway of a configured port, whatever the port's length: it
    names leases and sent texts in the outbox, so it must not change when the modem moves."""
    return f"gw-{branch_id or 'all'}-{hashlib.sha1(str(port).encode()).hexdigest()[:10]}"


class Gateway(FollowsSettings):
    def __init__(self, app, *, port: str, baudrate=115200, pin=None, smsc=None, branch_id=None, name=None,
                 rate_per_minute=None):
        self.app = app
        self.baudrate, self.smsc = baudrate, smsc
        self._init_settings(port, pin)  # sets configured_port, port, expected_imei, pin
        self.branch_id = branch_id
        self.name = name or gateway_id(port, branch_id)  # kept when the settings move the port
        config = app.config
        self.sweep_seconds = config["MODEM_SWEEP_SECONDS"]
        self.health_seconds = config["MODEM_HEALTH_SECONDS"]
        self.lease_seconds = config["OUTBOX_LEASE_SECONDS"]
        self.backoff_max = config["MODEM_RECONNECT_MAX_SECONDS"]
        rate = config.get("MODEM_RATE_PER_MINUTE", 0) if rate_per_minute is None else rate_per_minute
        self.part_interval = 60.0 / rate if rate else 0.0
        self.cooldown_seconds = config.get("MODEM_COOLDOWN_SECONDS", 300)
        self.failures_before_cooling = config.get("MODEM_FAILURES_BEFORE_COOLING", 3)
        self.search_paths = config.get("MODEM_SEARCH_PATHS", ports.DEFAULT_SEARCH)
        self.notifications: queue.Queue = queue.Queue()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.modem: modem_io.SeedModem | None = None
        self.thread: threading.Thread | None = None
        self.state = "disconnected"
        self.signal = self.network = self.last_error = None
        self.imei = self.imsi = None
        self.memories: list[str] = []
        self.sent_total = 0
        self.connections = 0
        self.failed_in_a_row = 0
        self.cooling_until = None  # monotonic
        self.losses: list[float] = []  # monotonic times the connection was lost (last hour)
        self._next_send = 0.0
        self._cds_pending = False
        self._next_sweep = self._next_health = 0.0

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Gateway:
        for name in LIBRARY_LOGS:
            logging.getLogger(name).addFilter(NO_PIN)  # once: a filter already there is not added again
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
            self._remember()
            released = outbox.release_leases(self.name)
            if released:
                log.warning("%s: %d text(s) in flight when the last run stopped are queued again", self.name, released)
            delay = 1.0
            while not self.stopping.is_set():
                if self._follow_settings():
                    delay = 1.0  # new settings are tried at once
                if self.modem is None:
                    if not self._connect():
                        delay = 1.0 if self._pause(delay) else min(delay * 2, self.backoff_max)
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

    def _wait(self, seconds) -> bool:
        """Sleep, unless a text is queued meanwhile; whether one was."""
        woken = self.wake.wait(seconds)
        self.wake.clear()
        return woken

    def _pause(self, seconds) -> bool:
        """Wait before connecting again, but no longer than until a text is queued or the
        branch's settings change (a new PIN is tried at once). Whether the settings changed."""
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._wait(min(left, self.settings_seconds)):
                return False
            if self._follow_settings():
                return True
        return False

    # --- connection ---------------------------------------------------------------------------

    def _remember(self):
        """What an earlier run learnt: the modem's IMEI (to find it again) and the PINs the SIM refused."""
        try:
            row = db.session.get(ModemStatus, self.name)
            if row is not None:
                self.imei, self.imsi = row.imei, row.imsi
                self._refused_from(row.refused_pin)
            db.session.rollback()
        except Exception:  # noqa: BLE001  (advisory: a gateway without its memory still works)
            log.exception("%s: could not read its last status", self.name)

    def _connect(self) -> bool:
        if self.state not in SIM_PROBLEMS:  # a SIM that stops us stays said until it no longer does
            self._publish("connecting")
        port = self._find_port()
        if port is None:
            self.last_error = (f"No modem with IMEI {self.expected_imei or self.imei} on any serial port."
                               if (self.expected_imei or self.imei) else f"No device at {self.configured_port}.")
            log.warning("%s: %s", self.name, self.last_error)
            self._publish("disconnected")
            return False
        try:
            # the modem layer refuses to send a PIN whose fingerprint it is given
            refused = modem_io.pin_fingerprint(self.pin) if self._was_refused(self.pin) else None
            modem = modem_io.connect(port, self.baudrate, self.pin, self.notifications, refused)
            if self.smsc:
                modem.smsc = self.smsc
        except SimProblem as problem:
            self.last_error = problem.reason
            if problem.state == "pin_rejected" and self.pin:
                self._refused(self.pin)
            log.error("%s: %s", self.name, problem.reason)
            self._publish(problem.state)
            return False
        except ModemUnavailable as error:
            self.last_error = str(error)
            log.warning("%s: %s", self.name, error)
            self._publish("disconnected")
            return False
        known = self.expected_imei or self.imei
        if known and modem.found_imei and modem.found_imei != known and port == self.port and self.expected_imei:
            modem_io.close(modem)  # another modem took the configured port: look for ours
            self.port = None
            return False
        self.modem, self.port = modem, port
        self.imei, self.imsi, self.memories = modem.found_imei or self.imei, modem.found_imsi or self.imsi, modem.memories
        self.connections += 1
        self.last_error = None
        self._next_sweep = 0.0  # whatever arrived while we were away is read now
        self._next_health = 0.0
        log.info("%s: modem ready on %s (memories %s)", self.name, port, ",".join(self.memories) or "none")
        return True

    def _find_port(self) -> str | None:
        """The configured port while it exists; else the port where the modem we know answers."""
        if self.port and ports.exists(self.port):
            return self.port
        if not self.expected_imei and ports.exists(self.configured_port):
            return self.configured_port
        imei = self.expected_imei or self.imei
        if not imei:
            return None
        found = ports.find_by_imei(imei, self.search_paths, self.baudrate)
        if found:
            log.warning("%s: the modem (IMEI %s) is now on %s", self.name, imei, found)
        return found

    def _disconnect(self, reason: str, state="disconnected") -> None:
        if self.modem is not None:
            modem_io.close(self.modem)
            self.modem = None
            if reason != "stopped":
                self.losses = [t for t in self.losses if t > time.monotonic() - 3600] + [time.monotonic()]
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
        if self.cooling_until is not None:
            if now < self.cooling_until:
                self._idle()  # set aside: other gateways send meanwhile; received texts still come in
                return
            self.cooling_until, self.failed_in_a_row = None, 0
            self._next_health = 0.0
            return
        if self.state != "ready":
            self._wait(1.0)  # no network: texts wait in the outbox, unspent
            self._next_health = 0.0
            return
        if now < self._next_send:
            self._idle(min(self._next_send - now, 0.5))  # the modem's rate: carriers block bursts
            return
        row = outbox.claim(self.name, self.branch_id, self.lease_seconds)
        if row is None:
            self._idle()
            return
        self._send(row)

    def _idle(self, seconds=0.5):
        try:
            lines = self.notifications.get(timeout=seconds)
        except queue.Empty:
            return
        if lines is not None:
            self._handle(lines)

    def _send(self, row) -> None:
        try:
            self._send_now(row)
        finally:
            self._next_send = max(self._next_send, time.monotonic() + self.part_interval * (row["parts"] or 1))

    def _send_now(self, row) -> None:
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
        if self.failed_in_a_row:
            self.failed_in_a_row = 0
            self._publish(self.state)
        log.info("%s: outbox %s sent to %s (%s)", self.name, row["id"], masked(row["to"]), references)

    def _rejected(self, row, error: SendRejected):
        if error.code not in modem_io.NETWORK_CMS:
            self._count_failure()
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

    def _count_failure(self):
        """Three refusals in a row: this modem (its SIM, its credit, its carrier) is set aside for
        a while, and the texts it could not send go to the other gateways."""
        self.failed_in_a_row += 1
        if self.failed_in_a_row >= self.failures_before_cooling:
            self.cooling_until = time.monotonic() + self.cooldown_seconds
            self.last_error = (f"{self.failed_in_a_row} sends failed in a row: set aside for "
                               f"{self.cooldown_seconds} s while other modems send")
            log.warning("%s: %s", self.name, self.last_error)
            self._publish("cooling")
        else:
            self._publish(self.state)

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
        pdu = self._command(lambda m: m.read(index, memory))
        if pdu is not None:  # an empty slot: a notification for a text the sweep already took
            self._take(memory, index, pdu)

    def _stored_report(self, memory, index):
        self._receive(memory, index)

    def _take(self, memory, index, pdu) -> None:
        """Store (or apply) one stored message, then delete it from the modem. Whatever goes
        wrong with the message itself, it is quarantined and deleted: it cannot stop the loop."""
        slot = inbox.slot_key(self.name, memory, index, pdu)
        stored = False
        try:
            decoded = modem_io.decode_received(pdu)
            if decoded.get("type") == "SMS-DELIVER":
                stored = True
                inbox.store_received(
                    decoded["number"], decoded.get("text", ""), decoded.get("time"),
                    concatenation=modem_io.concatenation_of(decoded), branch_id=self.branch_id, gateway=self.name,
                    slot=slot, surrogates=decoded.get("surrogates"),
                )
            else:
                self._apply_report(decoded)
        except ModemUnavailable:
            raise
        except Exception as error:  # noqa: BLE001  (a poison text: keep it raw, never loop on it)
            log.exception("%s: message %s in %s could not be stored", self.name, index, memory)
            try:
                inbox.quarantine(pdu, f"{type(error).__name__}: {error}", gateway=self.name, memory=memory,
                                 sender=_sender_of(pdu), branch_id=self.branch_id)
            except Exception:  # noqa: BLE001  (the database itself is down: leave it on the modem)
                log.exception("%s: could not quarantine message %s in %s; left on the modem", self.name, index,
                              memory)
                return
        self._command(lambda m: m.delete(index, memory))  # only after the inbox row is committed
        if stored:  # status reports and quarantined texts hold no slot key
            inbox.release_slot(slot)

    def _report_from_pdu(self, pdu):
        try:
            self._apply_report(modem_io.decodeSmsPdu(pdu))
        except modem_io.GsmModemException:
            log.warning("%s: undecodable status report ignored", self.name)

    def _apply_report(self, decoded):
        if decoded.get("type") == "SMS-STATUS-REPORT":
            outbox.apply_status_report(self.name, decoded["reference"], decoded["status"])

    def _sweep(self):
        """Read everything stored on the modem, in the memories it has: texts whose +CMTI the
        library swallowed, status reports whose +CDSI it did, and parts that waited too long."""
        for memory in list(self.memories):
            try:
                stored = self._command(lambda m: m.stored(memory))
            except modem_io.CommandError as error:  # this modem cannot list that memory after all
                log.warning("%s: memory %s cannot be read (%s); not swept again", self.name, memory, error)
                self.memories.remove(memory)
                continue
            for index, pdu in stored:
                self._take(memory, index, pdu)
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
        if self.cooling_until is not None and state in ("ready", "no_network"):
            state = "cooling"
        self.state = "ready" if state == "cooling" else state
        now = clock.now()
        cooling_until = (now + timedelta(seconds=self.cooling_until - time.monotonic())
                         if self.cooling_until is not None else None)
        try:
            with write_transaction() as session:
                row = session.get(ModemStatus, self.name) or ModemStatus(gateway=self.name, port=self.port or "")
                if row.state_since is None or (row.state == "ready") != (state == "ready"):
                    row.state_since = now  # ready, or not ready, since: retries do not restart the clock
                row.branch_id, row.port, row.state = self.branch_id, self.port or self.configured_port, state
                row.signal, row.network, row.last_error = self.signal, self.network, (self.last_error or None) and self.last_error[:300]
                row.sent_total, row.updated_at = self.sent_total, now
                row.failed_in_a_row, row.cooling_until = self.failed_in_a_row, cooling_until
                row.reconnects = len([t for t in self.losses if t > time.monotonic() - 3600])
                row.imei, row.imsi = self.imei, self.imsi
                row.refused_pin = self._refused_to_store()
                session.add(row)
        except Exception:  # noqa: BLE001  (status is advisory; never stop the gateway for it)
            log.exception("%s: could not record modem status", self.name)


def _sender_of(pdu: str) -> str | None:
    """The sender of a PDU the library cannot decode, if its address at least can be read."""
    try:
        data = bytes.fromhex(pdu)
        at = data[0] + 2
        digits, kind = data[at], data[at + 1]
        nibbles = data[at + 2: at + 2 + (digits + 1) // 2].hex()
        number = "".join(nibbles[i + 1] + nibbles[i] for i in range(0, len(nibbles), 2))[:digits]
        return ("+" if kind & 0x70 == 0x10 else "") + number if number.isdigit() else None
    except (ValueError, IndexError):
        return None


def settings_of(app, **overrides) -> dict:
    """The gateway's settings: the process's configuration, then what the command line gave."""
    config = app.config
    settings = {
        "port": config["MODEM_PORT"], "baudrate": config["MODEM_BAUDRATE"], "pin": config["MODEM_PIN"],
        "smsc": config["MODEM_SMSC"], "branch_id": config["MODEM_BRANCH_ID"], "name": config.get("MODEM_NAME"),
    }
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return settings


def from_config(app, **overrides) -> Gateway:
    return Gateway(app, **settings_of(app, **overrides))
