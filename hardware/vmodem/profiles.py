"""Modem models as data. The dispatcher and the memories ask the profile; nothing tests its name.

What each one is for:
- default: what the virtual modem always was (ME, SM and SR memories, numeric errors).
- sim800: SIMCom SIM800-class: the SIM is its only memory, so there is no SR either; status
  reports therefore come straight to the port as +CDS (CNMI <ds>=1). A client asking for
  <ds>=2 gets +CMS ERROR: 303 (operation not supported), which is what makes python-gsmmodem
  fall back to AT+CNMI=2,1,0,1,0 as it does on the real thing. AT+CMEE=2 answers in words.
- huawei: Huawei E3131-class stick: SM and ME, no SR; knows +CGREG; AT+CREG=2 adds the
  location area and cell to +CREG? and to the unsolicited +CREG lines it then sends.
- full_sr: SR exists but is full of old reports nobody deleted. A new report is dropped,
  unannounced (what these modems do: there is no place to put it and the network is not asked
  to retry a report), until a client deletes some. `VirtualModem.dropped_reports` counts them.
- textmode_ucs2: starts in text mode; with AT+CSCS="UCS2" the numbers in AT+CMGS, +CMGL and
  +CMGR are UCS2 hex like the bodies, as 27.005 §3.1 says (many clients forget this).
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Every profile answers these; a profile's `extra_commands` adds to them.
COMMON_COMMANDS = frozenset({
    "+CGMI", "+CGMM", "+CGMR", "+CGSN", "+CIMI", "+CNUM", "+CPIN", "+CMEE", "+CFUN", "+CSQ", "+CREG",
    "+COPS", "+CMGF", "+CSCA", "+CSMP", "+CPMS", "+CNMI", "+CMGS", "+CMGR", "+CMGL", "+CMGD", "+CSCS",
    "+CLIP", "+CRC", "+CVHU", "+CLAC", "+CBC", "+CPAS", "+CSDH", "+CGSMS",
})


@dataclass(frozen=True)
class Profile:
    name: str
    manufacturer: str = "Seed"
    model: str = "Virtual GSM Modem"
    revision: str = "1.0"
    banner: tuple[str, ...] = ("Seed Virtual GSM Modem", "Revision 1.0")  # ATI; {imei} is filled in
    # AT+CPMS=?: what <mem1> (read, delete), <mem2> (write) and <mem3> (receive) may each name
    memories: tuple[tuple[str, ...], ...] = (("ME", "SM", "SR"), ("ME", "SM"), ("ME", "SM"))
    initial_memories: tuple[str, str, str] = ("ME", "ME", "ME")
    capacities: dict[str, int] = field(default_factory=dict)  # per memory; others hold VirtualModem.capacity
    prefilled_reports: int = 0  # old status reports already in SR at power-on
    verbose_errors: bool = False  # AT+CMEE=2 gives words instead of numbers
    extra_commands: frozenset[str] = frozenset()
    registration_reports: bool = False  # AT+CREG=1/2 honoured: <lac>,<ci> and unsolicited +CREG
    location: tuple[str, str] = ("1A2B", "00C3D4E5")
    ucs2_addresses: bool = False
    text_mode_at_start: bool = False

    @property
    def commands(self) -> frozenset[str]:
        return COMMON_COMMANDS | self.extra_commands

    @property
    def known_memories(self) -> frozenset[str]:
        return frozenset(m for slot in self.memories for m in slot)

    @property
    def status_report_memory(self) -> bool:
        """Whether CNMI <ds>=2 (store reports in SR, announce with +CDSI) is possible."""
        return "SR" in self.known_memories

    def cpms_test(self) -> str:
        return "+CPMS: " + ",".join("(" + ",".join(f'"{m}"' for m in slot) + ")" for slot in self.memories)

    def cnmi_test(self) -> str:
        ds = "(0-2)" if self.status_report_memory else "(0,1)"
        return f"+CNMI: (0-2),(0-3),(0-3),{ds},(0,1)"


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("default"),
    Profile(
        "sim800", manufacturer="SIMCOM_Ltd", model="SIMCOM_SIM800L", revision="Revision:1418B04SIM800L24",
        banner=("SIM800 R14.18",), memories=(("SM",), ("SM",), ("SM",)), initial_memories=("SM", "SM", "SM"),
        capacities={"SM": 30}, verbose_errors=True,
    ),
    Profile(
        "huawei", manufacturer="huawei", model="E3131", revision="21.158.23.00.209",
        banner=("Manufacturer: huawei", "Model: E3131", "Revision: 21.158.23.00.209", "IMEI: {imei}",
                "+GCAP: +CGSM,+DS,+ES"),
        memories=(("SM", "ME"), ("SM", "ME"), ("SM", "ME")), initial_memories=("SM", "SM", "SM"),
        capacities={"SM": 50, "ME": 100}, extra_commands=frozenset({"+CGREG"}), registration_reports=True,
    ),
    Profile(
        "full_sr", model="Virtual GSM Modem (SR full)",
        memories=(("SM", "ME", "SR"), ("SM", "ME"), ("SM", "ME")), initial_memories=("SM", "SM", "SM"),
        capacities={"SR": 20}, prefilled_reports=20,
    ),
    Profile("textmode_ucs2", model="Virtual GSM Modem (text mode, UCS2)", ucs2_addresses=True,
            text_mode_at_start=True),
)}


def profile_named(name: str | Profile | None) -> Profile:
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name or "default"]
    except KeyError:
        raise ValueError(f"unknown virtual modem profile {name!r}; known: {', '.join(PROFILES)}") from None
