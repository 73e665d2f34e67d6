"""Helpers for tests over the virtual modem's real pty."""
import time

import serial

# Valid mobile numbers for the handsets tests text (Georgia, Japan).
KA = "+995555123456"
JA = "+819012345678"


def wait_until(predicate, timeout=10.0, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message() if callable(message) else message}")


class RawPort:
    """Talk AT to the virtual modem by hand, as a terminal program would."""

    def __init__(self, path):
        self.serial = serial.Serial(path, 115200, timeout=0.2)

    def command(self, line: str, until=(b"OK\r\n", b"ERROR")) -> str:
        self.serial.write(line.encode() + b"\r")
        return self.read_until(until)

    def read_until(self, markers, timeout=5.0) -> str:
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data += self.serial.read(256)
            if any(m in data for m in markers) and data.endswith((b"\r\n", b"> ")):
                break
        return data.decode("utf-8", errors="replace")

    def close(self):
        self.serial.close()
