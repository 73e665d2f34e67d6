"""Failure injection: what real modems, SIMs, networks and USB buses do to a gateway."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path


class Faults:
    def _init_faults(self):
        self._failing_sends: list[int | None] = []  # None: that send goes through
        self._network_down_until = 0.0
        self._silent_until = 0.0
        self._drop_notifications = 0
        self._line_before_answer: tuple[str, str] | None = None  # status_line_before_next_answer
        self.undeliverable: set[str] = set()  # numbers whose status report says "failed"
        self.roaming = False  # registered on a visited network (+CREG stat 5)
        self.barred = False  # the network refuses the SIM (+CREG stat 3)

    def fail_next_sends(self, count=1, code=500, after=0):
        """The next `count` AT+CMGS answer +CMS ERROR: code, once `after` more have gone through
        (after=1 with a two-part text: its first part goes, its second fails)."""
        with self._lock:
            self._failing_sends.extend([None] * after + [code] * count)

    def lose_network(self, seconds: float):
        """No registration, no signal, sends fail with +CMS ERROR: 331, for `seconds`."""
        self._network_down_until = time.monotonic() + seconds
        self._registration_changed()
        self._registration_back_after(seconds)

    @property
    def network_up(self) -> bool:
        return time.monotonic() >= self._network_down_until

    def go_silent(self, seconds: float):
        """Swallow every command without answering, as a hung modem does."""
        self._silent_until = time.monotonic() + seconds

    def vanish(self, seconds: float):
        """The port disappears (USB stick dropped off the bus) and comes back after `seconds`,
        powered up afresh: settings reset, and a SIM with a PIN asks for it again."""
        self.move(None, seconds)

    def move(self, new_link: str | os.PathLike | None, seconds: float = 0.5):
        """Like `vanish`, but the port comes back under another name (ttyUSB0 -> ttyUSB2 after a
        USB reset): same modem, same IMEI. A `by_id` link follows it, as udev's does."""
        self._close_pty()
        self._remove_links()
        if new_link is not None:
            self.link = Path(new_link)

        def come_back():
            if not self._stop.wait(seconds):
                self._power_cycle()
                self._open_pty()

        threading.Thread(target=come_back, daemon=True).start()

    def send_garbage(self, data: bytes = b"\xff\xfe\x80 noise\r\n"):
        """Bytes that are not UTF-8 on the line, as cheap modems and bad cables produce."""
        self._write(data)

    def status_line_before_next_answer(self, command: str = "+CMGR", line: str = "^RSSI: 14"):
        """The next answer to `command` comes after an unsolicited line the client has no use for
        (a Huawei stick's ^RSSI or ^MODE, sent whenever the signal changes): among its lines."""
        with self._lock:
            self._line_before_answer = (command.upper(), line)

    def drop_next_notifications(self, count=1):
        """Store incoming texts without announcing them (+CMTI lost)."""
        with self._lock:
            self._drop_notifications += count
