"""PDUs the network side produces (SMS-DELIVER, SMS-STATUS-REPORT), built on python-gsmmodem's
codec so the virtual modem encodes text exactly as the library decodes it."""
from datetime import datetime

from gsmmodem.pdu import _encodeAddressField, _encodeTimestamp, encodeGsm7, encodeSmsSubmitPdu

# What a single text holds before it must be split, and each part after: (single, per part).
SEGMENT_LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


def encoding_of(text: str) -> str:
    try:
        encodeGsm7(text)
    except ValueError:
        return "UCS-2"
    return "GSM-7"


def outside_bmp(text: str) -> list[str]:
    """Characters UCS-2 cannot carry (emoji and the like): python-gsmmodem's encoder dies on them."""
    return sorted({ch for ch in text if ord(ch) > 0xFFFF})


def segment_count(text: str) -> int:
    encoding = encoding_of(text)
    length = len(encodeGsm7(text)) if encoding == "GSM-7" else len(text)
    single, per_part = SEGMENT_LIMITS[encoding]
    return 1 if length <= single else -(-length // per_part)


def _address_length(data: bytearray, at: int) -> int:
    """Octets an address field starting at `at` takes (its first octet counts digits or nibbles)."""
    digits = data[at]
    return 2 + (digits + 1) // 2


def deliver_pdus(sender: str, text: str, when: datetime, reference: int, smsc: str) -> list[tuple[str, int]]:
    """The SMS-DELIVER PDUs a handset's text arrives as: (hex, TPDU length) per part.

    python-gsmmodem only encodes SMS-SUBMIT; its user data (alphabet choice, septet packing,
    concatenation headers) is the same in a DELIVER, so we re-frame its SUBMIT PDUs."""
    result = []
    sca = _encodeAddressField(smsc, smscField=True)
    for submit in encodeSmsSubmitPdu("+10", text, reference=reference & 0xFF, requestStatusReport=False):
        data = submit.data
        first_octet = data[1]
        at = 3  # SCA length octet (0), first octet, message reference
        at += _address_length(data, at)
        pid, dcs = data[at], data[at + 1]
        user_data = data[at + 2 :]  # no validity period was asked for: UDL and UD follow
        tpdu = bytearray([0x04 | (first_octet & 0x40)])  # SMS-DELIVER, no more messages, keep UDHI
        tpdu.extend(_encodeAddressField(sender))
        tpdu.extend([pid, dcs])
        tpdu.extend(_encodeTimestamp(when))
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
