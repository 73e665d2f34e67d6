"""Every log line the app writes during the tests is read for phone numbers: a branch's log must
hold masked numbers only (+99555***456), whatever code path wrote it."""
import logging
import re

# + or its URL form, then 8-15 digits: an E.164 number not masked.
UNMASKED = re.compile(r"(?:\+|%2B)\d{8,15}(?!\d)")


class NumberWatch(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record):
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001  (a badly formatted record is the logging module's problem)
            return
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]}"
        if UNMASKED.search(text):
            self.leaks.append(f"{record.name}: {text[:200]}")


def install() -> NumberWatch:
    watch = NumberWatch()
    logging.getLogger().addHandler(watch)
    return watch
