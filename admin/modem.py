"""Settings: a branch's modem, as a page and as JSON. What each gateway serving the branch last
reported (state, signal, SIM, operator, texts sent and failed today, last error, last seen), and
where the modem is plugged in and the SIM's PIN, which the gateway picks up within seconds (it
connects again). The rules are in core/settings/modem.py; the PIN is never shown back.

Pages: admin.modem_page (GET /admin/modem?branch=), admin.modem_save (POST /admin/modem?branch=).
JSON: GET and PUT /api/v1/admin/modem?branch=<id> ({"port": ..., "pin": ...})."""
from flask_babel import format_datetime, gettext
from flask_login import login_required

from core import clock, scope
from core.errors import ValidationError
from core.openapi import BOOLEAN, INTEGER, STRING, TIME, array, body_values, endpoint, model, nullable, sent_values
from core.settings import modem as settings
from messaging import modem_report
from messaging.outbox_report import jsonable
from staff.outbox import state_words

from . import api, bp
from .common import BRANCH, branch_context, done, form_data, page_branch, refused, render_form, setting

PAGE = "admin/modem.html"


def _from_form(form: dict) -> dict:
    """The form as update() takes it. The PIN box is always empty on the page (the PIN is never
    shown back): left empty it keeps the PIN; "remove" goes back to none."""
    data = {"port": form.get("port", "")}
    if form.get("pin"):
        data["pin"] = form["pin"]
    elif form.get("pin_remove"):
        data["pin"] = None
    return data


def _sim_words(sim: str) -> str:
    return {
        "ready": gettext("ready"),
        "pin_needed": gettext("The SIM needs its PIN: enter it below."),
        "pin_rejected": gettext("The SIM refused the PIN, which is not sent again. Enter the right PIN below: "
                                "each wrong PIN uses one of the SIM's three tries."),
        "puk_required": gettext("The SIM is locked and needs its PUK: unlock it in a phone, then put it back "
                                "in the modem."),
        "no_sim": gettext("No SIM card in the modem, or the SIM failed."),
    }.get(sim, gettext("not known yet"))


def _when(moment, zone) -> str:
    return format_datetime(moment.astimezone(zone), "medium", rebase=False) if moment else "—"


def _context(branch) -> dict:
    """What the page shows: the settings, and each gateway in words, in the branch's time."""
    now = clock.now()
    found = modem_report.for_branch(branch, now)
    zone = branch.zone
    gateways = [{**modem, "state_words": state_words(modem, zone, now), "sim_words": _sim_words(modem["sim"]),
                 "last_seen": _when(modem["updated_at"], zone)} for modem in found["gateways"]]
    return branch_context("modem", branch, settings=settings.get(branch), gateways=gateways,
                          failed_today=found["failed_today"])


@bp.get("/modem")
@login_required
@scope.require_role("manager")
def modem_page():
    branch = page_branch()
    context = _context(branch)
    return render_form(PAGE, port=context["settings"]["port"] or "", **context)


@bp.post("/modem")
@login_required
@scope.require_role("manager")
def modem_save():
    branch = page_branch()
    submitted = _from_form(form_data())
    try:
        settings.update(branch, submitted)
    except ValidationError as error:
        return refused(PAGE, error, port=submitted["port"], **_context(branch))
    return done(gettext("The modem settings are saved: the gateway connects again with them within a few seconds."),
                "admin.modem_page", branch=branch.id)


SETTINGS = model("AdminModemSettings", {
    "branch": INTEGER,
    "port": nullable({**STRING, "description": "A device or imei:<IMEI>; null: the gateway's own configuration"}),
    "pin_set": {**BOOLEAN, "description": "Whether a PIN is set (it is never shown)"},
    "version": {**INTEGER, "description": "Goes up with each change: the gateway connects again"},
    "updated_at": nullable(TIME),
})
GATEWAY = model("AdminModemGateway", {
    "gateway": STRING, "port": STRING,
    "state": {**STRING, "description": "What the gateway last reported, or silent when it stopped reporting"},
    "signal": nullable({**INTEGER, "description": "0-31 (AT+CSQ)"}),
    "sim": {"type": "string", "enum": ["ready", "unknown", *modem_report.SIM_PROBLEMS]},
    "network": nullable(STRING), "sent_today": INTEGER, "last_error": nullable(STRING), "updated_at": TIME,
    "imei": nullable(STRING),
    "follows_settings": {**BOOLEAN, "description": "Whether the gateway connects with this branch's settings"},
})
MODEM = model("AdminModem", {"branch": INTEGER, "settings": SETTINGS, "failed_today": INTEGER,
                             "gateways": array(GATEWAY)})
SHOWN = ("gateway", "port", "state", "signal", "sim", "network", "sent_today", "last_error", "updated_at", "imei",
         "follows_settings")


def _json(branch) -> dict:
    """Codes and numbers for machines (the page says them in words); times in UTC."""
    found = modem_report.for_branch(branch, clock.now())
    return jsonable({"branch": branch.id, "settings": settings.get(branch), "failed_today": found["failed_today"],
                     "gateways": [{key: modem[key] for key in SHOWN} for modem in found["gateways"]]})


@api.get("/modem")
@login_required
@scope.require_role("manager")
@endpoint("The branch's modem: its settings, and what each gateway serving it last reported", role="manager",
          query={"branch": BRANCH}, responses={200: MODEM})
def modem_json():
    return _json(page_branch())


@api.put("/modem")
@login_required
@scope.require_role("manager")
@endpoint("Set where the modem is plugged in and the SIM's PIN: the gateway connects again with them",
          role="manager", description="A field left out stays; empty or null goes back to the gateway's own "
                                      "configuration (MODEM_PORT, MODEM_PIN).",
          query={"branch": BRANCH},
          body={"branch": BRANCH,
                "port": setting({"type": "string", "maxLength": settings.PORT_MAX_LENGTH},
                                "A device (/dev/ttyUSB0, /dev/serial/by-id/...) or imei: and the modem's 15 digits",
                                null=True),
                "pin": setting({"type": "string", "pattern": f"^({settings.PIN.pattern})?$"},
                               "The SIM's PIN, 4 to 8 digits: never shown back", null=True)},
          responses={200: MODEM})
def modem_update():
    """{"port": "/dev/ttyUSB0" | "imei:<IMEI>" | "" , "pin": "1234" | "" }: a field left out stays;
    an empty one goes back to the gateway's configuration."""
    branch = page_branch(body_values())
    settings.update(branch, {key: value for key, value in sent_values().items() if key in ("port", "pin")})
    return _json(branch)
