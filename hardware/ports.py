"""Finding a modem again after its port moved: a USB reset often brings ttyUSB0 back as ttyUSB2.

The gateway knows its modem by IMEI (AT+CGSN). When the configured port is gone it asks each
candidate serial port, one at a time, for its IMEI. Ports held by another program (every gateway
opens its port exclusively) are skipped, so a search never talks into another modem's command.
"""
from __future__ import annotations

import glob
import logging
import os
import re
import time

import serial

log = logging.getLogger(__name__)

DEFAULT_SEARCH = ("/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*")


def exists(port: str | None) -> bool:
    return bool(port) and os.path.exists(port)


def candidates(patterns) -> list[str]:
    """Serial devices matching `patterns`, each device once (by-id links point at ttyUSB*)."""
    seen, result = set(), []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                result.append(path)
    return result


def imei_at(port: str, baudrate: int, timeout: float = 1.5) -> str | None:
    """The IMEI the modem on `port` gives, or None (busy, silent, not a modem)."""
    try:
        with serial.Serial(port, baudrate, timeout=0.2, exclusive=True) as link:
            link.write(b"\x1b\r")  # out of a half-finished PDU prompt, if a dead program left one
            link.read(256)
            link.reset_input_buffer()
            link.write(b"AT+CGSN\r")
            answer, deadline = b"", time.monotonic() + timeout
            while time.monotonic() < deadline and b"OK" not in answer and b"ERROR" not in answer:
                answer += link.read(256)
    except (serial.SerialException, OSError, ValueError):
        return None
    match = re.search(rb"(\d{14,16})", answer)
    return match.group(1).decode() if match else None


def find_by_imei(imei: str, patterns, baudrate: int) -> str | None:
    for port in candidates(patterns):
        found = imei_at(port, baudrate)
        if found == imei:
            return port
        log.debug("port %s: IMEI %s, not %s", port, found, imei)
    return None
