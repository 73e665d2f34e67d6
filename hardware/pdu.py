"""PDUs the network side produces (SMS-DELIVER, SMS-STATUS-REPORT), built on python-gsmmodem's
codec so the virtual modem encodes text exactly as the library decodes it."""
import functools
from datetime import datetime

from gsmmodem.pdu import GSM7_BASIC, _encodeAddressField, _encodeTimestamp, encodeGsm7, packSeptets

# What a single text holds before it must be split, and each part after: (single, per part).
SEGMENT_LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


@functools.lru_cache(maxsize=64)
def _septets(text: str) -> int | None:
    """The GSM-7 septets `text` takes (an escaped character two), None when it needs UCS-2. Asked
    several times of each text on its way to the outbox (is it valid, how many parts, which
    encoding): encoded once, a character at a time in python-gsmmodem's Python."""
    try:
        return len(encodeGsm7(text))
    except ValueError:
        return None


def encoding_of(text: str) -> str:
    return "UCS-2" if _septets(text) is None else "GSM-7"


def outside_bmp(text: str) -> list[str]:
    """Characters UCS-2 cannot carry (emoji and the like): python-gsmmodem's encoder dies on them."""
    return sorted({ch for ch in text if ord(ch) > 0xFFFF})


def segment_count(text: str) -> int:
    septets = _septets(text)
    encoding, length = ("UCS-2", len(text)) if septets is None else ("GSM-7", septets)
    single, per_part = SEGMENT_LIMITS[encoding]
    return 1 if length <= single else -(-length // per_part)


def deliver_pdus(sender: str, text: str, when: datetime, reference: int, smsc: str, *,
                 split_pairs: bool = False) -> list[tuple[str, int]]:
    """The SMS-DELIVER PDUs a handset's text arrives as: (hex, TPDU length) per part.

    Built as a phone builds them, not with python-gsmmodem's encoder, which writes ord(ch) per
    character (an emoji cannot be encoded) and takes U+001B for the escape to the extension
    table. GSM-7 when every character is in the 23.038 tables (form feed, ^ { } \\ [ ~ ] | €
    take an escape and a septet), else UCS-2 as UTF-16 code units: an emoji is a surrogate pair
    on the wire, and ESC, TAB and other control characters go as UCS-2 too (Android's choice).
    Long texts are split at 153 septets or 67 units behind an 8-bit concatenation header, never
    inside an escape sequence and, unless `split_pairs`, never inside a surrogate pair."""
    extension = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D, "]": 0x3E,
                 "|": 0x40, "€": 0x65}
    basic = {ch: i for i, ch in enumerate(GSM7_BASIC) if i != 0x1B}
    if all(ch in basic or ch in extension for ch in text):
        dcs, single, per_part = 0x00, 160, 153
        units = [[basic[ch]] if ch in basic else [0x1B, extension[ch]] for ch in text]
    else:
        dcs, single, per_part = 0x08, 70, 67
        units = [[ord(ch)] if ord(ch) <= 0xFFFF else [0xD800 | (ord(ch) - 0x10000) >> 10,
                                                      0xDC00 | (ord(ch) - 0x10000) & 0x3FF] for ch in text]
    parts = [[u for group in units for u in group]]
    if len(parts[0]) > single:
        parts = [[]]
        for group in units:
            room = per_part - len(parts[-1])
            if len(group) > room:
                if split_pairs and dcs == 0x08:
                    parts[-1].extend(group[:room])
                    group = group[room:]
                parts.append([])
            parts[-1].extend(group)
    result = []
    sca = _encodeAddressField(smsc, smscField=True)
    for number, part in enumerate(parts, start=1):
        udh = bytes([0x05, 0x00, 0x03, reference & 0xFF, len(parts), number]) if len(parts) > 1 else b""
        if dcs == 0x08:
            user_data = udh + b"".join(u.to_bytes(2, "big") for u in part)
            length = len(user_data)
        elif udh:
            # septets start after the header and the fill bit that puts them on a septet boundary
            user_data = udh + packSeptets(bytearray(part), padBits=(len(udh) * 8) % 7)
            length = len(part) + -(-len(udh) * 8 // 7)
        else:
            user_data, length = packSeptets(bytearray(part)), len(part)
        tpdu = bytearray([0x04 | (0x40 if udh else 0)])  # SMS-DELIVER, no more messages waiting, UDHI
        tpdu.extend(_encodeAddressField(sender))
        tpdu.extend([0x00, dcs])  # PID: plain text
        tpdu.extend(_encodeTimestamp(when))
        tpdu.append(length)
        tpdu.extend(user_data)
        result.append(((bytes(sca) + bytes(tpdu)).hex().upper(), len(tpdu)))
    return result


def status_report_pdu(reference: int, recipient: str, sent: datetime, done: datetime, status: int, smsc: str):
    """SMS-STATUS-REPORT for message reference `reference`; status 0 is delivered, 64+ failed."""
    sca = _encodeAddressField(smsc, smscField=True)
    tpdu = bytearray([0x06, reference & 0xFF])
    tpdu.extend(_encodeAddressField(recipient))
    tpdu.extend(_encodeTimestamp(sent))
    tpdu.extend(_encodeTimestamp(done))
    tpdu.append(status)
    return (bytes(sca) + bytes(tpdu)).hex().upper(), len(tpdu)


def segment_info(text: str) -> dict:
    """What a text costs: its encoding, characters, units (GSM-7 extension characters such as
    € { } [ ] ~ take two), parts, and what one part holds."""
    encoding = encoding_of(text)
    units = len(encodeGsm7(text)) if encoding == "GSM-7" else len(text)
    single, per_part = SEGMENT_LIMITS[encoding]
    return {"encoding": encoding, "characters": len(text), "units": units, "segments": segment_count(text),
            "per_segment": single if units <= single else per_part}
