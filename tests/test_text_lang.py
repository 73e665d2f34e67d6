"""Japanese and Georgian text inside pages of another language carries its own `lang`: inbox
conversations, the texts editor and the virtual phone."""
import os
import re
import subprocess
import sys

from playwright.sync_api import expect

from core.extensions import db
from core.language import text_lang
from core.models import Customer
from messaging import inbox

from .helpers import login, make_staff
from .live import ROOT, chromium, running_system, sign_in, wait_until
from .modem_helpers import KA

JA = "+819012345678"


def test_the_script_most_letters_are_in_names_the_language():
    assert text_lang("3番の窓口へどうぞ A012") == "ja"  # a ticket code in Latin letters stays Japanese
    assert text_lang("ｶﾀｶﾅ") == "ja" and text_lang("東京") == "ja"
    assert text_lang("რიგი A012 — მობრძანდით") == "ka" and text_lang("ᲒᲐᲛᲐᲠᲯᲝᲑᲐ") == "ka"  # Mtavruli too
    assert text_lang("Can I come at 3?") == "en"
    assert text_lang("12:30") is None and text_lang("") is None and text_lang(None) is None
    assert text_lang("👍", fallback="ka") == "ka"


def _bodies(page):
    return re.findall(r'<li class="(in|out)" data-direction="\w+">\s*<div class="body"( lang="(\w+)")?>(.*?)</div>', page)


def test_each_text_of_a_conversation_carries_its_language(client, setup, clock):
    branch = setup[0]
    db.session.add(Customer(phone=JA, name="山田 花子", language="ja", sms_consent=True, created_at=clock.now()))
    db.session.commit()
    for body in ("明日の予約を変更できますか", "შემიძლია ხვალ მოსვლა?", "Can I come tomorrow?", "123"):
        inbox.store_received(JA, body, clock.now(), gateway="g", branch_id=branch.id)
        clock.advance(minutes=1)
    login(client)
    page = client.get(f"/staff/inbox/{JA}").text
    assert '<html lang="en"' in page
    langs = {text: lang for direction, _, lang, text in _bodies(page) if direction == "in"}
    assert langs == {"明日の予約を変更できますか": "ja", "შემიძლია ხვალ მოსვლა?": "ka", "Can I come tomorrow?": "en",
                     "123": "ja"}  # no letters: the customer's language
    assert '<span lang="ja">山田 花子</span>' in page
    assert re.search(r'<td lang="ja">山田 花子</td>', client.get("/staff/inbox").text)


def test_the_texts_editor_shows_a_wording_in_its_language(client, setup):
    make_staff("root", role="admin")
    db.session.commit()
    login(client, "root")
    for language in ("ja", "ka", "en"):
        page = client.get(f"/staff/admin/texts?kind=called&language={language}").text
        assert f'<textarea id="body" lang="{language}"' in page and f'<p id="preview" lang="{language}">' in page
    page = client.get("/staff/admin/texts?language=xx").text
    assert '<textarea id="body" lang="en"' in page  # the editor opens on English then
    assert '<option value="ja" lang="ja">日本語</option>' in page and '<option value="ka" lang="ka">ქართული</option>' in page


def test_the_virtual_phone_and_the_editor_in_chromium(tmp_path):
    config = "VIRTUAL_MODEM_LATENCY = 0.1\nMODEM_SWEEP_SECONDS = 1\n"
    with running_system(tmp_path, config) as system, chromium() as browser:
        queued = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "run", "modem", "test", KA, "--queue-only",
             "--text", "Seed: 3番の窓口へお越しください。"],
            cwd=ROOT, env={**os.environ, "SEED_INSTANCE_PATH": str(system.instance)}, capture_output=True, text=True,
            timeout=120)
        assert queued.returncode == 0, queued.stdout + queued.stderr
        page = browser.new_page()
        page.goto(system.base + "/virtual-phone")
        page.click(f"a[data-number='{KA}']")
        received = page.locator("#thread .bubble.in .body").first
        expect(received).to_contain_text("3番の窓口へお越しください")
        expect(received).to_have_attribute("lang", "ja")
        page.fill("#text", "გმადლობთ")
        page.click("#reply button")
        expect(page.locator("#thread .bubble.out .body")).to_have_attribute("lang", "ka")
        page.fill("#text", "OK thanks")
        page.click("#reply button")
        expect(page.locator("#thread .bubble.out .body[lang=en]")).to_have_text("OK thanks")

        sign_in(page, system)
        page.goto(system.base + "/staff/admin/texts")
        wait_until(page, "document.getElementById('kind').options.length > 0")
        for language in ("ja", "ka", "en"):
            page.select_option("#language", language)
            expect(page.locator("#body")).to_have_attribute("lang", language)
            expect(page.locator("#preview")).to_have_attribute("lang", language)
