"""Settings: a branch's counters, as pages and as JSON. The rules are in core/settings/counters.py.

Pages: admin.counters_page (GET ?branch=), admin.counter_new (GET, POST ?branch=), admin.counter_edit
(GET, POST /counters/<counter_id>), admin.counter_delete (POST /counters/<counter_id>/delete).
JSON: GET/POST /api/v1/admin/counters?branch=<id>, GET/PUT/DELETE /api/v1/admin/counters/<counter_id>."""
from flask import request
from flask_babel import gettext
from flask_login import login_required

from core import scope
from core.errors import Conflict, ValidationError
from core.models import Counter
from core.openapi import BOOLEAN, INTEGER, Id, Items, STRING, Text, array, body_values, endpoint, model, sent_values
from core.settings import counters as settings
from core.settings import fields
from core.settings import services as service_settings

from . import api, bp
from .common import BRANCH, branch_context, done, page_branch, read_only, refused, render_form, setting

LIST, FORM = "admin/counters.html", "admin/counter.html"


def _from_form(form) -> dict:
    """The form as create() and update() take it: no ticked service means none."""
    return {"name": form.get("name", ""), "services": form.getlist("services[]")}


def _form_page(branch, counter=None, values=None, refusal=None, status=400):
    """The new or edit page; after a refusal, each field's error beside it and the values kept."""
    context = branch_context(
        "counters", branch, counter=counter,
        values=values if values is not None else (settings.describe(counter) if counter else
                                                  {"name": "", "services": []}),
        services=service_settings.in_kiosk_order(branch),
        deletable=counter is not None and not counter.is_open and not settings.has_served(counter))
    if refusal is None:
        return render_form(FORM, **context)
    if isinstance(refusal, ValidationError):
        return refused(FORM, refusal, message=gettext("Nothing was saved: please correct the marked fields."),
                       **context)
    return render_form(FORM, status=status, message=refusal.message, **context)


def _to_list(branch_id, message):
    return done(message, "admin.counters_page", branch=branch_id)


@bp.get("/counters")
@login_required
@scope.require_role("manager")
def counters_page():
    branch = page_branch()
    return render_form(LIST, **branch_context("counters", branch, counters=settings.in_order(branch)))


@bp.route("/counters/new", methods=["GET", "POST"])
@login_required
@scope.require_role("manager")
def counter_new():
    branch = page_branch()
    if request.method == "GET":
        return _form_page(branch)
    submitted = _from_form(request.form)
    try:
        counter = settings.create(branch, submitted)
    except ValidationError as error:
        return _form_page(branch, values=submitted, refusal=error)
    return _to_list(branch.id, gettext("Counter %(name)s is saved.", name=counter.name))


@bp.route("/counters/<int:counter_id>", methods=["GET", "POST"])
@login_required
@scope.require_role("manager")
def counter_edit(counter_id):
    counter = scope.owned(Counter, counter_id, "Counter")
    if request.method == "GET":
        return _form_page(counter.branch, counter)
    submitted = _from_form(request.form)
    try:
        counter = settings.update(counter, submitted)
    except ValidationError as error:
        return _form_page(counter.branch, counter, values={**settings.describe(counter), **submitted}, refusal=error)
    return _to_list(counter.branch_id, gettext("Counter %(name)s is saved.", name=counter.name))


@bp.post("/counters/<int:counter_id>/delete")
@login_required
@scope.require_role("manager")
def counter_delete(counter_id):
    counter = scope.owned(Counter, counter_id, "Counter")
    branch_id, name = counter.branch_id, counter.name
    try:
        settings.delete(counter)
    except Conflict as refusal:
        return _form_page(counter.branch, counter, refusal=refusal, status=refusal.status)
    return _to_list(branch_id, gettext("Counter %(name)s is deleted.", name=name))


# --- JSON --------------------------------------------------------------------------------------

COUNTER = model("AdminCounter", {
    "id": INTEGER, "branch": INTEGER, "name": STRING,
    "services": {**array(INTEGER), "description": "The services whose tickets it calls, by id"},
    "is_open": {**BOOLEAN, "description": "Opened and closed at the console"},
})


def _fields(creating: bool) -> dict:
    """A counter's fields as core/settings/counters.py reads them (its limits); what describe()
    shows besides them is taken back unread."""
    name = Text("Unique in the branch, on one line", max_length=settings.NAME_LENGTH, required=creating)
    return {
        "name": setting(name, required=creating),
        "services": setting(Items("The services it calls tickets of, by id (this branch's); default: none",
                                  of=Id(), max_items=fields.MAX_CHOICES)),
        "id": read_only(INTEGER, "The counter's id"), "is_open": read_only(BOOLEAN, "Open"),
        "branch": BRANCH if creating else read_only(INTEGER, "The counter's branch"),
    }


@api.get("/counters")
@login_required
@scope.require_role("manager")
@endpoint("The branch's counters", role="manager", query={"branch": BRANCH},
          responses={200: model("AdminCounters", {"branch": INTEGER, "counters": array(COUNTER)})})
def counters():
    branch = page_branch()
    return {"branch": branch.id, "counters": [settings.describe(c) for c in settings.in_order(branch)]}


@api.post("/counters")
@login_required
@scope.require_role("manager")
@endpoint("Add a counter to the branch", role="manager", query={"branch": BRANCH}, body=_fields(creating=True),
          responses={201: ("Created", COUNTER)})
def counter_create():
    """{"name": "3", "services": [1, 2]}: 201."""
    branch = page_branch(body_values())
    return settings.describe(settings.create(branch, {k: v for k, v in sent_values().items() if k != "branch"})), 201


@api.get("/counters/<int:counter_id>")
@login_required
@scope.require_role("manager")
@endpoint("One counter", role="manager", responses={200: COUNTER})
def counter(counter_id):
    return settings.describe(scope.owned(Counter, counter_id, "Counter"))


@api.put("/counters/<int:counter_id>")
@login_required
@scope.require_role("manager")
@endpoint("Change a counter: the fields sent change, the others stay", role="manager", body=_fields(creating=False),
          responses={200: COUNTER})
def counter_update(counter_id):
    """The fields given change; "id", "branch" and "is_open" are not read."""
    return settings.describe(settings.update(scope.owned(Counter, counter_id, "Counter"), sent_values()))


@api.delete("/counters/<int:counter_id>")
@login_required
@scope.require_role("manager")
@endpoint("Delete a counter that never served a ticket (rename one that did)", role="manager",
          responses={204: ("Deleted: the answer is empty", {})})
def counter_remove(counter_id):
    """204; 409 for a counter that served tickets (rename it instead) or is open."""
    settings.delete(scope.owned(Counter, counter_id, "Counter"))
    return "", 204
