"""The outbox page and its JSON twin: every text of the branch, why it waits or failed, retry and
cancel; the backlog per lane and how long the modem needs to send it; received texts that could
not be read. Also the words the console panel and /api/v1/health use for the modem and for
"degraded". Thin: validate, call messaging.outbox_report / messaging.outbox, render."""
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from core import audit, clock, language, scope
from core.errors import ValidationError
from core.locales import force_locale
from core.models import Branch
from core.openapi import (BOOLEAN, INTEGER, NUMBER, STRING, TIME, Flag, Id, Text, Whole, array, endpoint, model,
                          nullable, query_values)
from core.web import MAX_ID, arg_number
from messaging import kinds, outbox, outbox_report
from messaging.models import OutboxMessage, OutboxStatus

from . import api, bp

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
FILTERS = ("branch", "status", "lane", "today", "before", "after")
UTC = ZoneInfo("UTC")


# --- who sees what, in which language ----------------------------------------------------------

def visible_branch(requested: int | None) -> Branch | None:
    """The branch whose texts the API shows; None: every branch (admins, asking for none)."""
    if requested is None and scope.branch_ids() is None:
        return None
    return scope.branch(requested)


def page_branch(args) -> Branch | None:
    """The page's branch: the filter's (left empty: every branch, for admins); without the filter,
    the branch picked in the header, if one was."""
    if "branch" not in args and language.chosen_branch() is not None:
        return language.chosen_branch()
    return visible_branch(_whole(args, "branch"))


def staff_language() -> str:
    """The staff's language for this request (core/language.py chooses it for every staff page)."""
    return language.chosen_language() or current_app.config["BABEL_DEFAULT_LOCALE"]


def _whole(args, key, low=1, high=MAX_ID):
    return arg_number(key, low=low, high=high, args=args)


def _filters(args) -> dict:
    status, lane = args.get("status") or None, args.get("lane") or None
    if status is not None and status not in set(OutboxStatus):
        raise ValidationError(f"Unknown status {status[:20]!r}.", {"status": sorted(OutboxStatus)})
    if lane is not None and lane not in kinds.LANES:
        raise ValidationError(f"Unknown lane {lane[:20]!r}.", {"lane": list(kinds.LANES)})
    return {"status": status, "lane": lane, "today": args.get("today") in ("1", "true", "on", "yes"),
            "before": _whole(args, "before"), "after": _whole(args, "after")}


def _kept(args) -> dict:
    """The filters to come back to after a button."""
    return {key: args[key] for key in FILTERS if args.get(key)}


# --- words -------------------------------------------------------------------------------------

def _when(moment: datetime | None, zone, now: datetime) -> str:
    return "?" if moment is None else language.local_recent(moment, zone, now)


def state_words(modem: dict, zone, now) -> str:
    state = modem["state"]
    if state == "cooling" and modem.get("cooling_until"):
        return gettext("cooling down until %(time)s", time=_when(modem["cooling_until"], zone, now))
    if state == "silent":
        return gettext("silent since %(time)s", time=_when(modem.get("updated_at"), zone, now))
    return {
        "ready": gettext("ready"),
        "connecting": gettext("connecting"),
        "no_network": gettext("no mobile network"),
        "disconnected": gettext("disconnected"),
        "cooling": gettext("cooling down"),
        "pin_rejected": gettext("PIN rejected — fix MODEM_PIN"),
        "puk_required": gettext("SIM needs PUK"),
        "no_sim": gettext("no SIM"),
        "stopped": gettext("stopped"),
    }.get(state, state.replace("_", " "))


def modem_words(modem: dict, zone, now) -> str:
    words = gettext("Modem: %(state)s", state=state_words(modem, zone, now))
    if modem.get("network"):
        words += f" · {modem['network']}"
    if modem.get("signal") is not None:
        words += " · " + gettext("signal %(signal)s/31", signal=modem["signal"])
    return words


def lane_words() -> dict:
    return {"call": gettext("Calls to the counter"), "queue": gettext("Queue updates"), "reply": gettext("Replies"),
            "reminder": gettext("Appointment reminders"), "bulk": gettext("Surveys and announcements")}


def status_words() -> dict:
    return {"queued": gettext("waiting to send"), "sending": gettext("sending"), "sent": gettext("sent"),
            "delivered": gettext("delivered"), "failed": gettext("failed"), "cancelled": gettext("cancelled"),
            "suppressed": gettext("not sent (rules)")}


def reason_words(reason: dict, zone, now) -> str:
    code, gateway = reason["reason"], reason.get("gateway")
    if code == "no_gateway":
        return gettext("No modem gateway is running: texts are not going out.")
    if code == "modem_not_ready":
        state = state_words({"state": reason["state"]}, zone, now)
        if reason.get("since") is None:
            return gettext("Modem %(gateway)s: %(state)s.", gateway=gateway, state=state)
        return gettext("Modem %(gateway)s: %(state)s (since %(time)s).", gateway=gateway, state=state,
                       time=_when(reason["since"], zone, now))
    if code == "modem_silent":
        return gettext("Modem %(gateway)s has not reported since %(time)s.", gateway=gateway,
                       time=_when(reason["since"], zone, now))
    if code == "sends_failing" and reason.get("cooling_until"):
        return gettext("Modem %(gateway)s: sending failed repeatedly; cooling down until %(time)s.",
                       gateway=gateway, time=_when(reason["cooling_until"], zone, now))
    if code == "sends_failing":
        return gettext("Modem %(gateway)s: %(count)s sends failed in a row.", gateway=gateway,
                       count=reason["failed_in_a_row"])
    if code == "reconnect_loop":
        return gettext("Modem %(gateway)s lost its connection %(count)s times in the last hour.", gateway=gateway,
                       count=reason["reconnects"])
    if code == "lane_overdue":
        return gettext("%(lane)s: the oldest text has waited %(minutes)s min (the limit is %(limit)s min).",
                       lane=lane_words()[reason["lane"]], minutes=reason["oldest_wait_minutes"],
                       limit=reason["max_wait_minutes"])
    if code == "quarantine":
        return gettext("Received texts that could not be read in the last %(hours)s hours: %(count)s.",
                       hours=reason["hours"], count=reason["count"])
    return code.replace("_", " ")


def _degraded_after() -> float:
    return current_app.config.get("MODEM_DEGRADED_AFTER_SECONDS", 180)


def console_texting(branch: Branch) -> dict:
    """The console panel's modem line and the branch's "degraded" reasons, in the staff's language.
    Runs at every panel refresh: only the bounded verdict queries, no listing, no rate."""
    now = clock.now()
    found = outbox_report.verdict(branch.id, now, _degraded_after())
    return {"modems": [{**m, "words": modem_words(m, branch.zone, now)} for m in found["modems"]],
            "degraded": [reason_words(r, branch.zone, now) for r in found["reasons"]]}


def _in_english(reasons, now) -> list[dict]:
    """Reasons for machines, each with a message for the person reading the JSON (times in UTC)."""
    with force_locale("en"):
        return [{**reason, "message": reason_words(reason, UTC, now)} for reason in reasons]


def health_report(now) -> dict:
    """For /api/v1/health: the verdict for every branch, with counts."""
    found = outbox_report.verdict(None, now, _degraded_after())
    tally = outbox_report.counts(None, now)
    return outbox_report.jsonable({"status": found["status"], "reasons": _in_english(found["reasons"], now),
                                   "modems": found["modems"], "outbox": {**tally, "backlog": found["lanes"]}})


# --- the page, its buttons, its JSON -----------------------------------------------------------

def _report(branch, wanted, limit):
    now = clock.now()
    branch_id = branch.id if branch is not None else None
    since = outbox_report.day_start(branch, now) if wanted["today"] else None
    page = outbox_report.listing(branch_id, status=wanted["status"], lane=wanted["lane"], since=since,
                                 before=wanted["before"], after=wanted["after"], limit=limit)
    found = outbox_report.verdict(branch_id, now, _degraded_after())
    estimate = outbox_report.drain(found["lanes"], outbox_report.send_rate(branch_id, now))
    return now, page, found, estimate, outbox_report.quarantined(branch_id)


@bp.get("/outbox")
@login_required
def outbox_page():
    branch = page_branch(request.args)
    wanted = _filters(request.args)
    now, page, found, estimate, quarantine = _report(branch, wanted, PAGE_SIZE)
    reachable = scope.branches()
    branches = reachable if len(reachable) > 1 else []
    zone = outbox_report.zone_of(branch)
    return render_template(
        "staff/outbox.html", counter=None, branch=branch, branches=branches, wanted=wanted, page=page,
        lanes=found["lanes"], estimate=estimate, quarantine=quarantine, kept=_kept(request.args),
        here={k: v for k, v in _kept(request.args).items() if k not in ("before", "after")},
        degraded=[reason_words(r, zone, now) for r in found["reasons"]], lane_names=lane_words(),
        status_names=status_words(), statuses=list(OutboxStatus))


@bp.post("/outbox/<int:message_id>/<any(retry, cancel):action>")
@login_required
def outbox_action(message_id, action):
    message = scope.owned(OutboxMessage, message_id, "Text")
    if action == "retry":
        if outbox.retry_now(message_id):
            audit.record("text.retried", target=f"text:{message_id}", branch_id=message.branch_id)
            flash(gettext("Text %(id)s is queued again and goes out as soon as the modem is free.", id=message_id), "ok")
        else:
            flash(gettext("Text %(id)s is %(status)s: only a failed or cancelled text can be sent again.",
                          id=message_id, status=status_words()[message.status]), "error")
    elif outbox.cancel(message_id, reason=f"cancelled by {current_user.username}"):
        audit.record("text.cancelled", target=f"text:{message_id}", branch_id=message.branch_id)
        flash(gettext("Text %(id)s is cancelled.", id=message_id), "ok")
    else:
        flash(gettext("Text %(id)s is %(status)s: only a text still waiting to send, or a failed one, "
                      "can be cancelled.", id=message_id, status=status_words()[message.status]), "error")
    return redirect(url_for("staff.outbox_page", **_kept(request.args)))


# What /api/v1/outbox answers (the description at /api/v1/openapi.json; core/openapi.py).
LANE_NAMES = {"type": "string", "enum": list(kinds.LANES)}
OUTBOX_TEXT = model("OutboxText", {
    "id": INTEGER, "branch_id": nullable(INTEGER), "status": {"type": "string", "enum": list(OutboxStatus)},
    "lane": LANE_NAMES, "kind": STRING, "to": {**STRING, "description": "The number, masked"}, "body": STRING,
    "last_error": nullable(STRING), "policy_note": nullable({**STRING, "description": "Why the rules held it back"}),
    "attempts": INTEGER, "possible_duplicate": BOOLEAN, "ticket": nullable(STRING),
    "appointment": nullable({**STRING, "description": "The appointment's booking code"}),
    "parts": nullable(INTEGER), "encoding": nullable(STRING),
    "sent_by": nullable({**STRING, "description": "The gateway that sent it"}),
    "actions": {**array({"type": "string", "enum": ["retry", "cancel"]}), "description": "What may be done to it now"},
    **{name: TIME for name in ("created_at", "send_after")},
    **{name: nullable(TIME) for name in ("sent_at", "delivered_at", "failed_at")},
})
LANE_BACKLOG = model("LaneBacklog", {
    "lane": LANE_NAMES, "queued": INTEGER, "due": INTEGER, "oldest_due_at": nullable(TIME),
    "oldest_wait_minutes": nullable(INTEGER), "max_wait_minutes": INTEGER,
    "over": {**BOOLEAN, "description": "The oldest due text has waited longer than its lane allows"}})
TEXTING_REASON = model("TextingReason", {
    "reason": {**STRING, "description": "no_gateway, modem_not_ready, modem_silent, sends_failing, reconnect_loop, "
                                        "lane_overdue or quarantine; more fields say more about it"},
    "message": {**STRING, "description": "The same for a person, in English (times in UTC)"}})
QUARANTINED = model("QuarantinedText", {
    "id": INTEGER, "branch_id": nullable(INTEGER), "gateway": nullable(STRING), "memory": nullable(STRING),
    "sender": {**STRING, "description": "The number, masked"}, "pdu": STRING, "error": STRING, "received_at": TIME})


@api.get("/outbox")
@login_required
@endpoint("The texts, newest first, with the backlog per lane and why texting is degraded",
          description="Pages by id: pass the answer's `older` as `before` for the page after, its `newer` as "
                      "`after` for the page before.",
          query={"branch": Id("The branch (default: every branch for an admin, else the caller's first)"),
                 "status": Text("Only texts in this state", choices=tuple(OutboxStatus)),
                 "lane": Text("Only texts of this lane", choices=tuple(kinds.LANES)),
                 "today": Flag("Only texts written today, on the branch's calendar", default=False),
                 "before": Id("Texts older than this one"), "after": Id("Texts newer than this one"),
                 "limit": Whole("Texts in this answer", low=1, high=MAX_PAGE_SIZE, default=PAGE_SIZE)},
          responses={200: model("Outbox", {
              "branch": nullable({**INTEGER, "description": "null: every branch"}), "messages": array(OUTBOX_TEXT),
              "newer": nullable(INTEGER), "older": nullable(INTEGER), "backlog": array(LANE_BACKLOG),
              "drain": model("OutboxDrain", {
                  "due": INTEGER, "rate_per_minute": nullable({**NUMBER, "description": "Sent in the last hour"}),
                  "minutes": nullable({**INTEGER, "description": "Until the due texts are sent, at that rate"})}),
              "status": {"type": "string", "enum": ["ok", "degraded"]}, "reasons": array(TEXTING_REASON),
              "quarantine": {**array(QUARANTINED), "description": "Received texts that could not be read"}})})
def outbox_json():
    asked = query_values()
    branch = visible_branch(asked["branch"])
    wanted = {key: asked[key] for key in ("status", "lane", "today", "before", "after")}
    now, page, found, estimate, quarantine = _report(branch, wanted, asked["limit"])
    return jsonify(outbox_report.jsonable({
        "branch": branch.id if branch is not None else None, "messages": page.rows,
        "newer": page.newer, "older": page.older, "backlog": found["lanes"], "drain": estimate,
        "status": found["status"], "reasons": _in_english(found["reasons"], now), "quarantine": quarantine}))
