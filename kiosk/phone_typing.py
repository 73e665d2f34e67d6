"""The mobile number a customer is typing at the kiosk, shown back as it grows in the branch's
national format ("07700 900123", "090-1234-5678", "555 12 34 56"). libphonenumber's rules live
on the server only, so the kiosk asks here instead of carrying its own copy of them."""
from __future__ import annotations

import unicodedata

import phonenumbers

from core.errors import ValidationError
from core.models import Branch

from .checkin import check_phone

MAX_KEYED = 20  # the kiosk's input holds no more


def keyed(raw) -> str:
    """What was typed, as the formatter reads it: ASCII digits (a Japanese keyboard's full-width
    ones too) and a leading +; spaces, dashes and anything else dropped."""
    if not isinstance(raw, str):
        return ""
    text = unicodedata.normalize("NFKC", raw[:4 * MAX_KEYED]).strip()
    digits = "".join(ch for ch in text if "0" <= ch <= "9")
    return (("+" if text.startswith("+") else "") + digits)[:MAX_KEYED]


def as_typed(raw, branch: Branch) -> str:
    """The number so far, formatted; a whole mobile number exactly as the next screen will show it.
    Never an error: a half-typed number is not a mistake yet."""
    typed = keyed(raw)
    if not typed.strip("+"):
        return typed
    try:
        return check_phone(typed, branch)["display"]
    except ValidationError:
        pass
    formatter = phonenumbers.AsYouTypeFormatter(branch.country or "ZZ")
    shown = typed
    for ch in typed:
        shown = formatter.input_digit(ch)
    return shown.strip() or typed
