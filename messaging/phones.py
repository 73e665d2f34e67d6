"""Phone numbers: parsed and checked with the phonenumbers library, stored as E.164."""
import functools

import phonenumbers

from core.errors import ValidationError
from core.privacy import masked  # noqa: F401  (one rule for masking numbers, kept in core)


def e164(raw, country: str | None = None, field: str = "phone") -> str:
    """The number in E.164, or a ValidationError saying what is wrong with it."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 32:
        raise ValidationError("A phone number is required (at most 32 characters).", {field: "required"})
    if country is not None and not isinstance(country, str):
        raise ValidationError("A country is a two-letter code, such as GE.", {"country": "not a code"})
    if raw in _VALID:
        return raw
    return _parsed(raw, country, field)


# Numbers in E.164 that a check of its own has just parsed and found valid (the kiosk's, which
# also asks for a mobile number): a new customer's number reached the outbox's check with its
# welcome text in the same request and was parsed twice. Any country reads an E.164 number alike.
_VALID: dict[str, None] = {}
_VALID_KEPT = 4096


def checked_elsewhere(number: str) -> None:
    """`number`, in E.164, was just parsed and found valid: e164() takes it as it is."""
    if number in _VALID:
        return
    while len(_VALID) >= _VALID_KEPT:
        _VALID.pop(next(iter(_VALID), None), None)  # the oldest
    _VALID[number] = None


# A number is checked again on its way to the outbox, for each text: parsing is the costly part,
# and its answer depends on nothing but the arguments (a refusal is not kept: raised each time).
@functools.lru_cache(maxsize=4096)
def _parsed(raw: str, country: str | None, field: str) -> str:
    try:
        number = phonenumbers.parse(raw, country)
    except phonenumbers.NumberParseException:
        raise ValidationError(f"{raw[:32]!r} is not a phone number.", {field: "not a phone number"}) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(f"{raw[:32]!r} is not a valid phone number.", {field: "invalid"})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
