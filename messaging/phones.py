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
    return _parsed(raw, country, field)


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
