"""The hardware layer's own exceptions; python-gsmmodem's and pyserial's are mapped onto these."""


class HardwareError(Exception):
    pass


class ModemUnavailable(HardwareError):
    """The port is gone, the modem does not answer, or it needs a PIN we do not have: reconnect later."""


class SendRejected(HardwareError):
    """The modem or network refused one text. `permanent`: retrying the same text cannot help."""

    def __init__(self, reason: str, *, code: int | None = None, permanent: bool = False, ambiguous: bool = False):
        super().__init__(reason)
        self.reason, self.code, self.permanent, self.ambiguous = reason, code, permanent, ambiguous


class SimProblem(ModemUnavailable):
    """The SIM stops us: `state` is pin_needed, pin_rejected, puk_required or no_sim. Reconnecting
    cannot help until someone acts, and a refused PIN must never be sent again."""

    def __init__(self, state: str, reason: str):
        super().__init__(reason)
        self.state, self.reason = state, reason
