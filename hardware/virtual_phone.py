"""The virtual phone: see every text the virtual modem "delivers" and answer as any number.
Its routes answer only while this process runs the virtual modem; otherwise they are 404.
It reads everyone's texts and replies as anyone: open from this machine (the demo, the tests),
an admin's tool from anywhere else."""
from flask import Blueprint, abort, current_app, jsonify, render_template

from core.auth import admin_required
from core.openapi import INTEGER, STRING, TIME, Text, array, body_values, endpoint, model, query_values
from core.security import is_local_request
from messaging.phones import e164

page = Blueprint("virtual_phone", __name__, template_folder="templates", static_folder="static",
                 static_url_path="/virtual-phone/static")
api = Blueprint("virtual_phone_api", __name__, url_prefix="/api/v1/virtual-phone")

MAX_TEXT = 1000
# The declarations say "admin": what a caller from elsewhere needs. From this machine's loopback
# (not through a proxy we were not told to trust) no sign-in is asked (local_or_admin).
WHO = ("Only while this process runs the virtual modem (else 404). Open without signing in from this "
       "machine's loopback; an administrator's from anywhere else.")
NUMBER = {**STRING, "description": "E.164"}


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
@endpoint("The numbers the virtual phone has texted with", description=WHO, role="admin",
          responses={200: model("VirtualPhoneNumbers", {"numbers": array(NUMBER)})})
def numbers():
    virtual = modem()
    return jsonify({"numbers": sorted(set(virtual.handsets) | set(virtual.handset_senders))})


RECEIVED = model("VirtualPhoneReceived", {
    "number": NUMBER, "body": {**STRING, "description": "All its parts joined"}, "time": TIME, "parts": INTEGER,
    "encoding": {"type": "string", "enum": ["GSM-7", "UCS-2"]}, "references": array(INTEGER)})
SENT = model("VirtualPhoneSentText", {"body": STRING, "time": TIME})


@api.get("/messages")
@endpoint("The texts one number received from the modem and sent to it", description=WHO, role="admin",
          query={"number": Text("The handset's number", max_length=32, required=True)},
          responses={200: model("VirtualPhoneMessages", {
              "number": NUMBER, "messages": {**array(RECEIVED), "description": "Received from the modem"},
              "sent": {**array(SENT), "description": "Sent to the modem"}})})
def messages():
    virtual = modem()
    raw = query_values()["number"]
    if raw.startswith(" ") and raw.strip().isdigit():
        raw = "+" + raw.strip()  # ?number=+995... unencoded: the + arrived as a space
    number = e164(raw, field="number")
    return jsonify({"number": number, "messages": virtual.messages_for(number),
                    "sent": virtual.sent_from(number)})


@api.post("/send")
@endpoint("Text the modem as a handset", description=WHO, role="admin",
          body={"from": Text("The handset's number", max_length=32, required=True),
                "text": Text("What it says (emoji too, as a phone sends them)", max_length=MAX_TEXT, multiline=True,
                             required=True)},
          responses={202: ("Handed to the virtual modem", model("VirtualPhoneSent", {
              "from": NUMBER, "text": STRING, "status": STRING}))})
def send():
    virtual = modem()
    data = body_values()
    sender = e164(data["from"], field="from")
    text = data["text"]
    virtual.inject(sender, text)  # emoji and all, as a real phone sends them
    return jsonify({"from": sender, "text": text, "status": "sent to the modem"}), 202
