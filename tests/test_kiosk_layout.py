"""The kiosk fills the screen it is on, in Chromium against `python run.py`, at a 1080×1920
portrait kiosk, a 1920×1080 landscape one, a 768×1024 tablet and a 360×740 phone. Measured from
element boxes: the content reaches the bottom of the screen (the old layout used the top half), no
text runs out of its box or is clipped, no label wraps beyond two lines, nothing scrolls sideways,
every button is a touch target. And the phone number shown back as it is typed, in the branch's
national format.

Here: the measure (and a test that it catches what it looks for), the pass that screenshots,
measures and audits a page state at each size (`Pass`), and a busy branch's screens. Every kiosk
step in en, ja and ka, with its errors and the idle warning, goes through the pass in
tests/test_customer_accessibility.py (one walk for the screenshots, the boxes and axe).
Screenshots: test-artifacts/kiosk/<language>/<width>x<height>-<screen>.png."""
import re

import pytest
from playwright.sync_api import expect

from .axe import audit, describe
from .live import ROOT, chromium, running_system

ARTIFACTS = ROOT / "test-artifacts"
VIEWPORTS = [(1080, 1920), (1920, 1080), (768, 1024), (360, 740)]
KIOSKS = {(1080, 1920), (1920, 1080)}  # a kiosk's screen: bigger targets, and the whole screen fits
PHONE = (360, 740)  # a phone may scroll down; nothing else may

# What the page is measured by: the visible controls and texts, each one's box and its text's box.
MEASURE_JS = """
() => {
  const vw = document.documentElement.clientWidth, vh = window.innerHeight;
  const shown = n => {
    if (n.closest("[hidden]")) return false;
    const r = n.getBoundingClientRect(), s = getComputedStyle(n);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none";
  };
  const name = n => n.tagName.toLowerCase() + (n.id ? "#" + n.id : "") + (n.className ? "." + n.className : "")
    + ' "' + (n.value || n.textContent).trim().replace(/\\s+/g, " ").slice(0, 40) + '"';
  const texts = [...document.querySelectorAll(
    "header button, header .branch-name, main :is(button, label, h1, h2, p, dt, dd, figcaption, input), .idle-box :is(h2, p, button)")]
    .filter(shown);
  const problems = [];
  // Lines of text in a node: the distinct bottoms of its text's line boxes.
  const lines = n => {
    const words = document.createRange();
    words.selectNodeContents(n);
    return new Set([...words.getClientRects()].filter(l => l.width > 0).map(l => Math.round(l.bottom))).size;
  };
  // Labels and headings say a few words: two lines at most (sentences, like the consent, may run on).
  const labels = "label, h1, h2, dt, dd, .branch-name, .ticket-number, .ticket-service, .phone-typed, .phone-display";
  for (const n of texts) {
    const r = n.getBoundingClientRect(), parent = n.parentElement.getBoundingClientRect();
    if (n.scrollWidth > n.clientWidth + 1) problems.push(`text wider than its box (${n.scrollWidth} > ${n.clientWidth}): ${name(n)}`);
    for (let a = n.parentElement; a && a !== document.body; a = a.parentElement) {  // cut off by a box that clips
      const s = getComputedStyle(a);
      if (s.overflowX === "visible" && s.overflowY === "visible") continue;
      const box = a.getBoundingClientRect();
      if (r.top < box.top - 1 || r.bottom > box.bottom + 1 || r.left < box.left - 1 || r.right > box.right + 1)
        problems.push(`clipped by ${name(a).slice(0, 40)}: ${name(n)}`);
      break;
    }
    if (n.matches(labels) && lines(n) > 2) problems.push(`text in ${lines(n)} lines: ${name(n)}`);
    if (n.tagName === "BUTTON" && n.textContent.trim()) {
      // A button's height is the layout's, not its text's: its text must stay inside, in two lines at most.
      const range = document.createRange();
      range.selectNodeContents(n);
      const text = range.getBoundingClientRect();
      if (text.top < r.top - 1 || text.bottom > r.bottom + 1)
        problems.push(`text taller than its button (${Math.round(text.height)} > ${Math.round(r.height)}): ${name(n)}`);
      for (const part of n.children.length ? [...n.children] : [n])  // a paused service: its name, its note
        if (lines(part) > 2) problems.push(`text in ${lines(part)} lines: ${name(part)} in ${name(n)}`);
    }
    if (r.left < -0.5 || r.right > vw + 0.5) problems.push(`outside the screen (${Math.round(r.left)}..${Math.round(r.right)} of ${vw}): ${name(n)}`);
    if (r.left < parent.left - 1 || r.right > parent.right + 1)
      problems.push(`sticks out of its container (${Math.round(r.left)}..${Math.round(r.right)} in ${Math.round(parent.left)}..${Math.round(parent.right)}): ${name(n)}`);
  }
  const buttons = texts.filter(n => n.tagName === "BUTTON").map(n => {
    const r = n.getBoundingClientRect();
    return {name: name(n), width: r.width, height: r.height};
  });
  // The content's extent: from the top of the bar to the lowest control or text on screen.
  const content = [...document.querySelectorAll("header"), ...texts.filter(n => n.tagName === "BUTTON" || n.tagName === "INPUT"
    || n.textContent.trim()), ...[...document.querySelectorAll("main img")].filter(shown)];
  const top = Math.min(...content.map(n => n.getBoundingClientRect().top));
  const bottom = Math.max(...content.map(n => n.getBoundingClientRect().bottom));
  return {problems, buttons, coverage: (Math.min(bottom, vh) - Math.max(top, 0)) / vh,
          sideways: document.documentElement.scrollWidth - document.documentElement.clientWidth,
          below: document.documentElement.scrollHeight - vh};
}
"""


def layout_problems(page, width: int, height: int, fills_screen: bool = True) -> list[str]:
    """What is wrong with the screen as it stands, in words (none: it is right). `fills_screen`:
    a kiosk's screen, whose content reaches the bottom and no further; a page (the status page)
    may end short or scroll down."""
    measured = page.evaluate(MEASURE_JS)
    problems = list(measured["problems"])
    if fills_screen and measured["coverage"] < 0.85:
        problems.append(f"the content covers {measured['coverage']:.0%} of the screen's height (at least 85%)")
    if measured["sideways"] > 0:
        problems.append(f"the page scrolls sideways by {measured['sideways']} px")
    if fills_screen and (width, height) != PHONE and measured["below"] > 0:
        problems.append(f"the page scrolls down by {measured['below']} px")
    smallest = 64 if (width, height) in KIOSKS else 48
    for button in measured["buttons"]:
        if button["height"] < smallest or button["width"] < 48:
            problems.append(f"button {button['width']:.0f}×{button['height']:.0f} px, under {smallest} px: {button['name']}")
    return problems


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    config = ('DEFAULT_COUNTRY = "GB"\nKIOSK_IDLE_SECONDS = 600\nKIOSK_TICKET_SECONDS = 600\n'
              'KIOSK_RATE_LIMIT = "1000 per minute"\nKIOSK_PHONE_CHECK_LIMIT = "1000 per minute"\n')
    with running_system(tmp_path_factory.mktemp("kiosk-layout"), config) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


# A busier branch: seven services, one paused, with names as long as real ones get.
SERVICES = [
    {"en": "Passports and ID cards", "ja": "旅券・身分証明書", "ka": "პასპორტები და პირადობის მოწმობები"},
    {"en": "Driving licences", "ja": "運転免許", "ka": "მართვის მოწმობები"},
    {"en": "Birth and marriage certificates", "ja": "出生・婚姻の証明書", "ka": "დაბადებისა და ქორწინების მოწმობები"},
    {"en": "Property registration", "ja": "不動産登記", "ka": "უძრავი ქონების რეგისტრაცია"},
    {"en": "Pensions and social assistance", "ja": "年金・福祉のご相談", "ka": "პენსიები და სოციალური დახმარება"},
    {"en": "Business registration", "ja": "法人登記", "ka": "ბიზნესის რეგისტრაცია"},
    {"en": "Payments", "ja": "お支払い", "ka": "გადახდები"},
]


class Pass:
    """A page's pass in one language: check(state) screenshots it (test-artifacts/<name>/<language>/
    <width>x<height>-<state>.png), measures its boxes (`measure(page, width, height)`: problems in
    words) and audits it with axe-core, at each size; what is wrong is kept in `found`. The page's
    context must bypass the Content-Security-Policy (`bypass_csp=True`): axe is injected as a script."""

    def __init__(self, page, name: str, language: str, sizes, measure):
        self.page, self.name, self.language, self.sizes, self.measure = page, name, language, sizes, measure
        self.folder = ARTIFACTS / name / language
        self.folder.mkdir(parents=True, exist_ok=True)
        self.found: list[str] = []

    def check(self, state: str):
        page = self.page
        assert page.evaluate("document.documentElement.lang") == self.language, state
        for width, height in self.sizes:
            page.set_viewport_size({"width": width, "height": height})
            settle(page)
            page.screenshot(path=str(self.folder / f"{width}x{height}-{state}.png"), full_page=True)
            where = f"{self.name} {self.language} {width}x{height} {state}"
            self.found.extend(f"{where}: {problem}" for problem in self.measure(page, width, height))
            violations = audit(page)
            if violations:
                self.found.append(f"{where}: axe:\n{describe(violations)}")
        page.set_viewport_size({"width": self.sizes[0][0], "height": self.sizes[0][1]})

    def assert_clean(self):
        assert not self.found, "\n".join(self.found)


def settle(page):
    """Laid out again at a new size, with the fonts in: two frames after the fonts are ready (the
    pages measure themselves on resize and font load)."""
    page.evaluate("window.scrollTo(0, 0); document.fonts.ready.then(() => new Promise(done => "
                  "requestAnimationFrame(() => requestAnimationFrame(done))))")


def kiosk_measure(page, width, height):
    return layout_problems(page, width, height)


@pytest.fixture(scope="module")
def busy_branch(system):
    status, branch, _ = system.request("POST", "/api/v1/admin/branches", {
        "name": "Rustavi Public Service Hall", "timezone": "Asia/Tbilisi", "country": "GE", "language": "ka",
        "languages": ["ka", "en", "ja"]}, auth=True)
    assert status == 201, branch
    for code, names in zip("ABCDEFG", SERVICES):
        status, made, _ = system.request("POST", "/api/v1/admin/services", {
            "branch": branch["id"], "code": code, "names": names, "active": code != "F"}, auth=True)
        assert status == 201, made
    return branch["id"]


@pytest.mark.parametrize("language", ["en", "ja", "ka"])
def test_many_services_with_long_names_fit(system, browser, busy_branch, language):
    context = browser.new_context(bypass_csp=True, viewport={"width": 1080, "height": 1920})
    page = context.new_page()
    walk = Pass(page, "kiosk", language, VIEWPORTS, kiosk_measure)
    page.goto(system.base + f"/kiosk/{busy_branch}")
    page.click(f"[data-pick-language={language}]")
    expect(page.locator("#step-start")).to_be_visible()
    walk.check("2-start-busy")
    page.click("#walk-in")
    expect(page.locator("[data-service=G]")).to_have_text(re.compile(SERVICES[6][language]))
    expect(page.locator("[data-service=F]")).to_be_disabled()
    walk.check("3-service-busy")
    context.close()
    walk.assert_clean()


def test_the_measure_catches_what_it_looks_for(system, browser):
    """Each check fails on a page that breaks it: text running out of its box, a page wider than the
    screen, a small button, and the old layout's content in the top of the screen only."""
    page = browser.new_page(viewport={"width": 1080, "height": 1920})
    page.goto(system.base + "/kiosk/1")
    expect(page.locator("#step-language")).to_be_visible()
    assert layout_problems(page, 1080, 1920) == []

    # CSSOM changes (not style attributes): the page's Content-Security-Policy allows them.
    page.evaluate("""() => {
      const long = document.createElement("p");
      long.id = "injected-long";
      long.textContent = "ჩაწერილივიზიტებისრეგისტრაციისგვერდი".repeat(3);
      long.style.whiteSpace = "nowrap";
      const wide = document.createElement("h2");
      wide.id = "injected-wide";
      wide.textContent = "wide";
      wide.style.width = "1500px";
      document.querySelector("#step-language h1").after(long, wide);
    }""")
    problems = layout_problems(page, 1080, 1920)
    assert any("text wider than its box" in p and "injected-long" in p for p in problems), problems
    assert any("sticks out of its container" in p and "injected-wide" in p for p in problems), problems
    assert any("outside the screen" in p and "injected-wide" in p for p in problems), problems
    assert any("scrolls sideways" in p for p in problems), problems
    page.evaluate("['injected-long', 'injected-wide'].forEach(id => document.getElementById(id).remove())")

    page.evaluate("""() => {
      const tight = document.createElement("button");
      tight.id = "injected-tight";
      tight.textContent = "საქართველოს";
      tight.style.height = "24px"; tight.style.minHeight = "0"; tight.style.width = "60px"; tight.style.whiteSpace = "nowrap";
      const narrow = document.createElement("button");
      narrow.id = "injected-narrow";
      narrow.textContent = "one two three four";
      narrow.style.width = "100px";
      document.querySelector("#step-language h1").after(tight, narrow);
    }""")
    problems = layout_problems(page, 1080, 1920)
    assert any("under 64 px" in p and "injected-tight" in p for p in problems), problems
    assert any("text wider than its box" in p and "injected-tight" in p for p in problems), problems
    assert any("text taller than its button" in p and "injected-tight" in p for p in problems), problems
    assert any("lines" in p and "injected-narrow" in p for p in problems), problems
    assert not any("injected-narrow" in p and "lines" not in p for p in problems), problems
    page.evaluate("['injected-tight', 'injected-narrow'].forEach(id => document.getElementById(id).remove())")
    assert layout_problems(page, 1080, 1920) == []

    page.evaluate("document.body.style.display = 'block'")  # the main area no longer grows: the old top half
    problems = layout_problems(page, 1080, 1920)
    assert any("of the screen's height" in p for p in problems), problems
    page.close()


def test_the_number_shows_in_the_national_format_as_it_is_typed(system, browser):
    """A GB branch by the keypad, a Japanese one (made through the admin API) by the keyboard; the
    keypad's backspace and clear work, and the number shown follows."""
    status, tokyo, _ = system.request("POST", "/api/v1/admin/branches", {
        "name": "Tokyo", "timezone": "Asia/Tokyo", "country": "JP", "language": "ja", "languages": ["ja", "en"]},
        auth=True)
    assert status == 201, tokyo
    status, service, _ = system.request("POST", "/api/v1/admin/services", {
        "branch": tokyo["id"], "code": "A", "names": {"en": "General", "ja": "総合窓口"}}, auth=True)
    assert status == 201, service

    page = browser.new_page(viewport={"width": 1080, "height": 1920})
    page.goto(system.base + "/kiosk/1")
    page.click("[data-pick-language=en]")
    page.click("#walk-in")
    page.click("[data-service=A]")
    shown = page.locator("#phone-typed")
    expect(shown).to_have_text("")
    for key in "07700900123":
        page.click(f"#keypad [data-key='{key}']")
    expect(shown).to_have_text("07700 900123")
    assert page.input_value("#phone") == "07700900123"
    page.click("#keypad [data-key='⌫']")
    assert page.input_value("#phone") == "0770090012"
    expect(shown).to_have_text("07700 90012")
    page.click("#keypad [data-key='clear']")
    assert page.input_value("#phone") == ""
    expect(shown).to_have_text("")
    page.close()

    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(system.base + f"/kiosk/{tokyo['id']}")
    page.click("[data-pick-language=ja]")
    page.click("#walk-in")
    page.click("[data-service=A]")
    expect(page.locator("#phone")).to_be_focused()
    page.keyboard.type("09012345678", delay=30)
    expect(page.locator("#phone-typed")).to_have_text("090-1234-5678")
    page.click("#phone-next")
    expect(page.locator("#phone-display")).to_have_text("090-1234-5678")  # the next screen says the same
    page.close()
