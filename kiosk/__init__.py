"""Kiosk check-in screens, the check-in API, the customer's own status page, and online
self-booking (kiosk/booking.py: /book/<branch>, and /a/<token> for the customer's booking)."""
from flask import Blueprint

bp = Blueprint("kiosk", __name__, template_folder="templates", static_folder="static", static_url_path="/kiosk/static")
api = Blueprint("kiosk_api", __name__, url_prefix="/api/v1")


def init_app(app) -> None:
    from core.extensions import csrf, init_limiter

    from . import live, routes  # noqa: F401  (routes registers on the blueprints)
    from .booking import booking

    csrf.exempt(api)  # JSON only (checked in routes): a cross-site form cannot send it
    app.register_blueprint(bp)
    app.register_blueprint(api)
    app.register_blueprint(booking)
    init_limiter(app)
    live.init_app(app)  # the status page's Socket.IO namespace
