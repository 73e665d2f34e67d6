"""The exception tree of the domain. The web layer maps each to an HTTP status and a message."""


class SeedError(Exception):
    status = 400
    code = "error"

    def __init__(self, message: str, detail=None):
        super().__init__(message)
        self.message = message
        self.detail = detail


class ValidationError(SeedError):
    """Bad input; detail maps field names to reasons."""

    code = "invalid"


class NotFound(SeedError):
    status = 404
    code = "not_found"


class InvalidTransition(SeedError):
    """The ticket is not in a state that allows this move."""

    status = 409
    code = "invalid_transition"


class Conflict(SeedError):
    status = 409
    code = "conflict"


class UnsupportedMediaType(SeedError):
    """The body is not JSON where only JSON is taken."""

    status = 415
    code = "unsupported_media_type"
