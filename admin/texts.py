"""Settings: the texts a branch sends (switches, thresholds, reminder lead times, the survey,
quiet hours, the daily cap), the survey question in each language, and a test send. The wording
of every text is edited on the template editor (staff/admin.py), which this page links to.

Pages: admin.texts_page (GET, POST: save the settings), admin.texts_test (POST: a test text).
JSON: GET/PUT /api/v1/admin/texts, POST /api/v1/admin/texts/test. All take ?branch= (or "branch"
in the body)."""
from flask import request
from flask_babel import gettext
from flask_login import login_required

from core import audit, scope
from core.errors import ValidationError
from core.extensions import db
from core.language import LANGUAGE_NAMES
from core.openapi import BOOLEAN, Flag, INTEGER, STRING, Text, Whole, array, body_values, endpoint, model, sent_values
from core.settings import FieldErrors
from core.settings import texts as settings
from messaging import outbox, templates
from messaging.models import MessageTemplate
from messaging.phones import e164
from staff.admin import LANGUAGES, SAMPLE, preview_of

from . import api, bp
from .common import BRANCH, branch_context, done, page_branch, refused, render_form, setting

TEMPLATE = "admin/texts.html"
SWITCHES = tuple(key for key, rule in settings.RULES.items() if rule.kind == settings.SWITCH)
PHONE_LENGTH = 32  # messaging/phones.py's e164 reads at most this many characters


def _from_form(form) -> dict:
    """The form as update() takes it: a box left unticked is not sent at all, so it means off."""
    changes = {key: key in form for key in SWITCHES}
    changes.update({key: form[key] for key, rule in settings.RULES.items() if rule.kind != settings.SWITCH
                    and key in form})
    return changes


def _shown(values: dict) -> dict:
    return {key: ", ".join(map(str, value)) if isinstance(value, list) else value for key, value in values.items()}


def _languages(branch) -> list[str]:
    """The languages the branch's customers get texts in (those templates exist for)."""
    return [language for language in branch.languages or () if language in LANGUAGES] or list(LANGUAGES)


def _survey_questions(branch) -> list[dict]:
    """The survey question (the "survey" template) in each of the branch's languages."""
    questions = []
    for language in _languages(branch):
        text = templates.template_for(branch, "survey", language)
        custom = db.session.get(MessageTemplate, (branch.id, "survey", language)) is not None
        questions.append({"language": language, "custom": custom,
                          "preview": preview_of(branch, text, "survey", language)})
    return questions


def _page(branch, values=None, *, refusal: ValidationError | None = None, test=None, message=None):
    """The page; after a refusal, status 400 with each field's error beside it and the values kept."""
    context = branch_context(
        "texts", branch, values=_shown(values or settings.current(branch)), survey=_survey_questions(branch),
        languages=_languages(branch), test=test or {}, kind_options=[(kind, kind) for kind in templates.KINDS],
        language_options=[(language, LANGUAGE_NAMES[language]) for language in _languages(branch)])
    if refusal is None:
        return render_form(TEMPLATE, **context)
    return refused(TEMPLATE, refusal, message=message, **context)


def send_test(branch, data: dict):
    """A chosen template in a chosen language, filled with sample values, to the number typed:
    written to the outbox like every text, so the sending policy applies to it too. The audit
    entry names the template, never the number."""
    errors = FieldErrors()
    kind, language = data.get("kind"), data.get("language")
    if not isinstance(kind, str) or kind not in templates.KINDS:
        errors.add("kind", gettext("Choose one of the texts listed."))
    if not isinstance(language, str) or language not in LANGUAGES:
        errors.add("language", gettext("Choose one of the languages listed."))
    phone = None
    try:
        phone = e164(data.get("phone"), branch.country, field="phone")
    except ValidationError:
        errors.add("phone", gettext("Give a number that can get texts, for example +995555123456."))
    errors.raise_if_any()
    message = outbox.enqueue(phone, templates.render(branch, kind, language, **SAMPLE), "test", branch_id=branch.id)
    audit.record("text.sent", target=f"template:{kind}/{language}", branch_id=branch.id,
                 detail={"kind": "test", "template": kind, "language": language})
    return message


@bp.route("/texts", methods=["GET", "POST"])
@login_required
@scope.require_role("manager")
def texts_page():
    branch = page_branch()
    if request.method == "GET":
        return _page(branch)
    submitted = _from_form(request.form)
    try:
        settings.update(branch, submitted)
    except ValidationError as error:
        return _page(branch, {**settings.current(branch), **submitted}, refusal=error,
                     message=gettext("Nothing was saved: please correct the marked settings."))
    return done(gettext("The text settings are saved."), "admin.texts_page", branch=branch.id)


@bp.post("/texts/test")
@login_required
@scope.require_role("manager")
def texts_test():
    branch = page_branch()
    try:
        send_test(branch, request.form)
    except ValidationError as error:
        return _page(branch, refusal=error, test=request.form.to_dict(), message=gettext("The test text was not sent."))
    return done(gettext("The test text is in the outbox. It goes out like every text: a number that replied STOP "
                        "gets nothing, and it counts towards the daily cap."), "admin.texts_page", branch=branch.id,
                _anchor="test")


# --- JSON --------------------------------------------------------------------------------------

def _rule_schema(rule: settings.Rule) -> dict:
    """What core/settings/texts.py's rule of one setting takes, in JSON Schema. (The command line
    and the page send the same as text: "off", "20", "1440, 120".)"""
    if rule.kind == settings.SWITCH:
        return Flag().schema()
    if rule.kind == settings.NUMBER:
        return Whole(low=rule.low, high=rule.high).schema()
    if rule.kind == settings.TIME:
        return {"type": "string", "pattern": f"^{settings.CLOCK.pattern}$", "description": "A time of day, HH:MM"}
    return {**array(Whole(low=rule.low, high=rule.high).schema()), "maxItems": settings.MAX_REMINDERS,
            "uniqueItems": True, "description": "Minutes before the appointment; [] sends no reminders"}


_SHOWN = {settings.SWITCH: BOOLEAN, settings.NUMBER: INTEGER, settings.TIME: STRING, settings.MINUTES: array(INTEGER)}
TEXT_SETTINGS = model("AdminTextSettings", {key: _SHOWN[rule.kind] for key, rule in settings.RULES.items()})
TEXTS_ANSWER = model("AdminTexts", {"branch": INTEGER, "settings": TEXT_SETTINGS})


@api.get("/texts")
@login_required
@scope.require_role("manager")
@endpoint("The branch's text settings: which texts it sends and the policy they obey", role="manager",
          query={"branch": BRANCH}, responses={200: TEXTS_ANSWER})
def texts_settings():
    branch = page_branch()
    return {"branch": branch.id, "settings": settings.current(branch)}


@api.put("/texts")
@login_required
@scope.require_role("manager")
@endpoint("Change some text settings: the ones sent change, all or none", role="manager",
          description="Every bad value is named at once in `detail`; nothing changes then.",
          query={"branch": BRANCH},
          body={"branch": BRANCH, **{key: setting(_rule_schema(rule)) for key, rule in settings.RULES.items()}},
          responses={200: TEXTS_ANSWER})
def texts_settings_save():
    """Change some settings: {"welcome": false, "reminder_lead_minutes": [1440, 120], ...}."""
    branch = page_branch(body_values())
    changes = {key: value for key, value in sent_values().items() if key != "branch"}
    return {"branch": branch.id, "settings": settings.update(branch, changes)}


@api.post("/texts/test")
@login_required
@scope.require_role("manager")
@endpoint("Send one text, filled with sample values, to a number: through the outbox like every text",
          role="manager", query={"branch": BRANCH},
          body={"branch": BRANCH,
                "kind": setting(Text("The text (its template)", choices=templates.KINDS, required=True),
                                required=True),
                "language": setting(Text("Its language", choices=LANGUAGES, required=True), required=True),
                "phone": setting(Text("The number, e.g. +995555123456 (the branch's country without +)",
                                      max_length=PHONE_LENGTH, required=True), required=True)},
          responses={202: ("In the outbox", model("AdminTestText", {
              "queued": {**INTEGER, "description": "The outbox row"}, "kind": STRING}))})
def texts_test_send():
    """{"kind": "welcome", "language": "ja", "phone": "+81..."}: 202, the outbox row's id."""
    data = body_values()
    branch = page_branch(data)
    message = send_test(branch, data)
    return {"queued": message.id, "kind": message.kind}, 202
