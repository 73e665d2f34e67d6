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
from contextlib import contextmanager

import serial

log = logging.getLogger(__name__)

DEFAULT_SEARCH = ("/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*")


def wait_closed(fd: int | None, timeout: float = 2.0) -> None:
    """Return once `fd` is really closed. Under gevent (run.py) os.close only schedules the
    close for the hub's next turn, and until then the port's exclusive lock is still held: the
    next open of the same port (the modem's own, right after our probe of it) would find it
    "held by another program". Without gevent the fd is already gone and this returns at once."""
    if fd is None or getattr(os.close, "__module__", "") != "gevent.os":
        return  # closed already (and the number may belong to another file by now)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.fstat(fd)
        except OSError:
            return
        time.sleep(0.002)  # a gevent sleep there: the hub closes it


def close(link) -> None:
    """Close a pyserial port and wait until it is really closed (see wait_closed)."""
    fd = getattr(link, "fd", None)
    link.close()
    wait_closed(fd)


@contextmanager
def opened(port: str, baudrate: int, **options):
    """serial.Serial(...) as a context manager whose exit waits until the port is free again."""
    link = serial.Serial(port, baudrate, **options)
    try:
        yield link
    finally:
        close(link)


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
        with opened(port, baudrate, timeout=0.2, exclusive=True) as link:
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
