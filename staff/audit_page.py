"""The audit log for people: administrators see every entry, managers their branches' (the scope
rule). Filters by a range of branch-local days, action and branch; keyset paging; a CSV download.
Thin: the reading is core.audit's."""
import json

from flask import Response, render_template, request
from flask_babel import get_timezone, gettext
from flask_login import login_required

from core import audit, clock, scope
from core.web import arg_number, day, invalid

from . import bp

# The subscriber that records ticket cancellations is wired when the staff side is, once per app.
bp.record_once(lambda state: audit.init_app(state.app))


def action_words() -> dict:
    return {
        "settings.changed": gettext("Settings changed"),
        "template.saved": gettext("Text wording saved"),
        "template.reverted": gettext("Text wording reset"),
        "user.created": gettext("Account created"),
        "user.password_set": gettext("Password set by an administrator"),
        "user.password_changed": gettext("Own password changed"),
        "token.created": gettext("API token created"),
        "token.revoked": gettext("API token revoked"),
        "kiosk.registered": gettext("Kiosk registered"),
        "kiosk.revoked": gettext("Kiosk revoked"),
        "ticket.cancelled": gettext("Ticket cancelled"),
        "appointment.cancelled": gettext("Appointment cancelled"),
        "appointment.booked": gettext("Appointment booked"),
        "appointment.moved": gettext("Appointment moved"),
        "appointment.customer_changed": gettext("Customer of an appointment changed"),
        "text.sent": gettext("Text sent by staff"),
        "text.retried": gettext("Text sent again"),
        "text.cancelled": gettext("Text cancelled"),
        "broadcast.sent": gettext("Correction sent to many"),
        "inbox.assigned": gettext("Conversation given to a branch"),
        "data.exported": gettext("Personal data exported"),
        "data.erased": gettext("Personal data erased"),
        "data.anonymised": gettext("Old visits anonymised"),
    }


def _filters(args) -> dict:
    """The reader's filters, checked; a branch out of reach is not found (core/scope.py). Days are
    the chosen branch's, else the working branch's: the zone the page shows its times in."""
    action = args.get("action") or None
    if action is not None and action not in audit.ACTIONS:
        raise invalid("action", "unknown", gettext("There is no action %(action)s.", action=action[:40]))
    ident = arg_number("branch", args=args)
    branch = scope.branch(ident) if ident is not None else None
    return {"since": day(args["from"], "from") if args.get("from") else None,
            "until": day(args["to"], "to") if args.get("to") else None,
            "action": action, "branch_id": branch.id if branch is not None else None,
            "zone": branch.zone if branch is not None else get_timezone()}


def _kept(args) -> dict:
    return {key: args[key] for key in ("from", "to", "action", "branch") if args.get(key)}


@bp.get("/audit")
@login_required
@scope.require_role("manager")
def audit_page():
    wanted = _filters(request.args)
    entries, older = audit.page(audit.query(**wanted), before=arg_number("before"))
    branches = scope.branches()
    return render_template("staff/audit.html", counter=None, entries=entries, older=older, wanted=wanted,
                           kept=_kept(request.args), branches=branches, names={b.id: b.name for b in branches},
                           words=action_words(), csv_limit=audit.CSV_LIMIT,
                           json=lambda detail: json.dumps(detail, ensure_ascii=False, sort_keys=True))


@bp.get("/audit.csv")
@login_required
@scope.require_role("manager")
def audit_csv():
    entries, _older = audit.page(audit.query(**_filters(request.args)), limit=audit.CSV_LIMIT)
    name = f"seed-audit-{clock.now():%Y%m%d-%H%M}.csv"
    return Response(audit.to_csv(entries), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
