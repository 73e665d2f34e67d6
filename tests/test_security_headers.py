"""Every response carries the security headers; every <script> in a page carries that response's
nonce; HSTS and Secure cookies only over HTTPS; the status page's token leaks through no link."""
import re

import pytest
from flask import Flask

from core import engine
from core.extensions import db
from core.security import embeddable

from .conftest import build_app
from .helpers import NUMBER, csrf_token, login, make_staff

SCRIPT = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
NONCE = re.compile(r"script-src 'self' 'nonce-([A-Za-z0-9_-]{20,})'")


def directives(response) -> dict:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split("; ")}


def check(response) -> str | None:
    """The headers every response carries; for a page, that each script has this response's nonce
    and no element has an inline handler (the policy would block it). Returns the nonce."""
    where = response.request.path
    policy = directives(response)
    assert policy["default-src"] == ["'self'"], where
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"], where
    framed = ["'self'"] if re.fullmatch(r"/display/\d+", where) else ["'none'"]  # the display: @embeddable
    assert policy["frame-ancestors"] == framed, where
    assert response.headers["X-Content-Type-Options"] == "nosniff", where
    expected = "no-referrer" if where.startswith("/t/") else "strict-origin-when-cross-origin"
    assert response.headers["Referrer-Policy"] == expected, where
    assert "Strict-Transport-Security" not in response.headers, where  # plain http
    nonce = NONCE.search(response.headers["Content-Security-Policy"]).group(1)
    if response.mimetype == "text/html":
        page = response.text
        for attributes in SCRIPT.findall(page):
            assert f'nonce="{nonce}"' in attributes, f"{where}: <script{attributes}> lacks this response's nonce"
        assert not INLINE_HANDLER.search(page), f"{where}: inline event handler {INLINE_HANDLER.search(page)[0]!r}"
        assert "javascript:" not in page, where
    return nonce


def argument_free_get_rules(app):
    return sorted(rule.rule for rule in app.url_map.iter_rules()
                  if "GET" in rule.methods and not rule.arguments)


@pytest.fixture
def pages(app, client, vm, setup):
    """An admin at counter 1, a ticket with its status page, the virtual modem running."""
    branch, services, counters, _ = setup
    make_staff("root", "admin password", role="admin")
    db.session.commit()
    ticket = engine.issue_ticket(services[0].id, source="kiosk")
    app.extensions["seed.virtual_modem"] = vm
    yield branch, counters[0], ticket
    app.extensions.pop("seed.virtual_modem", None)


def test_every_page_carries_the_headers_and_each_script_the_nonce_of_its_response(app, client, pages):
    branch, counter, ticket = pages
    for path in argument_free_get_rules(app):  # as a stranger: redirects, 401s and public pages
        check(client.get(path))

    login(client, "root", "admin password")
    choose = client.get("/staff/counter")
    client.post("/staff/counter", data={"counter_id": counter.id, "csrf_token": csrf_token(choose.text)})
    extra = [f"/kiosk/{branch.id}", f"/display/{branch.id}", f"/t/{ticket.access_token}",
             f"/t/{ticket.access_token}.json", f"/t/{ticket.access_token}/qr.svg", f"/staff/inbox/{NUMBER}",
             "/staff/static/console.js", "/no/such/page"]
    nonces, scripted = [], set()
    for path in argument_free_get_rules(app) + extra:
        response = client.get(path)
        nonces.append(check(response))
        if response.mimetype == "text/html" and SCRIPT.search(response.text):
            scripted.add(response.request.path)
        response.close()  # a streamed export not read to its end ends its request context here, in order
    # The pages that run scripts were really rendered, not redirected away from.
    assert {"/staff/", "/staff/admin/texts", "/virtual-phone", f"/kiosk/{branch.id}",
            f"/display/{branch.id}", f"/t/{ticket.access_token}"} <= scripted
    assert len(set(nonces)) == len(nonces), "a nonce is used once"


def test_the_policy_lets_socket_io_connect_to_this_host_only(client):
    policy = directives(client.get("/", base_url="http://seed.example:8080"))
    assert policy["connect-src"] == ["'self'", "ws://seed.example:8080", "wss://seed.example:8080"]
    assert policy["img-src"] == ["'self'", "data:"] and policy["object-src"] == ["'none'"]
    assert directives(client.get("/", headers={"Host": "evil; script-src *"}))["connect-src"] == ["'self'"]


def test_the_status_page_sends_no_referrer(client, setup):
    ticket = engine.issue_ticket(setup[1][0].id, source="kiosk")
    for path in (f"/t/{ticket.access_token}", f"/t/{ticket.access_token}.json", "/t/unknown-token"):
        assert client.get(path).headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/kiosk/").headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def session_cookie(response) -> str:
    cookies = [v for v in response.headers.getlist("Set-Cookie") if v.startswith("session=")]
    assert cookies, "the login page stores its CSRF token in the session"
    return cookies[0]


def test_hsts_and_secure_cookies_only_over_https(tmp_path, clock):
    plain = build_app(f"sqlite:///{tmp_path / 'a.db'}", clock, tmp_path).test_client()
    response = plain.get("/staff/login")
    assert "Strict-Transport-Security" not in response.headers
    assert "Secure" not in session_cookie(response)
    forged = plain.get("/staff/login", headers={"X-Forwarded-Proto": "https"})  # no proxy is trusted
    assert "Strict-Transport-Security" not in forged.headers and "Secure" not in session_cookie(forged)

    direct = plain.get("/staff/login", base_url="https://localhost")
    assert direct.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "; Secure" in session_cookie(direct)

    proxied = build_app(f"sqlite:///{tmp_path / 'b.db'}", clock, tmp_path, TRUSTED_PROXIES=1).test_client()
    response = proxied.get("/staff/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert session_cookie(response).count("Secure") == 1


def test_a_view_marked_embeddable_may_be_framed_by_the_configured_ancestors():
    app = Flask(__name__)
    app.config.update(TRUSTED_PROXIES=0, CSP_EMBED_ANCESTORS="https://signage.example")
    from core.security import init_security

    init_security(app)
    app.add_url_rule("/framed", "framed", embeddable(lambda: "framed"))
    app.add_url_rule("/plain", "plain", lambda: "plain")
    client = app.test_client()
    assert directives(client.get("/framed"))["frame-ancestors"] == ["https://signage.example"]
    assert directives(client.get("/plain"))["frame-ancestors"] == ["'none'"]


def test_the_pages_run_in_chromium_without_a_policy_violation(tmp_path):
    """The policy is only right if the real pages live with it: scripts, Socket.IO, fonts, the
    chime, the QR code, the console's live panel."""
    from playwright.sync_api import expect, sync_playwright

    from .live import RunningSystem, launch_chromium, wait_until

    system = RunningSystem(tmp_path / "instance").start()
    try:
        status, body, _ = system.request("POST", "/api/v1/checkins",
                                         {"service": "A", "phone": NUMBER, "sms_consent": True})
        assert status == 201, body
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page()
            violations = []
            page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
            # Injected through DevTools, which the policy does not govern: it records what the page is refused.
            page.add_init_script("document.addEventListener('securitypolicyviolation', e =>"
                                 " console.error('Content Security Policy: ' + e.violatedDirective + ' ' + e.blockedURI))")
            page.goto(system.base + "/kiosk/1")
            page.click("[data-pick-language=en]")
            expect(page.locator("#walk-in")).to_be_visible()
            page.goto(system.base + "/display/1")
            wait_until(page, "window.seedDisplay && window.seedDisplay.connected && window.seedDisplay.snapshots > 0")
            page.goto(body["ticket"]["status_url"])
            expect(page.locator("#state")).not_to_be_empty()
            page.goto(system.base + "/virtual-phone#" + NUMBER)
            expect(page.locator("#title")).to_have_text(NUMBER)
            page.goto(system.base + "/staff/login")
            page.fill("#username", "admin")
            page.fill("#password", system.admin_password)
            page.click("button[type=submit]")
            page.click("button[data-counter='1']")
            expect(page.locator("tr[data-ticket='A001']")).to_be_visible()
            page.goto(system.base + "/staff/admin/texts")
            page.wait_for_load_state("networkidle")
            browser.close()
        assert violations == []
    finally:
        system.stop()
