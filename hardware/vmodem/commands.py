"""3GPP TS 27.007: identity, the SIM and its PIN, signal, registration, operator, character set."""
from __future__ import annotations

import threading

from .errors import ModemError

CPIN_WORDS = {"ready": "READY", "pin": "SIM PIN", "puk": "SIM PUK"}
CHARSETS = ("GSM", "IRA", "UCS2")
HOME, SEARCHING, DENIED, ROAMING, NOT_SEARCHING = 1, 2, 3, 5, 0


def _arguments(arg: str) -> list[str]:
    return [v.strip().strip('"') for v in arg.split(",")]


class Commands:
    # --- identity -------------------------------------------------------------------------------

    def _at_cgmi(self, mode, arg):
        return [self.profile.manufacturer]

    def _at_cgmm(self, mode, arg):
        return [self.profile.model]

    def _at_cgmr(self, mode, arg):
        return [self.profile.revision]

    def _at_cgsn(self, mode, arg):
        return [self.imei]

    def _at_cimi(self, mode, arg):
        return [self.imsi]

    def _at_cnum(self, mode, arg):
        return [f'+CNUM: "","{self.own_number}",145']

    def _at_clac(self, mode, arg):
        return ["AT" + c for c in sorted(self.profile.commands)]

    def _at_cmee(self, mode, arg):
        if mode == "read":
            return [f"+CMEE: {self.cmee}"]
        if mode == "test":
            return ["+CMEE: (0-2)"]
        self.cmee = int(arg or 0)
        return []

    def _at_cfun(self, mode, arg):
        return ["+CFUN: 1"] if mode == "read" else ["+CFUN: (0,1,4),(0,1)"] if mode == "test" else []

    # --- the SIM ----------------------------------------------------------------------------------

    def _at_cpin(self, mode, arg):
        if self.sim == "absent":
            raise ModemError("CME", 10)  # SIM not inserted
        if self.sim == "blocked":
            raise ModemError("CME", 13)  # SIM failure: ten wrong PUKs kill a SIM for good
        if mode == "read":
            return [f"+CPIN: {CPIN_WORDS[self.sim]}"]
        if mode != "set":
            return []
        self.pin_attempts += 1
        values = _arguments(arg)
        if self.sim == "ready":
            return []
        if self.sim == "puk":
            # AT+CPIN="<puk>","<new pin>" is the only way out; a PIN alone is refused uncounted
            if len(values) < 2:
                raise ModemError("CME", 12)
            if values[0] == self.puk:
                self.pin, self.sim = values[1], "ready"
                self.pin_attempts_left, self.puk_attempts_left = 3, 10
                return []
            self.puk_attempts_left -= 1
            if self.puk_attempts_left <= 0:
                self.sim = "blocked"
            raise ModemError("CME", 16)
        if values[0] == self.pin:
            self.sim, self.pin_attempts_left = "ready", 3
            return []
        self.pin_attempts_left -= 1
        if self.pin_attempts_left <= 0:
            self.sim = "puk"
        raise ModemError("CME", 16)  # incorrect password

    # --- radio and network ----------------------------------------------------------------------

    def _registration(self) -> int:
        if self.sim != "ready":
            return NOT_SEARCHING
        if self.barred:
            return DENIED
        if not self.network_up:
            return SEARCHING
        return ROAMING if self.roaming else HOME

    def _registration_line(self, name: str, mode: int) -> str:
        stat = self._registration()
        if not self.profile.registration_reports:
            return f"+{name}: 0,{stat}"
        if mode == 2 and stat in (HOME, ROAMING):
            lac, ci = self.profile.location
            return f'+{name}: 2,{stat},"{lac}","{ci}"'
        return f"+{name}: {mode},{stat}"

    def _registration_changed(self):
        """Unsolicited +CREG, on modems that send it, after AT+CREG=1 or 2."""
        if not self.profile.registration_reports or not self.creg_mode:
            return
        line = self._registration_line("CREG", self.creg_mode)
        self._unsolicited("+CREG: " + line.split(",", 1)[1])  # unsolicited: no <n>, just <stat>[,lac,ci]

    def _registration_back_after(self, seconds: float):
        def back():
            if not self._stop.wait(seconds) and self.network_up:
                self._registration_changed()

        threading.Thread(target=back, daemon=True).start()

    def _at_csq(self, mode, arg):
        if mode == "test":
            return ["+CSQ: (0-31,99),(0-7,99)"]
        return ["+CSQ: 21,99" if self.network_up else "+CSQ: 99,99"]

    def _at_creg(self, mode, arg):
        if mode == "read":
            return [self._registration_line("CREG", self.creg_mode)]
        if mode == "set" and self.profile.registration_reports:
            self.creg_mode = int(arg or 0)
        return ["+CREG: (0-2)"] if mode == "test" else []

    def _at_cgreg(self, mode, arg):
        if mode == "read":
            return [self._registration_line("CGREG", self.cgreg_mode)]
        if mode == "set":
            self.cgreg_mode = int(arg or 0)
        return ["+CGREG: (0-2)"] if mode == "test" else []

    def _at_cops(self, mode, arg):
        if mode == "read":
            registered = self._registration() in (HOME, ROAMING)
            return [f'+COPS: 0,0,"{self.operator}",0' if registered else "+COPS: 0"]
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
            return ["+CSCS: (" + ",".join(f'"{c}"' for c in CHARSETS) + ")"]
        charset = arg.strip('"').upper()
        if charset not in CHARSETS:
            raise ModemError("CME", 4)
        self.charset = charset
        return []
