"""What every JSON endpoint needs from the request."""
from flask import abort, request

from .errors import ValidationError


def json_object(*, empty_ok=False) -> dict:
    """The request body as a JSON object: 415 when it is not JSON, 400 when it is not an object.
    `empty_ok`: an empty body is {} (action endpoints that take no parameters)."""
    if empty_ok and not request.get_data():
        return {}
    if not request.is_json:
        abort(415, "Send JSON with Content-Type: application/json.")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError("The body must be a JSON object.")
    return data
