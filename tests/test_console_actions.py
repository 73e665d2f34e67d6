"""The console's ticket at the counter: one obvious next step per state, a question before a
no-show or a cancel, single-key shortcuts each person may switch off (WCAG 2.1.4), one h1 and
header cells that say something. Through HTTP first; then in Chromium on the real server: the
focus stays on its control when a push redraws the panel, the N key obeys the setting, the page's
structure holds in the browser's DOM, and a member of staff signs in, picks a counter, calls, serves
and completes a ticket with the keyboard alone, the focus ring showing (3:1) on every control on the way."""
from html.parser import HTMLParser

import pytest
from playwright.sync_api import expect

from core import engine
from core.extensions import db
from core.models import StaffUser, Ticket

from .helpers import csrf_token, login, make_staff
from .live import chromium, running_system, signed_in, wait_until


class Page(HTMLParser):
    """The parts of a rendered page these tests look at: every element's attributes by id, the
    h1s, the header cells' text and the tables."""

    def __init__(self, html):
        super().__init__()
        self.by_id, self.h1s, self.headers, self.tables, self._th = {}, 0, [], [], None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.by_id[attrs["id"]] = {"tag": tag, **attrs}
        self.h1s += tag == "h1"
        if tag == "table":
            self.tables.append(attrs)
        if tag == "th":
            self._th = []

    def handle_data(self, data):
        if self._th is not None:
            self._th.append(data)

    def handle_endtag(self, tag):
        if tag == "th":
            self.headers.append("".join(self._th).strip())
            self._th = None


@pytest.fixture
def desk(client, setup):
    """alice at counter 1: post(path, **form) posts a console form with a fresh CSRF token."""
    branch, (a, _b), (c1, _c2), _ = setup
    login(client)
    page = client.get("/staff/counter")
    client.post("/staff/counter", data={"counter_id": c1.id, "csrf_token": csrf_token(page.text)})

    def post(path, **data):
        token = csrf_token(client.get("/staff/").text)
        return client.post(path, data={"csrf_token": token, **data}, follow_redirects=True)

    post.service, post.branch, post.counter = a, branch, c1
    return post


def status_of(ticket_id) -> str:
    db.session.expire_all()
    return db.session.get(Ticket, ticket_id).status


def primary(page: Page) -> list[str]:
    return [ident for ident, attrs in page.by_id.items() if attrs["tag"] == "button" and "data-primary" in attrs]


def test_the_big_button_is_the_next_step_of_the_tickets_state(client, desk):
    ticket = engine.issue_ticket(desk.service.id).id
    page = Page(client.get("/staff/").text)
    assert primary(page) == ["call-next-button"] and "primary" in page.by_id["call-next-button"]["class"]

    desk("/staff/counter/call-next")
    page = Page(client.get("/staff/").text)
    assert primary(page) == [f"start-{ticket}-button"]
    assert "call-next-button" not in page.by_id  # it cannot succeed while a ticket is at the counter
    for beside in ("recall", "no-show"):
        assert page.by_id[f"{beside}-{ticket}-button"]["data-action"] == beside
    assert page.by_id[f"no-show-{ticket}"]["data-confirm"] == "Mark A001 as a no-show?"

    desk(f"/staff/tickets/{ticket}/start")
    page = Page(client.get("/staff/panel").text)
    assert primary(page) == [f"complete-{ticket}-button"]
    assert f"start-{ticket}-button" not in page.by_id and f"no-show-{ticket}-button" not in page.by_id

    desk(f"/staff/tickets/{ticket}/complete")
    assert primary(Page(client.get("/staff/panel").text)) == ["call-next-button"]


def test_a_no_show_asks_first_and_changes_nothing_until_confirmed(client, desk):
    ticket = engine.issue_ticket(desk.service.id).id
    desk("/staff/counter/call-next")

    asked = desk(f"/staff/tickets/{ticket}/no-show")
    assert asked.status_code == 200 and status_of(ticket) == "called"
    page = Page(asked.text)
    assert "Mark A001 as a no-show?" in asked.text and page.by_id["confirm-no"]["tag"] == "button"
    assert 'name="confirm" value="1"' in asked.text and page.h1s == 1
    for wrong in ("", "0", "yes"):
        desk(f"/staff/tickets/{ticket}/no-show", confirm=wrong)
        assert status_of(ticket) == "called", wrong

    done = desk(f"/staff/tickets/{ticket}/no-show", confirm="1")
    assert "No-show: A001." in done.text and status_of(ticket) == "no_show"


def test_a_cancel_from_the_queue_asks_first(client, desk):
    ticket = engine.issue_ticket(desk.service.id).id
    page = Page(client.get("/staff/panel").text)
    assert page.by_id[f"cancel-{ticket}"]["data-confirm"] == "Cancel ticket A001?"
    assert "data-confirm" not in page.by_id[f"hold-{ticket}"]  # only what ends a visit asks

    assert "Cancel ticket A001?" in desk(f"/staff/tickets/{ticket}/cancel").text
    assert status_of(ticket) == "waiting"
    desk(f"/staff/tickets/{ticket}/cancel", confirm="1")
    assert status_of(ticket) == "cancelled"


def test_shortcuts_are_each_persons_own_choice(app, client, desk):
    console = client.get("/staff/").text
    assert 'data-shortcuts="on"' in console and 'aria-keyshortcuts="N"' in console  # on by default
    account = client.get("/staff/password").text
    assert "checked" in Page(account).by_id["shortcuts-choice"]

    saved = desk("/staff/shortcuts")  # the box unticked: no "shortcuts" field
    assert "Keyboard shortcuts are off." in saved.text
    assert "checked" not in Page(saved.text).by_id["shortcuts-choice"]
    alice = db.session.scalar(db.select(StaffUser).where(StaffUser.username == "alice"))
    db.session.refresh(alice)
    assert alice.shortcuts is False
    console = client.get("/staff/").text
    assert 'data-shortcuts="off"' in console and "aria-keyshortcuts" not in console and "<kbd>" not in console

    # Someone else's console keeps its keys.
    make_staff("bob", branch=desk.branch)
    db.session.commit()
    bob = app.test_client()
    login(bob, "bob")
    page = bob.get("/staff/counter")
    bob.post("/staff/counter", data={"counter_id": desk.counter.id, "csrf_token": csrf_token(page.text)})
    assert 'data-shortcuts="on"' in bob.get("/staff/").text

    desk("/staff/shortcuts", shortcuts="on")
    db.session.refresh(alice)
    assert alice.shortcuts is True and 'data-shortcuts="on"' in client.get("/staff/").text


def test_the_console_has_one_h1_and_no_silent_header_cells(client, desk):
    engine.issue_ticket(desk.service.id)
    for path in ("/staff/", "/staff/panel"):
        page = Page(client.get(path).text)
        assert page.h1s == (1 if path == "/staff/" else 0), path  # the panel sits inside the console
        assert page.headers and all(page.headers), (path, page.headers)
        assert all(t.get("aria-labelledby") or t.get("aria-label") for t in page.tables), path


# --- in Chromium, on the real server (one for the module: each test starts from an empty queue) -----

@pytest.fixture(scope="module")
def browser():
    with chromium() as found:
        yield found


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_system(tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest.fixture
def system(server):
    """The module's server with branch 1's queue emptied: no ticket waits, none is at a counter."""
    _status, found, _ = server.request("GET", "/api/v1/tickets?branch=1", auth=True)
    for ticket in found["tickets"]:
        action = {"called": "complete", "serving": "complete", "waiting": "cancel", "held": "cancel"}.get(ticket["status"])
        if action:
            assert server.request("POST", f"/api/v1/tickets/{ticket['id']}/{action}", {}, auth=True)[0] == 200
    return server


def open_console(browser, system):
    context, page = signed_in(browser, system)
    page.click("button[data-counter='1']")
    page.wait_for_load_state("load")
    wait_until(page, "window.seedConsole && window.seedConsole.connected && window.seedConsole.fetches >= 1")
    return context, page


def check_in(system) -> str:
    """A ticket for service A, issued by staff through the API (the kiosk's check-in has a rate limit
    per address that a module of tests would reach); its number."""
    status, body, _ = system.request("POST", "/api/v1/tickets", {"branch": 1, "service": "A"}, auth=True)
    assert status == 201, body
    return body["ticket"]["number"]


def redrawn_after_check_in(page, system) -> str:
    fetches = page.evaluate("window.seedConsole.fetches")
    row = check_in(system)
    expect(page.locator(f"tr[data-ticket='{row}']")).to_be_visible(timeout=5_000)
    wait_until(page, f"window.seedConsole.fetches > {fetches}")
    page.wait_for_timeout(300)  # let a second fetch of the burst land too
    return row


ACTIVE = "document.activeElement && document.activeElement.id"


def test_the_focus_stays_on_its_control_when_a_push_redraws_the_panel(browser, system):
    first = check_in(system)
    context, page = open_console(browser, system)
    try:
        with page.expect_navigation():  # to its load: console.js has placed the focus by then
            page.click("#call-next-button")
        expect(page.locator("#current-number")).to_have_text(first)
        # After one's own step the focus is on the next one (not on <body>).
        start = page.locator("#current-actions [data-action=start]")
        assert page.evaluate(ACTIVE) == start.get_attribute("id")
        wait_until(page, "window.seedConsole.connected && window.seedConsole.fetches >= 1")

        recall = page.locator("#current-actions [data-action=recall]").get_attribute("id")
        page.focus("#" + recall)
        page.evaluate("window.seedMarker = document.activeElement")  # the element itself is replaced
        second = redrawn_after_check_in(page, system)
        assert page.evaluate("document.activeElement !== window.seedMarker")  # it was drawn anew ...
        assert page.evaluate(ACTIVE) == recall  # ... and has the focus back

        hold = page.locator(f"tr[data-ticket='{second}'] [data-action=hold]").get_attribute("id")
        page.focus("#" + hold)
        redrawn_after_check_in(page, system)
        assert page.evaluate(ACTIVE) == hold

        page.keyboard.press("Enter")  # the focused control still works from the keyboard
        expect(page.locator(".flash.ok")).to_contain_text(f"On hold: {second}")
        # (a new page: its flash shows before console.js has run and connected; on a loaded machine, long before)
        wait_until(page, "window.seedConsole && window.seedConsole.connected && window.seedConsole.fetches >= 1")

        # Focus outside the panel is not taken.
        page.focus("#nav-outbox")
        redrawn_after_check_in(page, system)
        assert page.evaluate(ACTIVE) == "nav-outbox"
    finally:
        context.close()


def test_a_no_show_asks_in_a_dialog_that_escape_dismisses(browser, system):
    number = check_in(system)
    context, page = open_console(browser, system)
    try:
        page.keyboard.press("n")
        expect(page.locator("#current-number")).to_have_text(number)
        page.wait_for_load_state("load")  # the page the call loaded asks only once console.js has run
        page.click("#current-actions [data-action='no-show']")
        dialog = page.locator("#confirm-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text(f"Mark {number} as a no-show?")
        assert page.evaluate(ACTIVE) == "confirm-dialog-no"  # the safe answer has the focus
        page.keyboard.press("n")  # no shortcut reaches past the question
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        page.wait_for_timeout(300)
        expect(page.locator("#current-status")).to_have_text("called")
        page.click("#current-actions [data-action='no-show']")
        page.click("#confirm-dialog-yes")
        expect(page.locator(".flash.ok")).to_contain_text(f"No-show: {number}")
    finally:
        context.close()


def test_shortcuts_switched_off_leave_the_n_key_alone(browser, system):
    number = check_in(system)
    context, page = open_console(browser, system)
    try:
        page.goto(system.base + "/staff/password")
        page.uncheck("#shortcuts-choice")
        page.click("#shortcuts button[type=submit]")
        expect(page.locator(".flash.ok")).to_contain_text("Keyboard shortcuts are off.")

        page.goto(system.base + "/staff/")
        wait_until(page, "window.seedConsole && window.seedConsole.connected")
        page.keyboard.press("n")
        page.wait_for_timeout(1_000)
        expect(page.locator("#current-number")).to_contain_text("No ticket")
        expect(page.locator(f"tr[data-ticket='{number}']")).to_be_visible()
        expect(page.locator("kbd")).to_have_count(0)
    finally:
        page.goto(system.base + "/staff/password")  # the next test's console has its keys again
        page.check("#shortcuts-choice")
        page.click("#shortcuts button[type=submit]")
    try:
        page.goto(system.base + "/staff/")
        page.wait_for_load_state("load")
        page.keyboard.press("n")
        expect(page.locator("#current-number")).to_have_text(number)
    finally:
        context.close()


def test_the_console_in_the_browser_has_one_h1_and_labelled_tables(browser, system):
    check_in(system)
    context, page = open_console(browser, system)
    try:
        redrawn_after_check_in(page, system)  # the structure holds after a redraw too
        assert page.evaluate("document.querySelectorAll('h1').length") == 1
        assert page.evaluate("Array.prototype.filter.call(document.querySelectorAll('th'),"
                             " function (th) { return !th.textContent.trim(); }).length") == 0
        assert page.evaluate("document.querySelectorAll('th').length") >= 10
        assert page.evaluate("Array.prototype.every.call(document.querySelectorAll('table'), function (t) {"
                             " var by = t.getAttribute('aria-labelledby');"
                             " return t.caption || t.getAttribute('aria-label') ||"
                             " (by && document.getElementById(by) && document.getElementById(by).textContent.trim()); })")
    finally:
        context.close()


# --- with the keyboard alone ---------------------------------------------------------------------

# The focused element, whether it shows the focus, and how well its ring stands out: the outline's
# contrast with the background it is drawn on (the nearest ancestor's with a colour; a ring drawn
# outside the element sits on its surroundings), WCAG 2.4.7 and the 3:1 of 1.4.11.
FOCUS = r"""() => {
  const el = document.activeElement;
  if (!el || el === document.body) return {name: 'body', ring: false};
  const rgb = text => (text.match(/[\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => [r, g, b].map(v => v / 255)
      .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
      .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const style = getComputedStyle(el);
  let behind = [255, 255, 255];
  for (let node = el.parentElement; node; node = node.parentElement) {
    const colour = rgb(getComputedStyle(node).backgroundColor);
    if (colour.length === 3 || colour[3] > 0) { behind = colour.slice(0, 3); break; }
  }
  const [a, b] = [luminance(rgb(style.outlineColor)), luminance(behind)].sort((x, y) => y - x);
  return {name: (el.id || el.tagName.toLowerCase()) + ' "' + (el.textContent || el.value || '').trim().slice(0, 30) + '"',
          id: el.id, ring: el.matches(':focus-visible') && style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
          contrast: (a + 0.05) / (b + 0.05)};
}"""


def focused(page) -> dict:
    """The focused control, asserted to show a ring that stands out 3:1."""
    found = page.evaluate(FOCUS)
    assert found["ring"] and found["contrast"] >= 3, f"the focus on {found['name']} does not show well: {found}"
    return found


def tab_to(page, selector: str, limit: int = 40, back: bool = False) -> list[str]:
    """Press Tab (Shift+Tab with `back`) until the element `selector` has the focus, checking the ring
    on every control passed; their names."""
    passed = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        passed.append(focused(page)["name"])
        if page.evaluate("selector => document.activeElement.matches(selector)", selector):
            return passed
    raise AssertionError(f"{selector} was not reached by Tab; passed {passed}")


def test_a_keyboard_alone_signs_in_picks_a_counter_calls_serves_and_completes(browser, system):
    """A member of staff (no settings, no reports) at counter 2, with Tab, Enter, Space, Escape and one
    single-key shortcut; every control the focus lands on shows it."""
    status, made, _ = system.request("POST", "/api/v1/admin/users", {"username": "desk", "display_name": "Desk",
                                                                      "role": "staff", "branches": [1]}, auth=True)
    assert status == 201, made
    number = check_in(system)
    context = browser.new_context(locale="en-GB", viewport={"width": 1366, "height": 900})
    page = context.new_page()
    try:
        page.goto(system.base + "/staff/login")
        # autofocus is applied at a rendering update, which the load event does not wait for
        expect(page.locator("#username")).to_be_focused()
        assert focused(page)["id"] == "username"  # the form opens ready to type
        page.keyboard.type("desk")
        tab_to(page, "#password")
        page.keyboard.type(made["password"])
        tab_to(page, "button[type=submit]")
        with page.expect_navigation():
            page.keyboard.press("Enter")

        # The counter chooser: the skip link first, then straight into the page's content.
        assert tab_to(page, ".skip-link", limit=1)
        page.keyboard.press("Enter")
        passed = tab_to(page, "button[data-counter='2']")
        assert len(passed) == 2, passed  # the menu was skipped: counter 1, then counter 2
        with page.expect_navigation():
            page.keyboard.press("Enter")
        wait_until(page, "window.seedConsole && window.seedConsole.connected && window.seedConsole.fetches >= 1")

        tab_to(page, "#call-next-button")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        expect(page.locator("#current-number")).to_have_text(number)
        assert focused(page)["id"].startswith("start-")  # the next step has the focus

        # A no-show asks first; Escape keeps the ticket and gives the focus back to the button.
        no_show = tab_to(page, "#current-actions [data-action='no-show']")[-1]
        page.keyboard.press("Enter")
        expect(page.locator("#confirm-dialog")).to_be_visible()
        assert focused(page)["id"] == "confirm-dialog-no"
        tab_to(page, "#confirm-dialog-yes", limit=2, back=True)  # the focus stays inside the question
        page.keyboard.press("Escape")
        expect(page.locator("#confirm-dialog")).to_be_hidden()
        assert focused(page)["name"] == no_show
        expect(page.locator("#current-status")).to_have_text("called")

        tab_to(page, "#current-actions [data-action='start']", back=True)
        with page.expect_navigation():
            page.keyboard.press("Space")
        expect(page.locator("#current-status")).to_have_text("serving")
        assert focused(page)["id"].startswith("complete-")

        with page.expect_navigation():  # the single-key shortcut, once
            page.keyboard.press("c")
        expect(page.locator(".flash.ok")).to_contain_text(number)
        expect(page.locator("#current-number")).to_contain_text("No ticket")
        assert focused(page)["id"] == "call-next-button"  # ready for the next one
    finally:
        context.close()
