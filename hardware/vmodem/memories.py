"""3GPP TS 27.005 message memories: ME (the modem's), SM (the SIM's), SR (status reports);
AT+CPMS to choose them, AT+CMGL/CMGR to read and AT+CMGD to delete."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from gsmmodem.pdu import decodeSmsPdu
from gsmmodem.util import SimpleOffsetTzInfo

from ..pdu import status_report_pdu
from .errors import ModemError

MEMORIES = ("ME", "SM", "SR")
STATUS_WORDS = {0: "REC UNREAD", 1: "REC READ", 2: "STO UNSENT", 3: "STO SENT", 4: "ALL"}


@dataclass
class Stored:
    status: int  # 0 unread, 1 read, 2 stored unsent, 3 stored sent
    pdu: str
    tpdu_length: int
    sender: str
    text: str
    at: datetime


def ucs2_hex(text: str) -> str:
    # surrogatepass: half an emoji (a part boundary fell inside it) is still one 16-bit unit
    return text.encode("utf-16-be", "surrogatepass").hex().upper()


class Memories:
    def capacity_of(self, memory: str) -> int:
        return self.profile.capacities.get(memory, self.capacity)

    def _free_index(self, memory: str) -> int | None:
        store = self.storage[memory]
        if len(store) >= self.capacity_of(memory):
            return None
        return next(i for i in range(1, len(store) + 2) if i not in store)

    def _prefill_reports(self):
        """Old reports a previous program never deleted (the full_sr profile)."""
        then = datetime.now(timezone.utc).astimezone(SimpleOffsetTzInfo(0)) - timedelta(days=30)
        for i in range(self.profile.prefilled_reports):
            pdu, length = status_report_pdu(200 + i, "+447700900999", then, then, 0, self.smsc or "+447785016005")
            self.storage["SR"][i + 1] = Stored(1, pdu, length, "+447700900999", "", then)

    def _store_inbound(self, message: Stored):
        memory = self.memories[2]
        index = self._free_index(memory)
        if index is None:
            self.waiting_in_network.append(message)  # the network keeps it until memory frees up
            return
        self.storage[memory][index] = message
        if self.cnmi[1] in (1, 2) and self._master is not None:
            if self._drop_notifications:
                self._drop_notifications -= 1
            else:
                self._unsolicited(f'+CMTI: "{memory}",{index}')

    def _release_network_queue(self):
        while self.waiting_in_network and self._free_index(self.memories[2]) is not None:
            self._store_inbound(self.waiting_in_network.pop(0))

    # --- commands -------------------------------------------------------------------------------

    def _cpms_counts(self):
        return ",".join(f"{len(self.storage[m])},{self.capacity_of(m)}" for m in self.memories)

    def _at_cpms(self, mode, arg):
        if mode == "test":
            return [self.profile.cpms_test()]
        if mode == "read":
            return ["+CPMS: " + ",".join(f'"{m}",{len(self.storage[m])},{self.capacity_of(m)}' for m in self.memories)]
        chosen = [m.strip().strip('"').upper() for m in arg.split(",") if m.strip()]
        if not chosen or any(m not in self.profile.known_memories for m in chosen):
            raise ModemError("CMS", 302)
        for i, memory in enumerate(chosen[:3]):
            self.memories[i] = memory
        return ["+CPMS: " + self._cpms_counts()]

    def _at_cmgr(self, mode, arg):
        with self._lock:
            memory = self.memories[0]
            message = self.storage[memory].get(int(arg))
            if message is None:
                raise ModemError("CMS", 321)  # invalid memory index
            lines = self._render(message, memory)
            if message.status == 0:
                message.status = 1
            return lines

    def _render(self, message: Stored, memory: str, index: int | None = None) -> list[str]:
        prefix = "+CMGR: " if index is None else f"+CMGL: {index},"
        if not self.text_mode:
            return [f"{prefix}{message.status},,{message.tpdu_length}", message.pdu]
        ucs2 = self.charset == "UCS2"
        sender = ucs2_hex(message.sender) if ucs2 and self.profile.ucs2_addresses else message.sender
        stamp = message.at.astimezone(timezone.utc).strftime("%y/%m/%d,%H:%M:%S") + "+00"
        if memory == "SR":
            report = decodeSmsPdu(message.pdu)
            stamp2 = report["discharge"].strftime("%y/%m/%d,%H:%M:%S") + "+00"
            return [f'{prefix}"{STATUS_WORDS[message.status]}",6,{report["reference"]},"{sender}",145,'
                    f'"{stamp}","{stamp2}",{report["status"]}']
        text = ucs2_hex(message.text) if ucs2 else message.text
        return [f'{prefix}"{STATUS_WORDS[message.status]}","{sender}",,"{stamp}"', text]

    def _at_cmgl(self, mode, arg):
        if mode == "test":
            return ['+CMGL: ("REC UNREAD","REC READ","STO UNSENT","STO SENT","ALL")' if self.text_mode else "+CMGL: (0-4)"]
        wanted = arg.strip('"').upper() if arg else ("REC UNREAD" if self.text_mode else "0")
        if self.text_mode:
            codes = {v: k for k, v in STATUS_WORDS.items()}
            if wanted not in codes:
                raise ModemError("CMS", 302)
            status = codes[wanted]
        else:
            status = int(wanted)
        with self._lock:
            memory = self.memories[0]
            lines = []
            for index, message in sorted(self.storage[memory].items()):
                if status == 4 or message.status == status:
                    lines.extend(self._render(message, memory, index))
                    if message.status == 0:
                        message.status = 1
            return lines

    def _at_cmgd(self, mode, arg):
        if mode == "test":
            return [f"+CMGD: (1-{self.capacity_of(self.memories[0])}),(0-4)"]
        values = [v.strip() for v in arg.split(",")]
        index, flag = int(values[0] or 0), int(values[1]) if len(values) > 1 and values[1] else 0
        with self._lock:
            store = self.storage[self.memories[0]]
            if flag == 0:
                if index not in store:
                    raise ModemError("CMS", 321)
                del store[index]
            else:
                doomed = {1: (1,), 2: (1, 3), 3: (1, 2, 3), 4: (0, 1, 2, 3)}[flag]
                for i in [i for i, m in store.items() if m.status in doomed]:
                    del store[i]
            self._release_network_queue()
        return []
