"""AT syntax (V.250): command lines, the > prompt of AT+CMGS, echo, and the shape of answers.

An answer is written as a real modem writes it: information lines joined by CRLF between one
leading and one trailing CRLF, then the final result ("\\r\\nOK\\r\\n"). Writing each line as
"\\r\\n{line}\\r\\n" puts an empty line between two lines, which smsd's CMGL parser reads as the
end of the listing."""
from __future__ import annotations

import re

from ..at_codes import TEXTS
from .errors import ModemError

CTRL_Z, ESC = b"\x1a", b"\x1b"

# What still answers while the SIM is locked or missing: the modem's own identity and radio.
WITHOUT_SIM = frozenset({"+CPIN", "+CMEE", "+CLAC", "+CGMI", "+CGMM", "+CGMR", "+CGSN", "+CFUN", "+CSQ",
                         "+CREG", "+CGREG", "+CSCS", "+CPAS", "+CBC"})
# The +CME ERROR a command gets when the SIM is not ready, by the SIM's state.
SIM_REFUSAL = {"pin": 11, "puk": 12, "absent": 10, "blocked": 13}


def answer(lines: list[str]) -> bytes:
    body = "\r\n" + "\r\n".join(lines) + "\r\n" if lines else ""
    # "replace": a lone surrogate (half an emoji split across parts) cannot be UTF-8
    return body.encode("utf-8", "replace") + b"\r\nOK\r\n"


class Parser:
    def _feed(self, data: bytes):
        self._buffer += data
        while self._buffer:
            if self._pdu_target is not None:
                end = min((i for i in (self._buffer.find(CTRL_Z), self._buffer.find(ESC)) if i >= 0), default=-1)
                typed = self._buffer if end < 0 else self._buffer[: end + 1]
                if self.echo:
                    self._write(typed[self._pdu_echoed :])  # a modem echoes the PDU as it is typed
                if end < 0:
                    self._pdu_echoed = len(self._buffer)
                    return
                payload, terminator = self._buffer[:end], self._buffer[end : end + 1]
                self._buffer, self._pdu_echoed = self._buffer[end + 1 :], 0
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
        with self._lock:
            before = self._line_before_answer
            if before is not None and any(part.upper().startswith(before[0]) for part in parts):
                self._line_before_answer = None
                self._unsolicited(before[1])
        self._write(answer(lines))

    def _respond(self, produce):
        try:
            lines = produce()
        except ModemError as error:
            self._write(self._error_text(error))
            return
        self._write(answer(lines))

    def _error_text(self, error: ModemError) -> bytes:
        if error.kind == "CME" and self.cmee == 0:
            return b"\r\nERROR\r\n"
        words = TEXTS[error.kind].get(error.code) if self.cmee == 2 and self.profile.verbose_errors else None
        return f"\r\n+{error.kind} ERROR: {words or error.code}\r\n".encode()

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
                return [line.format(imei=self.imei) for line in self.profile.banner]
            return []
        if name not in self.profile.commands:
            raise ModemError("CME", 4)  # operation not supported
        if name not in WITHOUT_SIM and self.sim != "ready":
            raise ModemError("CME", SIM_REFUSAL[self.sim])
        handler = getattr(self, "_at_" + name[1:].lower())
        if rest == "=?":
            return handler("test", "")
        if rest == "?":
            return handler("read", "")
        if rest.startswith("="):
            return handler("set", rest[1:])
        return handler("exec", rest)
