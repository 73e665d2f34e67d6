"""Settings: staff accounts. Pages under /admin/users and the same as JSON under
/api/v1/admin/users. Thin: the rules are in core/settings/users.py, which the CLI calls too.
A generated password is shown once, on the answer to its creation or reset, never stored."""
from flask import request
from flask_babel import gettext
from flask_login import current_user, login_required

from core import auth, scope
from core.auth import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from core.errors import ValidationError
from core.models import StaffUser
from core.openapi import BOOLEAN, Flag, INTEGER, Id, STRING, Text, array, endpoint, model, nullable, sent_values
from core.settings import users

from . import api, bp
from .common import asked_branch_id, done, field_errors, read_only, render_form, setting

NO_STORE = {"Cache-Control": "no-store"}  # an answer carrying a password is kept by no browser or proxy
FORM_FIELDS = ("username", "display_name", "role", "language")
LANGUAGE_LENGTH = StaffUser.__table__.c.language.type.length


def _actor():
    return current_user._get_current_object()


def _chosen_branch():
    """?branch= narrows a list to one branch within reach (another one's: 404); without it, None."""
    branch_id = asked_branch_id()
    return scope.branch(branch_id) if branch_id is not None else None


def _role_names() -> dict:
    return {"staff": gettext("Staff"), "manager": gettext("Manager"), "admin": gettext("Administrator")}


def _page(template: str, *, status: int = 200, headers=None, **context):
    body_, status = render_form(template, status=status, counter=None, section="users", role_names=_role_names(),
                                **context)
    return body_, status, headers or {}


def _user_page(user=None, *, values=None, status=200, headers=None, **context):
    """The form of one account (a new one when user is None), with the choices the actor has."""
    actor = _actor()
    names, branches = _role_names(), scope.branches()
    roles = [(role, names[role]) for role in users.ROLES if role != "admin" or actor.role == "admin"]
    return _page("admin/user.html", status=status, headers=headers, user=user, role_options=roles,
                 values=values or _values(user), branches=branches, languages=users.language_choices(),
                 branch_options=[(b.id, b.name) for b in branches],
                 editable=user is None or users.editable(user, actor),
                 shown_branches=users.shown_branch_ids(user, actor) if user else [], **context)


def _values(user) -> dict:
    if user is None:
        return {"username": "", "display_name": "", "role": "staff", "branches": [], "language": ""}
    return {"username": user.username, "display_name": user.display_name, "role": user.role,
            "branches": user.branch_ids, "language": user.language or ""}


def _submitted() -> dict:
    """The form as the service layer reads JSON: the home branch first, then the further ones."""
    data = {field: request.form.get(field, "") for field in FORM_FIELDS}
    data["branches"] = [request.form.get("home_branch", ""), *request.form.getlist("branches")]
    return data


def _refused(user, error: ValidationError, values=None):
    errors = field_errors(error)
    message = gettext("Nothing was changed: please correct the fields marked.") if errors else error.message
    return _user_page(user, values=values, status=400, errors=errors, message=message)


# --- pages -------------------------------------------------------------------------------------

@bp.get("/users")
@login_required
@scope.require_role("manager")
def users_page():
    actor, branch = _actor(), _chosen_branch()
    people = users.listing(actor, branch.id if branch else None)
    by_id = {b.id: b for b in scope.branches()}
    shown = {user.id: [by_id[i] for i in users.shown_branch_ids(user, actor)] for user in people}
    return _page("admin/users.html", people=people, shown=shown, branches=by_id.values(),
                 changed=users.last_changes(people), settings_branch=branch, chosen=branch.id if branch else None)


@bp.route("/users/new", methods=["GET", "POST"])
@login_required
@scope.require_role("manager")
def new_user():
    if request.method == "GET":
        return _user_page()
    data = _submitted()
    try:
        user, password = users.create(data, _actor())
    except ValidationError as error:
        return _refused(None, error, data)
    return _user_page(user, status=201, headers=NO_STORE, password=password, created=True)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@login_required
@scope.require_role("manager")
def user_page(user_id):
    user = users.get(user_id, _actor())
    if request.method == "GET":
        return _user_page(user)
    data = _submitted()
    try:
        users.update(user, data, _actor())
    except ValidationError as error:
        return _refused(user, error, data)
    return done(gettext("The account of %(name)s is saved.", name=user.username), "admin.user_page", user_id=user.id)


@bp.route("/users/<int:user_id>/deactivate", methods=["GET", "POST"])
@login_required
@scope.require_role("manager")
def deactivate_user(user_id):
    """GET asks to confirm; POST does it, and every session of the person ends at once."""
    user = users.get(user_id, _actor())
    users.require_editable(user, _actor())
    if request.method == "GET":
        return _user_page(user, confirm="deactivate")
    try:
        users.deactivate(user, _actor())
    except ValidationError as error:
        return _refused(user, error)
    return done(gettext("%(name)s is deactivated: they are signed out everywhere and cannot sign in.",
                        name=user.username), "admin.user_page", user_id=user.id)


@bp.post("/users/<int:user_id>/reactivate")
@login_required
@scope.require_role("manager")
def reactivate_user(user_id):
    user = users.get(user_id, _actor())
    users.reactivate(user, _actor())
    return done(gettext("%(name)s is active again and can sign in.", name=user.username), "admin.user_page",
                user_id=user.id)


@bp.route("/users/<int:user_id>/reset-password", methods=["GET", "POST"])
@login_required
@scope.require_role("manager")
def reset_user_password(user_id):
    """GET asks to confirm; POST sets a generated password, shown this once."""
    actor = _actor()
    user = users.get(user_id, actor)
    users.require_editable(user, actor)
    if request.method == "GET":
        return _user_page(user, confirm="reset")
    password = users.reset_password(user, actor)
    if user.id == actor.id:
        auth.start_session(user)  # one's own reset ends the other sessions, not this one
    return _user_page(user, headers=NO_STORE, password=password)


# --- JSON --------------------------------------------------------------------------------------

USER = model("AdminUser", {
    "id": INTEGER, "username": STRING, "display_name": STRING, "role": {"type": "string", "enum": list(users.ROLES)},
    "branches": {**array(INTEGER), "description": "The home branch first; only the caller's branches are shown"},
    "language": nullable({**STRING, "description": "The pages' language; null: the browser's"}),
    "active": BOOLEAN, "editable": {**BOOLEAN, "description": "Whether the caller may change this account"},
})
USER_ANSWER = model("AdminUserAnswer", {"user": USER})
PASSWORD_ANSWER = model("AdminUserPassword", {"user": USER, "password": {
    **STRING, "description": "The generated password: shown this once, never stored in clear"}}, required=["user"])


def _fields(creating: bool) -> dict:
    """The account's fields as core/settings/users.py reads them (its limits)."""
    fields = {
        "username": setting({"type": "string", "pattern": f"^{users.USERNAME.pattern}$"},
                            "2-40 letters, digits, dots, dashes or underscores; unique in any case",
                            required=creating),
        "display_name": setting(Text("The name shown to colleagues, on one line", max_length=users.MAX_NAME,
                                     required=creating), required=creating),
        "role": setting(Text("Only an administrator gives the admin role (default: staff)", choices=users.ROLES)),
        "branches": setting(array(Id().schema()),
                            "Branch ids, the home branch first; staff and managers need at least one"),
        "language": setting(Text("A language of the installation (en, ja, ka); empty or null: the browser's",
                                 max_length=LANGUAGE_LENGTH), null=True),
        "active": setting(Flag("false: signed out everywhere at once, and cannot sign in")),
    }
    if creating:
        fields["password"] = setting({"type": "string", "maxLength": MAX_PASSWORD_LENGTH}, f"At least "
                                     f"{MIN_PASSWORD_LENGTH} characters; empty or left out: one is generated and "
                                     "answered once", null=True)
    else:  # a password is reset (reset-password) or changed by its owner, never set here
        fields.update(id=read_only(INTEGER, "The account's id"), editable=read_only(BOOLEAN, "Editable"))
    return fields


@api.get("/users")
@login_required
@scope.require_role("manager")
@endpoint("The accounts the caller may see, by username", role="manager",
          query={"branch": Id("Only this branch's accounts")},
          responses={200: model("AdminUsers", {"users": array(USER)})})
def list_users():
    actor, branch = _actor(), _chosen_branch()
    return {"users": [users.as_json(user, actor) for user in users.listing(actor, branch.id if branch else None)]}


@api.post("/users")
@login_required
@scope.require_role("manager")
@endpoint("Create an account", role="manager", body=_fields(creating=True),
          responses={201: ("Created; `password` when one was generated (shown this once)", PASSWORD_ANSWER)})
def create_user():
    actor, data = _actor(), sent_values()
    user, password = users.create(data, actor)
    answer = {"user": users.as_json(user, actor)}
    if data.get("password") in (None, ""):
        answer["password"] = password  # generated: shown this once
    return answer, 201, NO_STORE


@api.get("/users/<int:user_id>")
@login_required
@scope.require_role("manager")
@endpoint("One account", role="manager", responses={200: USER_ANSWER})
def get_user(user_id):
    actor = _actor()
    return {"user": users.as_json(users.get(user_id, actor), actor)}


@api.put("/users/<int:user_id>")
@login_required
@scope.require_role("manager")
@endpoint("Change an account: the fields sent change, the others stay", role="manager",
          description="A deactivation (`active`: false) ends every session of the person at once. Nobody "
                      "deactivates themselves, and the last active administrator stays one.",
          body=_fields(creating=False), responses={200: USER_ANSWER})
def update_user(user_id):
    actor = _actor()
    user = users.update(users.get(user_id, actor), sent_values(), actor)
    return {"user": users.as_json(user, actor)}


@api.post("/users/<int:user_id>/reset-password", endpoint="reset_user_password")
@login_required
@scope.require_role("manager")
@endpoint("Set a generated password, answered this once; every session of the person ends", role="manager",
          body={}, empty_body=True,
          responses={200: model("AdminUserNewPassword", {"user": USER, "password": STRING})})
def reset_password_json(user_id):
    actor = _actor()
    user = users.get(user_id, actor)
    password = users.reset_password(user, actor)
    return {"user": users.as_json(user, actor), "password": password}, 200, NO_STORE
