"""One place that turns errors into responses: JSON under /api, a page for people."""
from flask import jsonify, render_template
from werkzeug.exceptions import HTTPException

from core.auth import is_api_request
from core.errors import SeedError

from . import bp


def _respond(status, code, message, detail=None):
    if is_api_request():
        return jsonify({"error": code, "message": message, "detail": detail}), status
    return render_template("staff/error.html", status=status, message=message), status


@bp.app_errorhandler(SeedError)
def domain_error(error: SeedError):
    return _respond(error.status, error.code, error.message, error.detail)


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException):
    code = (error.name or "error").lower().replace(" ", "_")
    return _respond(error.code, code, error.description)
