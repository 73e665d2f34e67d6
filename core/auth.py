"""Who may do what: staff sessions (Flask-Login) for pages, the same session or HTTP Basic for the API."""
from functools import wraps

from flask import jsonify, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .errors import SeedError
from .extensions import db, login_manager
from .models import StaffUser


class Forbidden(SeedError):
    status = 403
    code = "forbidden"


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def authenticate(username: str, password: str) -> StaffUser | None:
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is not None and user.active and user.check_password(password):
        return user
    return None


def init_app(app) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "staff.login"
    login_manager.login_message = "Please log in to use the staff console."
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(user_id):
        return db.session.get(StaffUser, int(user_id))

    @login_manager.request_loader
    def load_from_basic_auth(req):
        # Scripts and integrations call the API with HTTP Basic; browsers use the session.
        auth = req.authorization
        if auth is None or auth.type != "basic" or not req.path.startswith("/api/"):
            return None
        return authenticate(auth.username or "", auth.password or "")

    @login_manager.unauthorized_handler
    def unauthorized():
        if is_api_request():
            body = {"error": "unauthorized", "detail": "Log in as staff (session or HTTP Basic) to use this endpoint."}
            return jsonify(body), 401
        return redirect(url_for("staff.login", next=request.full_path if request.query_string else request.path))


def admin_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_admin:
            raise Forbidden("Only an administrator may do this.")
        return view(*args, **kwargs)

    return wrapper
