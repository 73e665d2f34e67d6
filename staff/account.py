"""Logging in and out, and changing one's own password. Thin: the rules are in core.auth."""
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import force_locale, gettext
from flask_login import current_user, login_required

from core import audit, auth
from core.errors import ValidationError

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
    language = staff_language()
    status = 200
    with force_locale(language):
        if request.method == "POST":
            form = request.form
            try:
                auth.change_password(current_user._get_current_object(), form.get("current_password", ""),
                                     form.get("new_password", ""), form.get("repeat_password", ""),
                                     auth.client_address())
            except auth.TooManyAttempts as refused:
                flash(_locked_words(refused), "error")
                status = 429
            except ValidationError as error:
                for problem in (error.detail or {}).items():
                    flash(PASSWORD_PROBLEMS[problem](), "error")
                status = 400
            else:
                audit.record("user.password_changed", target=f"user:{current_user.username}",
                             branch_id=current_user.branch_id)
                flash(gettext("Your password is changed. Every other session of your account has ended; "
                              "this one goes on."), "ok")
                return redirect(url_for("staff.change_password"))
        return render_template("staff/password.html", page_language=language, counter=None,
                               min_length=auth.MIN_PASSWORD_LENGTH), status
