"""python-gsmmodem with its known faults fixed where they live, and its errors mapped to ours.

- It handles unsolicited notifications (+CMTI, +CDSI) on a new thread that talks to the port
  while the owner may be in the middle of AT+CMGS: here they are queued for the owner thread.
- Its read thread dies on a byte that is not UTF-8 and on any error but SerialException,
  leaving a modem that never answers again: here bad bytes are replaced and every error ends
  the connection through the fatal-error path, so the gateway reconnects.
- It can only read stored messages through paths that lose the index or delete before the
  caller has stored them: here the owner lists, reads and deletes by index itself, in the
  memories the modem says it has (AT+CPMS=?), and an empty slot (+CMS ERROR: 321) is no error.
- It understands numeric error codes only: verbose ones ("+CMS ERROR: invalid memory index")
  are mapped to their numbers here.
- It sends the configured PIN whenever the SIM asks: here a PIN the SIM refused is never sent
  again (a SIM locks after three), and a SIM that needs its PUK or is missing is said so.
- It decodes a UCS-2 emoji as two lone UTF-16 halves and drops a GSM-7 '@' that ends on an
  octet boundary: decode_received() mends both.
"""
from __future__ import annotations

import hashlib
import logging
import queue
import re
import time

import serial
from gsmmodem.exceptions import (CmeError, CmsError, CommandError, GsmModemException, PinRequiredError,
                                 TimeoutException)
from gsmmodem.modem import GsmModem
from gsmmodem.pdu import Concatenation, decodeSmsPdu, encodeGsm7

from messaging.inbox import whole_characters

from . import ports
from .at_codes import code_of
from .errors import ModemUnavailable, SendRejected, SimProblem
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
EMPTY_SLOT = 321  # +CMS ERROR: invalid memory index: nothing stored there
ERROR_LINE = re.compile(r"^\+(CM[ES]) ERROR:\s*(.*)$")
RECEIVED_MEMORIES = ("SM", "ME")  # where received texts may be stored ("MT" is these two together)


def error_of(line: str) -> tuple[str, int | None] | None:
    """("CME"|"CMS", code) of an error answer in numeric or verbose form; (None, None) for a bare
    ERROR; None when the line is no error."""
    match = ERROR_LINE.match(line.strip())
    if match:
        return match.group(1), code_of(match.group(1), match.group(2).strip().strip('"'))
    if "ERROR" in line or line.strip() == "COMMAND NOT SUPPORT":
        return None, None
    return None


def pin_fingerprint(pin: str | None) -> str | None:
    """What is kept of a refused PIN: enough to recognise it, not to read it back."""
    return hashlib.sha256(f"seed-pin:{pin}".encode()).hexdigest() if pin else None


def decode_received(pdu: str) -> dict:
    """decodeSmsPdu, mended: emoji whole (lone halves kept in 'surrogates' for the join of a
    multipart text) and a final GSM-7 '@' kept."""
    decoded = decodeSmsPdu(pdu)
    if decoded.get("type") != "SMS-DELIVER":
        return decoded
    text = decoded.get("text") or ""
    if _gsm7_septets_short(pdu, decoded, text):
        text += "@"
    decoded["text"], decoded["surrogates"] = whole_characters(text)
    return decoded


def _gsm7_septets_short(pdu: str, decoded: dict, text: str) -> bool:
    """python-gsmmodem drops a last septet of 0 ('@') when it fills an octet boundary."""
    data = bytes.fromhex(pdu)
    at = data[0] + 1  # SMSC address
    first = data[at]
    at += 1
    at += 2 + (data[at] + 1) // 2  # originating address: length in digits, type, digits
    dcs = data[at + 1]
    at += 2 + 7  # PID, DCS, timestamp
    udl = data[at]
    if dcs & 0xEC != 0x00 and dcs & 0xF4 != 0xF0:  # not the GSM-7 default alphabet
        return False
    header = 0
    if first & 0x40:
        udhl = data[at + 1]
        header = -(-(udhl + 1) * 8 // 7)
    try:
        septets = len(encodeGsm7(text))
    except ValueError:
        return False
    return septets == udl - header - 1


class SeedModem(GsmModem):
    def __init__(self, port: str, baudrate: int, notifications: queue.Queue, refused_pin: str | None = None):
        # The callbacks only make the library enable +CNMI; notifications never reach them (below).
        # exclusive: the port is locked while we hold it, so a search for a moved modem skips it.
        super().__init__(port, baudrate, smsReceivedCallbackFunc=_never, smsStatusReportCallback=_never,
                         requestDelivery=True, exclusive=True)
        self.notifications = notifications
        self.refused_pin = refused_pin  # fingerprint of a PIN this SIM refused before
        self._unsolicited_pdu_follows, self._unsolicited_head = False, ""
        self.fatal_error: Exception | None = None
        self.fatalErrorCallback = self._on_fatal_error
        self.memories: list[str] = []
        self.found_imei = self.found_imsi = None  # the library has imei/imsi properties that ask each time
        self.parts_sent = 0

    def connect(self, pin=None, waitingForModemToStartInSeconds=0):
        # A program that died after AT+CMGS leaves the modem waiting for the rest of a PDU, where
        # our ATZ would vanish: ESC ends that wait (and is harmless otherwise).
        with ports.opened(self.port, self.baudrate, timeout=0.3, exclusive=True) as port:
            port.write(b"\x1b\r")
            port.read(64)
        super().connect(pin=pin, waitingForModemToStartInSeconds=waitingForModemToStartInSeconds)
        self.found_imei = _answer(self.write("AT+CGSN", parseError=False), r"^\+?(?:CGSN:\s*)?\"?(\d{14,16})")
        self.found_imsi = _answer(self.write("AT+CIMI", parseError=False), r"^\+?(?:CIMI:\s*)?\"?(\d{6,15})")
        self.memories = self._memories_offered()

    def _memories_offered(self) -> list[str]:
        """The memories AT+CPMS=? offers for reading and deleting, in the order we sweep them."""
        answer = " ".join(self.write("AT+CPMS=?", parseError=False))
        first = re.search(r"\(([^()]*)\)", answer)
        offered = set(re.findall(r'"([A-Z]{2})"', first.group(1) if first else answer))
        return [m for m in (*RECEIVED_MEMORIES, "SR") if m in offered]

    def write(self, data, waitForResponse=True, timeout=10, parseError=True, writeTerm="\r",
              expectedResponseTermSeq=None):
        lines = super().write(data, waitForResponse, timeout, False, writeTerm, expectedResponseTermSeq)
        if not (waitForResponse and parseError) or not lines:
            return lines
        error = error_of(lines[-1])
        if error is None:
            return lines
        kind, code = error
        if code in (14, 314, 515):  # SIM busy, or the modem still starting: once more, a little later
            time.sleep(0.5)
            return super().write(data, waitForResponse, timeout, True, writeTerm, expectedResponseTermSeq)
        if kind == "CME" and code is not None:
            raise CmeError(data, code)
        if kind == "CMS" and code is not None:
            raise CmsError(data, code)
        raise CommandError(f"{data} ({lines[-1].strip()})")

    def _unlockSim(self, pin):
        """Send the PIN only when the SIM asks for it and it is not one the SIM refused before."""
        try:
            lines = self.write("AT+CPIN?", timeout=15)
        except CmeError as error:
            if error.code in (10, 13):
                raise SimProblem("no_sim", "No SIM card in the modem (or the SIM failed).") from error
            raise
        state = (_answer(lines, r"^\+CPIN:\s*(.+)$") or "").strip().upper()
        if state == "READY":
            return
        if "PUK" in state:
            raise SimProblem("puk_required", "The SIM is locked and needs its PUK: unlock it in a phone, "
                                             "then restart the gateway.")
        if "PIN" not in state:
            raise SimProblem("no_sim", f"The SIM is not ready ({state or 'no answer'}).")
        if not pin:
            raise SimProblem("pin_needed", "The SIM needs a PIN: set MODEM_PIN (or --pin).")
        if self.refused_pin and pin_fingerprint(pin) == self.refused_pin:
            raise SimProblem("pin_rejected", "The SIM refused this PIN before; it is not sent again "
                                             "(a SIM locks after three tries). Set the right MODEM_PIN.")
        try:
            self.write(f'AT+CPIN="{pin}"')
        except CmeError as error:
            if error.code == 12:
                raise SimProblem("puk_required", "The SIM is locked and needs its PUK.") from error
            raise SimProblem("pin_rejected", "The SIM refused the PIN: set the right MODEM_PIN. It is not "
                                             "sent again (a SIM locks after three tries).") from error

    def _handleModemNotification(self, lines):
        self.notifications.put(list(lines))

    def _handleLineRead(self, line, checkForResponseTerm=True):
        if line.startswith("+CMGS:"):
            self.parts_sent += 1  # one more part of the text in hand has gone
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
                ports.close(self.serial)
            except Exception:  # noqa: BLE001
                pass
            self.fatalErrorCallback(error)

    # --- stored messages, by index, for the owner thread ---------------------------------------

    def stored(self, memory: str) -> list[tuple[int, str]]:
        """Every message in `memory` as (index, PDU hex), undecoded: the caller decodes, stores or
        quarantines each, and deletes it."""
        self._setSmsMemory(readDelete=memory)
        lines = self.write("AT+CMGL=4", timeout=20)
        result, index = [], None
        for line in lines:
            match = CMGL_LINE.match(line)
            if match:
                index = int(match.group(1))
            elif index is not None and line.strip():
                result.append((index, line.strip()))
                index = None
        return result

    def read(self, index: int, memory: str) -> str | None:
        """The PDU stored at `index`, or None when the slot is empty."""
        self._setSmsMemory(readDelete=memory)
        try:
            lines = self.write(f"AT+CMGR={index}")
        except CmsError as error:
            if error.code == EMPTY_SLOT:
                return None
            raise
        # The PDU is the line after the "+CMGR:" header. A line the modem sent before the header (a
        # Huawei stick's ^RSSI, the PDU of a status report whose +CDS came just before the command)
        # is not this message: taken, it quarantined and then deleted the customer's text. It goes
        # to the owner as the notification it is.
        lines = [line.strip() for line in lines if line.strip() and line.strip() != "OK"]
        header = next((n for n, line in enumerate(lines) if line.startswith("+CMGR:")), len(lines))
        if lines[:header]:
            self.notifications.put(lines[:header])
        return lines[header + 1] if header + 1 < len(lines) else None

    def delete(self, index: int, memory: str) -> None:
        self._setSmsMemory(readDelete=memory)
        try:
            self.write(f"AT+CMGD={index},0")
        except CmsError as error:
            if error.code != EMPTY_SLOT:  # already gone: what we wanted
                raise

    # --- sending --------------------------------------------------------------------------------

    def send_text(self, number: str, text: str, parts: int) -> list[int]:
        """Send one text (several parts if long); the TP-MR of each part, in order."""
        strange = outside_bmp(text)
        if strange:
            raise SendRejected("Text messages cannot carry emoji or characters outside Unicode's basic plane: "
                               + " ".join(strange[:5]), permanent=True)
        self.parts_sent = 0
        try:
            sms = self.sendSms(number, text)
        except CmsError as error:
            code = getattr(error, "code", None)
            gone = self._parts_gone(parts)
            if code in NETWORK_CMS:
                raise SendRejected(f"No network (+CMS ERROR: {code}).{gone}", code=code,
                                   ambiguous=self.parts_sent > 0) from error
            raise SendRejected(f"The modem refused the text (+CMS ERROR: {code}).{gone}", code=code,
                               permanent=code in PERMANENT_CMS, ambiguous=self.parts_sent > 0) from error
        except (TimeoutException, serial.SerialException, OSError) as error:
            raise ModemUnavailable(f"The modem stopped answering while sending: {type(error).__name__}") from error
        except CommandError as error:
            raise SendRejected(f"The modem refused the text: {error}{self._parts_gone(parts)}",
                               ambiguous=self.parts_sent > 0) from error
        last = sms.reference
        # The modem numbers each part in turn; python-gsmmodem only tells us the last one.
        return [(last - parts + 1 + i) % 256 for i in range(parts)]


    def _parts_gone(self, parts: int) -> str:
        # A long text whose later part failed is sent again whole: the parts that went are
        # repeated, and the row says so.
        return f" {self.parts_sent} of {parts} parts had gone out." if self.parts_sent else ""



def _answer(lines, pattern: str) -> str | None:
    for line in lines or []:
        match = re.match(pattern, line.strip())
        if match:
            return match.group(1)
    return None


def concatenation_of(decoded: dict):
    """(reference, total, sequence) of a received part, or None for a single text."""
    for element in decoded.get("udh") or []:
        if isinstance(element, Concatenation):
            return element.reference, element.parts, element.number
    return None


def connect(port: str, baudrate: int, pin: str | None, notifications: queue.Queue,
            refused_pin: str | None = None) -> SeedModem:
    """Open the port and set the modem up, or raise ModemUnavailable (SimProblem) saying why not."""
    modem = SeedModem(port, baudrate, notifications, refused_pin)
    try:
        modem.connect(pin=pin)
    except SimProblem:
        _close_quietly(modem)
        raise
    except PinRequiredError as error:
        _close_quietly(modem)
        raise SimProblem("pin_needed", "The SIM needs a PIN: set MODEM_PIN (or --pin).") from error
    except CommandError as error:
        _close_quietly(modem)
        raise ModemUnavailable(f"The modem refused its setup: {error}") from error
    except (TimeoutException, serial.SerialException, OSError) as error:
        _close_quietly(modem)
        raise ModemUnavailable(f"No modem answering on {port}: {type(error).__name__}: {error}") from error
    return modem


def _close_quietly(modem: GsmModem) -> None:
    fd = getattr(getattr(modem, "serial", None), "fd", None)  # the pyserial port under the library
    try:
        if getattr(modem, "rxThread", None) is not None:
            modem.close()
        elif getattr(modem, "serial", None) is not None:
            modem.serial.close()
        ports.wait_closed(fd)
    except Exception:  # noqa: BLE001  (closing a broken port may fail in many ways)
        pass


def close(modem: GsmModem) -> None:
    _close_quietly(modem)


def _never(*_args, **_kwargs):  # pragma: no cover - notifications are queued, never delivered here
    raise AssertionError("notifications are handled by the gateway's owner thread")
