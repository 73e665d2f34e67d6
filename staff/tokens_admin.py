"""Administrators: API tokens for integrations and registered kiosks. A token's secret is shown
once, on the page that answers its creation, and never again. Thin: the rules are in core.tokens."""
import segno
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from markupsafe import Markup

from core import audit, clock, scope, tokens
from core.errors import ValidationError

from . import bp


def _words() -> dict:
    return {
        "roles": {"staff": gettext("Staff"), "manager": gettext("Manager"), "admin": gettext("Administrator")},
        "states": {"active": gettext("active"), "revoked": gettext("revoked"), "expired": gettext("expired")},
    }


def _problem_words(error: ValidationError) -> str:
    """The refusal in the reader's language; core's English words for what this table lacks."""
    words = {
        ("name", "required"): gettext("Give a name that says who uses it (1-80 characters)."),
        ("name", "invalid characters"): gettext("Names may not contain < > or control characters."),
        ("role", "unknown"): gettext("Choose a role."),
        ("branches", "required"): gettext("Choose the branches this token may use."),
        ("branches", "one"): gettext("Choose the kiosk's branch."),
        ("branches", "unknown"): gettext("Choose one of the branches listed."),
        ("branches", "not a number"): gettext("Choose one of the branches listed."),
        ("expires_days", "range"): gettext("A token expires after 1 to %(days)s days, or never.",
                                           days=tokens.MAX_EXPIRY_DAYS),
    }
    found = [words.get(problem) for problem in (error.detail or {}).items()]
    return " ".join(w for w in found if w) or error.message


def _page(template, status=200, **context):
    response = render_template(template, counter=None, now=clock.now(), branches=scope.branches(), words=_words(),
                               **context)
    # A page showing a secret must not be kept by the browser or a proxy.
    return response, status, {"Cache-Control": "no-store"}


def _expires_days(raw):
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(gettext("A token expires after a whole number of days."), {"expires_days": "range"}) from None


@bp.route("/admin/tokens", methods=["GET", "POST"])
@login_required
@scope.require_role("admin")
def tokens_page():
    created = secret = None
    status = 200
    if request.method == "POST":
        form = request.form
        try:
            created, secret = tokens.create(form.get("name"), form.get("role"), form.getlist("branches"),
                                            expires_days=_expires_days(form.get("expires_days")),
                                            created_by=current_user.username)
            audit.token("token.created", created)
            status = 201
        except ValidationError as error:
            flash(_problem_words(error), "error")
            status = 400
    return _page("staff/tokens.html", status, tokens=tokens.listing(kiosks=False), created=created, secret=secret,
                 roles=tokens.ROLES)


@bp.post("/admin/tokens/<int:token_id>/revoke")
@login_required
@scope.require_role("admin")
def revoke_token(token_id):
    token = tokens.revoke(token_id, kiosk=False, by=current_user.username)
    audit.token("token.revoked", token)
    flash(gettext("Token %(name)s is revoked: it no longer opens the API.", name=token.name), "ok")
    return redirect(url_for("staff.tokens_page"))


def setup_link(kiosk, secret) -> str:
    # After '#': the browser never sends it, so the secret stays out of access logs and Referer headers.
    return url_for("kiosk.screen", branch_id=kiosk.branches[0].id, _external=True) + "#setup=" + secret


@bp.route("/admin/kiosks", methods=["GET", "POST"])
@login_required
@scope.require_role("admin")
def kiosks_page():
    created = link = qr = None
    status = 200
    if request.method == "POST":
        try:
            created, secret = tokens.create_kiosk(request.form.get("branch"), request.form.get("name"),
                                                  created_by=current_user.username)
            audit.token("kiosk.registered", created)
            link = setup_link(created, secret)
            qr = Markup(segno.make(link, error="m").svg_inline(scale=4, border=2))
            status = 201
        except ValidationError as error:
            flash(_problem_words(error), "error")
            status = 400
    return _page("staff/kiosks.html", status, kiosks=tokens.listing(kiosks=True), created=created, link=link, qr=qr)


@bp.post("/admin/kiosks/<int:token_id>/revoke")
@login_required
@scope.require_role("admin")
def revoke_kiosk(token_id):
    kiosk = tokens.revoke(token_id, kiosk=True, by=current_user.username)
    audit.token("kiosk.revoked", kiosk)
    flash(gettext("Kiosk %(name)s is revoked: its check-ins now share the limit of its network address.",
                  name=kiosk.name), "ok")
    return redirect(url_for("staff.kiosks_page"))
