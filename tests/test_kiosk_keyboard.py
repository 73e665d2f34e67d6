"""The kiosk with a keyboard only (switch users, screen-reader users), in Chromium against
`python run.py`: a whole check-in without a pointer, the "still there?" warning as a real modal
(focus kept inside, given back after), the ticket screen asking before it starts over, and the
names a screen reader says in the customer's language."""
import re

import pytest
from playwright.sync_api import expect, sync_playwright

from .live import RunningSystem, launch_chromium, wait_until


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    instance = tmp_path_factory.mktemp("keyboard") / "instance"
    instance.mkdir()
    # The ticket screen asks after 2 s (the test waits for it); the steps before it never time out,
    # however slowly a loaded machine types (2 s there let the question take the focus mid-check-in).
    (instance / "config.py").write_text('DEFAULT_COUNTRY = "GE"\nKIOSK_IDLE_SECONDS = 600\n'
                                        'KIOSK_IDLE_WARNING_SECONDS = 30\nKIOSK_TICKET_SECONDS = 2\n')
    running = RunningSystem(instance).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


def focused(page) -> str:
    return page.evaluate("(e => e.id || e.dataset.key || e.dataset.service || e.dataset.pickLanguage || e.tagName)"
                         "(document.activeElement)")


def tab_to(page, target: str, limit: int = 30) -> None:
    """Press Tab until `target` (an id, a key or a language) has the focus."""
    for _ in range(limit):
        if focused(page) == target:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {target}; focus is on {focused(page)}")


def test_a_check_in_by_keyboard_and_the_warning_keeps_and_gives_back_focus(system, browser):
    page = browser.new_page(viewport={"width": 1080, "height": 1920})
    page.goto(system.base + "/kiosk/1")
    tab_to(page, "en")
    page.keyboard.press("Enter")
    tab_to(page, "walk-in")
    page.keyboard.press("Enter")
    tab_to(page, "A")
    page.keyboard.press("Enter")
    expect(page.locator("#phone")).to_be_focused()
    page.keyboard.type("555123456")
    tab_to(page, "phone-next")
    page.keyboard.press("Enter")
    expect(page.locator("#consent-yes")).to_be_visible()  # once the server has checked the number
    tab_to(page, "consent-yes")
    page.keyboard.press("Enter")
    tab_to(page, "get-ticket")
    page.keyboard.press("Enter")
    expect(page.locator("#ticket-number")).to_have_text(re.compile(r"^A\d{3}$"))
    before = focused(page)

    # The ticket screen asks before it starts over; the question holds the focus.
    expect(page.locator("#idle")).to_be_visible(timeout=10_000)
    expect(page.locator("#idle-more")).to_be_focused()
    for key in ("Tab", "Shift+Tab", "Tab", "Tab"):
        page.keyboard.press(key)
        assert page.evaluate("document.getElementById('idle').contains(document.activeElement)"), key
    page.evaluate("document.getElementById('ticket-done').focus()")  # focus pushed out from behind is pulled back
    expect(page.locator("#idle-more")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#idle")).to_be_hidden()
    assert focused(page) == before  # back where it was
    expect(page.locator("#ticket-number")).to_be_visible()  # the customer got more time, not a reset
    page.close()


def test_what_a_screen_reader_says_is_in_the_customers_language(system, browser):
    page = browser.new_page(viewport={"width": 1080, "height": 1920})
    page.goto(system.base + "/kiosk/1")
    page.click("[data-pick-language=ja]")
    assert page.get_attribute("nav.languages", "aria-label") not in ("Language", "", None)
    page.click("#walk-in")
    page.click("[data-service=A]")
    delete = page.locator("#keypad [data-key='⌫']")
    assert delete.get_attribute("aria-label") not in ("delete", "", None)
    assert page.locator("#keypad [data-key='+']").get_attribute("aria-label") is None  # named by what it shows
    for key in "555":
        page.click(f"#keypad [data-key='{key}']")
    page.click("#keypad [data-key=clear]")
    assert page.input_value("#phone") == ""
    page.click("#phone-skip")
    tab_to(page, "get-ticket")
    page.keyboard.press("Enter")
    wait_until(page, "document.getElementById('ticket-qr').naturalWidth > 0")
    alt = page.get_attribute("#ticket-qr", "alt")
    assert alt and "http" not in alt and "/t/" not in alt
    page.close()


def test_the_focus_ring_on_the_coloured_bar_is_readable(system, browser):
    page = browser.new_page(viewport={"width": 1080, "height": 1920})
    page.goto(system.base + "/kiosk/1")
    page.click("[data-pick-language=en]")
    page.focus("nav.languages button")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # :focus-visible comes with the keyboard
    ring, bar = page.evaluate("""() => { const b = document.querySelector('nav.languages button:focus-visible')
                                             || document.querySelector('nav.languages button');
                                         return [getComputedStyle(b).outlineColor,
                                                 getComputedStyle(document.querySelector('header.bar')).backgroundColor]; }""")
    assert contrast(ring, bar) >= 3, (ring, bar)
    page.close()


def contrast(first: str, second: str) -> float:
    def luminance(css):
        red, green, blue = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (red, green, blue)]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)
