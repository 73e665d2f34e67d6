"""The staff side speaks the staff's language (issue 12): the person's own language, else ?lang=
for the session, else the browser's, else the branch's; times in the branch's time zone, dates in
the language's format; the header's branch switcher within reach; the counter chooser by branch;
the bundled Japanese font on staff pages (Chromium)."""
import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import flask_babel
import pytest
from flask_login import login_user
from sqlalchemy import select

from core import language
from core.extensions import db
from core.models import Counter, StaffUser
from messaging import inbox
from staff.outbox import staff_language

from .helpers import csrf_token, login, make_branch, make_counter, make_service, make_staff, text

NIGHT = datetime(2026, 11, 29, 23, 30, tzinfo=timezone.utc)  # 08:30 on 30 November in Tokyo


def lang_of(page) -> str:
    return re.search(r'<html lang="([a-z]+)">', page.text).group(1)


def alice() -> StaffUser:
    return db.session.scalar(select(StaffUser).where(StaffUser.username == "alice"))


def speak(language_code):
    alice().language = language_code
    db.session.commit()


@pytest.fixture
def at_counter(client, setup):
    login(client)
    client.post("/staff/counter", data={"counter_id": setup[2][0].id,
                                        "csrf_token": csrf_token(client.get("/staff/counter").text)})
    return client


def test_the_persons_own_language_speaks_on_every_staff_page(client, at_counter):
    assert lang_of(client.get("/staff/")) == "en"  # chosen afresh each request: no language kept from the last
    speak("ja")
    for path in ("/staff/", "/staff/inbox", "/staff/outbox", "/staff/counter"):
        page = client.get(path)
        assert page.status_code == 200 and lang_of(page) == "ja" and ">受信トレイ</a>" in page.text, path
    # their own language wins over the browser's and over ?lang=
    assert lang_of(client.get("/staff/inbox", headers={"Accept-Language": "ka"})) == "ja"
    assert lang_of(client.get("/staff/inbox?lang=en")) == "ja"
    assert 'id="languages"' not in client.get("/staff/inbox").text  # no language links for who chose one


def test_get_locale_and_dates_follow_the_persons_language(app, setup):
    speak("ja")
    with app.test_request_context("/staff/inbox", headers={"Accept-Language": "ka"}):
        login_user(alice())
        assert str(flask_babel.get_locale()) == "ja" and staff_language() == "ja"
        assert language.local_datetime(NIGHT, ZoneInfo("Asia/Tokyo")) == "2026/11/30 8:30"
        assert flask_babel.format_datetime(NIGHT, "long").startswith("2026年11月29日")  # the branch is in UTC
        assert flask_babel.gettext("Inbox") == "受信トレイ"  # the header's words, translated before this work


def test_without_a_language_of_their_own_the_browser_then_the_branch_decides(client, setup):
    branch = setup[0]
    login(client)
    assert lang_of(client.get("/staff/inbox", headers={"Accept-Language": "ka,en;q=0.5"})) == "ka"
    assert lang_of(client.get("/staff/inbox", headers={"Accept-Language": "fr"})) == "en"
    branch.default_language = "ja"
    db.session.commit()
    assert lang_of(client.get("/staff/inbox")) == "ja"  # no Accept-Language: the branch's language
    # ?lang= is kept for the session, and beats the browser
    assert lang_of(client.get("/staff/inbox?lang=ka")) == "ka"
    assert lang_of(client.get("/staff/outbox", headers={"Accept-Language": "en"})) == "ka"
    page = client.get("/staff/outbox").text
    assert re.search(r'<a href="\?lang=ja" lang="ja">日本語</a>', page)


def test_the_login_page_speaks_the_browsers_language(client, setup):
    assert lang_of(client.get("/staff/login", headers={"Accept-Language": "ka"})) == "ka"
    assert lang_of(client.get("/staff/login")) == "en"


def test_the_inbox_and_the_conversation_show_the_branchs_time(client, setup, clock):
    clock.set(NIGHT)
    branch = setup[0]
    branch.timezone = "Asia/Tokyo"
    db.session.commit()
    number = "+819012345678"
    inbox.store_received(number, "Are you open today?", NIGHT, gateway="g", branch_id=branch.id)
    login(client)
    row = re.search(rf'<tr data-number="\{number}">.*?</tr>', client.get("/staff/inbox").text, re.S).group(0)
    assert ">2026-11-30 08:30</time>" in row and "UTC" not in row
    assert "2026-11-30 08:30" in client.get(f"/staff/inbox/{number}").text
    speak("ja")
    assert "2026/11/30 8:30" in client.get("/staff/inbox").text


def test_the_outbox_shows_dates_in_the_language(client, setup, clock):
    branch = setup[0]
    branch.timezone = "Asia/Tokyo"
    db.session.commit()
    text(branch, "welcome", now=clock.now(), body="hello")  # 09:00 UTC, 18:00 in Tokyo
    speak("ka")
    login(client)
    assert "02.03.2026 18:00" in client.get("/staff/outbox").text


@pytest.fixture
def two_branches(setup):
    """alice works in the setup's branch and in Tokyo; a third branch is out of her reach."""
    home = setup[0]
    tokyo = make_branch("Tokyo Office", timezone="Asia/Tokyo")
    make_counter(tokyo, "T1", [make_service(tokyo, "A")])
    far = make_branch("Far Branch")
    make_counter(far, "F1", [make_service(far, "A")])
    alice().other_branches.append(tokyo)
    db.session.commit()
    return home, tokyo, far


def switch(client, branch_id, next_path="/staff/inbox"):
    token = csrf_token(client.get("/staff/inbox").text)
    return client.post("/staff/branch", data={"branch": branch_id, "next": next_path, "csrf_token": token})


def test_the_switcher_offers_and_accepts_only_branches_within_reach(client, two_branches, clock):
    home, tokyo, far = two_branches
    clock.set(NIGHT)
    inbox.store_received("+995555000001", "for home", NIGHT, gateway="g", branch_id=home.id)
    inbox.store_received("+995555000002", "for tokyo", NIGHT, gateway="g", branch_id=tokyo.id)
    login(client)
    header = re.search(r'<form [^>]*id="branch-switcher".*?</form>', client.get("/staff/inbox").text, re.S).group(0)
    assert "Tokyo Office" in header and home.name in header and "Far Branch" not in header

    assert switch(client, far.id).status_code == 404
    assert switch(client, 999).status_code == 404
    page = client.get("/staff/inbox").text
    assert "+995555000001" in page and "+995555000002" in page  # nothing picked yet: every branch within reach

    moved = switch(client, tokyo.id, "//evil.example/x")
    assert moved.status_code == 302 and moved.headers["Location"] == "/staff/"  # never off the site
    page = client.get("/staff/inbox").text
    assert "+995555000002" in page and "+995555000001" not in page
    assert re.search(rf'<option value="{tokyo.id}" selected>Tokyo Office</option>', page)
    assert "2026-11-30 08:30" in page  # the picked branch's time zone
    assert "Tokyo Office" in client.get("/staff/outbox").text  # the outbox follows too


def test_the_console_follows_the_branch_and_names_branch_and_counter(client, two_branches):
    home, tokyo, _far = two_branches
    login(client)
    home_counter = db.session.scalar(select(Counter).where(Counter.branch_id == home.id, Counter.name == "1"))
    client.post("/staff/counter", data={"counter_id": home_counter.id,
                                        "csrf_token": csrf_token(client.get("/staff/counter").text)})
    header = re.search(r'<span class="where" id="where">.*?</span>\s*<span class="who">',
                       client.get("/staff/").text, re.S).group(0)
    assert re.search(rf'<option value="{home.id}" selected>{home.name}</option>', header)
    assert 'id="counter-name">Counter 1<' in header
    switch(client, tokyo.id, "/staff/")
    assert client.get("/staff/").headers["Location"].endswith("/staff/counter")  # home's counter is not Tokyo's
    assert client.get("/staff/panel").status_code == 409


def test_single_branch_people_see_their_branch_name_without_a_switcher(client, setup):
    login(client)
    page = client.get("/staff/inbox").text
    assert f'id="branch-name">{setup[0].name}<' in page and 'id="branch-switcher"' not in page


def test_the_counter_chooser_groups_counters_by_branch_within_reach(client, two_branches):
    home, tokyo, far = two_branches
    login(client)
    page = client.get("/staff/counter").text
    groups = re.findall(r'<fieldset class="branch-group" data-branch="(\d+)">\s*<legend>([^<]+)</legend>', page)
    assert sorted(groups) == sorted([(str(home.id), home.name), (str(tokyo.id), "Tokyo Office")])
    assert "counter F1" not in page and "Far Branch" not in page  # "F1" alone may be in the CSRF token
    tokyo_group = re.search(rf'data-branch="{tokyo.id}">.*?</fieldset>', page, re.S).group(0)
    assert "Tokyo Office · counter T1" in tokyo_group and 'data-counter="1"' not in tokyo_group
    far_counter = db.session.scalar(select(Counter).where(Counter.name == "F1"))
    refused = client.post("/staff/counter", data={"counter_id": far_counter.id, "csrf_token": csrf_token(page)})
    assert refused.status_code == 400 and not db.session.get(Counter, far_counter.id).is_open
    tokyo_counter = db.session.scalar(select(Counter).where(Counter.name == "T1"))
    client.post("/staff/counter", data={"counter_id": tokyo_counter.id, "csrf_token": csrf_token(page)})
    console = client.get("/staff/").text  # picking a counter moves the person to its branch
    assert re.search(rf'<option value="{tokyo.id}" selected>', console) and "At counter T1" in console


def test_staff_pages_load_the_bundled_fonts_only_for_their_scripts(client, setup):
    login(client)
    page = client.get("/staff/inbox").text
    faces = re.findall(r"@font-face \{[^}]*\}", page)
    assert len(faces) == 4
    for face in faces:
        assert "unicode-range:" in face and "/display/static/fonts/" in face
    japanese = [f for f in faces if "Noto Sans JP" in f]
    assert japanese and all("U+4E00-9FFF" in f and "U+0000" not in f for f in japanese)
    font = re.search(r'url\("([^"]+jp-japanese-400[^"]+)"\)', page).group(1)
    assert client.get(font).status_code == 200


def test_a_customers_page_keeps_the_customers_language(client, setup):
    """Customer-facing pages force their own language: the selector does not reach them."""
    from core import engine

    ticket = engine.issue_ticket(setup[1][0].id, language="ka")
    speak("ja")
    login(client)
    page = client.get(f"/t/{ticket.access_token}", headers={"Accept-Language": "ja"})
    assert lang_of(page) == "ka" and "Your place in the queue" not in page.text
    assert lang_of(client.get("/staff/inbox")) == "ja"


def test_a_japanese_name_renders_with_the_bundled_font(tmp_path):
    """Chromium, on the real system: a branch with a Japanese name, on the staff pages, is drawn
    with the bundled Noto Sans JP (a staff PC without CJK fonts would show empty boxes)."""
    from playwright.sync_api import sync_playwright

    from .live import RunningSystem, launch_chromium

    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text('DEFAULT_BRANCH_NAME = "山田クリニック"\n')
    system = RunningSystem(instance).start()
    try:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page()
            page.goto(system.base + "/staff/login")
            page.fill("#username", "admin")
            page.fill("#password", system.admin_password)
            page.click("button[type=submit].primary")
            page.goto(system.base + "/staff/inbox")
            assert page.locator("#branch-name").inner_text() == "山田クリニック"
            page.evaluate("document.fonts.ready.then(() => true)")
            assert page.evaluate("""document.fonts.check('16px "Seed Noto Sans JP"', '山田')""")
            # The fonts Chromium drew the name with: the bundled one (a web font), for every glyph.
            devtools = page.context.new_cdp_session(page)
            devtools.send("DOM.enable")
            devtools.send("CSS.enable")
            root = devtools.send("DOM.getDocument")["root"]["nodeId"]
            name = devtools.send("DOM.querySelector", {"nodeId": root, "selector": "#branch-name"})["nodeId"]
            fonts = devtools.send("CSS.getPlatformFontsForNode", {"nodeId": name})["fonts"]
            assert [(f["isCustomFont"], f["glyphCount"]) for f in fonts] == [(True, 7)], fonts
            assert fonts[0]["familyName"].startswith("Noto Sans JP"), fonts
            browser.close()
    finally:
        system.stop()


def test_the_inbox_follows_the_branch_on_sqlite_and_postgresql(any_db_app, clock):
    from .conftest import RequestIsolatedClient

    any_db_app.test_client_class = RequestIsolatedClient
    client = any_db_app.test_client()
    clock.set(NIGHT)
    home = make_branch("Home")
    tokyo = make_branch("Tokyo Office", timezone="Asia/Tokyo")
    make_staff("root", role="admin")
    db.session.commit()
    inbox.store_received("+995555000001", "for home", NIGHT, gateway="g", branch_id=home.id)
    inbox.store_received("+995555000002", "for tokyo", NIGHT, gateway="g", branch_id=tokyo.id)
    inbox.store_received("+995555000003", "nobody's yet", NIGHT, gateway="g")
    login(client, "root")
    page = client.get("/staff/inbox").text
    assert all(f"+99555500000{n}" in page for n in (1, 2, 3))
    assert ">2026-11-30 08:30</time>" in page and ">2026-11-29 23:30</time>" in page  # each row its branch's time
    switch(client, tokyo.id)
    page = client.get("/staff/inbox").text
    assert "+995555000002" in page and "+995555000003" in page  # an admin keeps the texts of no branch
    assert "+995555000001" not in page


@pytest.mark.parametrize("code, refusal, api_refusal", [
    ("en", "Ticket A001 is waiting: it cannot be completed.", "Ticket A001 is waiting: it cannot be marked no-show."),
    ("ja", "番号札 A001 は待機中のため、完了できません。", "番号札 A001 は待機中のため、不在にできません。"),
    ("ka", "ბილეთი A001 რიგშია: მისი დასრულება შეუძლებელია.",
     "ბილეთი A001 რიგშია: მისი გამოუცხადებლად მონიშვნა შეუძლებელია."),
])
def test_the_engines_refusals_speak_the_staffs_language(client, setup, at_counter, code, refusal, api_refusal):
    """Core's messages reach the console's flash and the API's JSON in the reader's language, while
    machine codes (`detail`) stay as they are."""
    from core import engine

    ticket = engine.issue_ticket(setup[1][0].id).id
    speak(code)
    token = csrf_token(client.get("/staff/").text)
    page = client.post(f"/staff/tickets/{ticket}/complete", data={"csrf_token": token}, follow_redirects=True)
    assert lang_of(page) == code and refusal in page.text
    answer = client.post(f"/api/v1/tickets/{ticket}/no-show", json={})
    assert answer.status_code == 409 and answer.json["message"] == api_refusal
    assert answer.json["detail"]["status"] == "waiting"
