"""Issue 12's journey in Chromium against `python run.py`, as a new administrator would go: from
a fresh install, a second branch in Asia/Tokyo with Japanese service names, a counter, a manager
and a staff user, opening hours and a holiday, a display link; then that branch's kiosk speaks
Japanese with its branding, and the staff user sees only that branch."""
import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from .live import ROOT, chromium, running_system, signed_in

SHOTS = ROOT / "test-artifacts" / "settings-journey"


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with running_system(tmp_path_factory.mktemp("journey")) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


def saved(page, shot):
    """After a submit: no field error on the page, and a screenshot of where it landed."""
    page.wait_for_load_state("networkidle")
    errors = page.locator(".field-error, .form-error, .flash.error").all_inner_texts()
    page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)
    assert errors == [], f"{shot}: {errors}"


def create_user(page, system, branch_id, username, name, role):
    page.goto(system.base + "/admin/users/new")
    page.fill("#f-username", username)
    page.fill("#f-display_name", name)
    page.select_option("#f-role", role)
    page.select_option("#f-home_branch", str(branch_id))
    page.click("#user-form button[type=submit]")
    saved(page, f"5-user-{username}")
    return page.locator("#password").inner_text().strip()


def test_a_new_admin_sets_up_a_tokyo_branch_from_the_browser(system, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context, page = signed_in(browser, system)

    # 1. The branch: Asia/Tokyo, Japan, Japanese first, hours, colours.
    page.goto(system.base + "/admin/branches/new")
    page.fill("#f-name", "Tokyo Clinic")
    page.fill("#f-sender_name", "Tokyo Clinic")
    page.select_option("#f-timezone", "Asia/Tokyo")
    page.select_option("#f-country", "JP")
    page.select_option("#f-language", "ja")
    page.uncheck("input[name=languages][value=ka]")
    for day in ("mon", "tue", "wed", "thu", "fri"):
        page.fill(f"input[name=hours-{day}-open-1]", "08:30")
        page.fill(f"input[name=hours-{day}-close-1]", "17:30")
    page.fill("#f-primary", "#2e7d32")
    page.click("#save-branch")
    saved(page, "1-branch")
    branch_id = int(re.search(r"/admin/branches/(\d+)", page.url).group(1))
    assert branch_id != 1

    # 2. A holiday, shown on the kiosk on that day.
    holiday = date.today() + timedelta(days=40)
    page.fill("#closure-form input[name=first_day]", holiday.isoformat())
    page.fill("#closure-form input[name=last_day]", (holiday + timedelta(days=2)).isoformat())
    page.fill("#closure-form input[name=message]", "年末年始のため休診いたします。")
    page.click("#closure-form button[type=submit]")
    saved(page, "2-holiday")
    expect(page.locator("#closures")).to_contain_text("年末年始のため休診いたします。")

    # 3. A service named in Japanese and English.
    page.goto(f"{system.base}/admin/services/new?branch={branch_id}")
    page.fill("[name=code]", "A")
    page.fill("[name='names.ja']", "総合受付")
    page.fill("[name='names.en']", "Reception")
    page.fill("[name=avg_service_minutes]", "6")
    page.click("#save-service")
    saved(page, "3-service")

    # 4. A counter serving it.
    page.goto(f"{system.base}/admin/counters/new?branch={branch_id}")
    page.fill("[name=name]", "1")
    page.check("input[name='services[]']")
    page.click("#save-counter")
    saved(page, "4-counter")

    # 5. A manager and a staff user of the branch, each with a password shown once.
    create_user(page, system, branch_id, "tanaka", "田中 花子", "manager")
    staff_password = create_user(page, system, branch_id, "sato", "佐藤 一郎", "staff")

    # 6. A display link: full layout, Japanese only; the display opens in it.
    page.goto(f"{system.base}/admin/screens?branch={branch_id}")
    page.check("input[name=layout][value=full]")
    for box in page.locator("input[name=languages]").all():
        box.set_checked(box.get_attribute("value") == "ja")
    display_url = page.locator("#display-url").input_value()
    assert f"/display/{branch_id}" in display_url and "layout=full" in display_url
    page.screenshot(path=str(SHOTS / "6-screens.png"), full_page=True)
    display = context.new_page()
    display.goto(display_url if display_url.startswith("http") else system.base + display_url)
    expect(display.locator("html")).to_have_attribute("lang", "ja")
    display.close()
    context.close()

    # 7. The branch's kiosk, as a customer sees it: Japanese names, the branch's colour.
    kiosk = browser.new_page(viewport={"width": 1080, "height": 1920})
    kiosk.goto(f"{system.base}/kiosk/{branch_id}")
    expect(kiosk.locator("html")).to_have_attribute("lang", "ja")
    kiosk.click("[data-pick-language=ja]")  # two languages offered: the kiosk asks first
    kiosk.locator("#walk-in").click()
    expect(kiosk.locator("[data-service=A]")).to_contain_text("総合受付")
    primary = kiosk.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--brand-primary')")
    assert primary.strip().lower() == "#2e7d32"
    kiosk.screenshot(path=str(SHOTS / "7-kiosk-ja.png"))
    kiosk.close()

    # 8. The staff user sees only the Tokyo branch.
    context, page = signed_in(browser, system, "sato", staff_password)
    assert page.goto(f"{system.base}/api/v1/queues?branch=1").status == 404
    assert page.goto(f"{system.base}/api/v1/queues?branch={branch_id}").status == 200
    assert page.goto(f"{system.base}/admin/branches").status == 403
    page.goto(system.base + "/staff/counter")
    expect(page.locator("body")).to_contain_text("Tokyo Clinic")
    expect(page.locator("body")).not_to_contain_text("Demo Branch")
    page.screenshot(path=str(SHOTS / "8-staff-counter.png"), full_page=True)
    context.close()
