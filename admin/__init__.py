"""The manager's side: settings pages under /admin and the same as JSON under /api/v1/admin.

Views stay thin: they read the form or the JSON body, call the service layer in core/settings
(which the CLI calls too), and render. One module per subject; each registers on `bp` (pages)
and `api` (JSON)."""
from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates", static_folder="static")
api = Blueprint("admin_api", __name__, url_prefix="/api/v1/admin")

SECTIONS = ("branches", "services", "counters", "users", "texts", "screens", "modem")


def init_app(app) -> None:
    from core.extensions import csrf

    from . import branches, common, counters, modem, screens, services, texts, users  # noqa: F401

    csrf.exempt(api)  # JSON only (common.require_json): a cross-site form cannot send it
    app.register_blueprint(bp)
    app.register_blueprint(api)
