"""The service layer of the settings: branches, services, counters, users, texts, screens, modems.

The web pages (admin/), the JSON API (/api/v1/admin) and the CLI (core/cli) all call these
functions. Each validates everything first and collects an error per field (FieldErrors), then
changes all or nothing in one transaction and records the change in the audit log."""
from ..errors import ValidationError


class FieldErrors:
    """Errors per field, gathered before anything changes; raise() refuses them all at once."""

    def __init__(self):
        self.fields: dict[str, str] = {}

    def add(self, field: str, message: str) -> None:
        self.fields.setdefault(field, str(message))

    def __contains__(self, field: str) -> bool:
        return field in self.fields

    def __bool__(self) -> bool:
        return bool(self.fields)

    def raise_if_any(self, message: str | None = None) -> None:
        if self.fields:
            first = next(iter(self.fields.values()))
            raise ValidationError(message or first, dict(self.fields))
