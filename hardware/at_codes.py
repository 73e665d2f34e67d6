"""Final result codes of 3GPP TS 27.007 §9.2 (+CME ERROR) and 27.005 §3.2.5 (+CMS ERROR), in the
two forms a modem gives them: numbers (AT+CMEE=1) or words (AT+CMEE=2, on modems that have words).

One table for the gateway (which reads both forms), the probe and the virtual modem (which
answers in either)."""


CME_TEXT = {
    0: "phone failure", 3: "operation not allowed", 4: "operation not supported",
    10: "SIM not inserted", 11: "SIM PIN required", 12: "SIM PUK required", 13: "SIM failure",
    14: "SIM busy", 15: "SIM wrong", 16: "incorrect password", 17: "SIM PIN2 required",
    18: "SIM PUK2 required", 20: "memory full", 21: "invalid index", 22: "not found",
    30: "no network service", 31: "network timeout", 100: "unknown",
}

CMS_TEXT = {
    # 3GPP TS 24.011 causes the network gives back for one text
    1: "Unassigned (unallocated) number", 8: "Operator determined barring", 10: "Call barred",
    21: "Short message transfer rejected", 27: "Destination out of service",
    28: "Unidentified subscriber", 29: "Facility rejected", 30: "Unknown subscriber",
    38: "Network out of order", 41: "Temporary failure", 42: "Congestion",
    47: "Resources unavailable, unspecified", 50: "Requested facility not subscribed",
    # the ME's own
    300: "ME failure", 301: "SMS service of ME reserved", 302: "operation not allowed",
    303: "operation not supported", 304: "invalid PDU mode parameter", 305: "invalid text mode parameter",
    310: "SIM not inserted", 311: "SIM PIN required", 312: "PH-SIM PIN required", 313: "SIM failure",
    314: "SIM busy", 315: "SIM wrong", 316: "SIM PUK required", 317: "SIM PIN2 required",
    318: "SIM PUK2 required", 320: "memory failure", 321: "invalid memory index", 322: "memory full",
    330: "SMSC address unknown", 331: "no network service", 332: "network timeout",
    340: "no +CNMA acknowledgement expected", 500: "unknown error",
}

TEXTS = {"CME": CME_TEXT, "CMS": CMS_TEXT}


def code_of(kind: str, detail: str) -> int | None:
    """The number behind an error's detail, whichever form the modem used ("11" or "SIM PIN required")."""
    detail = detail.strip()
    if detail.isdigit():
        return int(detail)
    wanted = detail.casefold()
    return next((code for code, text in TEXTS[kind].items() if text.casefold() == wanted), None)
