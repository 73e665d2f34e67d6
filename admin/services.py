"""Settings: a branch's services, as pages and as JSON. The rules are in core/settings/services.py.

Pages: admin.services_page (GET ?branch=: the list in kiosk order), admin.service_new (GET, POST
?branch=), admin.service_edit (GET, POST /services/<service_id>), admin.service_move (POST
/services/<service_id>/move, direction=up|down).
JSON: GET/POST /api/v1/admin/services?branch=<id>, GET/PUT /api/v1/admin/services/<service_id>."""
from flask import redirect, request, url_for
from flask_babel import gettext
from flask_login import login_required

from core import scope
from core.errors import ValidationError
from core.language import LANGUAGE_NAMES
from core.models import Service
from core.openapi import (BOOLEAN, Flag, INTEGER, Id, Items, STRING, Text, Whole, array, body_values, endpoint, model,
                          nullable, sent_values)
from core.settings import counters as counter_settings
from core.settings import fields
from core.settings import services as settings
from core.storefront import LANGUAGES

from . import api, bp
from .common import BRANCH, branch_context, done, page_branch, read_only, refused, render_form, setting

LIST, FORM = "admin/services.html", "admin/service.html"


def _from_form(form, branch) -> dict:
    """The form as create() and update() take it: an unticked box is not sent, so it means off
    (paused) or no counter; a name left empty removes that language's name."""
    data = {key: form.get(key, "") for key in ("code", *settings.NUMBERS)}
    data["names"] = {language: form.get(f"names.{language}", "") for language in settings.name_languages(branch)}
    data["active"] = "active" in form
    data["counters"] = form.getlist("counters[]")
    return data


def _form_page(branch, service=None, values=None, refusal: ValidationError | None = None):
    """The new or edit page; after a refusal, status 400 with each field's error and the values kept."""
    shown = values if values is not None else (settings.describe(service) if service else _new_values(branch))
    context = branch_context("services", branch, service=service, values=shown,
                             languages=settings.name_languages(branch), language_names=LANGUAGE_NAMES,
                             counters=counter_settings.in_order(branch), limits=settings.NUMBERS,
                             code_locked=service is not None and settings.code_locked(service))
    if refusal is None:
        return render_form(FORM, **context)
    return refused(FORM, refusal, message=gettext("Nothing was saved: please correct the marked fields."), **context)


def _new_values(branch) -> dict:
    return {**settings.DEFAULTS, "code": "", "names": {}, "counters": [], "position": ""}


def _saved(service):
    return done(gettext("Service %(code)s is saved.", code=service.code), "admin.services_page",
                branch=service.branch_id)


@bp.get("/services")
@login_required
@scope.require_role("manager")
def services_page():
    branch = page_branch()
    return render_form(LIST, **branch_context("services", branch, services=settings.in_kiosk_order(branch),
                                              languages=settings.name_languages(branch),
                                              language_names=LANGUAGE_NAMES))


@bp.route("/services/new", methods=["GET", "POST"])
@login_required
@scope.require_role("manager")
def service_new():
    branch = page_branch()
    if request.method == "GET":
        return _form_page(branch)
    submitted = _from_form(request.form, branch)
    data = {key: value for key, value in submitted.items() if key != "position" or value.strip()}  # empty: last
    try:
        service = settings.create(branch, data)
    except ValidationError as error:
        return _form_page(branch, values=submitted, refusal=error)
    return _saved(service)


@bp.route("/services/<int:service_id>", methods=["GET", "POST"])
@login_required
@scope.require_role("manager")
def service_edit(service_id):
    service = scope.owned(Service, service_id, "Service")
    if request.method == "GET":
        return _form_page(service.branch, service)
    submitted = _from_form(request.form, service.branch)
    try:
        service = settings.update(service, submitted)
    except ValidationError as error:
        return _form_page(service.branch, service, values={**settings.describe(service), **submitted}, refusal=error)
    return _saved(service)


@bp.post("/services/<int:service_id>/move")
@login_required
@scope.require_role("manager")
def service_move(service_id):
    service = scope.owned(Service, service_id, "Service")
    step = {"up": -1, "down": 1}.get(request.form.get("direction"))
    if step is not None:
        settings.move(service, step)
    return redirect(url_for("admin.services_page", branch=service.branch_id, _anchor=f"service-{service.id}"))


# --- JSON --------------------------------------------------------------------------------------

SERVICE = model("AdminService", {
    "id": INTEGER, "branch": INTEGER, "code": {**STRING, "description": "One letter: the ticket numbers' prefix"},
    "name": {**STRING, "description": "The name in the branch's language"},
    "names": {"type": "object", "additionalProperties": STRING, "propertyNames": {"enum": list(LANGUAGES)},
              "description": "The name in each language"},
    **{key: INTEGER for key in settings.NUMBERS},
    "active": {**BOOLEAN, "description": "Taking tickets (false: paused)"},
    "counters": {**array(INTEGER), "description": "The counters serving it, by id"},
})
_NUMBERS = {
    "avg_service_minutes": "Expected minutes per customer (waiting-time estimates)",
    "target_wait_minutes": "The wait the branch aims for",
    "priority": "A ticket's starting priority; higher is called first",
    "position": "Place on the kiosk, smallest first (default: last)",
    "slot_minutes": "Length of an appointment slot", "slot_capacity": "Appointments per slot",
}


def _fields(creating: bool) -> dict:
    """A service's fields as core/settings/services.py reads them (its limits); what describe()
    shows besides them is taken back unread."""
    name = Text(max_length=settings.NAME_LENGTH).schema()

    def number(key, low, high):
        default = settings.DEFAULTS.get(key, "last" if key == "position" else None)
        return setting(Whole(_NUMBERS[key] + (f" (default: {default})" if creating else ""), low=low, high=high))

    return {
        "code": setting({"type": "string", "pattern": f"^{settings.CODE.pattern}$"},
                        "One letter A-Z (either case); it changes only while the service has no ticket today",
                        required=creating),
        "names": setting({"type": "object", "additionalProperties": nullable(name),
                          "propertyNames": {"enum": list(LANGUAGES)}},
                         "The name per language, on one line; empty or null removes one, a language left out stays. "
                         "The branch's own language needs a name"),
        "name": setting(name, "The name in the branch's language (names.<its language>)"),
        **{key: number(key, low, high) for key, (low, high) in settings.NUMBERS.items()},
        "active": setting(Flag("Taking tickets; false pauses it" + (" (default: true)" if creating else ""))),
        "counters": setting(Items("The counters serving it, by id (this branch's)", of=Id(),
                                  max_items=fields.MAX_CHOICES)),
        "id": read_only(INTEGER, "The service's id"),
        "branch": BRANCH if creating else read_only(INTEGER, "The service's branch"),
    }


@api.get("/services")
@login_required
@scope.require_role("manager")
@endpoint("The branch's services, in kiosk order", role="manager", query={"branch": BRANCH},
          responses={200: model("AdminServices", {"branch": INTEGER, "services": array(SERVICE)})})
def services():
    branch = page_branch()
    return {"branch": branch.id, "services": [settings.describe(s) for s in settings.in_kiosk_order(branch)]}


@api.post("/services")
@login_required
@scope.require_role("manager")
@endpoint("Add a service to the branch", role="manager", query={"branch": BRANCH}, body=_fields(creating=True),
          description="Every bad field is named at once in `detail`; nothing changes then.",
          responses={201: ("Created", SERVICE)})
def service_create():
    """{"code": "C", "names": {"en": "Cash desk", "ja": "会計"}, "avg_service_minutes": 3, ...}: 201."""
    branch = page_branch(body_values())
    return settings.describe(settings.create(branch, {k: v for k, v in sent_values().items() if k != "branch"})), 201


@api.get("/services/<int:service_id>")
@login_required
@scope.require_role("manager")
@endpoint("One service", role="manager", responses={200: SERVICE})
def service(service_id):
    return settings.describe(scope.owned(Service, service_id, "Service"))


@api.put("/services/<int:service_id>")
@login_required
@scope.require_role("manager")
@endpoint("Change a service: the fields sent change, the others stay", role="manager",
          description="Every bad field is named at once in `detail`; nothing changes then.",
          body=_fields(creating=False), responses={200: SERVICE})
def service_update(service_id):
    """The fields given change; "id" and "branch" are the service's own and are not read."""
    found = scope.owned(Service, service_id, "Service")
    return settings.describe(settings.update(found, sent_values()))
