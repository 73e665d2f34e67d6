"""Staff side: the console (call next, recall, no-show, transfer, hold, serve) and the JSON API."""
from flask import Blueprint

bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder="templates", static_folder="static")
api = Blueprint("api", __name__, url_prefix="/api/v1")


def init_app(app) -> None:
    from core.extensions import csrf

    from . import admin, api_routes, appointments_api, errors, inbox, outbox, routes  # noqa: F401  (they register on the blueprints)

    # The API takes JSON only (see api_routes.require_json); a cross-site form cannot send that.
    csrf.exempt(api)
    app.register_blueprint(bp)
    app.register_blueprint(api)
    from . import appointment_import

    appointment_import.init_app(app)
