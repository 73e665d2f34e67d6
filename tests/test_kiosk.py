"""The check-in API, phone checks, consent, the status page, and every refusal."""
import pytest
from sqlalchemy import func, select

from core import engine
from core.extensions import db
from core.models import Customer, Ticket


@pytest.fixture
def georgia(setup):
    branch = setup[0]
    branch.country = "GE"
    branch.sender_name = "Tbilisi Clinic"
    db.session.commit()
    return setup


def counts():
    db.session.rollback()
    return (db.session.scalar(select(func.count(Ticket.id))), db.session.scalar(select(func.count(Customer.id))))


def test_walk_in_without_phone(client, georgia):
    response = client.post("/api/v1/checkins", json={"service": "a", "language": "en"})
    assert response.status_code == 201
    ticket = response.json["ticket"]
    assert (ticket["number"], ticket["service"], ticket["position"], ticket["estimated_wait_minutes"]) == ("A001", "A", 1, 0)
    assert ticket["status_url"].startswith("http://localhost/t/") and len(ticket["status_url"].rsplit("/", 1)[1]) >= 24
    assert ticket["sms"] is False
    assert counts() == (1, 0)


def test_phone_in_any_format_is_stored_e164_with_the_consent_words(client, georgia):
    response = client.post("/api/v1/checkins", json={"service": "B", "phone": "555 12-34-56", "language": "ka",
                                                     "sms_consent": True, "name": "ნინო"})
    assert response.status_code == 201 and response.json["ticket"]["sms"] is True
    customer = db.session.scalar(select(Customer))
    assert (customer.phone, customer.language, customer.name, customer.consent_source) == ("+995555123456", "ka", "ნინო", "kiosk")
    assert customer.sms_consent and customer.consent_at is not None
    assert customer.consent_text.startswith("დიახ, Tbilisi Clinic-ს შეუძლია")
    ticket = db.session.scalar(select(Ticket))
    assert ticket.customer_id == customer.id and ticket.language == "ka" and ticket.source == "kiosk"


def test_returning_customer_is_the_same_customer_and_a_new_yes_lifts_a_stop(client, georgia, clock):
    client.post("/api/v1/checkins", json={"service": "A", "phone": "+995555123456", "sms_consent": True})
    customer = db.session.scalar(select(Customer))
    customer.opted_out_at = clock.now()
    customer.sms_consent = False
    db.session.commit()
    client.post("/api/v1/checkins", json={"service": "A", "phone": "555123456", "sms_consent": True, "language": "ja"})
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Customer.id))) == 1
    assert customer.opted_out_at is None and customer.sms_consent and customer.consent_text.startswith("はい、Tbilisi Clinic")


def test_phone_check_shows_the_number_back(client, georgia):
    answer = client.post("/api/v1/phone-check", json={"phone": "+995 555 123 456"})
    assert answer.status_code == 200 and answer.json == {"e164": "+995555123456", "display": "555 12 34 56"}
    foreign = client.post("/api/v1/phone-check", json={"phone": "+81 90-1234-5678"})
    assert foreign.json["display"] == "+81 90-1234-5678"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"service": "Q"}, "service"),
        ({}, "service"),
        ({"service": ["A"]}, "service"),
        ({"service": "A", "phone": "12"}, "phone"),
        ({"service": "A", "phone": "not a phone"}, "phone"),
        ({"service": "A", "phone": "+995 32 2 123456", "sms_consent": True}, "phone"),  # a Tbilisi landline
        ({"service": "A", "sms_consent": True}, "phone"),
        ({"service": "A", "sms_consent": "yes"}, "sms_consent"),
        ({"service": "A", "language": "fr"}, "language"),
        ({"service": "A", "name": "x" * 61}, "name"),
        ({"service": "A", "name": "<script>alert(1)</script>"}, "name"),
        ({"service": "A", "name": "zero\u200bwidth"}, "name"),
        ({"service": "A", "name": 42}, "name"),
        ({"service": "A", "admin": True}, "admin"),
        ({"service": "A", "branch": 999}, "branch"),
        ({"service": "A", "phone": "9" * 40}, "phone"),
    ],
)
def test_refusals_name_the_field_and_change_nothing(client, georgia, body, field):
    response = client.post("/api/v1/checkins", json=body)
    assert response.status_code in (400, 404), response.json
    assert field in (response.json["detail"] or {}), response.json
    assert response.json["message"]
    assert counts() == (0, 0)


def test_landline_message_is_clear_and_in_the_customers_language(client, georgia):
    english = client.post("/api/v1/phone-check", json={"phone": "+995 32 2 123456"})
    assert english.status_code == 400 and "landline" in english.json["message"]
    japanese = client.post("/api/v1/phone-check", json={"phone": "12", "language": "ja"})
    assert japanese.json["message"] == "有効な番号ではありません。ご確認ください。"


def test_non_json_and_non_object_bodies(client, georgia):
    assert client.post("/api/v1/checkins", data="service=A").status_code == 415
    assert client.post("/api/v1/checkins", json=["A"]).status_code == 400
    assert client.post("/api/v1/checkins", data="{", content_type="application/json").status_code == 400
    assert counts() == (0, 0)


def test_rate_limit_per_address_for_unregistered_kiosks(client, app, georgia):
    """Registered kiosks have a bucket each: tests/test_kiosk_registration.py."""
    app.config["KIOSK_RATE_LIMIT"] = "3 per minute"
    codes = [client.post("/api/v1/checkins", json={"service": "A"}).status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    refused = client.post("/api/v1/checkins", json={"service": "A"}, headers={"X-Kiosk-Id": "lobby-2"})
    assert refused.status_code == 429 and refused.json["error"] == "too_many_requests"
    other = client.post("/api/v1/checkins", json={"service": "A"}, environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert other.status_code == 201
    assert counts()[0] == 4


def test_status_page_follows_the_ticket_in_its_language(client, georgia):
    _, _, (c1, _c2), _ = georgia
    client.post("/api/v1/checkins", json={"service": "A"})
    url = client.post("/api/v1/checkins", json={"service": "A", "language": "ja"}).json["ticket"]["status_url"]
    path = url.replace("http://localhost", "")
    page = client.get(path)
    assert page.status_code == 200 and '<html lang="ja">' in page.text and "A002" in page.text
    assert "A001" not in page.text  # nobody else's ticket
    assert client.get(path + ".json").json["ahead"] == 1
    engine.call_next(c1.id)
    engine.call_next(georgia[2][1].id)
    status = client.get(path + ".json").json
    assert (status["status"], status["counter"]) == ("called", "2")
    qr = client.get(path + "/qr.svg")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml" and b"<svg" in qr.data
    assert client.get("/t/not-a-real-token").status_code == 404
    assert client.get("/t/" + "x" * 500 + ".json").status_code == 404


def test_kiosk_page_carries_every_language_and_no_cdn(client, georgia):
    page = client.get(f"/kiosk/{georgia[0].id}")
    assert page.status_code == 200
    assert "http://" not in page.text.replace("http://localhost", "") and "https://" not in page.text
    assert client.get("/kiosk/").headers["Location"].endswith(f"/kiosk/{georgia[0].id}")
    assert client.get("/kiosk/999").status_code == 404
    for asset in ("kiosk.js", "kiosk.css", "status.js"):
        assert client.get(f"/kiosk/static/{asset}").status_code == 200


def test_printing_latin_as_text_and_japanese_as_an_image(client, app, georgia, tmp_path):
    out = tmp_path / "printed.bin"
    app.config["PRINTER"] = {"kind": "file", "path": str(out)}
    english = client.post("/api/v1/checkins", json={"service": "A", "language": "en"})
    assert english.json["print"] == {"status": "printed", "message": None}
    first = out.read_bytes()
    assert b"A001" in first and b"Test Branch" in first and b"\x1dV" in first  # text, then the cut
    assert b"/t/" in first  # the QR code carries the status URL
    japanese = client.post("/api/v1/checkins", json={"service": "A", "language": "ja"})
    assert japanese.json["print"]["status"] == "printed"
    second = out.read_bytes()[len(first):]
    assert b"A002" not in second and b"\x1dv0" in second  # drawn: a raster image, not text


def test_a_failed_print_keeps_the_ticket_and_says_so(client, app, georgia):
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here once the socket is closed
    app.config["PRINTER"] = {"kind": "network", "host": "127.0.0.1", "port": port, "timeout": 1}
    response = client.post("/api/v1/checkins", json={"service": "A", "language": "ka"})
    assert response.status_code == 201
    assert response.json["print"]["status"] == "failed"
    assert "A001" in response.json["print"]["message"] and "დაიბეჭდა" in response.json["print"]["message"]
    assert counts() == (1, 0)


@pytest.mark.parametrize("language, title", [("ja", "この番号札のリンクは使用できません"), ("ka", "ბილეთის ბმული აღარ მუშაობს"),
                                             ("en", "This ticket link no longer works")])
def test_a_dead_status_link_gets_a_customer_page_in_the_browsers_language(client, georgia, language, title):
    headers = {"Accept-Language": language}
    page = client.get("/t/no-such-ticket-token-x", headers=headers)
    assert page.status_code == 404 and f'<html lang="{language}">' in page.text and title in page.text
    assert "/staff/" not in page.text  # not the staff error page
    answer = client.get("/t/no-such-ticket-token-x.json", headers=headers)
    assert answer.status_code == 404 and answer.json["error"] == "not_found" and answer.json["message"]
    assert client.get("/t/%00bad/qr.svg").status_code == 404
