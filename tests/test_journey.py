"""The newcomer's journey on the real system: `python run.py`, then the console in Chromium."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from .live import ROOT, RunningSystem, launch_chromium

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def system(tmp_path):
    running = RunningSystem(tmp_path / "instance").start()
    yield running
    running.stop()


def test_run_py_seeds_a_demo_branch_and_serves_with_gunicorn(system, tmp_path):
    password = system.admin_password
    assert password, "the admin password is printed on first start"
    status, health, headers = system.request("GET", "/api/v1/health")
    assert status == 200 and health["status"] == "ok"
    assert headers.get("Server", "").startswith("gunicorn")  # not Werkzeug's development server
    assert (Path(tmp_path / "instance") / "seed.db").exists()

    admin = ("admin", password)
    status, queues, _ = system.request("GET", "/api/v1/queues", auth=admin)
    assert status == 200
    assert [(s["code"], s["name"]) for s in queues["services"]] == [("A", "General"), ("B", "Appointments")]
    assert [c["name"] for c in queues["counters"]] == ["1", "2", "3"]
    status, issued, _ = system.request("POST", "/api/v1/tickets", {"service": "A"}, auth=admin)
    assert status == 201 and issued["ticket"]["number"] == "A001"

    # Restart on the same instance: nothing lost, nothing seeded twice, no new password.
    system.stop()
    again = RunningSystem(tmp_path / "instance").start()
    try:
        assert again.admin_password is None
        status, tickets, _ = again.request("GET", "/api/v1/tickets", auth=admin)
        assert [t["number"] for t in tickets["tickets"]] == ["A001"]
    finally:
        again.stop()


def test_staff_console_in_chromium_log_in_call_next_complete(system):
    admin = ("admin", system.admin_password)
    for _ in range(2):
        system.request("POST", "/api/v1/tickets", {"service": "A"}, auth=admin)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(system.base + "/staff/")
        expect(page).to_have_url(f"{system.base}/staff/login?next=/staff/")
        page.fill("#username", "admin")
        page.fill("#password", "wrong password")
        page.click("button[type=submit]")
        expect(page.locator(".flash.error")).to_contain_text("Wrong username or password")
        page.fill("#username", "admin")
        page.fill("#password", system.admin_password)
        page.click("button[type=submit]")
        page.click("button[data-counter='1']")
        expect(page.locator("#current-number")).to_contain_text("No ticket")
        expect(page.locator("tr[data-ticket='A001']")).to_be_visible()

        page.wait_for_load_state("load")  # the shortcuts exist once console.js has run
        page.keyboard.press("n")  # keyboard shortcut: call next
        expect(page.locator("#current-number")).to_have_text("A001")
        expect(page.locator(".flash.ok")).to_contain_text("Called A001 to counter 1")
        page.screenshot(path=str(ARTIFACTS / "console-called.png"))

        page.wait_for_load_state("load")  # the shortcuts exist once console.js has run
        page.keyboard.press("r")  # recall
        expect(page.locator(".flash.ok")).to_contain_text("Recalled A001")
        page.wait_for_load_state("load")  # the shortcuts exist once console.js has run
        page.keyboard.press("c")  # complete
        expect(page.locator(".flash.ok")).to_contain_text("Completed A001")
        expect(page.locator("#current-number")).to_contain_text("No ticket")
        expect(page.locator("tr[data-ticket='A002'] td").first).to_have_text("1")

        page.click("#call-next button")  # and by mouse
        expect(page.locator("#current-number")).to_have_text("A002")
        page.wait_for_load_state("load")  # the page the call loaded asks only once console.js has run
        page.click("#current-actions [data-action='no-show']")
        page.click("#confirm-dialog-yes")  # it asks first
        expect(page.locator(".flash.ok")).to_contain_text("No-show: A002")
        browser.close()

    status, tickets, _ = system.request("GET", "/api/v1/tickets", auth=admin)
    assert {t["number"]: t["status"] for t in tickets["tickets"]} == {"A001": "completed", "A002": "no_show"}
    status, detail, _ = system.request("GET", f"/api/v1/tickets/{tickets['tickets'][-1]['id']}", auth=admin)
    assert [e["kind"] for e in detail["ticket"]["events"]] == ["issued", "called", "recalled", "completed"]
    assert {e["staff"] for e in detail["ticket"]["events"][1:]} == {"admin"}


def test_console_panel_refreshes_without_reload(system):
    admin = ("admin", system.admin_password)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page()
        page.goto(system.base + "/staff/login")
        page.fill("#username", "admin")
        page.fill("#password", system.admin_password)
        page.click("button[type=submit]")
        page.click("button[data-counter='2']")
        expect(page.locator("tr[data-ticket='B001']")).to_have_count(0)
        system.request("POST", "/api/v1/tickets", {"service": "B"}, auth=admin)
        expect(page.locator("tr[data-ticket='B001']")).to_be_visible(timeout=10_000)
        browser.close()


def test_virtual_phone_in_chromium_shows_texts_and_sends_replies(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text("VIRTUAL_MODEM_LATENCY = 0.1\nMODEM_SWEEP_SECONDS = 1\n")
    system = RunningSystem(instance).start()
    try:
        status, health, _ = system.request("GET", "/api/v1/health")
        number = "+995555123456"
        queued = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "run", "modem", "test", number, "--queue-only",
             "--text", "Seed: your turn is near. <b>not bold</b>"],
            cwd=ROOT, env={**os.environ, "SEED_INSTANCE_PATH": str(instance)}, capture_output=True, text=True,
            timeout=120,
        )
        assert queued.returncode == 0, queued.stdout + queued.stderr
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page()
            page.goto(system.base + "/virtual-phone")
            page.click(f"a[data-number='{number}']")
            bubble = page.locator("#thread .bubble.in").first
            expect(bubble).to_contain_text("Seed: your turn is near. <b>not bold</b>")  # shown as text
            expect(page.locator("#thread b")).to_have_count(0)
            page.fill("#text", "C")
            page.click("#reply button")
            expect(page.locator("#thread .bubble.out")).to_contain_text("C")
            page.fill("#number", "12345")
            page.click("#pick button")
            expect(page.locator("#pick-error")).to_contain_text("is not a phone number")
            expect(page.locator("#title")).to_have_text(number)
            page.screenshot(path=str(ARTIFACTS / "virtual-phone.png"))
            browser.close()
        status, health, _ = system.request("GET", "/api/v1/health")
        assert health["modems"][0]["state"] == "ready" and health["modems"][0]["network"] == "Seed Virtual"
    finally:
        system.stop()


def test_admin_edits_a_text_with_a_live_preview_in_chromium(system):
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(system.base + "/staff/login")
        page.fill("#username", "admin")
        page.fill("#password", system.admin_password)
        page.click("button[type=submit]")
        page.goto(system.base + "/staff/admin/texts")
        page.select_option("#kind", "called")
        page.select_option("#language", "en")
        expect(page.locator("#body")).to_have_value("{branch}: ticket {ticket}, please go to counter {counter} now.")
        page.fill("#body", "{branch}: ticket {ticket} – desk {counter} €")
        # Filled at its longest: ticket A123, counter 12 (the branch's own counters are shorter).
        expect(page.locator("#preview")).to_have_text("Demo Branch: ticket A123 - desk 12 €")
        expect(page.locator("#stats")).to_contain_text("GSM-7 · 36 characters · 37 units · 1 part")
        expect(page.locator("#stats")).to_contain_text("planned: at most 1")
        expect(page.locator("#warning")).to_be_hidden()
        page.fill("#body", "{branch}: 番号{ticket}")
        expect(page.locator("#stats")).to_contain_text("UCS-2")
        page.fill("#body", "{branch}: ticket {ticket}, please go to counter {counter} now. " + "Thank you. " * 10)
        expect(page.locator("#stats")).to_contain_text("2 parts")
        expect(page.locator("#warning")).to_contain_text("takes 2 parts, more than the 1 planned")
        page.select_option("#kind", "reminder")  # two parts are planned for a reminder: no warning
        page.fill("#body", "{branch}: see you on {time}. " + "Thank you. " * 10)
        # The reminder's own preview already says "at most 2" and no warning: wait for this text's.
        expect(page.locator("#preview")).to_contain_text("see you on")
        expect(page.locator("#stats")).to_contain_text("planned: at most 2")
        expect(page.locator("#warning")).to_be_hidden()
        page.select_option("#kind", "called")
        page.fill("#body", "{branch}: desk {counter}, ticket {ticket}")
        page.click("#save")
        expect(page.locator("#message")).to_have_text("Saved.")
        expect(page.locator("#custom")).to_have_text("custom")
        page.fill("#body", "no business name")
        page.click("#save")
        expect(page.locator("#message")).to_contain_text("starts with {branch}")
        page.screenshot(path=str(ARTIFACTS / "admin-texts.png"))
        browser.close()
    status, body, _ = system.request("GET", "/api/v1/templates", auth=("admin", system.admin_password))
    saved = next(t for t in body["templates"] if (t["kind"], t["language"]) == ("called", "en"))
    assert saved["body"] == "{branch}: desk {counter}, ticket {ticket}" and saved["custom"]
