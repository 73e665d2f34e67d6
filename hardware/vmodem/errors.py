"""The virtual modem's error; the codes and their words are hardware/at_codes.py's."""


class ModemError(Exception):
    """A command's final result is an error: +CME ERROR (equipment, SIM) or +CMS ERROR (SMS)."""

    def __init__(self, kind: str, code: int):
        super().__init__(f"+{kind} ERROR: {code}")
        self.kind, self.code = kind, code
