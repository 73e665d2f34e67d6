"""Settings: branches. The list, a new branch (admins), the edit page (name, zone, country,
languages, opening hours, branding, online booking on or off) with its closures, the same as JSON
(the switch aside), and the public route that serves a branch's logo to the kiosk, the display and
the status page."""
from babel import Locale
from flask import Blueprint, request, send_from_directory, url_for
from flask_babel import format_date, format_datetime, get_locale
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound as NoSuchFile

from core import clock, scope, self_booking, zones
from core.errors import ValidationError
from core.extensions import db
from core.language import LANGUAGE_NAMES
from core.models import Branch, Closure, Counter
from core.openapi import (BOOLEAN, DATE, Day, Flag, INTEGER, STRING, Text, array, body_values, endpoint, model,
                          nullable, sent_values)
from core.seed import WEEKDAYS
from core.settings import branches as settings
from core.settings import branding
from core.web import arg_number

from . import api, bp
from .common import done, form_data, read_only, refused, render_form, setting

RANGES_ON_PAGE = 2  # a day's rows on the page: the opening and, say, after a lunch break
DEFAULT_COLOURS = {"primary": "#0b3d6e", "accent": "#ffd166"}  # what screens without branding show

# /branding/<filename>: outside /admin, as kiosks and displays load it without signing in.
public = Blueprint("branding", __name__)
bp.record_once(lambda state: state.app.register_blueprint(public))


@public.get("/branding/<filename>")
def logo(filename):
    """A branch's logo. Public: it is on the kiosk anyway. Its name changes with its content."""
    if not branding.NAME.fullmatch(filename):
        raise NoSuchFile()
    return send_from_directory(branding.folder(), filename, max_age=365 * 24 * 3600)


# --- pages ------------------------------------------------------------------------------------

@bp.get("/branches")
@login_required
@scope.require_role("manager")
def branches_page():
    rows = scope.branches()
    counters = _counter_counts([b.id for b in rows])
    now = clock.now()
    listed = [{"branch": b, "local_now": format_datetime(b.local(now), "short", rebase=False),
               "counters": counters.get(b.id, 0)} for b in rows]
    return render_form("admin/branches.html", section="branches", settings_branch=_nav_branch(rows), rows=listed,
                       can_create=scope.has_role("admin"), language_names=LANGUAGE_NAMES)


@bp.route("/branches/new", methods=["GET", "POST"])
@login_required
@scope.require_role("admin")
def branch_new_page():
    if request.method == "GET":
        values = _values_of(None)
        return render_form("admin/branch.html", **_page(None, values))
    values = _values_from_form(None)
    try:
        branch = settings.create(_service_data(values))
    except ValidationError as error:
        return refused("admin/branch.html", error, **_page(None, values))
    self_booking.set_enabled(branch, values["online_booking"])
    return done(_("Branch %(name)s was created.", name=branch.name), "admin.branch_page", branch_id=branch.id)


@bp.route("/branches/<int:branch_id>", methods=["GET", "POST"])
@login_required
@scope.require_role("manager")
def branch_page(branch_id):
    branch = scope.branch(branch_id)
    if request.method == "GET":
        return render_form("admin/branch.html", **_page(branch, _values_of(branch)))
    values = _values_from_form(branch)
    try:
        settings.update(branch, _service_data(values))
    except ValidationError as error:
        return refused("admin/branch.html", error, **_page(branch, values))
    self_booking.set_enabled(branch, values["online_booking"])
    return done(_("The settings of %(name)s are saved.", name=branch.name), "admin.branch_page", branch_id=branch.id)


@bp.post("/branches/<int:branch_id>/closures")
@login_required
@scope.require_role("manager")
def branch_closure_add(branch_id):
    branch = scope.branch(branch_id)
    data = form_data()
    try:
        closure = settings.add_closure(branch, data.get("first_day"), data.get("last_day"), data.get("message", ""))
    except ValidationError as error:
        return refused("admin/branch.html", error, **_page(branch, _values_of(branch), closure_values=data))
    return done(_("%(name)s is closed from %(first)s to %(last)s.", name=branch.name,
                  first=format_date(closure.first_day), last=format_date(closure.last_day)),
                "admin.branch_page", branch_id=branch.id, _anchor="closures")


@bp.post("/branches/<int:branch_id>/closures/<int:closure_id>/delete")
@login_required
@scope.require_role("manager")
def branch_closure_delete(branch_id, closure_id):
    branch = scope.branch(branch_id)
    settings.remove_closure(branch, closure_id)
    return done(_("The closure was removed."), "admin.branch_page", branch_id=branch.id, _anchor="closures")


def _counter_counts(branch_ids) -> dict:
    """{branch id: number of counters}, one query for the whole list."""
    return dict(db.session.execute(select(Counter.branch_id, func.count(Counter.id))
                                   .where(Counter.branch_id.in_(branch_ids)).group_by(Counter.branch_id)).all())


def _nav_branch(rows):
    """The branch the sub-nav's other sections open: ?branch= if within reach, else the first."""
    wanted = arg_number("branch")
    return scope.branch(wanted) if wanted is not None else (rows[0] if rows else None)


def _page(branch, values, closure_values=None) -> dict:
    """What branch.html needs, for a new branch (branch None) or an existing one."""
    locale = get_locale() or Locale("en")
    countries = sorted(((code, f"{locale.territories.get(code, code)} ({code})") for code in settings.COUNTRIES),
                       key=lambda pair: pair[1])
    zone_groups = list(zones.grouped())
    if values["timezone"] and not any(values["timezone"] in group for _region, group in zone_groups):
        zone_groups.append((_("Other"), (values["timezone"],)))  # an older alias stays chosen, not replaced
    return {"section": "branches", "settings_branch": branch, "branch": branch, "values": values,
            "weekdays": [(day, locale.days["format"]["wide"][index]) for index, day in enumerate(WEEKDAYS)],
            "ranges_on_page": RANGES_ON_PAGE, "zone_groups": zone_groups, "countries": countries,
            "language_names": LANGUAGE_NAMES, "closures": settings.closures(branch) if branch else [],
            "closure_values": closure_values or {}, "logo_url": _logo_url(branch),
            "booking_url": url_for("booking.page", branch_id=branch.id, _external=True) if branch else None}


def _logo_url(branch):
    name = (branch.branding or {}).get("logo") if branch else None
    return url_for("branding.logo", filename=name) if name else None


def _values_of(branch) -> dict:
    """The form's values from a branch (or the defaults of a new one)."""
    if branch is None:
        new = settings.defaults()
        hours = _hour_rows(new.pop("opening_hours"))
        return {"name": "", "sender_name": "", **new, **DEFAULT_COLOURS, "hours": hours, "online_booking": True}
    look = branch.branding or {}
    return {"name": branch.name, "sender_name": branch.sender_name, "timezone": branch.timezone,
            "country": branch.country, "language": branch.default_language, "languages": list(branch.languages or []),
            "show_names": branch.show_names, "primary": look.get("primary", DEFAULT_COLOURS["primary"]),
            "accent": look.get("accent", DEFAULT_COLOURS["accent"]), "hours": _hour_rows(branch.opening_hours or {}),
            "online_booking": self_booking.enabled(branch)}


def _hour_rows(hours: dict) -> dict:
    """{day: {"closed": bool, "ranges": [[open, close], ...RANGES_ON_PAGE]}} for the hours table."""
    rows = {}
    for day in WEEKDAYS:
        ranges = [list(r) for r in hours.get(day, [])]
        rows[day] = {"closed": not ranges, "ranges": ranges + [["", ""]] * max(0, RANGES_ON_PAGE - len(ranges))}
    return rows


def _values_from_form(branch) -> dict:
    """The submitted form as the page shows it again (on an error, nothing typed is lost)."""
    form = form_data()
    chosen = form.get("languages", [])
    values = {key: form.get(key, "") for key in ("name", "sender_name", "timezone", "country", "language",
                                                 "primary", "accent")}
    values["languages"] = [chosen] if isinstance(chosen, str) else chosen
    values["show_names"] = "show_names" in form
    # An unticked box sends nothing: the hidden field says the box was on the page (a form without
    # it, an older page's, leaves the switch as it is).
    values["online_booking"] = ("online_booking" in form if "online_booking_shown" in form
                                else self_booking.enabled(branch) if branch else True)
    values["hours"] = {day: {"closed": f"hours-{day}-closed" in form,
                             "ranges": [[form.get(f"hours-{day}-open-{n}", ""), form.get(f"hours-{day}-close-{n}", "")]
                                        for n in range(1, RANGES_ON_PAGE + 1)]} for day in WEEKDAYS}
    upload = request.files.get("logo")
    if upload is not None and upload.filename:
        values["logo"] = upload.read(branding.MAX_BYTES + 1)  # one byte more tells "too big"
    elif "remove_logo" in form:
        values["logo"] = None
    return values


def _service_data(values: dict) -> dict:
    """The page's values as the service layer takes them: rows left empty are no opening."""
    data = {key: values[key] for key in ("name", "sender_name", "timezone", "country", "language", "languages",
                                         "show_names", "primary", "accent")}
    data["opening_hours"] = {day: [] if row["closed"] else [r for r in row["ranges"] if any(r)]
                             for day, row in values["hours"].items()}
    if "logo" in values:
        data["logo"] = values["logo"]
    return data


# --- JSON ---------------------------------------------------------------------------------------

def _length(column) -> int:
    return column.type.length


CLOSURE = model("AdminClosure", {"id": INTEGER, "first_day": DATE, "last_day": DATE, "message": STRING})
# core/settings/branches.py's _TIME, and 24:00 as a closing time
CLOCK_TIME = {"type": "string", "pattern": r"^(([01]?[0-9]|2[0-3]):[0-5][0-9](:00)?|24:00)$",
              "description": "HH:MM (24:00 only as a closing time)"}
HOURS = {"type": "object", "propertyNames": {"enum": list(WEEKDAYS)},
         "additionalProperties": nullable({**array({**array(CLOCK_TIME), "minItems": 2, "maxItems": 2}),
                                           "maxItems": settings.MAX_RANGES})}
HOURS_SHOWN = {"type": "object", "additionalProperties": array(array(STRING))}
COLOUR = {"type": "string", "pattern": r"^(#[0-9a-fA-F]{6})?$", "description": "#rrggbb; empty: the default colour"}
DATA_URL = {"type": "string", "pattern": "^data:image/(png|jpeg);base64,",
            "maxLength": len("data:image/jpeg;base64,") + 4 * -(-branding.MAX_BYTES // 3),
            "description": f"A PNG or JPEG as a data URL, at most {branding.MAX_BYTES // 1024} KB and "
                           f"{branding.MAX_SIDE} pixels a side; null removes the logo"}
ADMIN_BRANCH = model("AdminBranch", {
    "id": INTEGER, "name": STRING, "sender_name": {**STRING, "description": "The name the texts are signed with"},
    "timezone": STRING, "country": STRING, "language": {"type": "string", "enum": list(settings.LANGUAGES)},
    "languages": array({"type": "string", "enum": list(settings.LANGUAGES)}), "opening_hours": HOURS_SHOWN,
    "show_names": BOOLEAN,
    "branding": {"type": "object", "properties": {"primary": STRING, "accent": STRING, "logo": {
        **STRING, "description": "The logo's file, under /branding/"}}},
    "closures": array(CLOSURE),
})


def _fields(creating: bool) -> dict:
    """A branch's fields as core/settings/branches.py reads them (its limits); what as_dict()
    shows besides them is taken back unread. A new branch takes defaults() where a field is left out."""
    default = " (default: the configured one)" if creating else ""
    return {
        "name": setting(Text(max_length=_length(Branch.name), required=creating), required=creating),
        "sender_name": setting(Text("The name texts are signed with" + (" (default: the name, when it fits)"
                                                                       if creating else ""),
                                    max_length=_length(Branch.sender_name))),
        "timezone": setting(Text("An IANA time zone, e.g. Asia/Tbilisi" + default,
                                 max_length=_length(Branch.timezone))),
        "country": setting({"type": "string", "enum": sorted(settings.COUNTRIES)},
                           "Two letters (ISO 3166): how local phone numbers are read" + default),
        "language": setting(Text("The default language: one the kiosk offers" + default,
                                 choices=settings.LANGUAGES)),
        "languages": setting({**array({"type": "string", "enum": list(settings.LANGUAGES)}), "minItems": 1},
                             "The kiosk's languages" + (" (default: all)" if creating else "")),
        "opening_hours": setting({"anyOf": [HOURS, {"type": "string", "description": "e.g. mon-fri 09:00-17:00; "
                                                                                     "sat 10:00-13:00; sun closed"}]},
                                 "Per weekday, the openings (at most %s a day); a day left out or empty is closed"
                                 % settings.MAX_RANGES + (" (default: mon-fri 09:00-17:00)" if creating else "")),
        "show_names": setting(Flag("Whether screens show customers' names")),
        "primary": setting(COLOUR, "The main colour of the screens", null=True),
        "accent": setting(COLOUR, "The accent colour of the screens", null=True),
        "logo": setting(DATA_URL, null=True),
        "branding": setting({"type": "object", "properties": {
            "primary": nullable(COLOUR), "accent": nullable(COLOUR),
            "logo": nullable({**STRING, "description": "null removes the logo; the current name is no change"})}},
            "The same as primary, accent and logo, in the shape GET answers"),
        "id": read_only(INTEGER, "The branch's id"), "branch": read_only(INTEGER, "The branch's id"),
        "closures": read_only(array(CLOSURE), "The closures (changed at /closures)"),
    }


@api.get("/branches", endpoint="branches")
@login_required
@scope.require_role("manager")
@endpoint("The branches within the caller's reach", role="manager",
          responses={200: model("AdminBranches", {"branches": array(ADMIN_BRANCH)})})
def json_branches():
    return {"branches": [settings.as_dict(b) for b in scope.branches()]}


@api.post("/branches", endpoint="branch_create")
@login_required
@scope.require_role("admin")
@endpoint("Create a branch (administrators)", role="admin", body=_fields(creating=True),
          description="Every bad field is named at once in `detail`; nothing is created then.",
          responses={201: ("Created", ADMIN_BRANCH)})
def json_branch_create():
    return settings.as_dict(settings.create(sent_values())), 201


@api.get("/branches/<int:branch_id>", endpoint="branch")
@login_required
@scope.require_role("manager")
@endpoint("One branch with its closures", role="manager", responses={200: ADMIN_BRANCH})
def json_branch(branch_id):
    return settings.as_dict(scope.branch(branch_id))


@api.put("/branches/<int:branch_id>", endpoint="branch_update")
@login_required
@scope.require_role("manager")
@endpoint("Change a branch: the fields sent change, the others stay", role="manager", body=_fields(creating=False),
          description="Every bad field is named at once in `detail`; nothing changes then.",
          responses={200: ADMIN_BRANCH})
def json_branch_update(branch_id):
    found = scope.branch(branch_id)
    settings.update(found, sent_values())
    return settings.as_dict(found)


@api.get("/branches/<int:branch_id>/closures", endpoint="branch_closures")
@login_required
@scope.require_role("manager")
@endpoint("The branch's closures (holidays)", role="manager",
          responses={200: model("AdminClosures", {"closures": array(CLOSURE)})})
def json_closures(branch_id):
    found = scope.branch(branch_id)
    return {"closures": [settings.closure_dict(c) for c in settings.closures(found)]}


@api.post("/branches/<int:branch_id>/closures", endpoint="branch_closure_add")
@login_required
@scope.require_role("manager")
@endpoint("Close the branch from one day to another, both included", role="manager",
          body={"first_day": setting(Day(), "The first closed day", required=True),
                "last_day": setting(Day(), "The last closed day (default: the first; at most %s days)"
                                    % settings.MAX_CLOSURE_DAYS, null=True),
                "message": setting(Text("What the kiosk and the booking page say",
                                        max_length=_length(Closure.message)), null=True)},
          responses={201: ("Added", CLOSURE)})
def json_closure_add(branch_id):
    found = scope.branch(branch_id)
    data = body_values()
    closure = settings.add_closure(found, data["first_day"], data["last_day"],
                                   "" if data["message"] is None else data["message"])
    return settings.closure_dict(closure), 201


@api.delete("/branches/<int:branch_id>/closures/<int:closure_id>", endpoint="branch_closure")
@login_required
@scope.require_role("manager")
@endpoint("Remove a closure", role="manager", responses={204: ("Removed: the answer is empty", {})})
def json_closure(branch_id, closure_id):
    settings.remove_closure(scope.branch(branch_id), closure_id)
    return "", 204
