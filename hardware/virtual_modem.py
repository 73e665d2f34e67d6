"""Our virtual GSM modem: a pseudo-terminal that answers 3GPP TS 27.005/27.007 AT commands the
way a USB modem does, delivers sent texts to virtual handsets and accepts texts "from" any number.

It is part of the product (the embedded default and the virtual phone page), not a test mock:
python-gsmmodem and Gammu talk to it over a real serial device. Failure injection (CMS errors,
network loss, silence, the port vanishing, garbage bytes) lets the gateway's recovery be tested.
"""
from __future__ import annotations

import json
import logging
import os
import re
import select
import threading
import time
import tty
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from gsmmodem.pdu import Concatenation, decodeSmsPdu
from gsmmodem.util import SimpleOffsetTzInfo

from .pdu import deliver_pdus, encoding_of, status_report_pdu

log = logging.getLogger(__name__)

CTRL_Z, ESC = b"\x1a", b"\x1b"
STATUS_WORDS = {0: "REC UNREAD", 1: "REC READ", 2: "STO UNSENT", 3: "STO SENT", 4: "ALL"}
SUPPORTED = ["+CGMI", "+CGMM", "+CGMR", "+CGSN", "+CIMI", "+CNUM", "+CPIN", "+CMEE", "+CFUN", "+CSQ",
             "+CREG", "+COPS", "+CMGF", "+CSCA", "+CSMP", "+CPMS", "+CNMI", "+CMGS", "+CMGR", "+CMGL",
             "+CMGD", "+CSCS", "+CLIP", "+CRC", "+CVHU", "+CLAC", "+CBC", "+CPAS", "+CSDH", "+CGSMS"]
MEMORIES = ("ME", "SM", "SR")


class ModemError(Exception):
    def __init__(self, kind: str, code: int):
        super().__init__(f"+{kind} ERROR: {code}")
        self.kind, self.code = kind, code


@dataclass
class Stored:
    status: int  # 0 unread, 1 read, 2 stored unsent, 3 stored sent
    pdu: str
    tpdu_length: int
    sender: str
    text: str
    at: datetime


@dataclass
class Delivered:
    """A text as the handset shows it: all its parts joined."""

    number: str
    body: str
    at: datetime
    parts: int
    encoding: str
    references: list[int] = field(default_factory=list)

    def as_dict(self):
        return {"number": self.number, "body": self.body, "time": self.at.isoformat(), "parts": self.parts,
                "encoding": self.encoding, "references": self.references}


class VirtualModem:
    def __init__(self, link: str | os.PathLike | None = None, *, latency: float = 3.0, pin: str | None = None,
                 own_number="+447700900000", operator="Seed Virtual", smsc="+447785016005",
                 handset_log: str | os.PathLike | None = None):
        self.link = Path(link) if link else None
        self.latency = latency
        self.pin = pin
        self.own_number, self.operator, self.smsc = own_number, operator, smsc
        self.handset_log = Path(handset_log) if handset_log else None
        self._lock = threading.RLock()  # state shared between the I/O thread and callers
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._master = self._slave = None
        self._reset_settings()
        self.pin_ok = pin is None
        self.storage: dict[str, dict[int, Stored]] = {m: {} for m in MEMORIES}
        self.capacity = 100
        self.waiting_in_network: list[tuple[str, str, datetime]] = []  # inbound held while memory is full
        self.handsets: dict[str, list[Delivered]] = {}
        self.handset_senders: dict[str, list[dict]] = {}  # what each handset sent to the modem
        self._partial: dict[tuple, dict[int, str]] = {}
        self._reference = 0
        self._inbound_reference = 0
        self.commands_seen: list[str] = []
        # failure injection
        self._failing_sends: list[int] = []
        self._network_down_until = 0.0
        self._silent_until = 0.0
        self._drop_notifications = 0
        self.undeliverable: set[str] = set()

    def _reset_settings(self):
        self.echo = True
        self.cmee = 0
        self.text_mode = False
        self.charset = "GSM"
        self.cnmi = (0, 0, 0, 0, 0)
        self.first_octet = 17  # AT+CSMP: 17 = no status report requested, 49 = requested
        self.memories = ["ME", "ME", "ME"]

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
        if self.link and self.link.is_symlink():
            self.link.unlink()

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
        if self.link:
            self.link.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.link.with_name(self.link.name + ".new")
            if tmp.is_symlink():
                tmp.unlink()
            tmp.symlink_to(os.ttyname(slave))
            tmp.replace(self.link)  # atomic: a client never sees a missing or half-made link
        log.info("virtual modem on %s", self.port)

    def _close_pty(self):
        with self._lock:
            for fd in (self._master, self._slave):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._master = self._slave = None

    # --- failure injection --------------------------------------------------------------------

    def fail_next_sends(self, count=1, code=500):
        """The next `count` AT+CMGS answer +CMS ERROR: code."""
        with self._lock:
            self._failing_sends.extend([code] * count)

    def lose_network(self, seconds: float):
        """No registration, no signal, sends fail with +CMS ERROR: 331, for `seconds`."""
        self._network_down_until = time.monotonic() + seconds

    def go_silent(self, seconds: float):
        """Swallow every command without answering, as a hung modem does."""
        self._silent_until = time.monotonic() + seconds

    def vanish(self, seconds: float):
        """The port disappears (USB stick dropped off the bus) and comes back after `seconds`."""
        self._close_pty()
        if self.link and self.link.is_symlink():
            self.link.unlink()

        def come_back():
            if not self._stop.wait(seconds):
                self._reset_settings()
                self._open_pty()

        threading.Thread(target=come_back, daemon=True).start()

    def send_garbage(self, data: bytes = b"\xff\xfe\x80 noise\r\n"):
        """Bytes that are not UTF-8 on the line, as cheap modems and bad cables produce."""
        self._write(data)

    def drop_next_notifications(self, count=1):
        """Store incoming texts without announcing them (+CMTI lost)."""
        with self._lock:
            self._drop_notifications += count

    @property
    def network_up(self) -> bool:
        return time.monotonic() >= self._network_down_until

    # --- the handset side ---------------------------------------------------------------------

    def messages_for(self, number: str) -> list[dict]:
        with self._lock:
            return [m.as_dict() for m in self.handsets.get(number, [])]

    def all_delivered(self) -> list[dict]:
        with self._lock:
            return [m.as_dict() for messages in self.handsets.values() for m in messages]

    def sent_from(self, number: str) -> list[dict]:
        with self._lock:
            return list(self.handset_senders.get(number, []))

    def inject(self, sender: str, text: str, when: datetime | None = None) -> None:
        """A handset sends `text` to this modem: stored in memory, announced with +CMTI."""
        when = when or datetime.now(timezone.utc)
        with self._lock:
            self.handset_senders.setdefault(sender, []).append({"body": text, "time": when.isoformat()})
            self._inbound_reference = (self._inbound_reference + 1) % 256
            pdus = deliver_pdus(sender, text, when.astimezone(SimpleOffsetTzInfo(0)), self._inbound_reference, self.smsc)
            for pdu, length in pdus:
                self._store_inbound(Stored(0, pdu, length, sender, decodeSmsPdu(pdu).get("text", ""), when))

    def _store_inbound(self, message: Stored):
        memory = self.memories[2]
        store = self.storage[memory]
        if len(store) >= self.capacity:
            self.waiting_in_network.append(message)
            return
        index = next(i for i in range(1, self.capacity + 2) if i not in store)
        store[index] = message
        if self.cnmi[1] in (1, 2) and self._master is not None:
            if self._drop_notifications:
                self._drop_notifications -= 1
            else:
                self._unsolicited(f'+CMTI: "{memory}",{index}')

    def _release_network_queue(self):
        while self.waiting_in_network and len(self.storage[self.memories[2]]) < self.capacity:
            self._store_inbound(self.waiting_in_network.pop(0))

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

    def _feed(self, data: bytes):
        self._buffer += data
        while self._buffer:
            if self._pdu_target is not None:
                if self.echo:
                    self._write(data)
                end = min((i for i in (self._buffer.find(CTRL_Z), self._buffer.find(ESC)) if i >= 0), default=-1)
                if end < 0:
                    return
                payload, terminator = self._buffer[:end], self._buffer[end:end + 1]
                self._buffer = self._buffer[end + 1 :]
                target, self._pdu_target = self._pdu_target, None
                if terminator == ESC:
                    self._write(b"\r\nOK\r\n")
                else:
                    self._respond(lambda: self._submit(target, payload.decode("latin-1").strip()))
                continue
            end = self._buffer.find(b"\r")
            if end < 0:
                return
            line = self._buffer[:end].decode("latin-1").strip("\n ")
            self._buffer = self._buffer[end + 1 :].lstrip(b"\n")
            if self.echo:
                self._write(line.encode("latin-1") + b"\r")
            if line:
                self._command_line(line)

    def _command_line(self, line: str):
        if not line.upper().startswith("AT"):
            return  # noise: a real modem ignores what does not start with AT
        self.commands_seen.append(line)
        body = line[2:]
        if not body:
            self._write(b"\r\nOK\r\n")
            return
        # Several commands may share one line: AT+CMGF=0;+CNMI=2,1,0,2
        parts = [p for p in re.split(r";(?=[+^&A-Za-z])", body) if p]
        lines: list[str] = []
        try:
            for part in parts:
                result = self._execute(part)
                if result == "PROMPT":
                    return
                lines.extend(result)
        except ModemError as error:
            self._write(self._error_text(error))
            return
        self._write("".join(f"\r\n{l}\r\n" for l in lines).encode("utf-8") + b"\r\nOK\r\n")

    def _respond(self, produce):
        try:
            lines = produce()
        except ModemError as error:
            self._write(self._error_text(error))
            return
        self._write("".join(f"\r\n{l}\r\n" for l in lines).encode("utf-8") + b"\r\nOK\r\n")

    def _error_text(self, error: ModemError) -> bytes:
        if error.kind == "CME" and self.cmee == 0:
            return b"\r\nERROR\r\n"
        return f"\r\n+{error.kind} ERROR: {error.code}\r\n".encode()

    def _execute(self, part: str):
        match = re.match(r"([+^][A-Za-z]+|&[A-Za-z]|[A-Za-z])(.*)", part)
        if not match:
            raise ModemError("CME", 4)
        name, rest = match.group(1).upper(), match.group(2)
        if name[0] not in "+^":  # basic commands: E0, Z, V1, Q0, I, &F ...
            if name == "E":
                self.echo = rest.strip() != "0"
            elif name == "Z" or name == "&F":
                self._reset_settings()
            elif name == "I":
                return ["Seed Virtual GSM Modem", "Revision 1.0"]
            return []
        handler = getattr(self, "_at_" + name[1:].lower(), None)
        if handler is None:
            raise ModemError("CME", 4)  # operation not supported
        if name not in ("+CPIN", "+CMEE", "+CLAC", "+CGMI", "+CGMM", "+CGMR", "+CGSN", "+CFUN") and not self.pin_ok:
            raise ModemError("CME", 11)  # SIM PIN required
        if rest == "=?":
            return handler("test", "")
        if rest == "?":
            return handler("read", "")
        if rest.startswith("="):
            return handler("set", rest[1:])
        return handler("exec", rest)

    # --- identification and setup (27.007) ------------------------------------------------------

    def _at_cgmi(self, mode, arg):
        return ["Seed"]

    def _at_cgmm(self, mode, arg):
        return ["Virtual GSM Modem"]

    def _at_cgmr(self, mode, arg):
        return ["1.0"]

    def _at_cgsn(self, mode, arg):
        return ["356938035643809"]

    def _at_cimi(self, mode, arg):
        return ["234150000000000"]

    def _at_cnum(self, mode, arg):
        return [f'+CNUM: "","{self.own_number}",145']

    def _at_clac(self, mode, arg):
        return ["AT" + c for c in SUPPORTED]

    def _at_cmee(self, mode, arg):
        if mode == "read":
            return [f"+CMEE: {self.cmee}"]
        if mode == "test":
            return ["+CMEE: (0-2)"]
        self.cmee = int(arg or 0)
        return []

    def _at_cfun(self, mode, arg):
        return ["+CFUN: 1"] if mode == "read" else ["+CFUN: (0,1,4),(0,1)"] if mode == "test" else []

    def _at_cpin(self, mode, arg):
        if mode == "read":
            return ["+CPIN: READY" if self.pin_ok else "+CPIN: SIM PIN"]
        if mode == "set":
            if self.pin_ok:
                return []
            if arg.strip('"').split('"')[0] == self.pin:
                self.pin_ok = True
                return []
            raise ModemError("CME", 16)  # incorrect password
        return []

    def _at_csq(self, mode, arg):
        if mode == "test":
            return ["+CSQ: (0-31,99),(0-7,99)"]
        return ["+CSQ: 21,99" if self.network_up else "+CSQ: 99,99"]

    def _at_creg(self, mode, arg):
        if mode == "read":
            return ["+CREG: 0,1" if self.network_up else "+CREG: 0,2"]
        return ["+CREG: (0-2)"] if mode == "test" else []

    def _at_cops(self, mode, arg):
        if mode == "read":
            return [f'+COPS: 0,0,"{self.operator}",0' if self.network_up else "+COPS: 0"]
        return [f'+COPS: (2,"{self.operator}","Seed","23415",0)'] if mode == "test" else []

    def _at_cbc(self, mode, arg):
        return ["+CBC: 0,100"]

    def _at_cpas(self, mode, arg):
        return ["+CPAS: 0"]

    def _at_clip(self, mode, arg):
        return ["+CLIP: 1,1"] if mode == "read" else []

    _at_crc = _at_cvhu = _at_csdh = _at_cgsms = _at_clip

    def _at_cscs(self, mode, arg):
        if mode == "read":
            return [f'+CSCS: "{self.charset}"']
        if mode == "test":
            return ['+CSCS: ("GSM","IRA","UCS2")']
        charset = arg.strip('"').upper()
        if charset not in ("GSM", "IRA", "UCS2"):
            raise ModemError("CME", 4)
        self.charset = charset
        return []

    # --- SMS (27.005) ---------------------------------------------------------------------------

    def _at_cmgf(self, mode, arg):
        if mode == "read":
            return [f"+CMGF: {int(self.text_mode)}"]
        if mode == "test":
            return ["+CMGF: (0,1)"]
        if arg not in ("0", "1"):
            raise ModemError("CMS", 302)
        self.text_mode = arg == "1"
        return []

    def _at_csca(self, mode, arg):
        if mode == "read":
            return [f'+CSCA: "{self.smsc}",145']
        if mode == "set":
            self.smsc = arg.split(",")[0].strip('"')
        return []

    def _at_csmp(self, mode, arg):
        if mode == "read":
            return [f"+CSMP: {self.first_octet},167,0,0"]
        if mode == "set" and arg:
            self.first_octet = int(arg.split(",")[0])
        return []

    def _at_cnmi(self, mode, arg):
        if mode == "read":
            return ["+CNMI: " + ",".join(map(str, self.cnmi))]
        if mode == "test":
            return ["+CNMI: (0-2),(0-3),(0-3),(0-2),(0,1)"]
        values = [int(v) if v.strip() else 0 for v in arg.split(",")] + [0] * 5
        self.cnmi = tuple(values[:5])
        return []

    def _cpms_counts(self):
        return ",".join(f"{len(self.storage[m])},{self.capacity}" for m in self.memories)

    def _at_cpms(self, mode, arg):
        if mode == "test":
            return ['+CPMS: ("ME","SM","SR"),("ME","SM"),("ME","SM")']
        if mode == "read":
            return ["+CPMS: " + ",".join(f'"{m}",{len(self.storage[m])},{self.capacity}' for m in self.memories)]
        chosen = [m.strip().strip('"').upper() for m in arg.split(",") if m.strip()]
        if not chosen or any(m not in MEMORIES for m in chosen):
            raise ModemError("CMS", 302)
        for i, memory in enumerate(chosen[:3]):
            self.memories[i] = memory
        return ["+CPMS: " + self._cpms_counts()]

    def _at_cmgs(self, mode, arg):
        if mode == "test":
            return []
        target = arg.strip('"') if self.text_mode else int(arg)
        with self._lock:
            self._pdu_target = target
        self._write(b"\r\n> ")
        return "PROMPT"

    def _at_cmgr(self, mode, arg):
        with self._lock:
            memory = self.memories[0]
            message = self.storage[memory].get(int(arg))
            if message is None:
                raise ModemError("CMS", 321)  # invalid memory index
            lines = self._render(message, memory)
            if message.status == 0:
                message.status = 1
            return lines

    def _render(self, message: Stored, memory: str, index: int | None = None) -> list[str]:
        prefix = "+CMGR: " if index is None else f"+CMGL: {index},"
        if not self.text_mode:
            return [f"{prefix}{message.status},,{message.tpdu_length}", message.pdu]
        stamp = message.at.astimezone(timezone.utc).strftime('%y/%m/%d,%H:%M:%S') + "+00"
        if memory == "SR":
            report = decodeSmsPdu(message.pdu)
            stamp2 = report["discharge"].strftime('%y/%m/%d,%H:%M:%S') + "+00"
            return [f'{prefix}"{STATUS_WORDS[message.status]}",6,{report["reference"]},"{message.sender}",145,'
                    f'"{stamp}","{stamp2}",{report["status"]}']
        text = message.text.encode("utf-16-be").hex().upper() if self.charset == "UCS2" else message.text
        return [f'{prefix}"{STATUS_WORDS[message.status]}","{message.sender}",,"{stamp}"', text]

    def _at_cmgl(self, mode, arg):
        if mode == "test":
            return ['+CMGL: ("REC UNREAD","REC READ","STO UNSENT","STO SENT","ALL")' if self.text_mode else "+CMGL: (0-4)"]
        wanted = arg.strip('"').upper() if arg else ("REC UNREAD" if self.text_mode else "0")
        if self.text_mode:
            codes = {v: k for k, v in STATUS_WORDS.items()}
            if wanted not in codes:
                raise ModemError("CMS", 302)
            status = codes[wanted]
        else:
            status = int(wanted)
        with self._lock:
            memory = self.memories[0]
            lines = []
            for index, message in sorted(self.storage[memory].items()):
                if status == 4 or message.status == status:
                    lines.extend(self._render(message, memory, index))
                    if message.status == 0:
                        message.status = 1
            return lines

    def _at_cmgd(self, mode, arg):
        if mode == "test":
            return ["+CMGD: (1-100),(0-4)"]
        values = [v.strip() for v in arg.split(",")]
        index, flag = int(values[0] or 0), int(values[1]) if len(values) > 1 and values[1] else 0
        with self._lock:
            store = self.storage[self.memories[0]]
            if flag == 0:
                if index not in store:
                    raise ModemError("CMS", 321)
                del store[index]
            else:
                doomed = {1: (1,), 2: (1, 3), 3: (1, 2, 3), 4: (0, 1, 2, 3)}[flag]
                for i in [i for i, m in store.items() if m.status in doomed]:
                    del store[i]
            self._release_network_queue()
        return []

    # --- sending --------------------------------------------------------------------------------

    def _submit(self, target, payload: str) -> list[str]:
        """A text handed over after the > prompt: wait the network's latency, answer +CMGS."""
        if self.text_mode:
            number = target
            text = bytes.fromhex(payload).decode("utf-16-be") if self.charset == "UCS2" else payload
            udh, srr = None, bool(self.first_octet & 0x20)
        else:
            try:
                submit = decodeSmsPdu(payload)
            except Exception:  # noqa: BLE001  (a malformed PDU is the sender's fault: CMS 304)
                raise ModemError("CMS", 304) from None
            if submit["type"] != "SMS-SUBMIT" or submit["tpdu_length"] != target:
                raise ModemError("CMS", 304)
            number, text = submit["number"], submit.get("text", "")
            udh = next((ie for ie in submit.get("udh", []) if isinstance(ie, Concatenation)), None)
            srr = bool(int(payload[2 + 2 * int(payload[:2], 16): 4 + 2 * int(payload[:2], 16)], 16) & 0x20)
        if self.latency:
            self._stop.wait(self.latency)
        with self._lock:
            if not self.network_up:
                raise ModemError("CMS", 331)  # no network service
            if self._failing_sends:
                raise ModemError("CMS", self._failing_sends.pop(0))
            self._reference = (self._reference + 1) % 256
            reference = self._reference
            self._deliver(number, text, udh, reference)
        if srr:
            threading.Thread(target=self._report, args=(reference, number), daemon=True).start()
        return [f"+CMGS: {reference}"]

    def _deliver(self, number, text, udh, reference):
        now = datetime.now(timezone.utc)
        if udh is None:
            message = Delivered(number, text, now, 1, encoding_of(text), [reference])
        else:
            key = (number, udh.reference, udh.parts)
            parts = self._partial.setdefault(key, {})
            parts[udh.number] = (text, reference)
            if len(parts) < udh.parts:
                return
            del self._partial[key]
            body = "".join(parts[i][0] for i in sorted(parts))
            message = Delivered(number, body, now, udh.parts, encoding_of(body), [parts[i][1] for i in sorted(parts)])
        self.handsets.setdefault(number, []).append(message)
        if self.handset_log:
            with open(self.handset_log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(message.as_dict(), ensure_ascii=False) + "\n")

    def _report(self, reference, number):
        """The network's status report, shortly after the +CMGS answer."""
        time.sleep(0.01)
        status = 0x41 if number in self.undeliverable else 0x00
        now = datetime.now(timezone.utc).astimezone(SimpleOffsetTzInfo(0))
        pdu, length = status_report_pdu(reference, number, now, now, status, self.smsc)
        with self._lock:
            mode = self.cnmi[3]
            if mode == 1:
                self._write(f"\r\n+CDS: {length}\r\n{pdu}\r\n".encode())
            elif mode == 2:
                store = self.storage["SR"]
                index = next(i for i in range(1, self.capacity + 2) if i not in store)
                store[index] = Stored(0, pdu, length, number, "", datetime.now(timezone.utc))
                if self._master is not None:
                    self._unsolicited(f'+CDSI: "SR",{index}')


def main(argv=None):
    """`python -m hardware.virtual_modem --link /tmp/ttyVM0`: a virtual modem for a terminal or Gammu."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--link", default="/tmp/ttyVM0", help="path of the serial device to create")
    parser.add_argument("--latency", type=float, default=3.0, help="seconds per text part")
    parser.add_argument("--pin", help="SIM PIN to ask for")
    parser.add_argument("--handset-log", help="append every delivered text to this JSON-lines file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    modem = VirtualModem(args.link, latency=args.latency, pin=args.pin, handset_log=args.handset_log).start()
    print(f"Virtual modem on {modem.port}; Ctrl-C stops it.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        modem.stop()


if __name__ == "__main__":
    main()
