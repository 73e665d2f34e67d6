"""The manager's figures: report pages with charts and CSV exports under /reports, the same
figures as JSON under /api/v1/reports. Managers see their branches, admins all, staff none.

The figures come from core/reports.py (the queue) and reports/texts.py (texts and surveys);
reports/figures.py puts each report together, the views only read the request and render."""
from flask import Blueprint

bp = Blueprint("reports", __name__, url_prefix="/reports", template_folder="templates", static_folder="static")
api = Blueprint("reports_api", __name__, url_prefix="/api/v1/reports")


def init_app(app) -> None:
    from core.extensions import csrf

    from . import api_routes, exports, live, pages  # noqa: F401  (they register their views)

    csrf.exempt(api)  # GET only, JSON only
    app.register_blueprint(bp)
    app.register_blueprint(api)
    live.init_app(app)  # the live figures' Socket.IO namespace
