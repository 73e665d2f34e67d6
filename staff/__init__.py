"""Staff side: the console (call next, recall, no-show, transfer, hold, serve), the appointments
calendar and the JSON API."""
from flask import Blueprint

bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder="templates", static_folder="static")
api = Blueprint("api", __name__, url_prefix="/api/v1")


def init_app(app) -> None:
    from core.extensions import csrf

    from . import (  # noqa: F401  (they register on the blueprints)
        account, admin, api_docs, api_routes, appointments_api, audit_page, calendar, errors, inbox, outbox, privacy, routes,
        tokens_admin)

    from core import language, scope

    from .words import FILTERS

    # The API takes JSON only (see api_routes.require_json); a cross-site form cannot send that.
    csrf.exempt(api)
    app.jinja_env.globals["has_role"] = scope.has_role  # what a page offers follows the scope rule
    # The header's branch and switcher (core/language.py keeps the branch picked).
    app.jinja_env.globals.update(working_branch=language.working_branch, reachable_branches=scope.branches)
    app.jinja_env.filters.update(FILTERS)
    language.init_pages(app)
    app.register_blueprint(bp)
    app.register_blueprint(api)
    from . import appointment_import

    appointment_import.init_app(app)
    from . import live

    live.init_app(app)  # the console's Socket.IO namespace: a nudge when the branch's queue changes
