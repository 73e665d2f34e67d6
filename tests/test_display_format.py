"""The display reads well in every language: the clock and the date in the language shown and the
branch's time zone, phrases whole from the catalogue (the language puts the number), the review's
Georgian heading, labels that fit their boxes, and never an empty screen.

The browser tests run `python run.py` and Chromium; screenshots go to test-artifacts/display/.
The measure of the boxes (MEASURE) is here, with a test that it catches what it looks for; every
layout, size, language and state goes through it (with screenshots and axe) in
tests/test_customer_accessibility.py."""
import json
import re
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from playwright.sync_api import expect, sync_playwright

from core import models
from core.extensions import db
from display import routes, wallclock

from .live import CHROMIUM_FLAGS, ROOT, RunningSystem, chromium_path, wait_until
from .test_kiosk_layout import settle

SHOTS = ROOT / "test-artifacts" / "display"
TOKYO = "Asia/Tokyo"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# Long names, as a city office names its services (the column allows 80 characters).
LONG_NAMES = {
    "en": "Certificates, residence registration and certification of documents",
    "ja": "住民票の写し・印鑑登録証明書・戸籍関係の証明書の交付",
    "ka": "სამოქალაქო რეესტრის ცნობების გაცემა და დოკუმენტების დამოწმება",
}
SECOND_NAMES = {"en": "Appointments and enquiries by telephone", "ja": "予約の方・お電話でのお問い合わせ",
                "ka": "წინასწარ ჩაწერილი ვიზიტები და სატელეფონო მიმართვები"}


def Branch(zone: str) -> models.Branch:
    """A branch in `zone`, never stored: the clock needs only its time zone."""
    return models.Branch(name="Minato", timezone=zone)


def fill(template: str, values: dict) -> str:
    """display.js's format(), in Python."""
    return PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "")), template)


def filled_by_page_rules(moment: datetime, zone: str, language: str) -> dict:
    """The clock as display.js writes it from wallclock.formats: numbers on the branch's clock."""
    local = moment.astimezone(Branch(zone).zone)
    clock = wallclock.formats(language)
    values = {"H": local.hour, "HH": f"{local.hour:02}", "m": local.minute, "mm": f"{local.minute:02}",
              "d": local.day, "dd": f"{local.day:02}", "M": local.month, "MM": f"{local.month:02}", "y": local.year,
              "weekday": (clock["weekdays"] or [""] * 7)[local.weekday()],
              "month": (clock["months"] or [""] * 12)[local.month - 1]}
    return {"time": fill(clock["time"], values), "date": fill(clock["date"], values)}


# --- the clock's formats (no browser) --------------------------------------------------------------

AFTERNOON = datetime(2026, 11, 29, 5, 5, tzinfo=timezone.utc)  # 14:05 on Sunday 29 November in Tokyo


@pytest.mark.parametrize("language, time, date", [
    ("en", "14:05", "Sunday 29 November"),
    ("ja", "14:05", "11月29日(日)"),
    ("ka", "14:05", "კვირა, 29 ნოემბერი"),
])
def test_the_clock_is_written_in_each_language_on_the_branchs_clock(language, time, date):
    assert wallclock.written(AFTERNOON, Branch(TOKYO), language) == {"time": time, "date": date}
    assert filled_by_page_rules(AFTERNOON, TOKYO, language) == {"time": time, "date": date}


@pytest.mark.parametrize("language", ["en", "ja", "ka"])
def test_what_the_page_fills_in_matches_babel_through_a_year(language):
    # Every day of a year at a morning hour (one digit), at noon and just before midnight, in a zone
    # with summer time: the page's template and names give exactly what Babel writes.
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for day in range(0, 366, 3):
        for hour, minute in ((0, 0), (9, 5), (12, 0), (23, 59)):
            moment = start + timedelta(days=day, hours=hour, minutes=minute)
            for zone in (TOKYO, "America/New_York", "Asia/Tbilisi"):
                assert filled_by_page_rules(moment, zone, language) == wallclock.written(moment, Branch(zone), language)
    assert "PM" not in json.dumps(wallclock.formats(language)) and "%(H" in wallclock.formats(language)["time"]


def test_a_pattern_the_page_cannot_fill_is_refused():
    from babel import Locale

    with pytest.raises(ValueError):
        wallclock._template("h:mm a", Locale.parse("en"), {})  # a 12-hour clock has no place on the wall


def test_the_page_arrives_with_the_branchs_time_in_its_first_language(client, setup, clock):
    branch = setup[0]
    branch.timezone = TOKYO
    db.session.commit()
    clock.set(AFTERNOON)
    page = client.get(f"/display/{branch.id}?languages=ja,en").text
    assert re.search(r'<time id="clock"[^>]*>14:05</time>', page)
    assert '<span id="date" class="date">11月29日(日)</span>' in page
    assert '<span id="idle-clock" class="idle-clock" aria-hidden="true">14:05</span>' in page


# --- whole phrases ------------------------------------------------------------------------------------

def page_words(page_text: str) -> dict:
    return json.loads(re.search(r'id="display-strings"[^>]*>(.*?)</script>', page_text, re.S).group(1))


def test_phrases_with_numbers_are_whole_catalogue_strings(client, setup):
    words = page_words(client.get(f"/display/{setup[0].id}?languages=en,ja,ka").text)
    assert words["en"]["counter"] == "Counter %(counter)s"
    assert words["en"]["serving"] == "%(ticket)s → counter %(counter)s"
    assert words["en"]["queue"] == "%(count)s waiting, about %(minutes)s min"
    assert words["en"]["name"] == "%(name)s"
    needs = {"counter": {"counter"}, "serving": {"ticket", "counter"}, "queue": {"count", "minutes"},
             "name": {"name"}, "speech": {"ticket", "counter"}}
    for language in ("en", "ja", "ka"):
        for key, names in needs.items():  # every language keeps every number, wherever it puts it
            assert set(PLACEHOLDER.findall(words[language][key])) == names, (language, key)
        # The short words that were glued to numbers are gone from the page.
        assert not {"people", "minutes", "ticket"} & set(words[language])


def test_the_heading_over_a_call_says_called_in_georgian(client, setup):
    """The language review (2026-11-29): "ახლა ემსახურება" ("now serves him") is an incomplete phrase;
    the heading over the number just called reads "ახლა გამოძახებულია" ("now called")."""
    words = page_words(client.get(f"/display/{setup[0].id}?languages=en,ja,ka").text)
    assert [words[language]["now_serving"] for language in ("en", "ja", "ka")] == [
        "Now serving", "ただいまの呼び出し", "ახლა გამოძახებულია"]


def test_every_word_of_the_display_goes_through_the_catalogue(app):
    """Each text the page is given is a msgid pybabel extracts (with its context), so the
    translators see it; nothing is written in the code's own words."""
    found = {(context, message) for _line, message, _comments, context
             in extract_from_file("python", str(Path(routes.__file__)))}
    with app.test_request_context():
        words = routes._strings("en")
    contexts = {"counter": "display", "serving": "display", "queue": "display", "name": "display: a customer's name",
                "now_serving": "display"}
    for key, text in words.items():
        if key == "clock":
            continue
        assert (contexts.get(key), text) in found, key


def test_display_js_glues_no_word_to_a_number():
    script = (ROOT / "display" / "static" / "display.js").read_text()
    # t("…") joined to anything with + is a phrase made in JavaScript.
    assert not re.search(r't\("\w+"\)\s*\+|\+\s*t\("\w+"\)', script)
    assert not re.search(r'" → "|" · "', script)


# --- Chromium on the real system ---------------------------------------------------------------------

def put(system, path, payload):
    request = urllib.request.Request(system.base + path, data=json.dumps(payload).encode(), method="PUT")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {system.api_token()}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def issue(system, service="A"):
    status, body, _ = system.request("POST", "/api/v1/tickets", {"service": service}, auth=True)
    assert status == 201, body
    return body["ticket"]


def call(system, counter):
    status, body, _ = system.request("POST", f"/api/v1/counters/{counter}/call-next", auth=True)
    assert status == 200, body
    return body["ticket"]


@pytest.fixture(scope="module")
def tokyo(tmp_path_factory):
    """A branch in Tokyo offering en, ja and ka, with long service names in each."""
    system = RunningSystem(tmp_path_factory.mktemp("tokyo") / "instance").start()
    try:
        put(system, "/api/v1/admin/branches/1", {"timezone": TOKYO, "languages": ["en", "ja", "ka"],
                                                  "name": "Minato Central Clinic, Shibaura annex"})
        put(system, "/api/v1/admin/services/1", {"names": LONG_NAMES})
        put(system, "/api/v1/admin/services/2", {"names": SECOND_NAMES})
        yield system
    finally:
        system.stop()


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module. A page answered by a test's route (the catalogue swap below)
    counts as a public one, which Chromium keeps off 127.0.0.1's socket without this flag."""
    with sync_playwright() as playwright:
        opened = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                            args=[*CHROMIUM_FLAGS, "--disable-features=LocalNetworkAccessChecks"])
        yield opened
        opened.close()


def new_york(browser, width=1920, height=1080):
    """A screen whose browser speaks US English and lives in New York."""
    return browser.new_context(locale="en-US", timezone_id="America/New_York", viewport={"width": width, "height": height})


def shown_clock(page) -> dict:
    return page.evaluate("({time: document.getElementById('clock').textContent,"
                         " date: document.getElementById('date').textContent,"
                         " idle: document.getElementById('idle-clock').textContent})")


def expected_now(language) -> list[dict]:
    """The Tokyo clock now and a moment ago (a minute may turn between the two reads)."""
    now = datetime.now(timezone.utc)
    return [wallclock.written(moment, Branch(TOKYO), language) for moment in (now, now - timedelta(seconds=5))]


def expected_at(page_ms: float, language) -> list[dict]:
    """The Tokyo clock at the page's own time (its clock may have been moved on) and a moment before."""
    moment = datetime.fromtimestamp(page_ms / 1000, timezone.utc)
    return [wallclock.written(at, Branch(TOKYO), language) for at in (moment, moment - timedelta(seconds=2))]


def test_each_rotating_language_shows_tokyo_time_in_its_own_format(tokyo, browser):
    context = new_york(browser)
    page = context.new_page()
    assert page.evaluate("new Date().toLocaleTimeString()").endswith(("AM", "PM"))  # the screen's own habits
    page.clock.install()  # the page's time runs as usual; each turn of the languages is jumped to
    page.goto(tokyo.base + "/display/1?languages=en,ja,ka&rotate=10")
    wait_until(page, "window.seedDisplay && window.seedDisplay.snapshots > 0")
    for turn, language in enumerate(("en", "ja", "ka")):
        if turn:
            page.clock.fast_forward(10_000)
        wait_until(page, f"document.documentElement.lang === '{language}'")
        shown = shown_clock(page)
        expected = expected_at(page.evaluate("Date.now()"), language)
        assert {"time": shown["time"], "date": shown["date"]} in expected, (language, shown)
        assert shown["idle"] == shown["time"]
        assert not re.search(r"AM|PM|午前|午後", shown["time"])
        page.screenshot(path=str(SHOTS / f"clock-{language}.png"))
    context.close()


def test_japanese_screen_in_an_english_browser(tokyo, browser):
    context = new_york(browser)
    page = context.new_page()
    page.goto(tokyo.base + "/display/1?languages=ja")
    wait_until(page, "window.seedDisplay && window.seedDisplay.snapshots > 0")
    shown = shown_clock(page)
    assert re.fullmatch(r"\d{1,2}:\d{2}", shown["time"]) and re.fullmatch(r"\d{1,2}月\d{1,2}日\([日月火水木金土]\)", shown["date"])
    assert {"time": shown["time"], "date": shown["date"]} in expected_now("ja")
    context.close()


def test_the_catalogue_puts_the_number_where_the_language_wants_it(busy, browser):
    """The page fills whatever order the catalogue gives: a Japanese-style "3番窓口" from a
    template with the number first (here swapped in on the way to the browser)."""
    context = new_york(browser)
    page = context.new_page()

    def swap(route):
        response = route.fetch()
        body = response.text().replace('"Counter %(counter)s"', '"%(counter)s番窓口"')
        route.fulfill(response=response, body=body)

    page.route(re.compile(r".*/display/1\?.*"), swap)
    page.goto(busy.base + "/display/1?languages=en")
    wait_until(page, "window.seedDisplay && window.seedDisplay.snapshots > 0")
    latest = page.evaluate("window.seedDisplay.state.recent[0]")
    expect(page.locator("#now-number")).to_have_text(latest["number"])
    expect(page.locator("#now-counter")).to_have_text(latest["counter"])
    expect(page.locator("#now-where")).to_have_text(f"{latest['counter']}番窓口")
    expect(page.locator("#recent li .where").first).to_have_text(re.compile(r"^\d+番窓口$"))
    serving = page.evaluate("window.seedDisplay.state.serving[0]")
    expect(page.locator("#serving li").first).to_have_text(f"{serving['number']} → counter {serving['counter']}")
    context.close()


MEASURE = """() => {
  const problems = [];
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length)
                          && getComputedStyle(el).visibility !== 'hidden';
  const name = (el) => el.id ? '#' + el.id : el.tagName.toLowerCase() + '.' + (el.className || '') +
                       ' "' + (el.textContent || '').trim().slice(0, 40) + '"';
  const inside = (inner, outer) => inner.left >= outer.left - 1 && inner.top >= outer.top - 1 &&
                                   inner.right <= outer.right + 1 && inner.bottom <= outer.bottom + 1;
  const screen = {left: 0, top: 0, right: innerWidth, bottom: innerHeight};
  const labels = 'header > *, header .when > *, section, h1, h2, .now-ticket > *, .idle > *, #serving li, ' +
                 '#recent li, #recent li > span, #services li, #services li > span';
  for (const el of document.querySelectorAll(labels)) {
    if (!visible(el)) continue;
    const box = el.getBoundingClientRect();
    if (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1)
      problems.push(name(el) + ' overflows: ' + el.scrollWidth + 'x' + el.scrollHeight + ' in ' + el.clientWidth + 'x' + el.clientHeight);
    if (!inside(box, screen)) problems.push(name(el) + ' leaves the screen');
    const section = el.closest('section');
    if (section && section !== el && !inside(box, section.getBoundingClientRect())) problems.push(name(el) + ' leaves its panel');
  }
  // No label wraps beyond two lines.
  const lined = 'h1, h2, header > *, .now-ticket .counter, .nobody, .idle-date, .idle-branch, #serving li, ' +
                '#recent li > span, .service-name, .service-wait';
  for (const el of document.querySelectorAll(lined)) {
    if (!visible(el)) continue;
    const style = getComputedStyle(el);
    const height = el.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    const lines = Math.round(height / parseFloat(style.lineHeight));
    if (lines > 2) problems.push(name(el) + ' takes ' + lines + ' lines');
  }
  return problems;
}"""


@pytest.fixture(scope="module")
def busy(tokyo):
    """A busy morning: every counter has called three times, earlier calls fill the list, both
    queues are long."""
    current = {}
    for _ in range(3):
        for _ in range(2):
            issue(tokyo, "A")
            issue(tokyo, "B")
        for counter in (1, 2, 3):
            if counter in current:
                status, body, _ = tokyo.request("POST", f"/api/v1/tickets/{current[counter]}/complete", auth=True)
                assert status == 200, body
            current[counter] = call(tokyo, counter)["id"]
    for _ in range(12):
        issue(tokyo, "A")
        issue(tokyo, "B")
    return tokyo


def test_the_measure_catches_what_it_looks_for(busy, browser):
    """MEASURE (which tests/test_customer_accessibility.py runs on every layout, size, language and
    state) finds a label running out of its box, one leaving its panel and the screen, and one
    wrapped beyond two lines; and nothing on the page as it is."""
    context = new_york(browser, 1080, 1920)
    page = context.new_page()
    page.goto(busy.base + "/display/1?languages=ka")
    wait_until(page, "window.seedDisplay && window.seedDisplay.snapshots > 0")
    # The first snapshot's labels call for the bundled fonts, which arrive after it (font-display:
    # swap) and have display.js fit the labels again: measured with them in, as the Pass measures.
    settle(page)
    assert page.evaluate(MEASURE) == []
    # CSSOM changes (not style attributes): the page's Content-Security-Policy allows them.
    page.evaluate("""() => {
      const wide = document.querySelector('#recent li:not([hidden]) .where');
      wide.textContent = 'ფანჯარა'.repeat(12); wide.style.whiteSpace = 'nowrap';
      const heading = document.querySelector('.services h2');
      heading.textContent = 'ჯერ კიდევ რიგში მყოფი მომხმარებლები '.repeat(8);
      const out = document.querySelector('#serving li');
      out.style.position = 'relative'; out.style.left = '3000px';
    }""")
    problems = page.evaluate(MEASURE)
    moved = page.evaluate("document.querySelector('#serving li').textContent.trim().slice(0, 12)")
    assert any("ფანჯარაფანჯარა" in p and "leaves the screen" in p for p in problems), problems
    assert any(p.startswith("h2") and "lines" in p for p in problems), problems
    assert any(moved in p and "leaves the screen" in p for p in problems), problems
    assert any(moved in p and "leaves its panel" in p for p in problems), problems
    page.evaluate("document.querySelector('section.now').style.overflow = 'visible'")
    page.evaluate("document.querySelector('#now-where').style.whiteSpace = 'nowrap'")
    page.evaluate("document.querySelector('#now-where').textContent = 'ფანჯარა'.repeat(12)")
    assert any(p.startswith("#now-where") and "overflows" in p for p in page.evaluate(MEASURE))
    context.close()


def new_branch(system, name: str, counters: int) -> dict:
    """A branch with service A and `counters` open counters serving it, made through the admin API."""
    def made(path, payload):
        status, body, _ = system.request("POST", path, payload, auth=True)
        assert status in (200, 201), body
        return body
    branch = made("/api/v1/admin/branches", {"name": name, "timezone": TOKYO, "country": "JP", "language": "en",
                                             "languages": ["en", "ja", "ka"]})
    service = made("/api/v1/admin/services", {"branch": branch["id"], "code": "A", "names": SECOND_NAMES})
    ids = []
    for number in range(counters):
        ids.append(made("/api/v1/admin/counters", {"branch": branch["id"], "name": str(number + 1),
                                                   "services": [service["id"]]})["id"])
        made(f"/api/v1/counters/{ids[-1]}/open", None)
    return {"id": branch["id"], "counters": ids}


def test_full_layout_is_never_empty(tokyo, browser):
    quiet = new_branch(tokyo, "Shibaura Annex", counters=2)
    context = new_york(browser)
    page = context.new_page()
    page.goto(tokyo.base + f"/display/{quiet['id']}?layout=full&languages=en")
    wait_until(page, "window.seedDisplay && window.seedDisplay.snapshots > 0")
    # No call yet today: the branch, the time and what to do.
    expect(page.locator("#now")).to_be_hidden()
    expect(page.locator("#idle")).to_be_visible()
    expect(page.locator("#idle .idle-branch")).to_have_text("Shibaura Annex")
    expect(page.locator("#idle-clock")).to_have_text(re.compile(r"^\d{2}:\d{2}$"))
    expect(page.locator("#nobody")).to_be_visible()
    expect(page.locator(".recent")).to_be_hidden()  # no empty strip of earlier calls
    page.screenshot(path=str(SHOTS / "full-before-first-call.png"))

    for _ in range(2):
        status, body, _ = tokyo.request("POST", "/api/v1/tickets", {"service": "A", "branch": quiet["id"]}, auth=True)
        assert status == 201, body
    first = call(tokyo, quiet["counters"][0])["number"]
    expect(page.locator("#now-number")).to_have_text(first)
    expect(page.locator("#now")).to_be_visible()
    expect(page.locator("#idle")).to_be_hidden()
    second = call(tokyo, quiet["counters"][1])["number"]
    expect(page.locator("#now-number")).to_have_text(second)
    # The last calls stay on the wall under the current one.
    expect(page.locator("#recent li:not([hidden])")).to_have_text([re.compile(f"^{first}")])
    page.screenshot(path=str(SHOTS / "full-after-calls.png"))
    context.close()


SHOTS.mkdir(parents=True, exist_ok=True)
