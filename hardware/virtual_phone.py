"""The virtual phone: see every text the virtual modem "delivers" and answer as any number.
Its routes answer only while this process runs the virtual modem; otherwise they are 404.
It reads everyone's texts and replies as anyone: open from this machine (the demo, the tests),
an admin's tool from anywhere else."""
from flask import Blueprint, abort, current_app, jsonify, render_template, request

from core.auth import admin_required
from core.errors import ValidationError
from core.security import is_local_request
from core.web import json_object
from messaging.phones import e164

page = Blueprint("virtual_phone", __name__, template_folder="templates", static_folder="static",
                 static_url_path="/virtual-phone/static")
api = Blueprint("virtual_phone_api", __name__, url_prefix="/api/v1/virtual-phone")

MAX_TEXT = 1000


def init_app(app) -> None:
    from core.extensions import csrf

    csrf.exempt(api)  # JSON only (checked below): a cross-site form cannot send it
    app.register_blueprint(page)
    app.register_blueprint(api)


_admins_only = admin_required(lambda: None)  # the login page (or 401) for strangers, 403 for non-admins


@page.before_request
@api.before_request
def local_or_admin():
    return None if is_local_request() else _admins_only()


def modem():
    virtual = current_app.extensions.get("seed.virtual_modem")
    if virtual is None:
        abort(404, "The virtual phone exists only while the virtual modem runs (no MODEM_PORT configured).")
    return virtual


@page.get("/virtual-phone")
def phone():
    modem()
    return render_template("virtual_phone.html")


@api.get("/numbers")
def numbers():
    virtual = modem()
    return jsonify({"numbers": sorted(set(virtual.handsets) | set(virtual.handset_senders))})


@api.get("/messages")
def messages():
    virtual = modem()
    raw = request.args.get("number", "")
    if raw.startswith(" ") and raw.strip().isdigit():
        raw = "+" + raw.strip()  # ?number=+995... unencoded: the + arrived as a space
    number = e164(raw, field="number")
    return jsonify({"number": number, "messages": virtual.messages_for(number),
                    "sent": virtual.sent_from(number)})


@api.post("/send")
def send():
    virtual = modem()
    data = json_object()
    sender = e164(data.get("from", ""), field="from")
    text = data.get("text")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise ValidationError(f"text must be at most {MAX_TEXT} characters.", {"text": "too long or missing"})
    if not text.strip():
        raise ValidationError("The text is empty.", {"text": "required"})
    virtual.inject(sender, text)  # emoji and all, as a real phone sends them
    return jsonify({"from": sender, "text": text, "status": "sent to the modem"}), 202
