"""Logging in and out, and one's own account: password and language. Thin: the rules are in
core.auth and core.settings.users."""
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext, refresh
from flask_login import current_user, login_required

from core import audit, auth
from core.database import write_transaction
from core.errors import ValidationError
from core.language import LANGUAGE_KEY
from core.locales import force_locale
from core.settings import users

from . import bp
from .forms import LoginForm
from .outbox import staff_language


def _safe_next(target):
    # Only paths on this site: never an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("staff.console")


def _locked_words(refused: auth.TooManyAttempts) -> str:
    return gettext("Too many failed logins for this account or from this computer. For your safety, "
                   "logging in is paused: try again in %(minutes)s min.", minutes=refused.detail["minutes"])


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    language = staff_language()
    status = 200
    with force_locale(language):
        if session.pop(auth.EXPIRED, False):
            flash(gettext("You were logged out after %(minutes)s minutes without activity. Please log in again.",
                          minutes=auth.idle_minutes()), "info")
        if form.validate_on_submit():
            try:
                user = auth.authenticate(form.username.data, form.password.data, auth.client_address())
            except auth.TooManyAttempts as refused:
                flash(_locked_words(refused), "error")
                status = 429
            else:
                if user is not None:
                    auth.start_session(user)
                    return redirect(_safe_next(request.args.get("next")))
                flash(gettext("Wrong username or password."), "error")
        elif form.errors:
            status = 400
        return render_template("staff/login.html", form=form, page_language=language), status


@bp.post("/logout")
@login_required
def logout():
    with force_locale(staff_language()):
        auth.log_out(current_user._get_current_object())
        flash(gettext("Logged out. Every session of your account has ended, on this device and on any other."), "info")
    return redirect(url_for("staff.login"))


PASSWORD_PROBLEMS = {
    ("current_password", "wrong"): lambda: gettext("The current password is wrong."),
    ("new_password", "too short"): lambda: gettext("The new password needs at least %(count)s characters.",
                                                   count=auth.MIN_PASSWORD_LENGTH),
    ("new_password", "too long"): lambda: gettext("The new password may have at most %(count)s characters.",
                                                  count=auth.MAX_PASSWORD_LENGTH),
    ("new_password", "unchanged"): lambda: gettext("The new password must differ from the current one."),
    ("repeat_password", "different"): lambda: gettext("The two new passwords are not the same."),
}


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    """My account: one's own password and language. Speaks the person's language (core/language.py)."""
    if request.method == "GET":
        return _account_page()
    form = request.form
    try:
        auth.change_password(current_user._get_current_object(), form.get("current_password", ""),
                             form.get("new_password", ""), form.get("repeat_password", ""), auth.client_address())
    except auth.TooManyAttempts as refused:
        flash(_locked_words(refused), "error")
        return _account_page(429)
    except ValidationError as error:
        for problem in (error.detail or {}).items():
            flash(PASSWORD_PROBLEMS[problem](), "error")
        return _account_page(400)
    audit.record("user.password_changed", target=f"user:{current_user.username}", branch_id=current_user.branch_id)
    flash(gettext("Your password is changed. Every other session of your account has ended; this one goes on."), "ok")
    return redirect(url_for("staff.change_password"))


def _account_page(status=200, errors=None):
    return render_template("staff/password.html", counter=None, languages=users.language_choices(),
                           chosen_language=current_user.language or "", min_length=auth.MIN_PASSWORD_LENGTH,
                           errors=errors or {}), status


@bp.post("/language")
@login_required
def change_language():
    """One's own language for the staff pages, kept with the account (None: the browser's). The
    session remembers it too, so the login page speaks it after logging out."""
    if "language" not in request.form:
        return _account_page(400, {"language": gettext("Choose a language.")})
    try:
        user = users.set_language(current_user._get_current_object(), request.form["language"])
    except ValidationError as error:
        return _account_page(400, error.detail)
    if user.language:
        session[LANGUAGE_KEY] = user.language
    else:
        session.pop(LANGUAGE_KEY, None)
    refresh()  # this answer's words already follow the new choice
    flash(gettext("Your language is saved."), "ok")
    return redirect(url_for("staff.change_password"))


@bp.post("/shortcuts")
@login_required
def change_shortcuts():
    """One's own choice: the console's single-key shortcuts (N, R, S, C) on or off. A key pressed
    by accident, or a speech-input word, must not call a customer (WCAG 2.1.4)."""
    user = current_user._get_current_object()
    wanted = request.form.get("shortcuts") == "on"
    if wanted != user.shortcuts:
        with write_transaction():
            user.shortcuts = wanted
        audit.record("settings.changed", target=f"user:{user.username}", branch_id=user.branch_id,
                     detail={"fields": ["shortcuts"], "shortcuts": wanted})
    flash(gettext("Keyboard shortcuts are on.") if wanted else gettext("Keyboard shortcuts are off."), "ok")
    return redirect(url_for("staff.change_password"))
