"""The kiosk in Chromium: a walk-in check-in in each language, and the idle reset. Screenshots of
every screen land in test-artifacts/kiosk/ (README: how to make them)."""
import re
import time

import pytest
from playwright.sync_api import expect

from .live import ROOT, chromium, running_system, wait_until

SHOTS = ROOT / "test-artifacts" / "kiosk"
HEADINGS = {"en": "Welcome to Demo Branch", "ja": "Demo Branchへようこそ", "ka": "მოგესალმებათ Demo Branch"}
TEXTS_TO = {"en": "to 555 12 34 56", "ja": "555 12 34 56 へ送信", "ka": "ნომერზე 555 12 34 56"}
BAD_NUMBER = {"en": "That number is not valid: please check it.", "ja": "有効な番号ではありません。ご確認ください。",
              "ka": "ნომერი არასწორია: გთხოვთ, შეამოწმოთ."}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    config = 'DEFAULT_COUNTRY = "GE"\nVIRTUAL_MODEM_LATENCY = 0.1\nKIOSK_IDLE_SECONDS = 2\nKIOSK_IDLE_WARNING_SECONDS = 3\n'
    with running_system(tmp_path_factory.mktemp("kiosk"), config) as running:
        running.admin = ("admin", running.admin_password)
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


@pytest.mark.parametrize("language", ["en", "ja", "ka"])
def test_walk_in_check_in(system, browser, language):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1080, "height": 1400})
    shot = lambda step: page.screenshot(path=str(SHOTS / f"{language}-{step}.png"))  # noqa: E731
    page.goto(system.base + "/kiosk/1")
    shot("1-language")
    page.click(f"[data-pick-language={language}]")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("#step-start h1")).to_have_text(HEADINGS[language])
    shot("2-start")
    page.click("#walk-in")
    page.click("[data-service=A]")
    shot("3-service")

    page.fill("#phone", "12")
    page.click("#phone-next")
    expect(page.locator("#phone-error")).to_have_text(BAD_NUMBER[language])
    page.fill("#phone", "")
    for key in "555123456":
        page.click(f"#keypad [data-key='{key}']")
    shot("4-phone")
    page.click("#phone-next")
    expect(page.locator("#phone-display")).to_have_text("555 12 34 56")
    shot("5-consent")
    page.click("#consent-yes")
    expect(page.locator("#confirm-texts")).to_have_text(TEXTS_TO[language])
    shot("6-confirm")
    page.click("#get-ticket")
    expect(page.locator("#ticket-number")).to_have_text(re.compile(r"^A\d{3}$"))
    wait_until(page, "document.getElementById('ticket-qr').naturalWidth > 0")
    shot("7-ticket")
    number = page.locator("#ticket-number").inner_text()

    status, body, _ = system.request("GET", "/api/v1/tickets?service=A", auth=system.admin)
    assert number in [t["number"] for t in body["tickets"]]
    ticket_url = page.evaluate("window.seedKiosk.ticket.status_url")
    status_page = browser.new_page()
    status_page.goto(ticket_url)
    expect(status_page.locator("html")).to_have_attribute("lang", language)
    expect(status_page.locator("#number")).to_have_text(number)
    page.click("#ticket-done")
    expect(page.locator("#step-language")).to_be_visible()
    page.close()
    status_page.close()


def test_idle_warning_can_be_extended_then_resets_and_clears_input(system, browser):
    page = browser.new_page()
    page.goto(system.base + "/kiosk/1")
    page.click("[data-pick-language=ka]")
    page.click("#walk-in")
    page.click("[data-service=B]")
    page.fill("#phone", "555 99 88 77")
    expect(page.locator("#idle")).to_be_visible(timeout=5000)  # after 2 s without a touch
    expect(page.locator("#idle-count")).to_contain_text("წამში")
    page.screenshot(path=str(SHOTS / "ka-8-idle.png"))
    page.click("#idle-more")
    expect(page.locator("#idle")).to_be_hidden()
    expect(page.locator("#step-phone")).to_be_visible()
    assert page.input_value("#phone") == "555 99 88 77"
    # Walk away for good: the warning counts down and everything starts over, input gone.
    expect(page.locator("#step-language")).to_be_visible(timeout=10_000)
    assert page.evaluate("window.seedKiosk.resets") == 1
    assert page.input_value("#phone") == ""
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.close()


def test_no_still_there_question_while_the_server_is_slow_to_answer(system, browser):
    """The number check and the check-in each answered after longer than the idle time (2 s
    here): the customer, waiting on the kiosk, is not asked whether they are still there, and the
    clock starts again once the server has answered."""
    page = browser.new_page()
    page.goto(system.base + "/kiosk/1")
    page.click("[data-pick-language=en]")
    page.click("#walk-in")
    page.click("[data-service=A]")
    page.evaluate("""() => {
        const idle = document.getElementById("idle");
        window.warned = 0;
        new MutationObserver(() => { if (!idle.hidden) window.warned += 1; }).observe(idle, {attributes: true});
    }""")

    def slowly(route):
        time.sleep(3.5)  # the browser's clock runs meanwhile: past the 2 s of idle time
        route.continue_()

    page.route("**/api/v1/phone-check", slowly)
    page.fill("#phone", "555123456")
    page.click("#phone-next")
    expect(page.locator("#phone-display")).to_have_text("555 12 34 56", timeout=15_000)
    assert page.evaluate("window.warned") == 0
    # Answered: the clock runs again, and a customer who walks away is asked as ever.
    expect(page.locator("#idle")).to_be_visible(timeout=5_000)
    page.click("#idle-more")
    expect(page.locator("#idle")).to_be_hidden()

    page.route("**/api/v1/checkins", slowly)
    page.evaluate("window.warned = 0")
    page.click("#consent-yes")
    page.click("#get-ticket")
    expect(page.locator("#ticket-number")).to_have_text(re.compile(r"^A\d{3}$"), timeout=15_000)
    assert page.evaluate("window.warned") == 0
    assert page.evaluate("window.seedKiosk.resets") == 0
    page.close()


CONTRAST_JS = """
() => {
  const parse = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = node => {
    for (let n = node; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const results = [];
  document.querySelectorAll("button, h1, p, label, dd, dt").forEach(node => {
    if (!node.offsetParent || !node.textContent.trim()) return;
    const a = lum(parse(getComputedStyle(node).color).slice(0, 3)), b = lum(background(node));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const box = node.getBoundingClientRect();
    results.push({text: node.textContent.trim().slice(0, 30), tag: node.tagName, ratio, width: box.width, height: box.height});
  });
  return results;
}
"""


def test_touch_targets_contrast_and_keyboard(system, browser):
    page = browser.new_page(viewport={"width": 1080, "height": 1400})
    page.goto(system.base + "/kiosk/1")
    # Keyboard only: Tab to the Georgian language choice, Enter, and on to the services.
    page.focus("[data-pick-language=ka]")
    page.keyboard.press("Enter")
    expect(page.locator("#step-start")).to_be_visible()
    page.keyboard.press("Enter")  # the focused "take a ticket" button
    expect(page.locator("#step-service")).to_be_visible()
    page.focus("[data-service=A]")
    page.keyboard.press("Enter")
    expect(page.locator("#step-phone")).to_be_visible()
    for element in page.evaluate(CONTRAST_JS):
        assert element["ratio"] >= 4.5, element
        if element["tag"] == "BUTTON":
            assert element["width"] >= 44 and element["height"] >= 44, element
    page.close()


def test_appointment_screen_says_when_nothing_is_booked(system, browser):
    page = browser.new_page()
    page.goto(system.base + "/kiosk/1")
    page.click("[data-pick-language=ja]")
    page.click("#have-appointment")
    expect(page.locator("#step-appointment h1")).to_have_text("予約があります")
    page.fill("#appointment-key", "ABC234")
    page.click("#appointment-next")
    expect(page.locator("#appointment-error")).to_have_text(
        "本日のご予約が見つかりません。番号札をお取りいただくか、窓口にお尋ねください。")
    page.fill("#appointment-key", "12")
    page.click("#appointment-next")
    expect(page.locator("#appointment-error")).to_have_text("有効な番号ではありません。ご確認ください。")
    page.close()
