"""What customers see follows the branch's settings (issue 12): service names per language in the
kiosk's order, paused services, closed days, the languages offered, and the branding (checked
again on its way into a page), on the kiosk, the display, the status page, the printed ticket
and the texts."""
import json
import re
import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import func, select

from core.extensions import db
from core.models import Closure, Customer, Ticket
from display import snapshot
from messaging.models import OutboxMessage

from .conftest import RequestIsolatedClient
from .constants import START
from .helpers import make_branch, make_counter, make_service
from .live import ROOT, chromium, running_system

SHOTS = ROOT / "test-artifacts" / "kiosk"
HOSTILE = "red;}</style><script>alert(1)</script>"


def tokyo(**fields):
    """A Tokyo branch offering ja and en. A's own name is Japanese (English in names), B's is
    English (Japanese in names), so each language's name can only come from name_in. C is paused.
    Kiosk order by position, then code: B, A, C."""
    branch = make_branch("Tokyo Office", timezone="Asia/Tokyo", country="JP", default_language="ja",
                         languages=["ja", "en"], **fields)
    a = make_service(branch, "A", "総合窓口", names={"en": "General"}, position=2)
    b = make_service(branch, "B", "Certificates", names={"ja": "証明書"}, position=1)
    c = make_service(branch, "C", "Tax", names={"ja": "税務"}, position=2, active=False)
    make_counter(branch, "1", [a, b, c], is_open=True)
    db.session.commit()
    return branch


def kiosk_config(html: str) -> dict:
    return json.loads(re.search(r'id="kiosk-config" type="application/json">(.*?)</script>', html, re.S).group(1))


def kiosk_strings(html: str) -> dict:
    return json.loads(re.search(r'id="kiosk-strings" type="application/json">(.*?)</script>', html, re.S).group(1))


def tickets() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count(Ticket.id)))


@pytest.fixture
def both(any_db_app):
    """A client of the app on SQLite and on PostgreSQL."""
    any_db_app.test_client_class = RequestIsolatedClient
    return any_db_app.test_client()


# --- names, order, paused: SQLite and PostgreSQL -----------------------------------------------

def test_the_ja_kiosk_shows_japanese_names_in_kiosk_order(both):
    branch = tokyo()
    page = both.get(f"/kiosk/{branch.id}")
    assert page.status_code == 200 and '<html lang="ja">' in page.text
    config = kiosk_config(page.text)
    assert config["default_language"] == "ja" and config["closed"] is False
    assert [(s["code"], s["names"]["ja"], s["names"]["en"], s["paused"]) for s in config["services"]] == [
        ("B", "証明書", "Certificates", False), ("A", "総合窓口", "General", False), ("C", "税務", "Tax", True)]

    japanese = both.post("/api/v1/checkins", json={"branch": branch.id, "service": "B", "language": "ja"})
    assert japanese.status_code == 201 and japanese.json["ticket"]["service_name"] == "証明書"
    english = both.post("/api/v1/checkins", json={"branch": branch.id, "service": "A", "language": "en"})
    assert english.json["ticket"]["service_name"] == "General"
    # Not said: the branch's start language.
    unsaid = both.post("/api/v1/checkins", json={"branch": branch.id, "service": "B"})
    assert unsaid.json["ticket"]["service_name"] == "証明書"

    status_path = japanese.json["ticket"]["status_url"].replace("http://localhost", "")
    assert "証明書" in both.get(status_path).text and "Certificates" not in both.get(status_path).text
    assert both.get(status_path + ".json").json["service"] == "証明書"
    assert both.get(english.json["ticket"]["status_url"].replace("http://localhost", "") + ".json").json["service"] == "General"


def test_a_paused_service_is_shown_greyed_and_refused_with_nothing_created(both):
    branch = tokyo()
    strings = kiosk_strings(both.get(f"/kiosk/{branch.id}").text)
    assert strings["en"]["paused"] == "Paused — please ask at the desk"
    refused = both.post("/api/v1/checkins", json={"branch": branch.id, "service": "C", "language": "ja",
                                                  "phone": "090-1234-5678", "sms_consent": True})
    assert refused.status_code == 400 and refused.json["detail"] == {"service": "paused"}
    assert "税務" in refused.json["message"]  # named in the customer's language
    assert tickets() == 0 and db.session.scalar(select(func.count(Customer.id))) == 0
    assert both.post("/api/v1/checkins", json={"branch": branch.id, "service": "Q"}).json["detail"] == {"service": "unknown"}


def test_on_a_closed_day_the_kiosk_shows_the_closure_and_takes_no_check_in(both, clock):
    branch = tokyo()
    clock.set(datetime(2026, 3, 2, 20, 0, tzinfo=timezone.utc))  # Monday in UTC, Tuesday 05:00 in Tokyo
    closure = Closure(branch_id=branch.id, first_day=date(2026, 3, 3), last_day=date(2026, 3, 4),
                      message="本日は臨時休業です。", created_at=START)
    db.session.add(closure)
    db.session.commit()

    page = both.get(f"/kiosk/{branch.id}")
    config = kiosk_config(page.text)
    assert config["closed"] is True and config["services"] == []
    assert "本日は臨時休業です。" in page.text and 'data-label="closed_title"' in page.text
    assert kiosk_strings(page.text)["en"]["closed_title"] == "Closed today"
    for body in ({"service": "B"}, {"booking_code": "ABC234"}, {"phone": "090-1234-5678"}):
        refused = both.post("/api/v1/checkins", json={"branch": branch.id, "language": "en", **body})
        assert refused.status_code == 409 and refused.json["detail"] == {"branch": "closed"}, body
        assert refused.json["message"] == "We are closed today: 本日は臨時休業です。"
    assert tickets() == 0

    # The closure is for Monday only: in Tokyo it is Tuesday already, so the branch is open.
    closure.first_day = closure.last_day = date(2026, 3, 2)
    db.session.commit()
    assert kiosk_config(both.get(f"/kiosk/{branch.id}").text)["closed"] is False
    assert both.post("/api/v1/checkins", json={"branch": branch.id, "service": "B"}).status_code == 201


def test_west_of_utc_the_branchs_own_day_decides_and_no_other_branchs_closure_counts(both, clock):
    """The check-in reads the branch, the service and the closures around today in one query:
    the branch's own day still decides (here a day behind UTC's), the earliest closure covering
    it gives the message, and another branch's closure, or the first branch's, closes nothing."""
    first = tokyo()
    coast = make_branch("Coast Office", timezone="America/Los_Angeles", country="US", languages=["en"])
    make_service(coast, "A", "General")
    clock.set(datetime(2026, 3, 3, 5, 0, tzinfo=timezone.utc))  # Tuesday in UTC and Tokyo, Monday 21:00 here

    def closed(branch_id, first_day, last_day, message):
        db.session.add(Closure(branch_id=branch_id, first_day=first_day, last_day=last_day, message=message,
                               created_at=START))
        db.session.commit()

    closed(coast.id, date(2026, 3, 3), date(2026, 3, 3), "Tuesday: training")  # UTC's today, its tomorrow
    closed(first.id, date(2026, 3, 2), date(2026, 3, 2), "Tokyo, Monday")
    walk_in = {"branch": coast.id, "service": "a", "language": "en"}
    assert both.post("/api/v1/checkins", json=walk_in).status_code == 201

    closed(coast.id, date(2026, 3, 2), date(2026, 3, 4), "Closed for repairs")
    closed(coast.id, date(2026, 2, 20), date(2026, 3, 2), "Winter break")
    refused = both.post("/api/v1/checkins", json=walk_in)
    assert refused.status_code == 409 and refused.json["message"] == "We are closed today: Winter break"

    # No branch named: the first branch's (Tokyo's Tuesday is open), its services and none of the coast's.
    assert both.post("/api/v1/checkins", json={"service": "B", "language": "en"}).json["ticket"]["number"] == "B001"
    unknown = both.post("/api/v1/checkins", json={"service": "Q", "language": "en"})
    assert unknown.status_code == 400 and unknown.json["detail"] == {"service": "unknown"}
    assert both.post("/api/v1/checkins", json={"branch": 999, "service": "A"}).status_code == 404
    assert tickets() == 2


# --- languages ---------------------------------------------------------------------------------

def test_only_the_offered_languages(client):
    branch = tokyo()
    page = client.get(f"/kiosk/{branch.id}").text
    assert re.findall(r'data-language="(\w+)"', page) == ["ja", "en"]
    assert re.findall(r'data-pick-language="(\w+)"', page) == ["ja", "en"]
    assert set(kiosk_strings(page)) == {"ja", "en"} and kiosk_config(page)["languages"] == ["ja", "en"]
    refused = client.post("/api/v1/checkins", json={"branch": branch.id, "service": "B", "language": "ka"})
    assert refused.status_code == 400 and refused.json["detail"] == {"language": "not offered"}
    assert tickets() == 0

    display = client.get(f"/display/{branch.id}?languages=en,ka,en")
    assert json.loads(re.search(r'id="display-config"[^>]*>(.*?)</script>', display.text, re.S).group(1))["languages"] == ["en"]
    only_ka = client.get(f"/display/{branch.id}?languages=ka")
    assert json.loads(re.search(r'id="display-config"[^>]*>(.*?)</script>', only_ka.text, re.S).group(1))["languages"] == ["ja"]
    assert client.get(f"/display/{branch.id}?languages=fr").status_code == 400

    branch.languages = ["en"]
    db.session.commit()
    single = client.get(f"/kiosk/{branch.id}").text
    assert "data-language=" not in single and kiosk_config(single)["default_language"] == "en"
    branch.languages = [{"ja": 1}, "xx", None]  # whatever is stored, the page stands: the default language
    db.session.commit()
    assert kiosk_config(client.get(f"/kiosk/{branch.id}").text)["languages"] == ["ja"]


def test_the_display_snapshot_names_each_service_in_every_offered_language(client):
    branch = tokyo()
    services = snapshot.build(branch.id)["services"]
    assert [(s["code"], s["names"]) for s in services] == [
        ("B", {"ja": "証明書", "en": "Certificates"}), ("A", {"ja": "総合窓口", "en": "General"})]


# --- branding ----------------------------------------------------------------------------------

def style_blocks(response) -> list[str]:
    """The <style> blocks that carry this response's CSP nonce."""
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    return re.findall(rf'<style nonce="{re.escape(nonce)}">(.*?)</style>', response.text, re.S)


def brand_pages(client, branch):
    response = client.post("/api/v1/checkins", json={"branch": branch.id, "service": "B"})
    status_path = response.json["ticket"]["status_url"].replace("http://localhost", "")
    return [client.get(f"/kiosk/{branch.id}"), client.get(status_path), client.get(f"/display/{branch.id}")]


def test_branding_colours_become_checked_css_variables(client):
    branch = tokyo(branding={"primary": "#1D4ED8", "accent": "#fde047"})
    for page in brand_pages(client, branch):
        assert page.status_code == 200
        styles = style_blocks(page)
        assert len(styles) == 1, page.request.path
        assert "--brand-primary:#1d4ed8;--brand-on-primary:#ffffff;--brand-ink:#1d4ed8" in styles[0]
        assert "--brand-accent:#fde047;--brand-on-accent:#111111" in styles[0]  # dark text on a light accent
        assert ' style="' not in page.text


def test_a_hostile_colour_never_reaches_the_page(client):
    branch = tokyo(branding={"primary": HOSTILE, "accent": "#ffee00", "logo": "../../secret_key"})
    for page in brand_pages(client, branch):
        assert page.status_code == 200
        assert "alert(1)" not in page.text and "red;" not in page.text and "secret_key" not in page.text
        assert "--brand-primary" not in page.text and "brand-logo" not in page.text
        # A light accent keeps its readable text colour; it is never used as text on white.
        assert "--brand-accent:#ffee00;--brand-on-accent:#111111" in style_blocks(page)[0]


def branding_folder(app) -> Path:
    folder = Path(app.instance_path) / "branding"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def logo_file(app, name: str) -> None:
    """A logo as the upload stores it: a PNG with some transparency."""
    image = Image.new("RGBA", (300, 100), (29, 78, 216, 255))
    image.paste((0, 0, 0, 0), (0, 0, 40, 100))
    image.save(branding_folder(app) / name, "PNG")


def test_the_logo_is_served_read_only_and_nothing_else_is(app, client):
    branch = tokyo()
    name = f"branch-{branch.id}-0123abcd.png"
    logo_file(app, name)
    logo_file(app, "branch-999-0123abcd.png")  # another branch's upload
    (branding_folder(app) / "notes.txt").write_text("private")
    (Path(app.instance_path) / "secret_key").write_text("private")
    served = client.get(f"/branding/{name}")
    assert served.status_code == 200 and served.mimetype == "image/png" and served.data.startswith(b"\x89PNG")

    branch.branding = {"logo": name}
    db.session.commit()
    for page in brand_pages(client, branch):
        assert f'src="/branding/{name}"' in page.text
    branch.branding = {"logo": "branch-999-0123abcd.png"}
    db.session.commit()
    assert "brand-logo" not in client.get(f"/kiosk/{branch.id}").text

    for path in ("/branding/../secret_key", "/branding/..%2fsecret_key", "/branding/%2e%2e/seed.db",
                 "/branding/notes.txt", f"/branding/{name[:-4]}.svg", f"/branding/x/{name}",
                 f"/branding/{name}/..", "/branding/branch-1-0123abcd.png%00.txt", "/branding/branch-1-ffffffff.png"):
        assert client.get(path).status_code == 404, path


def test_the_printed_ticket_has_the_branch_its_logo_and_the_service_in_the_ticket_language(app, client, tmp_path):
    branch = tokyo()
    name = f"branch-{branch.id}-feedc0de.png"
    logo_file(app, name)
    branch.branding = {"logo": name}
    db.session.commit()
    out = tmp_path / "printed.bin"
    app.config["PRINTER"] = {"kind": "file", "path": str(out)}
    printed = client.post("/api/v1/checkins", json={"branch": branch.id, "service": "A", "language": "en"})
    assert printed.json["print"]["status"] == "printed"
    data = out.read_bytes()
    assert b"Tokyo Office" in data and b"General" in data
    assert data.index(b"\x1dv0") < data.index(b"Tokyo Office")  # the logo, drawn, above the name

    (branding_folder(app) / name).write_bytes(b"\x89PNG\r\n\x1a\n broken")  # a logo that cannot be read
    again = client.post("/api/v1/checkins", json={"branch": branch.id, "service": "A", "language": "en"})
    assert again.json["print"]["status"] == "printed"
    second = out.read_bytes()[len(data):]
    assert b"A002" in second and b"\x1dv0" not in second  # printed all the same, without it


# --- texts -------------------------------------------------------------------------------------

def test_the_service_in_a_text_is_named_in_the_texts_language(client):
    branch = tokyo()
    for phone, language in (("090-1234-5678", "ja"), ("090-8765-4321", "en")):
        response = client.post("/api/v1/checkins", json={"branch": branch.id, "service": "B", "language": language,
                                                         "phone": phone, "sms_consent": True})
        assert response.status_code == 201
    bodies = {message.to: message.body for message in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == "welcome"))}
    assert "証明書" in bodies["+819012345678"] and "Certificates" not in bodies["+819012345678"]
    assert "Certificates" in bodies["+819087654321"] and "証明書" not in bodies["+819087654321"]


# --- Chromium ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with running_system(tmp_path_factory.mktemp("kiosk-settings"),
                        'DEFAULT_COUNTRY = "JP"\nDEFAULT_LANGUAGE = "ja"\n') as running:
        # The settings pages are another test's subject: here the demo branch is set up in its database.
        with sqlite3.connect(running.instance / "seed.db") as database:
            database.execute("""UPDATE branch SET languages = '["ja", "en"]', branding = '{"primary": "#7c2d12"}'""")
            database.execute("UPDATE service SET active = 0 WHERE code = 'B'")
        yield running


def test_chromium_shows_the_japanese_names_the_paused_service_and_the_branding(system):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1080, "height": 1400})
        page.goto(system.base + "/kiosk/1")
        expect(page.locator("html")).to_have_attribute("lang", "ja")
        assert page.locator("[data-pick-language]").all_inner_texts() == ["日本語", "English"]
        page.click("[data-pick-language=ja]")
        page.click("#walk-in")
        expect(page.locator("[data-service=A]")).to_have_text("A · 総合窓口")
        paused = page.locator("[data-service=B]")
        expect(paused).to_be_disabled()
        expect(paused).to_contain_text("B · 予約の方")
        assert page.evaluate("getComputedStyle(document.querySelector('.bar')).backgroundColor") == "rgb(124, 45, 18)"
        page.click("[data-language=en]")
        expect(page.locator("[data-service=A]")).to_have_text("A · General")
        expect(paused).to_contain_text("Paused — please ask at the desk")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "settings-en-services.png"))
