"""What the gateway takes from the branch's modem settings (core/settings/modem.py), and the
PINs the SIM refused. A mixin of hardware.gateway.Gateway, in its owner thread.

The port and the PIN come from the process's configuration unless the manager of the branch the
gateway serves set them in the browser: the gateway reads those before it first connects and then,
every few seconds, their version (one primary-key read); when it changes, it closes the port and
connects again with the new values. Texts wait in the outbox meanwhile; a text being sent is sent
first (the check runs between two turns of the loop). A PIN the SIM refused is never sent again,
whoever typed it; a new one is tried once.
"""
from __future__ import annotations

import logging
import re
import time

from sqlalchemy import select

from core.extensions import db
from core.models import Branch, ModemSetting

from . import modem as modem_io

log = logging.getLogger("hardware.gateway")

SETTINGS_CHECK_SECONDS = 2.0  # how soon a port or PIN saved in the browser is picked up
# A SIM locks after three wrong PINs, so three refused PINs are all worth remembering; each is kept
# as a short fingerprint so that three fit in modem_status.refused_pin (64 characters).
REFUSED_PINS_KEPT = 3
FINGERPRINT_LENGTH = 20


class _NoPin(logging.Filter):
    """python-gsmmodem logs every command it writes and every line it reads at DEBUG: the PIN's
    AT+CPIN="…" too. The PIN is never logged, at any level."""

    SENT = re.compile(r'(AT\+CPIN=)"[^"]*"(?:,"[^"]*")?')

    def filter(self, record) -> bool:
        message = record.getMessage()
        if "CPIN=" in message:
            record.msg, record.args = self.SENT.sub(r'\1"…"', message), None
        return True


NO_PIN = _NoPin()
LIBRARY_LOGS = ("gsmmodem.modem.GsmModem", "gsmmodem.serial_comms.SerialComms")


class FollowsSettings:
    """Needs of its host: branch_id, name, modem, imei, imsi, cooling_until, failed_in_a_row and
    _publish()."""

    def _init_settings(self, port: str, pin: str | None) -> None:
        # The process's own port and PIN: what applies while the branch's settings leave them empty.
        self.own_port, self.own_pin = port, pin
        self._use_port(port)
        self.pin = pin
        self.settings_version = 0  # of the branch's modem settings applied; 0: none (no row)
        self.settings_seconds = SETTINGS_CHECK_SECONDS
        self._next_settings_check = 0.0
        self._settings_read = False
        self.refused_pins: list[str] = []  # fingerprints of PINs the SIM refused: never sent again

    def _follow_settings(self) -> bool:
        """At most every settings_seconds, one primary-key read of the branch's modem settings;
        when their version is not the one applied, apply them. Whether they changed."""
        now = time.monotonic()
        if now < self._next_settings_check:
            return False
        self._next_settings_check = now + self.settings_seconds
        try:
            found = self._read_settings()
        except Exception:  # noqa: BLE001  (the database may be away: keep the settings we have)
            log.exception("%s: could not read the branch's modem settings", self.name)
            return False
        first, self._settings_read = not self._settings_read, True
        if (found.version if found else 0) == self.settings_version:
            return False
        self._apply_settings(found, first)
        return True

    def _settings_branch(self):
        """The branch whose settings this gateway follows: the one it serves; a gateway serving
        every branch (the embedded default) follows the only branch while there is just one."""
        if self.branch_id is not None:
            return self.branch_id
        only = db.session.scalars(select(Branch.id).order_by(Branch.id).limit(2)).all()
        return only[0] if len(only) == 1 else None

    def _read_settings(self):
        try:
            branch_id = self._settings_branch()
            if branch_id is None:
                return None
            return db.session.execute(select(ModemSetting.version, ModemSetting.port, ModemSetting.pin)
                                      .where(ModemSetting.branch_id == branch_id)).first()
        finally:
            db.session.rollback()  # no read transaction stays open in the owner thread

    def _apply_settings(self, found, first: bool) -> None:
        """Use the settings' port and PIN (or the process's where they are empty); if connected,
        close the port: the loop connects again with them. The PIN is never logged."""
        self.settings_version = found.version if found else 0
        port = (found.port if found else None) or self.own_port
        self.pin = (found.pin if found else None) or self.own_pin
        if port != self.configured_port:
            self._use_port(port)
            if not first:  # another modem, perhaps: the one we knew is no longer looked for
                self.imei = self.imsi = None
                self.cooling_until, self.failed_in_a_row = None, 0
        if first and self.modem is None:
            return
        log.warning("%s: modem settings changed (version %s): connecting again on %s", self.name,
                    self.settings_version, self.configured_port)
        if self.modem is not None:
            modem_io.close(self.modem)  # on purpose: not counted as a lost connection
            self.modem = None
        self._publish("connecting")

    def _use_port(self, port):
        self.configured_port = port  # a device path, a /dev/serial/by-id path, or "imei:<IMEI>"
        self.expected_imei = port[5:] if str(port).startswith("imei:") else None
        self.port = None if self.expected_imei else port

    def _was_refused(self, pin) -> bool:
        return bool(pin) and modem_io.pin_fingerprint(pin)[:FINGERPRINT_LENGTH] in self.refused_pins

    def _refused(self, pin) -> None:
        fingerprint = modem_io.pin_fingerprint(pin)[:FINGERPRINT_LENGTH]
        kept = [other for other in self.refused_pins if other != fingerprint]
        self.refused_pins = (kept + [fingerprint])[-REFUSED_PINS_KEPT:]

    def _refused_from(self, stored: str | None) -> None:
        """The refused PINs modem_status kept (an older release kept one whole fingerprint: its
        start is as good)."""
        self.refused_pins = [kept[:FINGERPRINT_LENGTH] for kept in (stored or "").split()]

    def _refused_to_store(self) -> str | None:
        return " ".join(self.refused_pins) or None
