"""The screens of a branch (issue 12, "Screens"): its kiosks with their address and QR code,
registering one, and the display link builder, whose link the display opens and honours."""
import json
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from core import audit, tokens
from core.extensions import db

from .conftest import RequestIsolatedClient
from .helpers import bearer, csrf_token, login, make_branch, make_service, make_staff
from .live import chromium, running_system, sign_in, wait_until


@pytest.fixture
def both(any_db_app):
    """A client of the app on SQLite and on PostgreSQL."""
    any_db_app.test_client_class = RequestIsolatedClient
    return any_db_app.test_client()


def two_branches():
    """Branch One (services A, B and a paused C; kiosk "Entrance") with its manager "mona" and
    staff "sam"; Branch Two with its kiosk "Lobby"."""
    one, two = make_branch("Branch One"), make_branch("Branch Two")
    for code in "AB":
        make_service(one, code)
    make_service(one, "C", active=False)
    make_service(two, "A")
    make_staff("mona", role="manager", branch=one)
    make_staff("sam", branch=one)
    db.session.commit()
    tokens.create_kiosk(one.id, "Entrance")
    tokens.create_kiosk(two.id, "Lobby")
    return one, two


def display_config(html: str) -> dict:
    return json.loads(re.search(r'id="display-config" type="application/json">(.*?)</script>', html, re.S).group(1))


def kiosk_named(name):
    db.session.rollback()
    return db.session.scalar(select(tokens.ApiToken).where(tokens.ApiToken.name == name))


# --- the display link -----------------------------------------------------------------------------

def test_the_link_is_built_from_the_displays_parameters_and_the_display_honours_it(both):
    one, _two = two_branches()
    built = both.get("/api/v1/admin/screens", headers=bearer("mona"), query_string={
        "branch": one.id, "services": "b,A", "languages": "ja,en", "layout": "full", "rotate": "20"})
    assert built.status_code == 200, built.json
    url = built.json["display"]["url"]
    assert url == f"http://localhost/display/{one.id}?services=B,A&languages=ja,en&layout=full&rotate=20"
    shown = both.get(url)
    assert shown.status_code == 200 and '<body class="layout-full">' in shown.text and '<html lang="ja">' in shown.text
    config = display_config(shown.text)
    assert (config["services"], config["languages"], config["layout"], config["rotate"]) == (["B", "A"], ["ja", "en"],
                                                                                           "full", 20)
    plain = both.get("/api/v1/admin/screens", headers=bearer("mona"), query_string={"branch": one.id}).json["display"]
    assert plain["url"] == f"http://localhost/display/{one.id}?languages=en&layout=split&rotate=12"  # every service
    assert both.get(plain["url"]).status_code == 200


def test_options_the_display_would_refuse_get_field_errors(both):
    one, _two = two_branches()
    refused = both.get("/api/v1/admin/screens", headers=bearer("mona"), query_string={
        "branch": one.id, "services": "A,C", "languages": "en,fr", "layout": "wide", "rotate": "601"})
    assert refused.status_code == 400
    assert set(refused.json["detail"]) == {"services", "languages", "layout", "rotate"}
    # The same bounds as the display's own: C is paused, 601 seconds too long, 600 and 3 fine.
    assert both.get(f"/display/{one.id}?services=C").status_code == 400
    assert both.get(f"/display/{one.id}?rotate=601").status_code == 400
    for rotate in ("3", "600"):
        url = both.get("/api/v1/admin/screens", headers=bearer("mona"),
                       query_string={"branch": one.id, "rotate": rotate}).json["display"]["url"]
        assert both.get(url).status_code == 200


def test_the_api_lists_the_branchs_kiosks_only(both):
    one, _two = two_branches()
    listed = both.get("/api/v1/admin/screens", headers=bearer("mona"), query_string={"branch": one.id}).json
    assert listed["kiosk_url"] == f"http://localhost/kiosk/{one.id}"
    assert [(k["name"], k["url"], k["state"]) for k in listed["kiosks"]] == [
        ("Entrance", f"http://localhost/kiosk/{one.id}", "active")]


def test_staff_get_403_and_a_manager_of_branch_one_404_for_branch_two(both):
    one, two = two_branches()
    assert both.get("/api/v1/admin/screens", headers=bearer("sam"), query_string={"branch": one.id}).status_code == 403
    assert both.get("/api/v1/admin/screens", headers=bearer("mona"), query_string={"branch": two.id}).status_code == 404


# --- the page ---------------------------------------------------------------------------------------

def test_the_page_shows_the_kiosks_and_the_builder(client, app):
    one, _two = two_branches()
    login(client, "mona")
    page = client.get("/admin/screens", query_string={"branch": one.id, "services": "A", "languages": "ka,en"})
    assert page.status_code == 200
    assert f'id="kiosk-url" href="http://localhost/kiosk/{one.id}"' in page.text
    assert re.search(r'id="kiosk-qr" class="qr"><svg [^>]*class="segno"', page.text)
    assert "Entrance" in page.text and "Lobby" not in page.text
    url = f"http://localhost/display/{one.id}?services=A&amp;languages=ka,en&amp;layout=split&amp;rotate=12"
    assert f'id="display-url" class="url" readonly value="{url}"' in page.text and f'src="{url}"' in page.text
    # The paused service is not offered; the chosen languages come first, in their order.
    assert re.findall(r'name="services" value="(\w)"', page.text) == ["A", "B"]
    assert re.findall(r'name="languages" value="(\w+)"', page.text) == ["ka", "en", "ja"]
    qr = client.get("/admin/screens/qr", query_string={"branch": one.id, "services": "A"})
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml" and b"<svg" in qr.data
    other = client.get("/admin/screens/qr", query_string={"branch": one.id, "services": "B"})
    assert other.data != qr.data
    bad = client.get("/admin/screens", query_string={"branch": one.id, "rotate": "2"})
    assert bad.status_code == 400 and 'id="err-rotate"' in bad.text and 'value="2"' in bad.text


def test_a_manager_registers_and_revokes_a_kiosk_of_their_branch(client, app):
    one, two = two_branches()
    login(client, "mona")
    page = client.get("/admin/screens", query_string={"branch": one.id})
    token = csrf_token(page.text)
    refused = client.post(f"/admin/screens/kiosks?branch={one.id}", data={"name": " ", "csrf_token": token})
    assert refused.status_code == 400 and 'id="err-name"' in refused.text
    made = client.post(f"/admin/screens/kiosks?branch={one.id}", data={"name": "Upstairs", "csrf_token": token})
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    link = re.search(r'id="setup-link" href="([^"]+)"', made.text).group(1)
    assert link.startswith(f"http://localhost/kiosk/{one.id}#setup=seed_") and 'id="setup-qr"' in made.text
    kiosk = kiosk_named("Upstairs")
    assert [b.id for b in kiosk.branches] == [one.id] and kiosk.is_kiosk
    assert tokens.digest(link.split("#setup=")[1]) == kiosk.secret_hash
    assert db.session.scalar(select(audit.AuditEntry.actor).where(audit.AuditEntry.action == "kiosk.registered")) == "mona"

    lobby = kiosk_named("Lobby")
    assert client.post(f"/admin/screens/kiosks/{lobby.id}/revoke", data={"csrf_token": token}).status_code == 404
    assert kiosk_named("Lobby").revoked_at is None
    assert client.post(f"/admin/screens/kiosks?branch={two.id}", data={"name": "X", "csrf_token": token}).status_code == 404
    revoked = client.post(f"/admin/screens/kiosks/{kiosk.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 302 and kiosk_named("Upstairs").revoked_at is not None


def test_staff_get_403_on_every_screens_page(client, app):
    one, _two = two_branches()
    login(client, "sam")
    token = csrf_token(client.get("/staff/inbox").text)
    assert client.get("/admin/screens", query_string={"branch": one.id}).status_code == 403
    assert client.get("/admin/screens/qr", query_string={"branch": one.id}).status_code == 403
    entrance = kiosk_named("Entrance")
    assert client.post(f"/admin/screens/kiosks?branch={one.id}", data={"name": "X", "csrf_token": token}).status_code == 403
    assert client.post(f"/admin/screens/kiosks/{entrance.id}/revoke", data={"csrf_token": token}).status_code == 403
    assert kiosk_named("X") is None and kiosk_named("Entrance").revoked_at is None


# --- the builder in Chromium --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with running_system(tmp_path_factory.mktemp("screens")) as running:
        yield running


def test_the_builder_makes_a_link_the_display_honours(system):
    with chromium() as browser:
        page = sign_in(browser.new_page(viewport={"width": 1280, "height": 1000}), system)
        page.goto(system.base + "/admin/screens?branch=1")
        expect(page.locator("#display-url")).to_have_value(f"{system.base}/display/1?languages=en&layout=split&rotate=12")

        page.check("input[name=services][value=B]")
        page.check("input[name=languages][value=ja]")
        page.click("button[data-up=ja]")  # ja before en: the screen starts in Japanese
        page.check("input[name=layout][value=full]")
        page.fill("input[name=rotate]", "20")
        url = f"{system.base}/display/1?services=B&languages=ja,en&layout=full&rotate=20"
        expect(page.locator("#display-url")).to_have_value(url)
        expect(page.locator("#open-display")).to_have_attribute("href", url)
        expect(page.locator("#display-preview")).to_have_attribute("src", url)
        qr = page.locator("#display-qr")
        expect(qr).to_have_attribute("src", "/admin/screens/qr?branch=1&services=B&languages=ja,en&layout=full&rotate=20")
        wait_until(page, "document.getElementById('display-qr').complete && "
                         "document.getElementById('display-qr').naturalWidth > 0")
        assert page.url.endswith("/admin/screens?branch=1&services=B&languages=ja,en&layout=full&rotate=20")

        page.fill("input[name=rotate]", "2")  # the display would refuse it: the last good link stays
        expect(page.locator("input[name=rotate]")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#display-url")).to_have_value(url)

        display = browser.new_page(viewport={"width": 1280, "height": 720})
        display.goto(page.locator("#display-url").input_value())
        wait_until(display, "window.seedDisplay && window.seedDisplay.snapshots > 0")
        expect(display.locator("html")).to_have_attribute("lang", "ja")
        expect(display.locator("body")).to_have_class("layout-full")
        expect(display.locator("section.services")).to_be_hidden()
        assert display.evaluate("Array.from(document.querySelectorAll('#services li')).map(li => li.dataset.service)") == ["B"]
        assert display.evaluate("JSON.parse(document.getElementById('display-config').textContent).rotate") == 20
