"""Registered kiosks: the check-in rate limit is keyed by a kiosk's token when a valid one comes with
the request, else by the client address; never by a header the client makes up."""
import os
import re
import socket
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from core import tokens
from core.extensions import db
from core.models import Ticket
from core.tokens import ApiToken

from .helpers import csrf_token, login, make_staff

LIMIT = 12  # KIOSK_RATE_LIMIT's default, a minute


def check_in(client, **headers):
    return client.post("/api/v1/checkins", json={"service": "A"}, headers=headers).status_code


def tickets() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count(Ticket.id)))


def test_a_new_made_up_kiosk_id_per_request_does_not_escape_the_limit(client, setup):
    codes = [check_in(client, **{"X-Kiosk-Id": f"kiosk-{i}"}) for i in range(20)]
    assert codes == [201] * LIMIT + [429] * (20 - LIMIT)
    assert tickets() == LIMIT


def test_a_made_up_kiosk_token_does_not_escape_it_either(client, setup):
    codes = [check_in(client, **{"X-Kiosk-Token": f"seed_{i:043d}"}) for i in range(LIMIT + 1)]
    assert codes[-1] == 429


def test_a_registered_kiosk_has_its_own_bucket(client, setup, clock):
    _entrance, entrance = tokens.create_kiosk(setup[0].id, "Entrance")
    _upstairs, upstairs = tokens.create_kiosk(setup[0].id, "Upstairs")
    assert [check_in(client) for _ in range(LIMIT + 1)][-1] == 429  # the address is spent
    codes = [check_in(client, **{"X-Kiosk-Token": entrance}) for _ in range(LIMIT + 1)]
    assert codes == [201] * LIMIT + [429]  # its own bucket, with its own limit
    assert check_in(client, **{"X-Kiosk-Token": upstairs}) == 201
    assert check_in(client) == 429
    db.session.rollback()
    assert db.session.scalar(select(ApiToken.last_used_at).where(ApiToken.name == "Entrance")) == clock.now()


def test_a_revoked_kiosk_falls_back_to_the_address(client, setup):
    kiosk, secret = tokens.create_kiosk(setup[0].id, "Entrance")
    assert [check_in(client) for _ in range(LIMIT + 1)][-1] == 429
    assert check_in(client, **{"X-Kiosk-Token": secret}) == 201
    tokens.revoke(kiosk.id, kiosk=True)
    assert check_in(client, **{"X-Kiosk-Token": secret}) == 429


def test_the_phone_check_is_keyed_the_same_way(client, app, setup):
    app.config["KIOSK_PHONE_CHECK_LIMIT"] = "2 per minute"
    _kiosk, secret = tokens.create_kiosk(setup[0].id, "Entrance")
    check = lambda **h: client.post("/api/v1/phone-check", json={"phone": "12"}, headers=h).status_code  # noqa: E731
    assert [check(**{"X-Kiosk-Id": str(i)}) for i in range(3)] == [400, 400, 429]
    assert check(**{"X-Kiosk-Token": secret}) == 400  # its own bucket: answered (the number is bad)


# --- registering: the page and the command line --------------------------------------------------

@pytest.fixture
def admin(client, setup):
    make_staff("root", role="admin")
    db.session.commit()
    login(client, "root")
    return client


def test_an_admin_registers_a_kiosk_and_gets_its_setup_link_once(admin, setup):
    branch = setup[0]
    page = admin.get("/staff/admin/kiosks")
    assert page.status_code == 200 and "No kiosks registered yet" in page.text
    made = admin.post("/staff/admin/kiosks", data={"branch": branch.id, "name": "Entrance",
                                                   "csrf_token": csrf_token(page.text)})
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    link = re.search(r'id="setup-link" href="([^"]+)"', made.text).group(1)
    assert link.startswith(f"http://localhost/kiosk/{branch.id}#setup=seed_")  # never sent to the server
    assert "<svg" in made.text  # the same link as a QR code, for the kiosk's camera
    secret = link.split("#setup=")[1]
    kiosk = db.session.scalar(select(ApiToken).where(ApiToken.role == "kiosk"))
    assert tokens.kiosk_for(secret).id == kiosk.id and [b.id for b in kiosk.branches] == [branch.id]
    again = admin.get("/staff/admin/kiosks")
    assert "Entrance" in again.text and secret not in again.text

    revoked = admin.post(f"/staff/admin/kiosks/{kiosk.id}/revoke", data={"csrf_token": csrf_token(again.text)},
                         follow_redirects=True)
    assert "Entrance is revoked" in revoked.text and tokens.kiosk_for(secret) is None


def test_kiosk_and_token_pages_keep_to_their_own_kind(admin, setup):
    api_token, _ = tokens.create("Ops", "admin", [])
    page = admin.get("/staff/admin/kiosks")
    wrong = admin.post(f"/staff/admin/kiosks/{api_token.id}/revoke", data={"csrf_token": csrf_token(page.text)})
    assert wrong.status_code == 404
    db.session.expire_all()
    assert db.session.get(ApiToken, api_token.id).revoked_at is None


def test_staff_cannot_register_kiosks(client, setup):
    login(client)
    page = client.get("/staff/counter")
    refused = client.post("/staff/admin/kiosks", data={"branch": setup[0].id, "name": "Mine",
                                                       "csrf_token": csrf_token(page.text)})
    assert refused.status_code == 403 and db.session.scalar(select(ApiToken)) is None


def test_cli_kiosk_create_list_revoke(runner, setup):
    made = runner.invoke(args=["kiosk", "create", "--branch", str(setup[0].id), "--name", "Entrance",
                               "--url", "http://192.168.1.10:5000/"])
    assert made.exit_code == 0, made.output
    link = re.search(r"(http://192\.168\.1\.10:5000/kiosk/\d+#setup=(\S+))", made.output)
    assert link and tokens.kiosk_for(link.group(2)) is not None
    assert "█" in made.output or "▀" in made.output  # the QR code, on the terminal
    kiosk = db.session.scalar(select(ApiToken))
    assert "Entrance" in runner.invoke(args=["kiosk", "list"]).output
    assert runner.invoke(args=["token", "revoke", str(kiosk.id)]).exit_code != 0  # a kiosk is no API token
    assert runner.invoke(args=["kiosk", "revoke", str(kiosk.id)]).exit_code == 0
    assert tokens.kiosk_for(link.group(2)) is None
    refused = runner.invoke(args=["kiosk", "create", "--branch", "99", "--name", "Nowhere"])
    assert refused.exit_code != 0 and "No branch 99" in refused.output


# --- the kiosk screen keeps its token (Chromium) --------------------------------------------------

def free_port_in_our_range() -> int:
    for port in range(5400, 5500):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 5400-5499")


def test_the_setup_link_registers_the_kiosk_screen(tmp_path):
    from playwright.sync_api import sync_playwright

    from .live import ROOT, RunningSystem, launch_chromium, wait_until

    system = RunningSystem(tmp_path / "instance", port=free_port_in_our_range()).start()
    try:
        made = subprocess.run([sys.executable, "-m", "flask", "--app", "run", "kiosk", "create", "--branch", "1",
                               "--name", "Entrance", "--url", system.base], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "SEED_INSTANCE_PATH": str(system.instance)},
                              timeout=60, check=True)
        link = re.search(r"(http://\S+#setup=(\S+))", made.stdout)
        secret = link.group(2)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page()
            page.goto(link.group(1))
            wait_until(page, "window.seedKiosk && window.seedKiosk.registered")
            assert page.url == f"{system.base}/kiosk/1"  # the secret has left the address bar
            assert page.evaluate("localStorage.getItem('seed.kiosk.token')") == secret

            page.reload()  # kept across restarts of the screen
            page.click("[data-pick-language=en]")
            page.click("#walk-in")
            page.click("[data-service=A]")
            page.click("#phone-skip")
            with page.expect_request("**/api/v1/checkins") as sent:
                page.click("#get-ticket")
            assert sent.value.headers.get("x-kiosk-token") == secret
            wait_until(page, "window.seedKiosk.step === 'ticket'")
            browser.close()
    finally:
        system.stop()



def test_a_limit_set_for_every_route_still_applies(tmp_path, clock, migrated_sqlite):
    """The limiter's pass before every view runs only while limits apply app-wide (see
    core.extensions.init_limiter): without one a page with no limit of its own is never refused;
    with one set in the configuration, the same page is refused over it."""
    import shutil

    from core.extensions import limiter

    from .conftest import build_app

    def answers(**config) -> list[int]:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        shutil.copyfile(migrated_sqlite, folder / "seed.db")
        app = build_app(f"sqlite:///{folder / 'seed.db'}", clock, folder, **config)
        with app.app_context():
            client = app.test_client()
            try:
                return [client.get("/api/v1/openapi.json").status_code for _ in range(5)]
            finally:
                db.session.remove()
                db.engine.dispose()

    assert answers() == [200] * 5
    try:
        assert answers(RATELIMIT_APPLICATION="3 per minute") == [200] * 3 + [429] * 2
    finally:  # (the limiter is one for the process: the tests after this one have no such limit)
        limiter.limit_manager.set_application_limits([])
        limiter.reset()


def test_the_limits_count_without_a_thread_each_and_windows_still_end(app, monkeypatch):
    """The kiosk's limits in memory (the default storage) count without starting a thread (limits'
    MemoryStorage started a timer thread again 10 ms after the last, nearly one per check-in under
    load); a window still ends on time, and the counters of windows nobody reads any more are
    swept at the next count a second later (core.extensions.SweptMemoryStorage)."""
    import threading
    import time

    from limits import parse
    from limits.strategies import FixedWindowRateLimiter

    from core.extensions import SweptMemoryStorage, limiter

    assert type(limiter._storage) is SweptMemoryStorage  # what the app counts with
    storage = SweptMemoryStorage()
    counting = FixedWindowRateLimiter(storage)
    started, real_timer = [], threading.Timer

    def timer(*args, **kwargs):  # (every other thread goes on as usual)
        started.append(real_timer(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(threading, "Timer", timer)  # (limits' MemoryStorage starts its expiry timers so)
    limit = parse("3 per 1 second")
    assert [counting.hit(limit, "kiosk-1") for _ in range(4)] == [True, True, True, False]
    time.sleep(1.1)  # the window ends
    assert counting.hit(limit, "kiosk-1")
    assert started == []
    stale = {key for key in storage.storage if "kiosk-1" in key}
    assert stale
    time.sleep(1.1)  # kiosk-1's window ends, and nobody reads it again
    assert counting.hit(limit, "kiosk-2")
    assert not stale & set(storage.storage) and not stale & set(storage.expirations)
    assert started == []
