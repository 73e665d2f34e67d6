"""One place that turns errors into responses: JSON under /api, a page for people."""
from flask import jsonify, render_template
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from core.auth import is_api_request
from core.errors import SeedError

from . import bp


def _respond(status, code, message, detail=None):
    if is_api_request():
        return jsonify({"error": code, "message": message, "detail": detail}), status
    return render_template("staff/error.html", status=status, message=message), status


def _page_words(error: HTTPException) -> str:
    """Werkzeug's own descriptions are English: the usual ones in the reader's language. A
    description a view gave is already in its words."""
    if isinstance(error, CSRFError):
        return gettext("This form has expired or did not come from this site: reload the page and try again.")
    if error.description != type(error).description:
        return error.description
    return {
        400: gettext("The request could not be understood."),
        403: gettext("You may not open this page."),
        404: gettext("There is nothing at this address."),
        405: gettext("This address does not take that kind of request."),
        413: gettext("What was sent is too large."),
        429: gettext("Too many requests: wait a moment and try again."),
        500: gettext("Something went wrong on the server. Please try again."),
    }.get(error.code, error.description)


@bp.app_errorhandler(SeedError)
def domain_error(error: SeedError):
    return _respond(error.status, error.code, error.message, error.detail)


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException):
    code = (error.name or "error").lower().replace(" ", "_")
    return _respond(error.code, code, error.description if is_api_request() else _page_words(error))
