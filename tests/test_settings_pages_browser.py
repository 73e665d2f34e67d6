"""Every staff page (settings, the console and its neighbours, reports, signing in, the error pages) in
Chromium, in English, Japanese and Georgian: a screenshot of each lands in test-artifacts/settings/, the
boxes are measured (no label, button, heading or table cell overflows its box, no page scrolls sideways
at a laptop's width) and axe-core finds no accessibility violation of any impact (WCAG 2.x A/AA and
best practices, tests/axe.py).

The states that matter are walked as pages of their own: the console with a called ticket, a waiting and
a held ticket and today's appointment, its no-show question (the dialog, and the page the server asks
with when JS is off), the inbox with a conversation in Japanese, the outbox with texts, forms showing
their errors, a secret shown once. Folded parts (<details>) are opened before each page is checked.
test_every_staff_page_is_walked fails when a new HTML page under /staff, /admin or /reports (or the
home page, the display chooser, the virtual phone) is not in the walk."""
import json
import urllib.request
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Callable

import pytest
from playwright.sync_api import expect

from core.clock import ManualClock

from .axe import audit, describe
from .constants import START
from .live import ROOT, chromium, running_system, sign_in, wait_until

SHOTS = ROOT / "test-artifacts" / "settings"
LANGUAGES = {"en": "en-GB", "ja": "ja-JP", "ka": "ka-GE"}
VIEWPORT = {"width": 1366, "height": 900}
PHONE_JA = "+995555100200"  # a customer who checked in in Japanese and wrote to the branch
PHONE_UNKNOWN = "+995555900900"  # a number no branch knows yet
JAPANESE_QUESTION = "駐車場はありますか？"
JAPANESE_REPLY = "はい、建物の裏にございます。"


@dataclass
class Step:
    """One page of the walk: `path` (str.format'ed with the world's values), then `then(page, world)`
    to reach the state to check. `who`: the administrator, a staff member without settings
    ("clerk"), or nobody signed in."""
    name: str
    path: str
    then: Callable | None = None
    status: int = 200
    who: str = "admin"
    follows_language: bool = True  # the virtual phone is a developer's tool, in English only


def console_ready(page, world):
    wait_until(page, "window.seedConsole && window.seedConsole.connected && window.seedConsole.fetches >= 1")


def console_in_its_language(page, world):
    """The held ticket's badge too (a literal through a filter was once translated at compile time)."""
    console_ready(page, world)
    held = {"en": "on hold", "ja": "保留中", "ka": "შეჩერებული"}[page.locator("html").get_attribute("lang")]
    expect(page.locator("tr.held .badge")).to_have_text(held)


def no_show_dialog(page, world):
    console_ready(page, world)
    page.click("#current-actions [data-action='no-show']")
    expect(page.locator("#confirm-dialog")).to_be_visible()


def no_show_asked_by_the_server(page, world):
    """Without JS the server asks: the form goes without console.js's question (form.submit())."""
    console_ready(page, world)
    with page.expect_navigation():
        page.evaluate("document.querySelector('#current-actions form[data-confirm]').submit()")
    expect(page.locator("#confirm-step")).to_be_visible()


# Words in Japanese inside a page in another language carry lang="ja" (screen readers switch voice,
# browsers pick the glyphs): the Japanese words within `selector` (text, or a field's value) that do not.
WITHOUT_JA = """selector => {
  const japanese = /[\u3040-\u30ff\u4e00-\u9fff]/, found = [];
  const marked = el => (el.closest('[lang]') || {}).lang === 'ja';
  for (const root of document.querySelectorAll(selector)) {
    if ('value' in root && japanese.test(root.value) && !marked(root)) found.push(root.value.slice(0, 40));
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode())
      if (japanese.test(node.data) && !marked(node.parentElement)) found.push(node.data.trim().slice(0, 40));
  }
  return found;
}"""


def texts_loaded(page, world):
    wait_until(page, "document.querySelectorAll('#kind option').length > 0 && !!document.getElementById('body').value")
    assert page.evaluate(WITHOUT_JA, "#body, #preview") == []


def japanese_marked(page, world):
    bodies = page.locator(".thread .body")
    expect(bodies.first).to_contain_text(JAPANESE_QUESTION)
    assert page.evaluate(WITHOUT_JA, ".thread, h1") == []


def submit_empty(form: str, button: str = "button[type=submit]"):
    def then(page, world):
        page.evaluate("""form => { for (const el of document.querySelectorAll(form + ' input:not([type=hidden]):not([type=checkbox])'))
                                     el.value = ''; }""", form)
        with page.expect_navigation() as navigation:
            page.click(f"{form} {button}")
        return navigation.value
    return then


def passwords_that_differ(page, world):
    page.fill("#current_password", "not the password")
    page.fill("#new_password", "correct horse battery staple")
    page.fill("#repeat_password", "correct horse battery stable")
    with page.expect_navigation():
        page.click("#password button[type=submit]")
    expect(page.locator(".flash.error, .field-error").first).to_be_visible()


def create_token(page, world):
    page.fill("#name", f"walk {page.locator('html').get_attribute('lang')}")
    page.check("input[name=branches][value='1']")
    with page.expect_navigation():
        page.click("form button.primary")
    expect(page.locator("#secret")).to_be_visible()


def register_kiosk(form: str, name: str):
    def then(page, world):
        page.fill(f"{form} input[name=name]", f"{name} {page.locator('html').get_attribute('lang')}")
        with page.expect_navigation():
            page.click(f"{form} button.primary")
        expect(page.locator("#setup-link")).to_be_visible()
    return then


def reset_password(page, world):
    with page.expect_navigation():
        page.click("#confirm button[type=submit]")
    expect(page.locator("#new-password code")).to_be_visible()


def erase_asks_first(page, world):
    page.fill("#phone", PHONE_JA)
    with page.expect_navigation():
        page.click("#erase")
    expect(page.locator("#held")).to_be_visible()


def phone_opened(page, world):
    page.fill("#number", PHONE_JA)
    page.click("#pick button[type=submit]")
    expect(page.locator("#thread li").first).to_be_visible()
    assert page.evaluate(WITHOUT_JA, "#thread") == []


def reports_live(page, world):
    wait_until(page, "window.seedLive && window.seedLive.connected")


WALK = [
    Step("login-errors", "/staff/login", submit_empty("form"), status=400, who="nobody"),
    Step("not-found-signed-out", "/staff/nowhere", status=404, who="nobody"),
    Step("forbidden", "/admin/branches", status=403, who="clerk"),
    Step("home", "/"),
    Step("branches", "/admin/branches"),
    Step("branch-new", "/admin/branches/new"),
    Step("branch", "/admin/branches/1"),
    Step("services", "/admin/services?branch=1"),
    Step("service-new-errors", "/admin/services/new?branch=1", submit_empty("#service-form"), status=400),
    Step("service", "/admin/services/1"),
    Step("counters", "/admin/counters?branch=1"),
    Step("counter-new", "/admin/counters/new?branch=1"),
    Step("counter", "/admin/counters/1"),
    Step("users", "/admin/users"),
    Step("user-new", "/admin/users/new"),
    Step("user", "/admin/users/{clerk}"),
    Step("user-deactivate", "/admin/users/{clerk}/deactivate"),
    Step("user-reset", "/admin/users/{spare}/reset-password"),
    Step("user-new-password", "/admin/users/{spare}/reset-password", reset_password),
    Step("texts", "/admin/texts?branch=1"),
    Step("screens", "/admin/screens?branch=1&services=A&languages=ja,en&layout=split&rotate=12"),
    Step("screens-kiosk-registered", "/admin/screens?branch=1", register_kiosk("#register-kiosk", "Door")),
    Step("modem", "/admin/modem?branch=1"),
    Step("counter-chooser", "/staff/counter"),
    Step("console", "/staff/", console_in_its_language),
    Step("console-no-show-dialog", "/staff/", no_show_dialog),
    Step("console-no-show-asked", "/staff/", no_show_asked_by_the_server),
    Step("inbox", "/staff/inbox"),
    Step("conversation-ja", "/staff/inbox/{phone_ja}", japanese_marked),
    Step("conversation-unassigned", "/staff/inbox/{phone_unknown}"),
    Step("outbox", "/staff/outbox"),
    Step("audit", "/staff/audit"),
    Step("privacy", "/staff/privacy"),
    Step("privacy-erase-asks", "/staff/privacy", erase_asks_first),
    Step("templates", "/staff/admin/texts?branch=1&kind=welcome&language=ja", texts_loaded),
    Step("token-created", "/staff/admin/tokens", create_token),
    Step("api-reference", "/staff/api"),
    Step("kiosk-registered", "/staff/admin/kiosks", register_kiosk("form:has(#branch)", "Hall")),
    Step("account-errors", "/staff/password", passwords_that_differ),
    Step("reports", "/reports/?branch=1", reports_live),
    Step("reports-errors", "/reports/?branch=1&from=2026-02-30&to=yesterday", status=400),
    Step("reports-breakdown", "/reports/breakdown?branch=1"),
    Step("reports-staffing", "/reports/staffing?branch=1"),
    Step("display-chooser", "/display/"),
    Step("virtual-phone", "/virtual-phone", phone_opened, follows_language=False),
]

# Pages under the walked prefixes that are not HTML pages of their own, and why.
NOT_PAGES = {
    "admin.index": "redirects to the first settings page",
    "admin.screens_qr": "an SVG image (its page, Screens, is walked with one shown)",
    "staff.panel": "the console's live part: fetched into the console, audited there",
    "staff.audit_csv": "a CSV download",
    **{f"reports.{name}_csv": "a CSV download" for name in ("breakdown", "heatmap", "staffing", "summary", "texts", "tickets")},
}
# Pages another module walks the same way (its own states, its own server), by endpoint prefix.
WALKED_ELSEWHERE = {"staff.calendar": "tests/test_calendar.py: every calendar page in each language, with axe"}
WALKED_PREFIXES = ("/staff", "/admin", "/reports")
WALKED_PAGES = ("/", "/display/", "/virtual-phone")

# The boxes that hold words: each must hold all of its own (scrollWidth within clientWidth).
OVERFLOWS = """() => {
  const found = [];
  const words = 'label, button, th, td, h1, h2, h3, legend, .field-error, .hint, nav a, .flash, select, summary';
  for (const el of document.querySelectorAll(words)) {
    const style = getComputedStyle(el);
    if (style.display === 'inline' || style.display === 'none' || el.offsetParent === null) continue;
    if (el.closest('.visually-hidden')) continue;  // words for screen readers, in a 1 px box on purpose
    if (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1 && style.overflowY !== 'visible') {
      found.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} "${el.textContent.trim().slice(0, 40)}" ` +
                 `${el.scrollWidth}x${el.scrollHeight} in ${el.clientWidth}x${el.clientHeight}`);
    }
  }
  const sideways = document.documentElement.scrollWidth - window.innerWidth;
  if (sideways > 1) found.push(`the page scrolls sideways by ${sideways}px`);
  return found;
}"""


ZONES = ("Asia/Tbilisi", "Asia/Karachi", "Asia/Dhaka", "Asia/Bangkok", "Asia/Shanghai", "Asia/Tokyo", "Australia/Brisbane",
         "Pacific/Noumea", "Pacific/Auckland", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Pacific/Honolulu",
         "America/Anchorage", "America/Los_Angeles", "America/Denver", "America/Chicago", "America/New_York",
         "America/Halifax", "America/Sao_Paulo", "Atlantic/South_Georgia", "Atlantic/Azores", "Europe/London",
         "Europe/Berlin", "Europe/Istanbul")  # every hour of offset, from -11 to +14


def zone_near_noon() -> str:
    """A real time zone whose clock reads late morning now, so that today still has appointment slots
    ahead whenever the suite runs (the live server runs on the real clock)."""
    now = datetime.now(UTC)
    return next(zone for zone in ZONES if 9 <= now.astimezone(zoneinfo.ZoneInfo(zone)).hour < 13)


def call_api(system, method, path, payload=None):
    request = urllib.request.Request(system.base + path, method=method,
                                     data=json.dumps(payload).encode() if payload is not None else None,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {system.api_token()}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    zone = zone_near_noon()
    with running_system(tmp_path_factory.mktemp("settings"),
                        f'DEFAULT_COUNTRY = "GE"\nDEFAULT_TIMEZONE = "{zone}"\n') as running:
        running.zone = zoneinfo.ZoneInfo(zone)
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


def new_page(browser, locale="en-GB"):
    context = browser.new_context(locale=locale, viewport=VIEWPORT)
    return context, context.new_page()


@pytest.fixture(scope="module")
def world(system, browser):
    """The branch in the middle of a day: counter 1 has called A001, A002 waits, A003 is held, B001
    waits; an appointment later today; a customer wrote in Japanese and got an answer; a number no
    branch knows wrote too; a clerk (staff role) and a spare user exist."""
    every_day = {day: [["00:00", "23:59"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    call_api(system, "PUT", "/api/v1/admin/branches/1", {"opening_hours": every_day})
    tickets = [call_api(system, "POST", "/api/v1/checkins", data)["ticket"] for data in (
        {"branch": 1, "service": "A", "phone": PHONE_JA, "sms_consent": True, "name": "さくら", "language": "ja"},
        {"branch": 1, "service": "A"}, {"branch": 1, "service": "A"}, {"branch": 1, "service": "B", "language": "ka"})]
    call_api(system, "POST", f"/api/v1/tickets/{tickets[2]['id']}/hold", {})
    later = (datetime.now(system.zone) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    call_api(system, "POST", "/api/v1/appointments", {"branch": 1, "service": "B", "starts_at": later.isoformat(),
                                                       "phone": "+995555300400", "name": "Nino", "language": "ka"})
    clerk = call_api(system, "POST", "/api/v1/admin/users", {"username": "clerk", "display_name": "Clerk", "role": "staff",
                                                              "branches": [1]})
    spare = call_api(system, "POST", "/api/v1/admin/users", {"username": "spare", "display_name": "Spare", "role": "staff",
                                                              "branches": [1]})
    for number, text in ((PHONE_JA, JAPANESE_QUESTION), (PHONE_UNKNOWN, "Hello, is this the clinic?")):
        call_api(system, "POST", "/api/v1/virtual-phone/send", {"from": number, "text": text})

    context, page = new_page(browser)
    try:
        sign_in(page, system)
        page.click("button[data-counter='1']")
        page.wait_for_load_state("load")  # the console's socket connects and fetches its panel once
        wait_until(page, "window.seedConsole && window.seedConsole.connected && window.seedConsole.fetches >= 1")
        with page.expect_navigation():
            page.click("#call-next-button")
        expect(page.locator("#current-number")).to_have_text(tickets[0]["number"])
        for number in (PHONE_JA, PHONE_UNKNOWN):  # the gateway reads the texts from the modem
            for _ in range(100):
                if page.goto(f"{system.base}/staff/inbox/{number}").status == 200:
                    break
                page.wait_for_timeout(100)
        page.goto(f"{system.base}/staff/inbox/{PHONE_JA}")
        page.fill("#reply", JAPANESE_REPLY)
        with page.expect_navigation():
            page.click("form:has(#reply) button[type=submit]")
        expect(page.locator(".thread li.out").last).to_contain_text(JAPANESE_REPLY)
    finally:
        context.close()
    return {"clerk": clerk["user"]["id"], "clerk_password": clerk["password"], "spare": spare["user"]["id"],
            "phone_ja": PHONE_JA, "phone_unknown": PHONE_UNKNOWN}


def check(page, base, step, language, world) -> list[str]:
    """Go to the step's page and state; what is wrong with it."""
    response = page.goto(base + step.path.format(**world))
    if step.then:
        response = step.then(page, world) or response  # the page the state's form brought, if any
    status = response.status
    problems = [] if status == step.status else [f"status {status}, not {step.status}"]
    lang = page.locator("html").get_attribute("lang")
    if step.follows_language and lang != language:
        problems.append(f"the page is in {lang!r}, not {language!r}")
    page.evaluate("document.fonts.ready.then(() => true)")  # measure with the fonts the page shows
    page.evaluate("document.querySelectorAll('details').forEach(function (d) { d.open = true; })")
    page.screenshot(path=str(SHOTS / language / f"{step.name}.png"), full_page=True)
    problems += page.evaluate(OVERFLOWS)
    violations = audit(page)
    if violations:
        problems.append("axe:\n" + describe(violations))
    return problems


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_staff_page_in_each_language_fits_its_boxes_and_passes_axe(system, browser, world, language):
    (SHOTS / language).mkdir(parents=True, exist_ok=True)
    pages, contexts = {}, []
    for who in ("admin", "clerk", "nobody"):
        context, page = new_page(browser, LANGUAGES[language])
        contexts.append(context)
        if who != "nobody":
            sign_in(page, system, who, world["clerk_password"] if who == "clerk" else None)
        pages[who] = page
    problems = {}
    try:
        pages["admin"].click("button[data-counter='1']")  # sign_in lands on the counter chooser
        pages["admin"].wait_for_url("**/staff/")
        for step in WALK:
            try:
                found = check(pages[step.who], system.base, step, language, world)
            except Exception as error:  # noqa: BLE001  (a page that cannot reach its state: walk on, report all)
                found = [f"{type(error).__name__}: {error}"]
            if found:
                problems[step.name] = found
    finally:
        for context in contexts:
            context.close()
    assert problems == {}, "\n".join(f"{name}: " + "\n  ".join(found) for name, found in problems.items())


def test_every_staff_page_is_walked(tmp_path):
    """Each GET route under /staff, /admin and /reports (and the home page, the display chooser, the
    virtual phone) is a page of the walk above or says why it is not a page."""
    from .conftest import build_app

    app = build_app("sqlite://", ManualClock(START), tmp_path)
    adapter = app.url_map.bind("localhost")
    sample = {"clerk": 2, "spare": 3, "phone_ja": PHONE_JA, "phone_unknown": PHONE_UNKNOWN}
    walked = {adapter.match(step.path.format(**sample).split("?")[0], method="GET")[0] for step in WALK if step.status != 404}
    pages = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in rule.methods
             and (rule.rule.startswith(WALKED_PREFIXES) or rule.rule in WALKED_PAGES) and not rule.endpoint.endswith("static")}
    elsewhere = {page for page in pages if page.startswith(tuple(WALKED_ELSEWHERE))}
    assert pages - walked - set(NOT_PAGES) - elsewhere == set(), "add these pages to WALK in tests/test_settings_pages_browser.py"
    assert set(NOT_PAGES) <= pages, "NOT_PAGES names a route that is gone"


def test_the_checks_find_an_overflowing_label_and_a_nameless_button(system, browser):
    """The measurement and the audit can fail: a label squeezed into 30 px is reported, and so is a
    button with no name."""
    context, page = new_page(browser)
    try:
        sign_in(page, system)
        page.goto(system.base + "/admin/branches/1")
        page.evaluate("""() => { const label = document.querySelector('label');
                                 label.style.display = 'block'; label.style.width = '30px';
                                 label.style.overflow = 'hidden'; label.style.whiteSpace = 'nowrap';
                                 label.textContent = 'A label with far too many words for thirty pixels';
                                 document.querySelector('main').appendChild(document.createElement('button')); }""")
        assert any("far too many words" in problem for problem in page.evaluate(OVERFLOWS))
        assert "button-name" in {v["id"] for v in audit(page)}
    finally:
        context.close()
