"""Waiting-room displays: the page, and their Socket.IO namespace fed by the queue engine's events."""
from flask import Blueprint

bp = Blueprint("display", __name__, url_prefix="/display", template_folder="templates", static_folder="static")


def init_app(app) -> None:
    from . import realtime, routes  # noqa: F401  (routes register on bp)

    app.register_blueprint(bp)
    realtime.init_app(app)
