"""Who may do what. Staff sign in with a password (throttled: core/throttle.py) into a session;
integrations call /api with a token (core/tokens.py), or HTTP Basic only where API_BASIC_AUTH allows.

A session ends at logout or a password change, everywhere at once: the session keeps the user's
`session_epoch` (StaffUser.get_id is "id:epoch") and both replace it. It also ends after
STAFF_IDLE_MINUTES without a request.
"""
import hmac
import logging
import secrets
from functools import wraps

from flask import current_app, g, jsonify, redirect, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from . import clock, security, throttle, tokens
from .database import write_transaction
from .errors import SeedError, ValidationError
from .extensions import db, login_manager
from .models import StaffUser, new_session_epoch
from .throttle import TooManyAttempts  # noqa: F401  (the web layer catches it from here)

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200
SEEN = "seen"  # the session's latest request, in seconds since the epoch (from the clock)
SEEN_STEP = 60  # "seen" is refreshed at most this often: not a new cookie on every request
EXPIRED = "session_expired"  # tells the login page why it is shown
DEFAULT_IDLE_MINUTES = 480  # a working day
KEPT_AFTER_LOGOUT = ("language",)


class Forbidden(SeedError):
    status = 403
    code = "forbidden"


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def client_address() -> str:
    """core.security's, never empty: throttling and rate limits need a key."""
    return security.client_address() or "unknown"


def idle_minutes() -> int:
    return current_app.config.get("STAFF_IDLE_MINUTES", DEFAULT_IDLE_MINUTES)


# --- passwords ---------------------------------------------------------------------------------

def _dummy_hash() -> str:
    """A hash of no one's password, made like real ones: checking it costs what checking a real
    user's costs, so the time of an answer does not tell whether the username exists."""
    method = current_app.config["PASSWORD_HASH_METHOD"]
    made = current_app.extensions.setdefault("seed.dummy_hash", {})
    if method not in made:
        made[method] = generate_password_hash(secrets.token_urlsafe(16), method=method)
    return made[method]


def _password_matches(user: StaffUser | None, password: str) -> bool:
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return False
    return user.check_password(password)


def authenticate(username: str, password: str, address: str | None = None) -> StaffUser | None:
    """The active user with this password, or None. TooManyAttempts (429) while the username or
    the address is locked, without looking at the password."""
    now = clock.now()
    throttle.check(username, address, now)
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == (username or "")[:40]))
    if _password_matches(user, password or "") and user.active:
        throttle.succeeded(username)
        return user
    throttle.failed(username, address, now)
    return None


def change_password(user: StaffUser, current: str, new: str, repeat: str, address: str | None = None) -> None:
    """Check the current password (a failure counts toward the login lock), set the new one and end
    every other session of this user; this one goes on. ValidationError names the field."""
    now = clock.now()
    throttle.check(user.username, address, now)
    if not user.check_password(current or ""):
        throttle.failed(user.username, address, now)
        raise ValidationError(gettext("The current password is wrong."), {"current_password": "wrong"})
    new = new or ""
    if len(new) < MIN_PASSWORD_LENGTH:
        raise ValidationError(gettext("Passwords need at least %(count)s characters.", count=MIN_PASSWORD_LENGTH),
                              {"new_password": "too short"})
    if len(new) > MAX_PASSWORD_LENGTH:
        raise ValidationError(gettext("Passwords have at most %(most)s characters.", most=MAX_PASSWORD_LENGTH),
                              {"new_password": "too long"})
    if new != repeat:
        raise ValidationError(gettext("The two new passwords differ."), {"repeat_password": "different"})
    if new == current:
        raise ValidationError(gettext("The new password is the current one."), {"new_password": "unchanged"})
    set_password(user, new)
    log.info("password changed: username %r from %s; its other sessions ended", user.username, address)
    start_session(user)


def set_password(user: StaffUser, password: str) -> None:
    """A new password ends every session of the user, on every device."""
    with write_transaction():
        user.set_password(password)
        user.session_epoch = new_session_epoch()


# --- sessions ----------------------------------------------------------------------------------

def start_session(user: StaffUser) -> None:
    login_user(user)
    session[SEEN] = clock.now().timestamp()


def end_every_session(user: StaffUser) -> None:
    """Every session of this user, on any device, is refused from its next request."""
    with write_transaction():
        user.session_epoch = new_session_epoch()


def log_out(user: StaffUser) -> None:
    end_every_session(user)
    logout_user()
    _forget_session()


def _forget_session() -> None:
    """Nothing of an ended session stays (the console's counter, say) but the language chosen.
    Not logout_user(): inside the loader it would load the user again."""
    keep = {key: session[key] for key in KEPT_AFTER_LOGOUT if key in session}
    session.clear()
    session.update(keep)


def background(view):
    """Marks a view a page calls by itself (the console's panel refresh): it needs a live session,
    but it is no sign that anyone is there, so it does not keep the session alive."""
    view.seed_background = True
    return view


def _by_a_person() -> bool:
    view = current_app.view_functions.get(request.endpoint)
    return not getattr(view, "seed_background", False)


def _still_fresh() -> bool:
    """False after STAFF_IDLE_MINUTES without a request; otherwise note this request."""
    seen, now = session.get(SEEN), clock.now().timestamp()
    if not isinstance(seen, (int, float)) or now - seen > idle_minutes() * 60:
        return False
    if now - seen >= SEEN_STEP and _by_a_person():
        session[SEEN] = now
    return True


def load_user(user_id):
    ident, colon, epoch = str(user_id).partition(":")
    if not colon or not ident.isdigit() or len(ident) > 18:  # a session from before epochs: log in again
        _forget_session()
        return None
    user = db.session.get(StaffUser, int(ident))
    if user is None or not user.active or not hmac.compare_digest(user.session_epoch.encode(), epoch.encode()):
        _forget_session()
        return None
    if not _still_fresh():
        log.info("session of %r ended after %d idle minutes", user.username, idle_minutes())
        _forget_session()
        g.seed_session_expired = True
        return None
    return user


def load_from_request(req):
    """An API request's principal from `Authorization: Bearer <token>` (or HTTP Basic where
    API_BASIC_AUTH allows). A refused token is remembered for the 401's message."""
    if not req.path.startswith("/api/"):
        return None
    # Nobody is signed in until this returns: a refusal's words (the language selector reads
    # current_user) must not load the user again, which would end only in a RecursionError.
    g._login_user = login_manager.anonymous_user()
    scheme, _, credentials = req.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        try:
            return tokens.principal_for(credentials.strip())
        except tokens.TokenRefused as refused:
            g.seed_auth_refused = refused
            return None
    if scheme.lower() == "basic":
        if not current_app.config.get("API_BASIC_AUTH", False):
            g.seed_auth_refused = tokens.TokenRefused(
                gettext("HTTP Basic is switched off: send an API token as Authorization: Bearer <token>."),
                {"basic": "off"})
            return None
        auth = req.authorization
        return authenticate(auth.username or "", auth.password or "", client_address()) if auth else None
    return None


def unauthorized():
    refused, expired = g.get("seed_auth_refused"), g.get("seed_session_expired")
    if is_api_request():
        if refused is not None:
            body = {"error": refused.code, "message": refused.message, "detail": refused.detail}
        elif expired:
            body = {"error": "session_expired", "detail": {"idle_minutes": idle_minutes()},
                    "message": gettext("The session ended after a time without activity: log in again.")}
        else:
            hint = "Log in as staff, or send an API token as Authorization: Bearer <token>."  # detail: as ever
            body = {"error": "unauthorized", "detail": hint,
                    "message": gettext("Log in as staff, or send an API token as Authorization: Bearer <token>.")}
        return jsonify(body), 401
    if expired:
        session[EXPIRED] = True
    return redirect(url_for("staff.login", next=request.full_path if request.query_string else request.path))


def init_app(app) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "staff.login"
    login_manager.session_protection = "strong"
    login_manager.user_loader(load_user)
    login_manager.request_loader(load_from_request)
    login_manager.unauthorized_handler(unauthorized)


def admin_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_admin:
            raise Forbidden(gettext("Only an administrator may do this."))
        return view(*args, **kwargs)

    return wrapper
