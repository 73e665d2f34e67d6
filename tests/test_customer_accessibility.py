"""Every page a customer sees, in each of its states, in English, Japanese and Georgian, in
Chromium against `python run.py` (issue 16): the kiosk's every step (with an error on screen and
the "still there?" warning open), the status page /t/<token> (waiting, next, called, finished,
cancelled, its questions open, a link that no longer works) and the display (split and full,
before the day's first call and with calls).

One pass per page, state, size and language does all three checks:
- a screenshot, test-artifacts/<page>/<language>/<width>x<height>-<state>.png, at a 1080×1920
  portrait kiosk, a 1920×1080 landscape one and a 360×740 phone (the kiosk also at a 768×1024
  tablet; the display, a wall screen, at the two kiosk sizes);
- the boxes: nothing overflows, is clipped or wraps beyond two lines (the measures, and the tests
  that show they catch what they look for, are tests/test_kiosk_layout.py's and
  tests/test_display_format.py's);
- an axe-core audit (tests/axe.py: WCAG 2.x A/AA and best practices) with no violation of any
  impact, nothing excluded.
(The pass is test_kiosk_layout.Pass; its busy-branch test goes through it too.)

Each state also says what it should, in the customer's language (no English on a ja/ka screen).
axe is injected as a script tag, which the pages' Content-Security-Policy refuses (it allows
only the page's own scripts): the browser context bypasses the policy for that."""
import re

import pytest
from playwright.sync_api import expect

from .live import chromium, running_system, wait_until
from .test_customer_errors import said
from .test_display_format import LONG_NAMES, MEASURE as DISPLAY_MEASURE, SECOND_NAMES, new_branch, put
from .test_kiosk_layout import Pass, kiosk_measure, layout_problems, settle

LANGUAGES = ["en", "ja", "ka"]
KIOSK_SIZES = [(1080, 1920), (1920, 1080), (768, 1024), (360, 740)]
STATUS_SIZES = [(1080, 1920), (1920, 1080), (360, 740)]
DISPLAY_SIZES = [(1080, 1920), (1920, 1080)]
TICKET_SECONDS = 600  # the kiosk's idle times: long, and jumped over with Playwright's clock


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    config = (f'DEFAULT_COUNTRY = "GB"\nKIOSK_IDLE_SECONDS = 600\nKIOSK_TICKET_SECONDS = {TICKET_SECONDS}\n'
              'KIOSK_RATE_LIMIT = "1000 per minute"\nKIOSK_PHONE_CHECK_LIMIT = "1000 per minute"\n'
              'STATUS_ACTION_RATE_LIMIT = "1000 per minute"\n')
    with running_system(tmp_path_factory.mktemp("customer-pages"), config) as running:
        # The demo branch in three languages, with service names as long as a city office's.
        put(running, "/api/v1/admin/branches/1", {"languages": ["en", "ja", "ka"]})
        put(running, "/api/v1/admin/services/1", {"names": LONG_NAMES})
        put(running, "/api/v1/admin/services/2", {"names": SECOND_NAMES})
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


def post(system, path, payload=None, expected=(200, 201)):
    status, body, _ = system.request("POST", path, payload, auth=True)
    assert status in expected, (path, status, body)
    return body


def page_measure(page, width, height):
    return layout_problems(page, width, height, fills_screen=False)


def display_measure(page, width, height):
    return page.evaluate(DISPLAY_MEASURE)


# --- the kiosk --------------------------------------------------------------------------------------

def drain(system, counter: int = 3):
    """Nobody left waiting for counter 3's services (the demo's: service A)."""
    while (called := post(system, f"/api/v1/counters/{counter}/call-next")["ticket"]) is not None:
        post(system, f"/api/v1/tickets/{called['id']}/complete")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_kiosk_step_reads_fits_and_passes_axe(system, browser, language):
    context = browser.new_context(bypass_csp=True, viewport={"width": 1080, "height": 1920})
    page = context.new_page()
    page.clock.install()  # time runs as usual; the idle warning is reached by jumping ahead
    walk = Pass(page, "kiosk", language, KIOSK_SIZES, kiosk_measure)
    page.goto(system.base + "/kiosk/1")
    page.click(f".languages [data-language={language}]")  # the bar's choice: the question in the language
    expect(page.locator("html")).to_have_attribute("lang", language)
    walk.check("1-language")
    page.click(f"[data-pick-language={language}]")
    expect(page.locator("#step-start")).to_be_visible()
    walk.check("2-start")
    page.click("#walk-in")
    expect(page.locator("#step-service")).to_be_visible()
    walk.check("3-service")

    page.click("[data-service=A]")
    # (its label was once "You're next.": two of the kiosk's words shared one key)
    expect(page.locator("#phone-next")).to_have_text(said(language, "Next"))
    page.click("#phone-next")  # nothing typed: said in words, in the language
    expect(page.locator("#phone-error")).to_have_text(said(language, "Enter a mobile number."))
    walk.check("4-phone-error")
    for key in "07400123456":
        page.click(f"#keypad [data-key='{key}']")
    expect(page.locator("#phone-typed")).to_have_text("07400 123456")
    expect(page.locator("#phone-error")).to_have_text("")
    walk.check("4-phone")
    page.click("#phone-next")
    expect(page.locator("#step-consent")).to_be_visible()
    walk.check("5-consent")
    page.click("#consent-yes")
    expect(page.locator("#step-confirm")).to_be_visible()
    walk.check("6-confirm")

    # The service is paused while the customer is at the kiosk: the refusal is in their language.
    put(system, "/api/v1/admin/services/1", {"active": False})
    try:
        page.click("#get-ticket")
        expect(page.locator("#confirm-error")).to_have_text(
            said(language, "%(service)s is paused: please ask at the desk.", service=LONG_NAMES[language]))
        walk.check("6-confirm-error")
    finally:
        put(system, "/api/v1/admin/services/1", {"active": True})

    drain(system)
    ahead = 2 if language == "ka" else 0  # Georgian's longer "people ahead" line; "you're next" in en and ja
    for _ in range(ahead):
        post(system, "/api/v1/tickets", {"service": "A"})
    page.click("#get-ticket")
    expect(page.locator("#ticket-number")).to_have_text(re.compile(r"^A\d{3}$"))
    wait_until(page, "document.getElementById('ticket-qr').naturalWidth > 0")
    if ahead:
        expect(page.locator("#ticket-ahead")).to_have_text(said(language, "People ahead of you: %(count)s", count=ahead))
    else:  # never "People ahead of you: 0", "about 0 min"
        expect(page.locator("#ticket-ahead")).to_have_text(said(language, "You're next."))
        expect(page.locator("#ticket-wait")).to_have_text(said(language, "Please stay close."))
    walk.check("7-ticket")

    page.clock.fast_forward(TICKET_SECONDS * 1000)  # the ticket screen asks before it starts over
    expect(page.locator("#idle")).to_be_visible()
    expect(page.locator("#idle-title")).to_have_text(said(language, "Are you still there?"))
    walk.check("7-ticket-still-there")
    page.click("#idle-more")
    expect(page.locator("#idle")).to_be_hidden()

    page.click("#ticket-done")
    page.click(f"[data-pick-language={language}]")
    page.click("#have-appointment")
    expect(page.locator("#step-appointment")).to_be_visible()
    walk.check("8-appointment")
    page.fill("#appointment-key", "K7Q2MX")
    page.click("#appointment-next")
    expect(page.locator("#appointment-error")).to_have_text(
        said(language, "We found no appointment for today. Please take a ticket or ask at the desk."))
    walk.check("8-appointment-error")
    context.close()
    walk.assert_clean()


# --- the status page --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def quiet(system):
    """A branch of its own for the status page's tickets (its queue is what the test makes it)."""
    return new_branch(system, "Shibaura Annex", counters=1)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_state_of_the_status_page_reads_fits_and_passes_axe(system, browser, quiet, language):
    context = browser.new_context(bypass_csp=True, locale=language, viewport={"width": 360, "height": 740})
    page = context.new_page()
    walk = Pass(page, "status", language, STATUS_SIZES, page_measure)
    first, second, third = (post(system, "/api/v1/checkins", {"service": "A", "branch": quiet["id"],
                                                                "language": language})["ticket"] for _ in range(3))
    try:
        status_page_states(system, page, walk, quiet, language, first, second, third)
    finally:
        for ticket in (first, second, third):  # the queue empty again for the next language
            system.request("POST", f"/api/v1/tickets/{ticket['id']}/cancel", auth=True)
    context.close()
    walk.assert_clean()


def status_page_states(system, page, walk, quiet, language, first, second, third):
    link = lambda ticket: system.base + "/t/" + ticket["status_url"].rsplit("/", 1)[1]  # noqa: E731
    state = page.locator("#state")

    page.goto(link(third))
    wait_until(page, "window.seedStatusLive && window.seedStatusLive.connected")
    expect(state).to_have_text(said(language, "People ahead of you: %(count)s", count=2) + " · "
                               + said(language, "Estimated wait: about %(minutes)s min",
                                       minutes=page.evaluate("window.seedStatus.estimated_wait_minutes")))
    walk.check("1-waiting")
    page.click("#late-open")
    expect(page.locator("#late-question")).to_have_text(said(language, "How late will you be?"))
    walk.check("2-running-late-question")
    page.click("#late-back")
    page.click("#cancel-open")
    walk.check("3-cancel-question")
    page.click("#cancel-no")

    page.goto(link(first))
    wait_until(page, "window.seedStatusLive && window.seedStatusLive.connected")
    # Nobody ahead: "you're next", never "People ahead of you: 0 · about 0 min".
    expect(state).to_have_text(said(language, "You're next. Please stay close."))
    walk.check("4-next")
    called = post(system, f"/api/v1/counters/{quiet['counters'][0]}/call-next")["ticket"]
    assert called["id"] == first["id"]
    expect(state).to_have_text(said(language, "It is your turn: please go to counter %(counter)s.", counter="1"))
    walk.check("5-called")
    post(system, f"/api/v1/tickets/{first['id']}/complete")
    expect(state).to_have_text(said(language, "This ticket is closed. Thank you for your visit."))
    walk.check("6-finished")

    page.goto(link(second))
    page.click("#cancel-open")
    page.click("#cancel-yes")
    expect(state).to_have_text(said(language, "Your ticket has been cancelled. Thank you for letting us know."))
    walk.check("7-cancelled")

    # A link that no longer works: the customer's page, in the phone's language (Accept-Language).
    assert page.goto(system.base + "/t/a-link-from-last-week").status == 404
    expect(page.locator("h1")).to_have_text(said(language, "This ticket link no longer works"))
    walk.check("8-unknown-link")


# --- the display ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def busy(system):
    """The demo branch on a busy morning: every counter has called, earlier calls fill the list,
    both queues are long."""
    current = {}
    for _ in range(3):
        for code in ("A", "B", "A", "B"):
            post(system, "/api/v1/tickets", {"service": code})
        for counter in (1, 2, 3):
            if counter in current:
                post(system, f"/api/v1/tickets/{current[counter]}/complete")
            current[counter] = post(system, f"/api/v1/counters/{counter}/call-next")["ticket"]["id"]
    for _ in range(10):
        post(system, "/api/v1/tickets", {"service": "A"})
        post(system, "/api/v1/tickets", {"service": "B"})
    return 1


@pytest.fixture(scope="module")
def idle_branch(system):
    """A branch with no call yet today."""
    return new_branch(system, "Minato Central Clinic, Shibaura annex", counters=1)["id"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_display_reads_fits_and_passes_axe(system, browser, busy, idle_branch, language):
    context = browser.new_context(bypass_csp=True, locale="en-US", timezone_id="America/New_York",
                                  viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    walk = Pass(page, "display", language, DISPLAY_SIZES, display_measure)
    for layout in ("split", "full"):
        page.goto(system.base + f"/display/{idle_branch}?languages={language}&layout={layout}")
        wait_until(page, "window.seedDisplay && window.seedDisplay.snapshots > 0")
        expect(page.locator("#idle")).to_be_visible()  # never an empty screen before the first call
        expect(page.locator("#nobody")).to_have_text(said(language, "Please take a ticket. You will be called here."))
        walk.check(f"{layout}-before-first-call")

        page.goto(system.base + f"/display/{busy}?languages={language}&layout={layout}")
        wait_until(page, "window.seedDisplay && window.seedDisplay.snapshots > 0")
        latest = page.evaluate("window.seedDisplay.state.recent[0]")
        expect(page.locator("#now-number")).to_have_text(latest["number"])
        expect(page.locator("h1")).to_have_text(said(language, "Now serving", "display"))
        if layout == "split":
            expect(page.locator("#services .service-name").first).to_contain_text(LONG_NAMES[language])
        walk.check(f"{layout}-calls")
        settle(page)  # the pass ends by resizing the screen back: display.js trims the list again on "resize"
        assert page.locator("#recent li:not([hidden])").count() >= 2  # the last calls are there
    context.close()
    walk.assert_clean()
