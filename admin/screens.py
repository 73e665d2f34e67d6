"""Settings: the screens of a branch. Its kiosks (the kiosk page's address and QR code, the
registered kiosks, registering a new one) and a display link builder: the services, languages
(in rotation order), layout and rotation a waiting-room display takes in its URL
(display/routes.py reads them), with a QR code and a live preview.

Pages: admin.screens_page (GET; its form's fields are the display's own parameters),
admin.screens_qr (GET: the display link's QR code as SVG), admin.screens_kiosk_register (POST),
admin.screens_kiosk_revoke (POST, <token_id>). JSON: GET /api/v1/admin/screens. All take ?branch=."""
import io
import re
from urllib.parse import urlencode

import segno
from flask import request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from core import audit, clock, scope, tokens
from core.errors import NotFound, ValidationError
from core.extensions import db
from core.models import Branch
from core.openapi import BOOLEAN, INTEGER, STRING, TIME, Flag, Whole, array, endpoint, model, nullable, query_values
from core.settings import FieldErrors
from core.web import MAX_ID
from display.routes import LANGUAGES, LAYOUTS
from staff.tokens_admin import setup_link

from . import api, bp
from .common import BRANCH, branch_context, done, field_errors, page_branch, render_form, setting

TEMPLATE = "admin/screens.html"
ROTATE = (3, 600)  # seconds; the display refuses others (display/routes.py)
DEFAULT_ROTATE = 12


def _choices(args, key) -> list[str]:
    """A list parameter as the display reads it (A,B) or as a form sends it (A and B apart)."""
    return [part.strip() for value in args.getlist(key) for part in value.split(",") if part.strip()]


def display_link(branch: Branch, args) -> dict:
    """The display's URL for the chosen options, checked as the display will check them, so a
    link made here always opens. No services chosen means all of them."""
    errors = FieldErrors()
    open_codes = [service.code for service in branch.services if service.active]
    services = [code.upper() for code in _choices(args, "services")]
    unknown = [code for code in services if code not in open_codes]
    if unknown:
        errors.add("services", gettext("Choose among the open services of this branch: %(codes)s is not one.",
                                       codes=", ".join(unknown)[:40]))
    languages = _choices(args, "languages") or [branch.default_language]
    if any(language not in LANGUAGES for language in languages) or len(set(languages)) != len(languages):
        errors.add("languages", gettext("Choose each language once, among English, Japanese and Georgian."))
    layout = args.get("layout") or "split"
    if layout not in LAYOUTS:
        errors.add("layout", gettext("Choose one of the layouts listed."))
    rotate = (args.get("rotate") or str(DEFAULT_ROTATE)).strip()
    if not re.fullmatch(r"[0-9]{1,4}", rotate) or not ROTATE[0] <= int(rotate) <= ROTATE[1]:
        errors.add("rotate", gettext("Give the seconds each language stays on screen, from %(low)s to %(high)s.",
                                     low=ROTATE[0], high=ROTATE[1]))
    names = branch.show_names and args.get("names") in ("1", "on")
    errors.raise_if_any()
    query = {"services": ",".join(services)} if services else {}
    query.update(languages=",".join(languages), layout=layout, rotate=int(rotate))
    if names:
        query["names"] = "1"
    url = url_for("display.screen", branch_id=branch.id, _external=True) + "?" + urlencode(query, safe=",")
    return {"url": url, "services": services, "languages": languages, "layout": layout, "rotate": int(rotate),
            "names": bool(names)}


def qr_svg(text: str) -> Markup:
    return Markup(segno.make(text, error="m").svg_inline(scale=4, border=2))


def kiosks_of(branch: Branch) -> list[tokens.ApiToken]:
    """The branch's registered kiosks, active first, newest first."""
    query = (select(tokens.ApiToken).join(tokens.ApiToken.branches)
             .where(Branch.id == branch.id, tokens.ApiToken.role == tokens.KIOSK)
             .order_by(tokens.ApiToken.revoked_at.is_not(None), tokens.ApiToken.id.desc()))
    return list(db.session.scalars(query))


def _page(branch, link: dict | None, *, refusal: ValidationError | None = None, created=None, status=200):
    """The page. `link`: the display link built (None when its options were refused: the form
    then shows what was asked). `created`: a kiosk just registered and its one-time setup link."""
    kiosk_url = url_for("kiosk.screen", branch_id=branch.id, _external=True)
    chosen = link or _asked(request.args)
    context = branch_context(
        "screens", branch, kiosk_url=kiosk_url, kiosk_qr=qr_svg(kiosk_url),
        kiosks=kiosks_of(branch), now=clock.now(), link=link, chosen=chosen,
        states={"active": gettext("active"), "revoked": gettext("revoked"), "expired": gettext("expired")},
        services=[service for service in branch.services if service.active],
        language_order=_language_order(chosen["languages"] or [branch.default_language]),
        rotate_range=ROTATE,
        display_base=url_for("display.screen", branch_id=branch.id, _external=True),
        created=created[0] if created else None,
        setup={"link": created[1], "qr": qr_svg(created[1])} if created else None,
    )
    errors = field_errors(refusal) if refusal is not None else {}
    response, status = render_form(TEMPLATE, errors=errors, status=400 if refusal else status, **context)
    # A page showing a kiosk's setup key must not be kept by the browser or a proxy.
    return response, status, {"Cache-Control": "no-store"}


def _asked(args) -> dict:
    """The display options as asked, for showing a refused choice back in the form."""
    return {"services": [code.upper() for code in _choices(args, "services")], "languages": _choices(args, "languages"),
            "layout": args.get("layout"), "rotate": args.get("rotate"), "names": args.get("names") in ("1", "on")}


def _language_order(chosen: list[str]) -> list[str]:
    """The chosen languages first, in their rotation order, then the others."""
    chosen = [language for language in chosen if language in LANGUAGES]
    return [*chosen, *(language for language in LANGUAGES if language not in chosen)]


@bp.get("/screens")
@login_required
@scope.require_role("manager")
def screens_page():
    branch = page_branch()
    try:
        link = display_link(branch, request.args)
    except ValidationError as error:
        return _page(branch, None, refusal=error)
    return _page(branch, link)


@bp.get("/screens/qr")
@login_required
@scope.require_role("manager")
def screens_qr():
    """The QR code of the display link for the options in the query: the builder's live code."""
    branch = page_branch()
    image = io.BytesIO()
    segno.make(display_link(branch, request.args)["url"], error="m").save(image, kind="svg", scale=4, border=2)
    return image.getvalue(), 200, {"Content-Type": "image/svg+xml; charset=utf-8", "Cache-Control": "no-store"}


@bp.post("/screens/kiosks")
@login_required
@scope.require_role("manager")
def screens_kiosk_register():
    """Register a kiosk of this branch; its setup link (with its key) is shown this once."""
    branch = page_branch()
    try:
        kiosk, secret = tokens.create_kiosk(branch.id, request.form.get("name"), created_by=current_user.username)
    except ValidationError as error:
        refusal = ValidationError(error.message, {"name": gettext("Give the kiosk a name of 1 to 80 characters that "
                                                                  "says where it stands, without < or >.")})
        return _page(branch, display_link(branch, MultiDict()), refusal=refusal)
    audit.token("kiosk.registered", kiosk)
    return _page(branch, display_link(branch, MultiDict()), created=(kiosk, setup_link(kiosk, secret)), status=201)


@bp.post("/screens/kiosks/<int:token_id>/revoke")
@login_required
@scope.require_role("manager")
def screens_kiosk_revoke(token_id):
    kiosk = db.session.get(tokens.ApiToken, token_id) if 0 < token_id <= MAX_ID else None
    if kiosk is None or not kiosk.is_kiosk or not kiosk.branches:
        raise NotFound(f"Kiosk {token_id} does not exist.")
    branch = scope.branch(kiosk.branches[0].id)  # another branch's kiosk: not found
    tokens.revoke(kiosk.id, kiosk=True, by=current_user.username)
    audit.token("kiosk.revoked", kiosk)
    return done(gettext("Kiosk %(name)s is revoked: its check-ins now share the limit of its network address.",
                        name=kiosk.name), "admin.screens_page", branch=branch.id)


# --- JSON --------------------------------------------------------------------------------------

KIOSK = model("AdminKiosk", {
    "id": INTEGER, "name": STRING, "url": {**STRING, "description": "The kiosk page of the branch"},
    "state": {"type": "string", "enum": ["active", "revoked", "expired"]}, "created_at": TIME,
    "last_used_at": nullable(TIME),
})
DISPLAY_LINK = model("AdminDisplayLink", {
    "url": {**STRING, "description": "The display's address with these options"},
    "services": {**array(STRING), "description": "Service codes; none: every open service"},
    "languages": {**array({"type": "string", "enum": list(LANGUAGES)}), "description": "In rotation order"},
    "layout": {"type": "string", "enum": list(LAYOUTS)}, "rotate": INTEGER, "names": BOOLEAN,
})
# The display's own parameters (display/routes.py): a list is comma-separated, A,B.
LIST_TEXT = {"type": "string"}
DISPLAY_QUERY = {
    "services": setting(LIST_TEXT, "Service codes, comma-separated (A,B), among the open ones; none: every open "
                                   "service"),
    "languages": setting(LIST_TEXT, f"Languages in rotation order, comma-separated, each once, among "
                                    f"{', '.join(LANGUAGES)} (default: the branch's)"),
    "layout": setting({"type": "string", "enum": list(LAYOUTS)}, "Default: split"),
    "rotate": setting(Whole("Seconds each language stays on screen", low=ROTATE[0], high=ROTATE[1],
                            default=DEFAULT_ROTATE)),
    "names": Flag("Customers' names on the screen (where the branch shows names)"),
}


@api.get("/screens")
@login_required
@scope.require_role("manager")
@endpoint("The branch's kiosks, and the display link for the options asked", role="manager",
          query={"branch": BRANCH, **DISPLAY_QUERY},
          responses={200: model("AdminScreens", {"branch": INTEGER, "kiosk_url": STRING, "kiosks": array(KIOSK),
                                                 "display": DISPLAY_LINK})})
def screens():
    """The branch's kiosks with their URL, and the display URL for the options in the query
    (services=A,B&languages=en,ja&layout=split|full&rotate=12&names=1)."""
    branch = page_branch()
    kiosk_url = url_for("kiosk.screen", branch_id=branch.id, _external=True)
    asked = {key: value for key, value in query_values().items() if key in DISPLAY_QUERY and value is not None}
    if "names" in asked:
        asked["names"] = "1" if asked["names"] else ""
    return {
        "branch": branch.id, "kiosk_url": kiosk_url,
        "kiosks": [{"id": kiosk.id, "name": kiosk.name, "url": kiosk_url, "state": kiosk.state(clock.now()),
                    "created_at": kiosk.created_at.isoformat(),
                    "last_used_at": kiosk.last_used_at.isoformat() if kiosk.last_used_at else None}
                   for kiosk in kiosks_of(branch)],
        "display": display_link(branch, MultiDict(asked)),
    }
