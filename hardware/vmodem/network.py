"""The network side: texts the modem sends (AT+CMGS) reach virtual handsets after the network's
latency, status reports come back, and handsets send texts to the modem (`inject`)."""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from gsmmodem.pdu import Concatenation, decodeSmsPdu
from gsmmodem.util import SimpleOffsetTzInfo

from ..pdu import deliver_pdus, encoding_of, status_report_pdu
from .errors import ModemError
from .memories import Stored

DELIVERED, UNDELIVERABLE = 0x00, 0x41  # TP-Status: received by the handset / permanent failure
UCS2_ADDRESS = re.compile(r"^(?:[0-9A-Fa-f]{4})+$")


def whole(text: str) -> str:
    """python-gsmmodem decodes UCS-2 one 16-bit unit per character, so an emoji arrives as two
    surrogate code points: join the pairs back into characters (a lone half stays as it is)."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


@dataclass
class Delivered:
    """A text as the handset shows it: all its parts joined."""

    number: str
    body: str
    at: datetime
    parts: int
    encoding: str
    references: list[int] = field(default_factory=list)

    def as_dict(self):
        return {"number": self.number, "body": self.body, "time": self.at.isoformat(), "parts": self.parts,
                "encoding": self.encoding, "references": self.references}


class Network:
    # --- the handset side ---------------------------------------------------------------------

    def messages_for(self, number: str) -> list[dict]:
        with self._lock:
            return [m.as_dict() for m in self.handsets.get(number, [])]

    def sent_from(self, number: str) -> list[dict]:
        with self._lock:
            return list(self.handset_senders.get(number, []))

    def inject(self, sender: str, text: str, when: datetime | None = None, *, split_pairs: bool = False) -> None:
        """A handset sends `text` to this modem: stored in memory, announced with +CMTI.
        `split_pairs`: let a part boundary fall inside an emoji, as some phones do."""
        when = when or datetime.now(timezone.utc)
        with self._lock:
            self.handset_senders.setdefault(sender, []).append({"body": text, "time": when.isoformat()})
            self._inbound_reference = (self._inbound_reference + 1) % 256
            pdus = deliver_pdus(sender, text, when.astimezone(SimpleOffsetTzInfo(0)), self._inbound_reference,
                                self.smsc or "+447785016005", split_pairs=split_pairs)
            for pdu, length in pdus:
                part = whole(decodeSmsPdu(pdu).get("text", ""))
                self._store_inbound(Stored(0, pdu, length, sender, part, when))

    # --- settings (27.005) ----------------------------------------------------------------------

    def _at_cmgf(self, mode, arg):
        if mode == "read":
            return [f"+CMGF: {int(self.text_mode)}"]
        if mode == "test":
            return ["+CMGF: (0,1)"]
        if arg not in ("0", "1"):
            raise ModemError("CMS", 302)
        self.text_mode = arg == "1"
        return []

    def _at_csca(self, mode, arg):
        if mode == "read":
            return [f'+CSCA: "{self.smsc}",{145 if self.smsc.startswith("+") else 129}']
        if mode == "set":
            self.smsc = self._address(arg.split(",")[0].strip('"'))
        return []

    def _at_csmp(self, mode, arg):
        if mode == "read":
            return [f"+CSMP: {self.first_octet},167,0,0"]
        if mode == "set" and arg:
            self.first_octet = int(arg.split(",")[0])
        return []

    def _at_cnmi(self, mode, arg):
        if mode == "read":
            return ["+CNMI: " + ",".join(map(str, self.cnmi))]
        if mode == "test":
            return [self.profile.cnmi_test()]
        values = [int(v) if v.strip() else 0 for v in arg.split(",")] + [0] * 5
        if values[3] == 2 and not self.profile.status_report_memory:
            raise ModemError("CMS", 303)  # no SR to keep reports in: only <ds>=1 (+CDS) is possible
        self.cnmi = tuple(values[:5])
        return []

    def _address(self, value: str) -> str:
        """A number as the TE character set writes it: "002B0039..." when AT+CSCS="UCS2"."""
        if self.charset == "UCS2" and UCS2_ADDRESS.match(value):
            decoded = bytes.fromhex(value).decode("utf-16-be", "replace")
            if re.fullmatch(r"\+?[0-9]+", decoded):
                return decoded
        return value

    # --- sending --------------------------------------------------------------------------------

    def _at_cmgs(self, mode, arg):
        if mode == "test":
            return []
        target = self._address(arg.split(",")[0].strip('"')) if self.text_mode else int(arg)
        with self._lock:
            self._pdu_target = target
        self._write(b"\r\n> ")
        return "PROMPT"

    def _submit(self, target, payload: str) -> list[str]:
        """A text handed over after the > prompt: wait the network's latency, answer +CMGS."""
        if self.text_mode:
            number = target
            try:
                text = bytes.fromhex(payload).decode("utf-16-be", "surrogatepass") if self.charset == "UCS2" else payload
            except ValueError:
                raise ModemError("CMS", 305) from None  # not hex: invalid text mode parameter
            units = len(text.encode("utf-16-le", "surrogatepass")) // 2
            if units > (70 if self.charset == "UCS2" else 160):
                raise ModemError("CMS", 305)  # text mode cannot split a long text
            udh, srr, own_smsc = None, bool(self.first_octet & 0x20), False
        else:
            try:
                submit = decodeSmsPdu(payload)
            except Exception:  # noqa: BLE001  (a malformed PDU is the sender's fault: CMS 304)
                raise ModemError("CMS", 304) from None
            if submit["type"] != "SMS-SUBMIT" or submit["tpdu_length"] != target:
                raise ModemError("CMS", 304)
            number, text = submit["number"], submit.get("text", "")
            udh = next((ie for ie in submit.get("udh", []) if isinstance(ie, Concatenation)), None)
            sca_octets = int(payload[:2], 16)
            srr = bool(int(payload[2 + 2 * sca_octets : 4 + 2 * sca_octets], 16) & 0x20)
            own_smsc = sca_octets > 0
        if not (self.smsc or own_smsc):
            raise ModemError("CMS", 330)  # SMSC address unknown: the SIM has none and the PDU named none
        if self.latency:
            self._stop.wait(self.latency)
        with self._lock:
            if not self.network_up or self.barred:
                raise ModemError("CMS", 331)  # no network service
            code = self._failing_sends.pop(0) if self._failing_sends else None
            if code is not None:
                raise ModemError("CMS", code)
            self._reference = (self._reference + 1) % 256
            reference = self._reference
            self._deliver(number, text, udh, reference)
        if srr:
            threading.Thread(target=self._report, args=(reference, number), daemon=True).start()
        return [f"+CMGS: {reference}"]

    def _deliver(self, number, text, udh, reference):
        now = datetime.now(timezone.utc)
        if udh is None:
            body = whole(text)
            message = Delivered(number, body, now, 1, encoding_of(body), [reference])
        else:
            key = (number, udh.reference, udh.parts)
            parts = self._partial.setdefault(key, {})
            parts[udh.number] = (text, reference)
            if len(parts) < udh.parts:
                return
            del self._partial[key]
            body = whole("".join(parts[i][0] for i in sorted(parts)))  # a pair split across parts rejoins
            message = Delivered(number, body, now, udh.parts, encoding_of(body), [parts[i][1] for i in sorted(parts)])
        self.handsets.setdefault(number, []).append(message)
        if self.handset_log:
            with open(self.handset_log, "a", encoding="utf-8", errors="backslashreplace") as handle:
                handle.write(json.dumps(message.as_dict(), ensure_ascii=False) + "\n")

    def _report(self, reference, number):
        """The network's status report, shortly after the +CMGS answer."""
        time.sleep(0.01)
        status = UNDELIVERABLE if number in self.undeliverable else DELIVERED
        now = datetime.now(timezone.utc).astimezone(SimpleOffsetTzInfo(0))
        pdu, length = status_report_pdu(reference, number, now, now, status, self.smsc or "+447785016005")
        with self._lock:
            mode = self.cnmi[3]
            if mode == 1:
                self._write(f"\r\n+CDS: {length}\r\n{pdu}\r\n".encode())
            elif mode == 2:
                index = self._free_index("SR")
                if index is None:
                    self.dropped_reports += 1  # SR is full: the report is lost, as on such modems
                    return
                self.storage["SR"][index] = Stored(0, pdu, length, number, "", datetime.now(timezone.utc))
                if self._master is not None:
                    self._unsolicited(f'+CDSI: "SR",{index}')
