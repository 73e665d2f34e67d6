"""Ask a modem, without the gateway, whether it can carry our texts (`flask --app run modem probe`).

Plain AT over pyserial with short timeouts, so it works on a modem the gateway cannot open and
says why. It reads; it never changes what outlives a power cycle, and it never sends a PIN:
a SIM allows three wrong PINs, and a probe must not spend them.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import serial

from . import ports
from .at_codes import code_of

FINAL = re.compile(r"^(OK|ERROR|\+CM[ES] ERROR:.*|COMMAND NOT SUPPORT)$")
ERROR_LINE = re.compile(r"^\+(CM[ES]) ERROR:\s*(.*)$")
REGISTRATION = {0: "not registered", 1: "home", 2: "searching", 3: "denied", 4: "unknown", 5: "roaming"}
# SIM states from +CME ERROR codes: some modems answer AT+CPIN? with an error instead of +CPIN:
SIM_BY_CME = {10: "no SIM", 11: "SIM PIN", 12: "SIM PUK", 13: "SIM failure", 14: "SIM busy", 15: "SIM wrong"}
SIM_BY_CMS = {310: "no SIM", 311: "SIM PIN", 313: "SIM failure", 314: "SIM busy", 316: "SIM PUK"}


@dataclass
class Answer:
    ok: bool
    lines: list[str]
    final: str  # OK, ERROR, "+CME ERROR: 10", "+CME ERROR: SIM not inserted", or "" (no answer)
    kind: str | None = None  # CME / CMS
    code: int | None = None  # the same number whichever form (AT+CMEE=1 or 2) the modem used

    def value(self, prefix: str = "") -> str | None:
        """The first information line, without `prefix` ("+CSQ:") if it carries one."""
        for line in self.lines:
            if prefix and line.upper().startswith(prefix.upper()):
                return line[len(prefix):].strip()
            if not prefix:
                return line.strip()
        return None


class ATLink:
    """One serial port, one command at a time; echo on or off, numeric or verbose errors."""

    def __init__(self, port: str, baudrate: int = 115200):
        self.serial = serial.Serial(port, baudrate, timeout=0.05, exclusive=True)

    def close(self):
        ports.close(self.serial)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def command(self, command: str, timeout: float = 2.0) -> Answer:
        self.serial.reset_input_buffer()
        self.serial.write(command.encode("ascii") + b"\r")
        data, deadline = b"", time.monotonic() + timeout
        while time.monotonic() < deadline:
            data += self.serial.read(max(1, self.serial.in_waiting))
            lines = [l.strip() for l in re.split(r"[\r\n]+", data.decode("utf-8", "replace"))]
            if any(FINAL.match(l) for l in lines) and data.endswith(b"\n"):
                break
        lines = [l.strip() for l in re.split(r"[\r\n]+", data.decode("utf-8", "replace")) if l.strip()]
        lines = [l for l in lines if l.upper() != command.upper()]  # our own echo
        final = next((l for l in reversed(lines) if FINAL.match(l)), "")
        info = [l for l in lines if l != final and not FINAL.match(l)]
        error = ERROR_LINE.match(final)
        if error:
            return Answer(False, info, final, error.group(1), code_of(error.group(1), error.group(2)))
        return Answer(final == "OK", info, final)

    def wake(self) -> bool:
        """Out of a half-typed PDU a dead program may have left, then AT until it answers."""
        self.serial.write(b"\x1b\r")
        time.sleep(0.1)
        return any(self.command("AT", timeout=1.0).ok for _ in range(3))


@dataclass
class ProbeResult:
    port: str
    answered: bool = False
    manufacturer: str | None = None
    model: str | None = None
    revision: str | None = None
    imei: str | None = None
    sim: str | None = None
    imsi: str | None = None
    memories: str | None = None
    pdu_mode: bool | None = None
    charsets: str | None = None
    signal: int | None = None
    registration: str | None = None
    operator: str | None = None
    smsc: str | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.answered and not self.problems

    @property
    def dbm(self) -> int | None:
        """27.007 +CSQ <rssi>: 0 is -113 dBm or less, 31 is -51 dBm or more, 2 dB a step."""
        return None if self.signal in (None, 99) else -113 + 2 * self.signal

    def report(self) -> list[str]:
        def show(value):
            return "unknown" if value is None else ("yes" if value is True else "no" if value is False else str(value))

        signal = None if self.signal is None else "none (99)" if self.signal == 99 else f"{self.signal}/31 ({self.dbm} dBm)"
        rows = [("Port", self.port), ("Manufacturer", self.manufacturer), ("Model", self.model),
                ("Revision", self.revision), ("IMEI", self.imei), ("SIM", self.sim), ("IMSI", self.imsi),
                ("Memories", self.memories), ("PDU mode", self.pdu_mode), ("Character sets", self.charsets),
                ("Signal", signal), ("Registration", self.registration), ("Operator", self.operator),
                ("SMSC", self.smsc)]
        lines = [f"{name + ':':<16}{show(value)}" for name, value in rows]
        lines += [f"Note: {note}" for note in self.notes]
        if self.ready:
            return lines + ["Verdict: ready"]
        return lines + ["Verdict: not ready"] + [f"  - {problem}" for problem in self.problems]


def probe(port: str, baudrate: int = 115200, *, pin_configured: bool = False, smsc_configured: bool = False) -> ProbeResult:
    result = ProbeResult(port)
    try:
        link = ATLink(port, baudrate)
    except (serial.SerialException, OSError, ValueError) as error:
        result.problems.append(f"cannot open {port}: {error} (wrong path, no permission (group dialout), "
                               "or another program such as the running gateway or ModemManager holds it)")
        return result
    with link:
        if not link.wake():
            result.problems.append("no answer to AT: not a modem's AT port (try the stick's other ports) "
                                   "or a wrong baud rate")
            return result
        result.answered = True
        _ask(link, result)
    _judge(result, pin_configured=pin_configured, smsc_configured=smsc_configured)
    return result


def _ask(link: ATLink, result: ProbeResult):
    link.command("ATE0")
    # Errors with their reasons, in words where the modem has them; every answer is read either way.
    if not link.command("AT+CMEE=2").ok:
        link.command("AT+CMEE=1")
    result.manufacturer = _strip(link.command("AT+CGMI").value(), "+CGMI:")
    result.model = _strip(link.command("AT+CGMM").value(), "+CGMM:")
    result.revision = _strip(_strip(link.command("AT+CGMR").value(), "+CGMR:"), "REVISION:")
    imei = re.search(r"\d{14,16}", link.command("AT+CGSN").value() or "")
    result.imei = imei.group(0) if imei else None
    result.sim = _sim_state(link.command("AT+CPIN?", timeout=5.0))
    sim_ready = result.sim == "READY"
    if sim_ready:
        result.imsi = _strip(link.command("AT+CIMI").value(), "+CIMI:")
        memories = link.command("AT+CPMS=?")
        result.memories = memories.value("+CPMS:") if memories.ok else None
        result.pdu_mode = link.command("AT+CMGF=0").ok
        smsc = link.command("AT+CSCA?")
        if smsc.ok:
            number = re.match(r'"([^"]*)"', smsc.value("+CSCA:") or "")
            result.smsc = _ucs2_number(number.group(1)) if number else ""
    charsets = link.command("AT+CSCS=?")
    result.charsets = (charsets.value("+CSCS:") or "").strip("()") if charsets.ok else None
    signal = re.match(r"(\d+)", link.command("AT+CSQ").value("+CSQ:") or "")
    result.signal = int(signal.group(1)) if signal else None
    # +CREG: <n>,<stat>[,"<lac>","<ci>"]: the numbers before the first quote (some give <stat> alone)
    registration = re.findall(r"\d+", (link.command("AT+CREG?").value("+CREG:") or "").split('"')[0])
    if registration:
        stat = int(registration[1] if len(registration) > 1 else registration[0])
        result.registration = REGISTRATION.get(stat, f"unknown ({stat})")
    operator = re.search(r'"([^"]+)"', link.command("AT+COPS?").value("+COPS:") or "")
    result.operator = operator.group(1) if operator else None


def _strip(value: str | None, prefix: str) -> str | None:
    if value and value.upper().startswith(prefix):
        return value[len(prefix):].strip()
    return value


def _ucs2_number(value: str) -> str:
    """A modem left in AT+CSCS="UCS2" writes numbers as hex: "002B0034..." is "+4..."."""
    if value and len(value) % 4 == 0 and re.fullmatch(r"[0-9A-Fa-f]+", value):
        decoded = bytes.fromhex(value).decode("utf-16-be", "replace")
        if re.fullmatch(r"\+?\d+", decoded):
            return decoded
    return value


def _sim_state(answer: Answer) -> str:
    if answer.ok:
        return (answer.value("+CPIN:") or "unknown").upper()
    if answer.code is not None:
        table = SIM_BY_CME if answer.kind == "CME" else SIM_BY_CMS
        return table.get(answer.code, f"unknown ({answer.final})")
    return f"unknown ({answer.final or 'no answer'})"


def _judge(result: ProbeResult, *, pin_configured: bool, smsc_configured: bool):
    sim = result.sim
    if sim == "SIM PIN":
        if pin_configured:
            result.notes.append("the SIM asks for its PIN: the gateway gives MODEM_PIN (once; a refused PIN is "
                                "never sent again); what needs the SIM was not checked")
        else:
            result.problems.append("SIM needs its PIN: set MODEM_PIN")
    elif sim == "SIM PUK":
        result.problems.append("SIM is locked: it needs the PUK; unlock it in a phone")
    elif sim == "no SIM":
        result.problems.append("no SIM: put one in (with the modem unplugged)")
    elif sim in ("SIM failure", "SIM wrong"):
        result.problems.append(f"{sim}: clean the SIM's contacts or try another SIM")
    elif sim == "SIM busy":
        result.problems.append("SIM busy: the modem is still starting; probe again in a few seconds")
    elif sim != "READY":
        result.problems.append(f"SIM state {sim}: check the SIM in a phone")
    if result.signal == 99:
        result.problems.append("no signal: check the antenna and that the network covers this place")
    elif result.signal is not None and result.signal < 8:
        result.notes.append(f"weak signal ({result.dbm} dBm): move the modem or add an antenna")
    if sim != "READY":
        return  # memories, PDU mode, SMSC and registration all need the SIM
    if result.pdu_mode is False:
        result.problems.append("no PDU mode: this modem is not supported")
    if result.memories is None:
        result.problems.append("no message memory offered (AT+CPMS=?): this modem cannot receive texts for us")
    if result.registration in ("not registered", "searching", "unknown", None):
        result.problems.append(f"not registered ({result.registration or 'no answer'}): check the antenna/SIM credit")
    elif result.registration == "denied":
        result.problems.append("registration denied: the network refuses this SIM (barred, expired or not "
                               "activated); ask the operator")
    elif result.registration == "roaming":
        result.notes.append("registered as roaming: texts may cost more")
    if not result.smsc:
        if smsc_configured:
            result.notes.append("no SMSC on the SIM: MODEM_SMSC is used")
        else:
            result.problems.append("no SMSC on the SIM: set MODEM_SMSC")
