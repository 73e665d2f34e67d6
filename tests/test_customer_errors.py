"""No English reaches a Japanese or Georgian customer (issue 16): what the kiosk and the status
page answer when something is refused (a service paused or gone while the kiosk was open, the
rate limits of the kiosk and of the status page's buttons, an old or mangled status link) is in
the customer's language, or the branch's when the request does not say, and a dead status link
lands on the customer's page, never the staff's error page. And nobody ahead reads "you're next",
never "0 people ahead, about 0 min". Through the HTTP routes; the pages that show these answers
are walked in Chromium by tests/test_customer_accessibility.py."""
import json
import re

import pytest
from babel.support import Translations
from sqlalchemy import func, select

from core import engine
from core.extensions import db
from core.models import Ticket

from .helpers import make_branch, make_counter, make_service
from .live import ROOT

CATALOGUES = {language: Translations.load(str(ROOT / "translations"), [language]) for language in ("en", "ja", "ka")}
NAMES = {"en": "Certificates", "ja": "証明書の交付", "ka": "ცნობების გაცემა"}
TOO_MANY = "Too many requests: wait a moment and try again."
GONE_TITLE = "This ticket link no longer works"


def said(language: str, msgid: str, context: str | None = None, **values) -> str:
    """The msgid (in `context`, for pgettext) as a customer in `language` reads it, through the
    catalogue the app uses."""
    catalogue = CATALOGUES[language]
    text = catalogue.pgettext(context, msgid) if context else catalogue.gettext(msgid)
    return text % values if values else text


def translated(language: str, msgid: str, **values) -> str:
    """said(), insisting that the catalogue has it: a ja/ka customer must not get the English."""
    text = said(language, msgid, **values)
    assert text != (msgid % values if values else msgid), f"{language} has no translation of {msgid!r}"
    return text


@pytest.fixture
def office(app):
    """A Georgian office (Georgian first) offering ka, ja and en: services A and B, counter 1 open."""
    branch = make_branch("Rustavi Hall", timezone="Asia/Tbilisi", country="GE", default_language="ka",
                         languages=["ka", "ja", "en"])
    a = make_service(branch, "A", name=NAMES["en"], names=NAMES)
    b = make_service(branch, "B")
    counter = make_counter(branch, "1", [a, b], is_open=True)
    db.session.commit()
    return {"branch": branch, "a": a, "b": b, "counter": counter}


def tickets() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count(Ticket.id)))


@pytest.mark.parametrize("language", ["ja", "ka"])
def test_a_service_paused_while_the_kiosk_was_open_is_refused_in_the_customers_words(client, office, language):
    office["a"].active = False  # the manager pauses it; the kiosk still shows it as it was
    db.session.commit()
    answer = client.post("/api/v1/checkins", json={"service": "A", "language": language, "branch": office["branch"].id})
    assert answer.status_code == 400 and answer.json["detail"] == {"service": "paused"}
    assert answer.json["message"] == translated(language, "%(service)s is paused: please ask at the desk.",
                                                service=NAMES[language])
    assert tickets() == 0


@pytest.mark.parametrize("language", ["ja", "ka"])
def test_a_service_gone_while_the_kiosk_was_open_is_refused_in_the_customers_words(client, office, language):
    office["b"].code = "Z"  # set up anew: the code the kiosk still shows is no one's
    db.session.commit()
    answer = client.post("/api/v1/checkins", json={"service": "B", "language": language, "branch": office["branch"].id})
    assert answer.status_code == 400 and answer.json["detail"] == {"service": "unknown"}
    assert answer.json["message"] == translated(
        language, "This service is not offered here any more: please choose another or ask at the desk.")
    assert tickets() == 0


@pytest.mark.parametrize("language", ["ja", "ka"])
def test_the_kiosks_rate_limits_answer_in_the_customers_words(client, app, office, language):
    app.config["KIOSK_RATE_LIMIT"] = "2 per minute"
    app.config["KIOSK_PHONE_CHECK_LIMIT"] = "1 per minute"
    body = {"service": "A", "language": language, "branch": office["branch"].id}
    codes = [client.post("/api/v1/checkins", json=body).status_code for _ in range(2)]
    refused = client.post("/api/v1/checkins", json=body)
    assert codes == [201, 201] and refused.status_code == 429
    assert refused.json == {"error": "too_many_requests", "detail": None, "message": translated(language, TOO_MANY)}
    assert tickets() == 2

    phone = {"phone": "555 12 34 56", "language": language, "branch": office["branch"].id}
    assert client.post("/api/v1/phone-check", json=phone).status_code == 200
    refused = client.post("/api/v1/phone-check", json=phone)
    assert refused.status_code == 429 and refused.json["message"] == translated(language, TOO_MANY)


@pytest.mark.parametrize("language", ["ja", "ka"])
def test_a_field_the_declaration_refuses_is_refused_in_the_customers_words(client, office, language):
    """The check-in's declaration (core/openapi.py) reads the body before the view: its refusals
    too are said in the customer's language, and nothing is issued."""
    body = {"service": "A", "language": language, "branch": office["branch"].id, "name": "N" * 61}
    answer = client.post("/api/v1/checkins", json=body)
    assert answer.status_code == 400 and answer.json["detail"] == {"name": "too long"}
    assert answer.json["message"] == translated(language, "%(field)s has at most %(most)s characters.", field="name",
                                                most=60)
    assert tickets() == 0


def test_a_kiosk_request_that_names_no_language_is_answered_in_the_branchs(client, app, office):
    app.config["KIOSK_RATE_LIMIT"] = "1 per minute"
    body = {"service": "A", "branch": office["branch"].id}
    assert client.post("/api/v1/checkins", json=body).status_code == 201
    assert client.post("/api/v1/checkins", json=body).json["message"] == translated("ka", TOO_MANY)
    office["a"].active = False
    db.session.commit()
    app.config["KIOSK_RATE_LIMIT"] = "1000 per minute"
    paused = client.post("/api/v1/checkins", json=body).json["message"]
    assert paused == translated("ka", "%(service)s is paused: please ask at the desk.", service=NAMES["ka"])


@pytest.mark.parametrize("language", ["ja", "ka"])
def test_the_status_buttons_rate_limit_answers_in_the_tickets_words(client, app, office, language):
    app.config["STATUS_ACTION_RATE_LIMIT"] = "1 per minute"
    ticket = engine.issue_ticket(office["a"].id, language=language)
    press = lambda: client.post(f"/t/{ticket.access_token}/late", json={"minutes": 10},  # noqa: E731
                                headers={"X-Requested-With": "fetch"})
    assert press().status_code == 200
    refused = press()
    assert refused.status_code == 429
    assert refused.json == {"error": "too_many_requests", "detail": None, "message": translated(language, TOO_MANY)}


@pytest.mark.parametrize("language", ["ja", "ka"])
def test_an_old_or_mangled_status_link_lands_on_the_customers_page(client, office, language):
    for path in ("/t/a-link-from-last-year", "/t/", "/t/cut%20short", "/t/two/parts", "/t/x.json/extra"):
        page = client.get(path, headers={"Accept-Language": f"{language},en;q=0.5"})
        assert page.status_code == 404 and page.mimetype == "text/html", path
        assert f'<html lang="{language}">' in page.text, path
        assert f"<h1>{translated(language, GONE_TITLE)}</h1>" in page.text, path
        assert "console" not in page.text.lower(), path  # not the staff's error page


@pytest.mark.parametrize("language", ["ja", "ka"])
def test_a_dead_link_in_a_browser_of_another_language_speaks_the_branchs(client, office, language):
    office["branch"].default_language = language
    db.session.commit()
    page = client.get("/t/a-link-from-last-year", headers={"Accept-Language": "fr-FR,fr"})
    assert page.status_code == 404 and f'<html lang="{language}">' in page.text
    assert translated(language, GONE_TITLE) in page.text


def test_a_link_with_something_after_its_token_opens_the_tickets_page(client, office):
    ticket = engine.issue_ticket(office["a"].id, language="ja")
    answer = client.get(f"/t/{ticket.access_token}/extra")
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/t/{ticket.access_token}")


# --- nobody ahead -------------------------------------------------------------------------------

def embedded(html: str, script_id: str) -> dict:
    """The JSON a page carries for its script."""
    return json.loads(re.search(rf'id="{script_id}"[^>]*>(.*?)</script>', html, re.S).group(1))


@pytest.mark.parametrize("language", ["en", "ja", "ka"])
def test_the_status_page_and_kiosk_have_words_for_nobody_ahead(client, office, language):
    """status.js shows words.next, kiosk.js strings you_are_next and stay_close, when `ahead` is 0 (the
    Chromium walk checks what they show); here, that the words come in the ticket's language."""
    say = said if language == "en" else translated
    ticket = engine.issue_ticket(office["a"].id, language=language)
    data = embedded(client.get(f"/t/{ticket.access_token}").text, "status-data")
    assert data["status"]["ahead"] == 0
    assert data["words"]["next"] == say(language, "You're next. Please stay close.")
    kiosk = embedded(client.get(f"/kiosk/{office['branch'].id}").text, "kiosk-strings")[language]
    assert (kiosk["you_are_next"], kiosk["stay_close"]) == (say(language, "You're next."), say(language, "Please stay close."))


@pytest.mark.parametrize("language", ["en", "ja", "ka"])
def test_a_printed_ticket_with_nobody_ahead_says_so(client, app, office, monkeypatch, tmp_path, language):
    from hardware import printer

    printed = []
    monkeypatch.setattr(printer, "print_ticket", lambda settings, ticket, *rest, **more: printed.append(ticket))
    app.config["PRINTER"] = {"kind": "file", "path": str(tmp_path / "tickets.bin")}
    body = {"service": "A", "language": language, "branch": office["branch"].id}
    for _ in range(2):
        assert client.post("/api/v1/checkins", json=body).status_code == 201
    first, second = (ticket["print_words"] for ticket in printed)
    assert (first["ahead"], first["wait"]) == (said(language, "You're next."), said(language, "Please stay close."))
    assert second["ahead"] == said(language, "People ahead of you: %(count)s", count=1)
    assert not re.search(r"\b0\b", first["ahead"] + first["wait"])
