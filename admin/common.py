"""What every settings page and its JSON twin share: JSON bodies, the branch a page is about,
and the round trip of a form whose fields the service layer refused."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_login import login_required

from core import scope
from core.errors import UnsupportedMediaType, ValidationError
from core.openapi import Any, Field, Id, nullable, query_values
from core.web import arg_number

from . import api, bp


@api.before_request
def require_json():
    if request.method in ("POST", "PUT", "PATCH") and not request.is_json:
        raise UnsupportedMediaType("Send JSON (Content-Type: application/json).")


# --- what the JSON endpoints declare (core/openapi.py) ------------------------------------------

BRANCH = Id("The branch (default: the caller's first)")


def setting(like: Field | dict, description: str = "", *, null: bool = False, required: bool = False) -> Any:
    """A field the service layer reads (core/settings), described with `like`: a field kind built
    from the service layer's own limits, or a JSON Schema. It is passed on as sent: the service
    layer checks every field of a body and names each bad one at once (a check here would stop at
    the first), and the pages' forms go through the same checks. `null`: null means something
    (back to the default, remove)."""
    schema = like.schema() if isinstance(like, Field) else dict(like)
    if not description and isinstance(like, Field):
        description = like.description
    return Any(description, required=required, schema_of=nullable(schema) if null else schema)


def read_only(like: Field | dict, what: str) -> Any:
    """A field the answer shows and the service layer takes back unread, so that what a GET
    answered may be sent back as it came."""
    return setting(like, f"{what}: read-only, not changed by sending it")


def asked_branch_id() -> int | None:
    """?branch= as the endpoint's declaration read it (a JSON endpoint) or as a page sends it."""
    return query_values()["branch"] if "branch" in query_values() else arg_number("branch")


def page_branch(data: dict | None = None):
    """The branch a page or call is about: ?branch= (or "branch" in the body) if within reach,
    else the person's first branch. Another branch's id answers 404 (the scope rule)."""
    wanted = None
    if data is not None and data.get("branch") is not None:
        wanted = data.get("branch")
    else:
        wanted = asked_branch_id()
    return scope.branch(wanted)


def branch_context(section: str, branch, **context) -> dict:
    """What every page of one branch's settings shows: its sub-nav section, the branch, and the
    branches the chooser offers (admin/_branch_chooser.html)."""
    return {"section": section, "settings_branch": branch, "branch": branch, "branches": scope.branches(),
            "page_language": str(get_locale() or "en"), **context}


def form_data() -> dict:
    """A submitted form as a dict: one value per field, lists for fields given several times."""
    data = {}
    for key in request.form:
        if key == "csrf_token":
            continue
        values = request.form.getlist(key)
        data[key] = values if len(values) > 1 or key.endswith("[]") else values[0]
    return {key.removesuffix("[]"): value for key, value in data.items()}


def render_form(template: str, *, errors: dict | None = None, status: int = 200, **context):
    """A settings page; with errors, the field errors beside each field and the submitted values kept."""
    return render_template(template, errors=errors or {}, **context), status


def field_errors(error: ValidationError) -> dict:
    """A refusal's message per field (none when it is about the whole form)."""
    return error.detail if isinstance(error.detail, dict) else {}


def refused(template: str, error: ValidationError, *, message: str | None = None, **context):
    """The page again after a refusal, status 400: each field's error beside it, `message` (else
    the refusal's own) above the form."""
    return render_form(template, errors=field_errors(error), status=400, message=message or error.message, **context)


def done(message: str, endpoint: str, **values):
    """After a change: say so on the next page (a flash) and go there (post, redirect, get)."""
    flash(message, "ok")
    return redirect(url_for(endpoint, **values))


@bp.get("/")
@login_required
@scope.require_role("manager")
def index():
    for section in ("branches", "services", "counters", "users", "texts", "screens", "modem"):
        if f"admin.{section}_page" in current_app.view_functions:
            return redirect(url_for(f"admin.{section}_page"))
    return redirect(url_for("staff.console"))


@bp.app_context_processor
def settings_context():
    return {"admin_endpoints": set(current_app.view_functions)}
