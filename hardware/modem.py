"""python-gsmmodem with its known faults fixed where they live, and its errors mapped to ours.

- It handles unsolicited notifications (+CMTI, +CDSI) on a new thread that talks to the port
  while the owner may be in the middle of AT+CMGS: here they are queued for the owner thread.
- Its read thread dies on a byte that is not UTF-8 and on any error but SerialException,
  leaving a modem that never answers again: here bad bytes are replaced and every error ends
  the connection through the fatal-error path, so the gateway reconnects.
- It can only read stored messages through paths that lose the index or delete before the
  caller has stored them: here the owner lists, reads and deletes by index itself.
"""
from __future__ import annotations

import logging
import queue
import re

import serial
from gsmmodem.exceptions import CmsError, CommandError, GsmModemException, PinRequiredError, TimeoutException
from gsmmodem.modem import GsmModem
from gsmmodem.pdu import Concatenation, decodeSmsPdu

from .errors import ModemUnavailable, SendRejected
from .pdu import outside_bmp

log = logging.getLogger(__name__)

# +CMS ERROR codes (3GPP TS 27.005 3.2.5 and 24.011) after which the same text can never succeed.
PERMANENT_CMS = {1, 8, 10, 21, 27, 28, 29, 30, 38, 50, 69, 81, 95, 96, 97, 98, 99, 111, 127, 301, 302,
                 303, 304, 305, 325}
# Network not there right now: wait for it, the text has not been spent.
NETWORK_CMS = {41, 42, 47, 331, 332}
CMGL_LINE = re.compile(r"^\+CMGL:\s*(\d+),\s*(\d+),")
# Unsolicited result codes: never part of a command's answer, even when they arrive during one.
UNSOLICITED = re.compile(r"^\+(CMTI|CDSI|CDS|CMT|CBM|CUSD):")


class SeedModem(GsmModem):
    def __init__(self, port: str, baudrate: int, notifications: queue.Queue):
        # The callbacks only make the library enable +CNMI; notifications never reach them (below).
        super().__init__(port, baudrate, smsReceivedCallbackFunc=_never, smsStatusReportCallback=_never,
                         requestDelivery=True)
        self.notifications = notifications
        self._unsolicited_pdu_follows, self._unsolicited_head = False, ""
        self.fatal_error: Exception | None = None
        self.fatalErrorCallback = self._on_fatal_error

    def connect(self, pin=None, waitingForModemToStartInSeconds=0):
        # A program that died after AT+CMGS leaves the modem waiting for the rest of a PDU, where
        # our ATZ would vanish: ESC ends that wait (and is harmless otherwise).
        with serial.Serial(self.port, self.baudrate, timeout=0.3) as port:
            port.write(b"\x1b\r")
            port.read(64)
        super().connect(pin=pin, waitingForModemToStartInSeconds=waitingForModemToStartInSeconds)

    def _handleModemNotification(self, lines):
        self.notifications.put(list(lines))

    def _handleLineRead(self, line, checkForResponseTerm=True):
        # The library files a +CMTI that arrives while a command runs under that command's
        # answer, where it is lost and breaks the answer's parsing. Route it to the owner instead.
        if self._unsolicited_pdu_follows:
            self._unsolicited_pdu_follows = False
            self.notifications.put([self._unsolicited_head, line])
            return
        if checkForResponseTerm and self._responseEvent is not None and UNSOLICITED.match(line):
            if line.startswith(("+CDS:", "+CMT:", "+CBM:")):  # the PDU comes on the next line
                self._unsolicited_head, self._unsolicited_pdu_follows = line, True
            else:
                self.notifications.put([line])
            return
        super()._handleLineRead(line, checkForResponseTerm)

    @property
    def smsEncoding(self):
        return self._smsEncoding

    @smsEncoding.setter
    def smsEncoding(self, encoding):
        # The library's setter queries the modem's charset list first and raises on any answer it
        # did not expect; a plain AT+CSCS does the job.
        if encoding != self._smsEncoding:
            self.write(f'AT+CSCS="{encoding}"')
            self._smsEncoding = encoding

    def _on_fatal_error(self, error):
        self.fatal_error = error
        self.alive = False
        self.notifications.put(None)  # wake the owner

    def _readLoop(self):
        terminator = self.RX_EOL_SEQ
        buffer = bytearray()
        try:
            while self.alive:
                # Whatever is waiting, at least one byte: the library reads one byte per call.
                data = self.serial.read(max(1, self.serial.in_waiting))
                for byte in data:
                    buffer.append(byte)
                    if buffer.endswith(terminator):
                        line = buffer[: -len(terminator)].decode("utf-8", errors="replace")
                        buffer = bytearray()
                        if line:
                            self._handleLineRead(line)
                    elif self._expectResponseTermSeq and buffer.endswith(self._expectResponseTermSeq):
                        line = buffer.decode("utf-8", errors="replace")
                        buffer = bytearray()
                        self._handleLineRead(line, checkForResponseTerm=False)
        except Exception as error:  # noqa: BLE001  (any failure here means the port is unusable)
            self.alive = False
            try:
                self.serial.close()
            except Exception:  # noqa: BLE001
                pass
            self.fatalErrorCallback(error)

    # --- stored messages, by index, for the owner thread ---------------------------------------

    def stored(self, memory: str) -> list[tuple[int, dict]]:
        """Every message in `memory` as (index, decoded PDU); undecodable ones are logged and kept."""
        self._setSmsMemory(readDelete=memory)
        lines = self.write("AT+CMGL=4", timeout=20)
        result, index = [], None
        for line in lines:
            match = CMGL_LINE.match(line)
            if match:
                index = int(match.group(1))
            elif index is not None:
                try:
                    result.append((index, decodeSmsPdu(line)))
                except GsmModemException:
                    log.warning("stored message %s in %s cannot be decoded; left on the modem", index, memory)
                index = None
        return result

    def read(self, index: int, memory: str) -> dict:
        self._setSmsMemory(readDelete=memory)
        lines = self.write(f"AT+CMGR={index}")
        return decodeSmsPdu(lines[1])

    def delete(self, index: int, memory: str) -> None:
        self._setSmsMemory(readDelete=memory)
        self.write(f"AT+CMGD={index},0")

    # --- sending --------------------------------------------------------------------------------

    def send_text(self, number: str, text: str, parts: int) -> list[int]:
        """Send one text (several parts if long); the TP-MR of each part, in order."""
        strange = outside_bmp(text)
        if strange:
            raise SendRejected("Text messages cannot carry emoji or characters outside Unicode's basic plane: "
                               + " ".join(strange[:5]), permanent=True)
        try:
            sms = self.sendSms(number, text)
        except CmsError as error:
            code = getattr(error, "code", None)
            if code in NETWORK_CMS:
                raise SendRejected(f"No network (+CMS ERROR: {code}).", code=code, ambiguous=parts > 1) from error
            raise SendRejected(f"The modem refused the text (+CMS ERROR: {code}).", code=code,
                               permanent=code in PERMANENT_CMS, ambiguous=parts > 1) from error
        except (TimeoutException, serial.SerialException, OSError) as error:
            raise ModemUnavailable(f"The modem stopped answering while sending: {type(error).__name__}") from error
        except CommandError as error:
            raise SendRejected(f"The modem refused the text: {error}", ambiguous=parts > 1) from error
        last = sms.reference
        # The modem numbers each part in turn; python-gsmmodem only tells us the last one.
        return [(last - parts + 1 + i) % 256 for i in range(parts)]


def concatenation_of(decoded: dict):
    """(reference, total, sequence) of a received part, or None for a single text."""
    for element in decoded.get("udh") or []:
        if isinstance(element, Concatenation):
            return element.reference, element.parts, element.number
    return None


def connect(port: str, baudrate: int, pin: str | None, notifications: queue.Queue) -> SeedModem:
    """Open the port and set the modem up, or raise ModemUnavailable saying why not."""
    modem = SeedModem(port, baudrate, notifications)
    try:
        modem.connect(pin=pin)
    except PinRequiredError as error:
        _close_quietly(modem)
        raise ModemUnavailable("The SIM needs a PIN: set MODEM_PIN (or --pin).") from error
    except CommandError as error:
        _close_quietly(modem)
        raise ModemUnavailable(f"The modem refused its setup: {error}") from error
    except (TimeoutException, serial.SerialException, OSError) as error:
        _close_quietly(modem)
        raise ModemUnavailable(f"No modem answering on {port}: {type(error).__name__}: {error}") from error
    return modem


def _close_quietly(modem: GsmModem) -> None:
    try:
        if getattr(modem, "rxThread", None) is not None:
            modem.close()
        elif getattr(modem, "serial", None) is not None:
            modem.serial.close()
    except Exception:  # noqa: BLE001  (closing a broken port may fail in many ways)
        pass


def close(modem: GsmModem) -> None:
    _close_quietly(modem)


def _never(*_args, **_kwargs):  # pragma: no cover - notifications are queued, never delivered here
    raise AssertionError("notifications are handled by the gateway's owner thread")
