"""Everything held about one phone number: a manager exports it (a JSON download) or erases it at
the person's request, after a confirmation step, within their branches; an administrator across
every branch. Each export and erasure goes into the audit log. Thin: the rules are core.privacy's.
The number travels in the form's body, never in a URL: URLs end up in logs and browser history."""
import json

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required

from core import audit, clock, privacy, scope
from core.errors import NotFound, SeedError
from messaging.phones import e164

from . import bp


def section_words() -> dict:
    return {"customer": gettext("Customer record (number and name)"), "tickets": gettext("Tickets"),
            "appointments": gettext("Appointments"), "texts_sent": gettext("Texts sent"),
            "texts_received": gettext("Texts received"), "text_parts": gettext("Parts of long texts"),
            "unreadable_texts": gettext("Texts that could not be read"), "surveys": gettext("Survey answers"),
            "reschedule_offers": gettext("Offers of other times")}


def _number() -> str:
    """The number typed, in E.164; a local form is read with the country of the reader's branch."""
    return e164(request.form.get("phone", ""), scope.branch().country)


def _filed_under():
    """A manager's export or erasure is filed under their home branch, where the branch's managers
    see it; an administrator's under none (administrators see every entry)."""
    return None if scope.branch_ids() is None else scope.branch().id


def _page(status=200, **context):
    page = render_template("staff/privacy.html", counter=None, words=section_words(), **context)
    return page, status, {"Cache-Control": "no-store"}  # a page with someone's number is not kept


def _refused(error: SeedError):
    if isinstance(error, NotFound):
        flash(gettext("Nothing is held about this number within your branches."), "error")
    else:
        flash(gettext("This is not a phone number Seed can read: give it with its country code, "
                      "e.g. +995555123456."), "error")
    return _page(error.status)


@bp.get("/privacy")
@login_required
@scope.require_role("manager")
def privacy_page():
    return _page()


@bp.post("/privacy/export")
@login_required
@scope.require_role("manager")
def privacy_export():
    try:
        number = _number()
        found = privacy.export(number)
    except SeedError as error:
        return _refused(error)
    counts = {key: len(rows) for key, rows in found.items() if isinstance(rows, list) and rows}
    audit.record("data.exported", target=privacy.target(number), branch_id=_filed_under(), detail=counts)
    name = f"seed-export-{clock.now():%Y%m%d-%H%M%S}.json"
    return Response(json.dumps(found, ensure_ascii=False, indent=2), mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@bp.post("/privacy/erase")
@login_required
@scope.require_role("manager")
def privacy_erase():
    """Without confirm=erase: what would go, and the button that does it. With it: erase."""
    try:
        number = _number()
        if request.form.get("confirm") != "erase":
            return _page(phone=number, masked=privacy.masked(number), held=privacy.summary(number))
        erased = privacy.erase(number)
    except SeedError as error:
        return _refused(error)
    audit.record("data.erased", target=privacy.target(number), branch_id=_filed_under(), detail=erased)
    flash(gettext("Everything held about %(number)s within your branches is erased; texts still waiting to "
                  "go to it are cancelled.", number=privacy.masked(number)), "ok")
    if scope.branch_ids() is not None:
        flash(gettext("What other branches hold is erased by an administrator."), "info")
    return redirect(url_for("staff.privacy_page"))
