"""Every settings, staff and report page in Chromium, in English, Japanese and Georgian: a screenshot of
each lands in test-artifacts/settings/, and the boxes are measured: no label, button, heading or
table cell overflows its box, and no page scrolls sideways at a laptop's width."""
import pytest

from .live import ROOT, chromium, running_system, signed_in

SHOTS = ROOT / "test-artifacts" / "settings"
LANGUAGES = {"en": "en-GB", "ja": "ja-JP", "ka": "ka-GE"}

# Every settings page (admin/) and the staff pages, as an administrator of the demo branch (id 1).
PAGES = {
    "branches": "/admin/branches",
    "branch-new": "/admin/branches/new",
    "branch": "/admin/branches/1",
    "services": "/admin/services?branch=1",
    "service-new": "/admin/services/new?branch=1",
    "service": "/admin/services/1",
    "counters": "/admin/counters?branch=1",
    "counter-new": "/admin/counters/new?branch=1",
    "counter": "/admin/counters/1",
    "users": "/admin/users",
    "user-new": "/admin/users/new",
    "user": "/admin/users/1",
    "texts": "/admin/texts?branch=1",
    "screens": "/admin/screens?branch=1",
    "modem": "/admin/modem?branch=1",
    "console": "/staff/",
    "counter-chooser": "/staff/counter",
    "inbox": "/staff/inbox",
    "outbox": "/staff/outbox",
    "audit": "/staff/audit",
    "privacy": "/staff/privacy",
    "templates": "/staff/admin/texts",
    "tokens": "/staff/admin/tokens",
    "kiosks": "/staff/admin/kiosks",
    "account": "/staff/password",
    "reports": "/reports/?branch=1",
    "reports-breakdown": "/reports/breakdown?branch=1",
    "reports-staffing": "/reports/staffing?branch=1",
}

# The boxes that hold words: each must hold all of its own (scrollWidth within clientWidth).
OVERFLOWS = """() => {
  const found = [];
  const words = 'label, button, th, td, h1, h2, h3, legend, .field-error, .hint, nav a, .flash, select, summary';
  for (const el of document.querySelectorAll(words)) {
    const style = getComputedStyle(el);
    if (style.display === 'inline' || style.display === 'none' || el.offsetParent === null) continue;
    if (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1 && style.overflowY !== 'visible') {
      found.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} "${el.textContent.trim().slice(0, 40)}" ` +
                 `${el.scrollWidth}x${el.scrollHeight} in ${el.clientWidth}x${el.clientHeight}`);
    }
  }
  const sideways = document.documentElement.scrollWidth - window.innerWidth;
  if (sideways > 1) found.push(`the page scrolls sideways by ${sideways}px`);
  return found;
}"""


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    with running_system(tmp_path_factory.mktemp("settings"),
                        'DEFAULT_COUNTRY = "GE"\nDEFAULT_TIMEZONE = "Asia/Tbilisi"\n') as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_settings_page_in_each_language_fits_its_boxes(system, browser, language):
    (SHOTS / language).mkdir(parents=True, exist_ok=True)
    context, page = signed_in(browser, system, locale=LANGUAGES[language])
    problems = {}
    try:
        for name, path in PAGES.items():
            response = page.goto(system.base + path)
            assert response.status == 200, f"{path} -> {response.status}"
            assert page.locator("html").get_attribute("lang") == language, f"{path} is not in {language}"
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(SHOTS / language / f"{name}.png"), full_page=True)
            overflowing = page.evaluate(OVERFLOWS)
            if overflowing:
                problems[path] = overflowing
    finally:
        context.close()
    assert problems == {}


def test_the_overflow_check_finds_a_label_too_small_for_its_words(system, browser):
    """The measurement above can fail: a label squeezed into 30 px is reported."""
    context, page = signed_in(browser, system)
    try:
        page.goto(system.base + "/admin/branches/1")
        page.evaluate("""() => { const label = document.querySelector('label');
                                 label.style.display = 'block'; label.style.width = '30px';
                                 label.style.overflow = 'hidden'; label.style.whiteSpace = 'nowrap';
                                 label.textContent = 'A label with far too many words for thirty pixels'; }""")
        assert any("far too many words" in problem for problem in page.evaluate(OVERFLOWS))
    finally:
        context.close()
