"""Managers: the wording of texts (with a live preview of their cost) and correction broadcasts.
JSON under /api/v1, a page at /staff/admin/texts?branch= (the editor the texts settings link to)."""
import re

from flask import render_template, request
from flask_babel import gettext
from flask_login import current_user, login_required
from sqlalchemy import select

from core import audit, clock, privacy, scope
from core.errors import ValidationError
from core.extensions import db
from core.openapi import BOOLEAN, INTEGER, STRING, Moment, Text, array, body_values, endpoint, model, nullable
from core.web import clean_text, moment
from hardware.pdu import outside_bmp
from messaging import budget, kinds, outbox, templates
from messaging.models import MessageTemplate, OutboxMessage
from messaging.phones import e164

from . import api, bp
from .api_routes import BRANCH_ID, chosen_branch

SAMPLE = {"name": "Nino", "ticket": "A012", "position": 4, "ahead": 3, "wait": 12, "counter": "3",
          "service": "General", "time": "10:45", "code": "K7Q2", "choices": "1) 10:30 2) 11:00 3) 11:30"}
LANGUAGES = ("en", "ja", "ka")
MAX_SEGMENTS = 4
MAX_TEXT = 1000  # characters; far past MAX_SEGMENTS parts, so the parts are what refuses a long text

# What the requests take and the answers hold (the description at /api/v1/openapi.json; core/openapi.py).
WORDING = Text("The text, starting with {branch}; placeholders such as {ticket} in braces", max_length=MAX_TEXT,
               multiline=True, required=True)
PREVIEW = model("TextPreview", {
    "text": {**STRING, "description": "The text filled with the longest values this branch can give it"},
    "encoding": {"type": "string", "enum": ["GSM-7", "UCS-2"]}, "characters": INTEGER,
    "units": {**INTEGER, "description": "What it costs in the encoding's units"},
    "segments": {**INTEGER, "description": "The parts it is sent in"},
    "per_segment": {**INTEGER, "description": "What one part holds"},
    "allowed": {**INTEGER, "description": "The parts planned for its kind and language"},
    "warning": {**STRING, "description": "When it needs more parts than planned (never a refusal)"},
}, required=["text", "encoding", "characters", "units", "segments", "per_segment", "allowed"])
TEMPLATE = model("TemplateWording", {
    "kind": STRING, "language": {"type": "string", "enum": list(LANGUAGES)}, "body": STRING,
    "custom": {**BOOLEAN, "description": "The branch's own wording (false: the standard one)"}, "preview": PREVIEW,
    "warning": nullable({**STRING, "description": "On saving: the preview's warning, if any"}),
}, required=["kind", "language", "body", "custom", "preview"])


def _kind_language(kind, language):
    if kind not in templates.KINDS:
        raise ValidationError(f"Unknown text kind {kind[:20]!r}.", {"kind": list(templates.KINDS)})
    if language not in LANGUAGES:
        raise ValidationError("language must be en, ja or ka.", {"language": "unsupported"})


def _check(data: dict) -> str:
    """The template text in data["body"]: starts with {branch}, known placeholders, no emoji."""
    text = clean_text(data, "body", max_length=MAX_TEXT, required=True, multiline=True)
    if not text.startswith("{branch}"):
        raise ValidationError("Every text starts with {branch}: customers must see who writes.", {"body": "no {branch}"})
    unknown = sorted(set(re.findall(r"{(\w*)}", text)) - set(templates.PLACEHOLDERS))
    if unknown:
        raise ValidationError(f"Unknown placeholder(s): {', '.join('{' + u + '}' for u in unknown)}. "
                              f"Use: {', '.join('{' + p + '}' for p in templates.PLACEHOLDERS)}.", {"body": "placeholders"})
    if outside_bmp(text):
        raise ValidationError("Texts cannot carry emoji.", {"body": "emoji"})
    return text


def preview_of(branch, text: str, kind: str | None = None, language: str | None = None, longest=None) -> dict:
    """The text as it comes out at its longest at this branch (its name, its longest service name,
    the longest numbers and times: messaging/budget.py), what that costs, and a warning (never a
    refusal) when it needs more parts than planned for its kind."""
    language = next(choice for choice in (language, branch.default_language, "en") if choice in LANGUAGES)
    preview = budget.measure(branch, kind or "", language, text, longest)
    if preview["segments"] > preview["allowed"]:
        preview["warning"] = gettext(
            "At its longest this text takes %(parts)s parts, more than the %(allowed)s planned for it: each part "
            "is paid for, and some phones show the parts out of order. Shorten it if you can.",
            parts=preview["segments"], allowed=preview["allowed"])
    return preview


@api.get("/templates")
@login_required
@scope.require_role("manager")
@endpoint("Every text's wording at the branch, each with the cost of its longest form", role="manager",
          query={"branch": BRANCH_ID},
          responses={200: model("Templates", {"branch": INTEGER, "placeholders": array(STRING),
                                              "templates": array(TEMPLATE)})})
def list_templates():
    branch = chosen_branch()
    items = []
    longest = {language: budget.longest_values(branch, language) for language in LANGUAGES}
    for kind in templates.KINDS:
        for language in LANGUAGES:
            body_text = templates.template_for(branch, kind, language)
            overridden = db.session.get(MessageTemplate, (branch.id, kind, language)) is not None
            items.append({"kind": kind, "language": language, "body": body_text, "custom": overridden,
                          "preview": preview_of(branch, body_text, kind, language, longest[language])})
    return {"branch": branch.id, "placeholders": list(templates.PLACEHOLDERS), "templates": items}


def _branch_and_text():
    """The request's branch, its checked template text, and the rest of its body."""
    data = body_values()
    branch = chosen_branch(data)
    return branch, _check(data), data


@api.post("/templates/preview")
@login_required
@scope.require_role("manager")
@endpoint("What a wording costs at its longest", role="manager",
          description="`kind` and `language` (both or neither) pick the values it is filled with and the parts "
                      "planned for it.",
          body={"branch": BRANCH_ID, "body": WORDING, "kind": Text("The kind of text", choices=templates.KINDS),
                "language": Text("The text's language", choices=LANGUAGES)},
          responses={200: PREVIEW})
def preview_template():
    """{"body", "kind", "language"}: kind and language (both or neither) pick the values and the parts planned."""
    branch, text, data = _branch_and_text()
    kind, language = data.get("kind"), data.get("language")
    if kind is not None or language is not None:  # both or neither
        _kind_language(str(kind), str(language))
    result = preview_of(branch, text, kind, language)
    if result["segments"] > MAX_SEGMENTS:
        result["warning"] = f"Longer than {MAX_SEGMENTS} parts: shorten it."
    return result


@api.put("/templates/<kind>/<language>")
@login_required
@scope.require_role("manager")
@endpoint("Save the branch's wording of a text", role="manager", body={"branch": BRANCH_ID, "body": WORDING},
          responses={200: ("Saved; with a warning when it needs more parts than planned", TEMPLATE)})
def save_template(kind, language):
    _kind_language(kind, language)
    branch, text, _data = _branch_and_text()
    preview = preview_of(branch, text, kind, language)
    if preview["segments"] > MAX_SEGMENTS:
        raise ValidationError(f"At its longest the text takes {preview['segments']} parts; at most {MAX_SEGMENTS}.",
                              {"body": "too long"})
    row = db.session.get(MessageTemplate, (branch.id, kind, language)) or MessageTemplate(
        branch_id=branch.id, kind=kind, language=language)
    row.body, row.updated_at = text, clock.now()
    db.session.add(row)
    templates.changed(branch)
    db.session.commit()
    audit.record("template.saved", target=f"template:{kind}/{language}", branch_id=branch.id)
    # Saved either way: over the parts planned is the manager's call, said beside "Saved".
    return {"kind": kind, "language": language, "body": text, "custom": True, "preview": preview,
            "warning": preview.get("warning")}


@api.delete("/templates/<kind>/<language>")
@login_required
@scope.require_role("manager")
@endpoint("Go back to the standard wording of a text", role="manager", query={"branch": BRANCH_ID},
          responses={200: TEMPLATE})
def revert_template(kind, language):
    _kind_language(kind, language)
    branch = chosen_branch()
    row = db.session.get(MessageTemplate, (branch.id, kind, language))
    if row is not None:
        db.session.delete(row)
        templates.changed(branch)
        db.session.commit()
        audit.record("template.reverted", target=f"template:{kind}/{language}", branch_id=branch.id)
    text = templates.template_for(branch, kind, language)
    return {"kind": kind, "language": language, "body": text, "custom": False,
            "preview": preview_of(branch, text, kind, language)}


@api.post("/templates/test")
@login_required
@scope.require_role("manager")
@endpoint("Send a wording, filled at its longest, to one phone", role="manager",
          body={"branch": BRANCH_ID, "body": WORDING,
                "phone": Text("The number to send it to", max_length=32, required=True)},
          responses={202: ("Queued in the outbox", model("TemplateTestSent", {
              "queued": {**INTEGER, "description": "The outbox row"}, "to": STRING, "text": STRING}))})
def test_template():
    branch, text, data = _branch_and_text()
    rendered = preview_of(branch, text)["text"]
    phone = e164(data["phone"], branch.country, field="phone")
    message = outbox.enqueue(phone, rendered, "test", branch_id=branch.id, country=branch.country)
    audit.record("text.sent", target=privacy.target(message.to), branch_id=branch.id, detail={"kind": "test"})
    return {"queued": message.id, "to": message.to, "text": rendered}, 202


def _window(data):
    """The kind (a known one: its declaration) and the window [from, to) of a correction's body."""
    start, end = moment(data["from"], "from"), moment(data["to"], "to")
    if end <= start:
        raise ValidationError("'to' must come after 'from'.", {"to": "before from"})
    return data["kind"], start, end


WINDOW = {
    "branch": BRANCH_ID, "kind": Text("The kind of text to correct", choices=tuple(sorted(kinds.KINDS)), required=True),
    "from": Moment("Texts sent from this time on (with its zone)", required=True),
    "to": Moment("Texts sent before this time (with its zone)", required=True),
}


def _recipients(branch, kind, start, end):
    return db.session.scalars(
        select(OutboxMessage.to).where(OutboxMessage.branch_id == branch.id, OutboxMessage.kind == kind,
                                       OutboxMessage.status.in_(("sent", "delivered")),
                                       OutboxMessage.sent_at >= start, OutboxMessage.sent_at < end).distinct()
    ).all()


@api.post("/corrections/preview")
@login_required
@scope.require_role("manager")
@endpoint("How many numbers a correction would go to", role="manager", body=WINDOW,
          responses={200: model("CorrectionPreview", {"kind": STRING, "recipients": INTEGER})})
def preview_correction():
    data = body_values()
    branch = chosen_branch(data)
    kind, start, end = _window(data)
    return {"kind": kind, "recipients": len(_recipients(branch, kind, start, end))}


@api.post("/corrections")
@login_required
@scope.require_role("manager")
@endpoint("Send one correction to every number that got a kind of text in a window", role="manager",
          description="The branch's sender name is put in front of `body` when it does not start with it; the "
                      "texting rules (consent, opt-out, quiet hours) still apply to each.",
          body={**WINDOW, "body": Text("The correction", max_length=MAX_TEXT, multiline=True, required=True)},
          responses={202: ("Queued in the outbox", model("CorrectionSent", {
              "kind": STRING, "queued": {**INTEGER, "description": "Texts queued"}, "text": STRING}))})
def send_correction():
    """Send one correction to everyone who got `kind` in the window (policy still applies)."""
    data = body_values()
    branch = chosen_branch(data)
    kind, start, end = _window(data)
    text = data["body"]
    if not text.startswith(branch.sender_name):
        text = f"{branch.sender_name}: {text.strip()}"
    outbox.check_body(text)
    numbers = _recipients(branch, kind, start, end)
    for number in numbers:
        outbox.enqueue(number, text, "correction", branch_id=branch.id)
    audit.record("broadcast.sent", target=f"kind:{kind}", branch_id=branch.id,
                 detail={"recipients": len(numbers), "from": start.isoformat(), "to": end.isoformat()})
    return {"kind": kind, "queued": len(numbers), "text": text}, 202


@bp.get("/admin/texts")
@login_required
@scope.require_role("manager")
def texts_page():
    """?branch= picks the branch; ?kind= and ?language= the text shown first (links from the texts settings)."""
    branch = chosen_branch()
    return render_template("staff/texts.html", user=current_user, branch=branch, settings_branch=branch,
                           section="texts", errors={}, languages=LANGUAGES,
                           first={"kind": request.args.get("kind"), "language": request.args.get("language")})
