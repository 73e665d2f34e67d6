"""Logging in holds against guessing; logging out and changing a password end every session;
a session left alone ends by itself."""
import base64
import logging

import pytest
from flask import g
from flask_login import login_required
from sqlalchemy import select

from core import auth
from core.extensions import db
from core.models import StaffUser
from core.throttle import LoginFailure

from .conftest import RequestIsolatedClient, build_app
from .helpers import csrf_token, login

ELSEWHERE = {"REMOTE_ADDR": "10.0.0.99"}


def logged_in(client) -> bool:
    return client.get("/staff/counter").status_code == 200


def fail(client, username="alice", times=1, **kw):
    for _ in range(times):
        page = client.get("/staff/login", **kw)
        response = client.post("/staff/login", data={"username": username, "password": "wrong guess",
                                                     "csrf_token": csrf_token(page.text)}, **kw)
        assert response.status_code == 200 and "Wrong username or password" in response.text


class Browser(RequestIsolatedClient):
    """One of several browsers in a test. Flask-WTF keeps the CSRF token in `g` too, which the
    tests' shared app context would hand from one browser to the next: forget it as well."""

    def open(self, *args, **kwargs):
        g.pop("csrf_token", None)
        return super().open(*args, **kwargs)


def browser(app, copy_of=None):
    """Another browser; with copy_of, one holding a copy of that browser's session cookie."""
    made = Browser(app, app.response_class, use_cookies=True)
    if copy_of is not None:
        made.set_cookie("session", copy_of.get_cookie("session").value)
    return made


# --- throttling ---------------------------------------------------------------------------------

def test_five_failures_lock_the_username_for_fifteen_minutes(client, setup, clock, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="core.throttle")
    fail(client, times=5)
    assert "login locked" in caplog.text and "'alice'" in caplog.text and "127.0.0.1" in caplog.text

    checked = []
    monkeypatch.setattr(auth, "_password_matches", lambda *args: checked.append(args) or True)
    refused = login(client)
    assert refused.status_code == 429 and "Too many failed logins" in refused.text
    assert checked == [] and not logged_in(client)  # refused without looking at the password
    assert "login refused" in caplog.text
    monkeypatch.undo()

    clock.advance(minutes=14, seconds=59)
    assert login(client).status_code == 429
    clock.advance(seconds=1)
    assert login(client).status_code == 302 and logged_in(client)


def test_the_lock_holds_for_the_username_from_any_address(client, setup):
    fail(client, times=5)
    page = client.get("/staff/login", environ_base=ELSEWHERE)
    response = client.post("/staff/login", environ_base=ELSEWHERE, data={
        "username": "ALICE", "password": "correct horse", "csrf_token": csrf_token(page.text)})
    assert response.status_code == 429  # "ALICE" and "alice" share a count


def test_five_failures_from_one_address_lock_it_for_every_username(client, setup):
    for name in ("bob", "carol", "dave", "erin", "frank"):  # unknown users count too
        fail(client, name)
    assert login(client).status_code == 429  # alice's right password, from the locked address
    page = client.get("/staff/login", environ_base=ELSEWHERE)
    response = client.post("/staff/login", environ_base=ELSEWHERE, data={
        "username": "alice", "password": "correct horse", "csrf_token": csrf_token(page.text)})
    assert response.status_code == 302  # alice herself is not locked


def test_failures_spread_beyond_fifteen_minutes_do_not_lock(client, setup, clock):
    fail(client, times=4)
    clock.advance(minutes=15, seconds=1)
    fail(client, times=4)
    assert login(client).status_code == 302


def test_a_right_password_clears_that_users_count(client, setup, clock):
    fail(client, times=4)
    assert login(client).status_code == 302
    fail(client, "alice", times=1)
    assert db.session.scalar(select(db.func.count()).select_from(LoginFailure)) == 1
    assert login(client).status_code == 302


def test_every_web_process_sees_the_same_failures(client, setup, clock, tmp_path):
    """The counts live in the database, not in one process's memory."""
    fail(client, times=5)
    other = build_app(db.engine.url.render_as_string(hide_password=False), clock, tmp_path / "other")
    other.test_client_class = RequestIsolatedClient
    with other.app_context():
        response = login(other.test_client())
    assert response.status_code == 429


def test_an_unknown_user_costs_one_password_check_like_a_known_one(client, setup, app, monkeypatch):
    hashes = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: hashes.append(h) or real(h, p))
    fail(client, "nobody")
    assert len(hashes) == 1 and hashes[0].startswith(app.config["PASSWORD_HASH_METHOD"] + "$")


def test_throttle_answers_429_json_on_the_api(client, setup, app):
    app.config["API_BASIC_AUTH"] = True
    basic = lambda pw: {"Authorization": "Basic " + base64.b64encode(f"alice:{pw}".encode()).decode()}  # noqa: E731
    assert client.get("/api/v1/queues", headers=basic("correct horse")).status_code == 200
    for _ in range(5):
        assert client.get("/api/v1/queues", headers=basic("wrong")).status_code == 401
    locked = client.get("/api/v1/queues", headers=basic("correct horse"))
    assert locked.status_code == 429 and locked.json["error"] == "too_many_attempts"
    assert locked.json["detail"]["retry_after"] > 0


def test_http_basic_is_off_unless_configured(client, setup):
    response = client.get("/api/v1/queues", headers={
        "Authorization": "Basic " + base64.b64encode(b"alice:correct horse").decode()})
    assert response.status_code == 401 and "Bearer" in response.json["message"]


# --- sessions end -------------------------------------------------------------------------------

def test_logout_ends_every_session_of_the_user(app, setup):
    client = browser(app)
    login(client)
    copied = browser(app, copy_of=client)
    other_login = browser(app)
    login(other_login)
    assert logged_in(copied) and logged_in(other_login)

    page = client.get("/staff/counter")
    out = client.post("/staff/logout", data={"csrf_token": csrf_token(page.text)}, follow_redirects=True)
    assert "Every session of your account has ended" in out.text
    assert not logged_in(client) and not logged_in(copied) and not logged_in(other_login)
    assert login(client).status_code == 302 and logged_in(client)  # a new login works


def test_a_session_from_before_epochs_is_refused(client, setup):
    with client.session_transaction() as session:
        session["_user_id"] = str(setup[3].id)  # the old form: no epoch
        session["seen"] = 1e12
    assert not logged_in(client)


def test_a_deactivated_users_sessions_end(client, setup):
    login(client)
    setup[3].active = False
    db.session.commit()
    assert not logged_in(client)


def test_idle_sessions_end_and_each_request_keeps_one_alive(client, app, setup, clock):
    app.config["STAFF_IDLE_MINUTES"] = 30
    login(client)
    for _ in range(4):  # two hours of work, a request every 29 minutes
        clock.advance(minutes=29)
        assert logged_in(client)
    clock.advance(minutes=31)
    response = client.get("/staff/counter")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    assert "after 30 minutes without activity" in client.get(response.headers["Location"]).text
    assert not logged_in(client)


def test_a_page_refreshing_itself_does_not_keep_a_session_alive(client, app, setup, clock):
    """An unattended console polls its panel; that is nobody working."""
    app.add_url_rule("/staff/poll", "poll", login_required(auth.background(lambda: "fresh")))
    app.config["STAFF_IDLE_MINUTES"] = 30
    login(client)
    for _ in range(2):
        clock.advance(minutes=10)
        assert client.get("/staff/poll").status_code == 200
    clock.advance(minutes=11)
    assert client.get("/staff/poll").status_code == 302  # 31 minutes after the last thing a person did


def test_an_idle_api_session_gets_401_json(client, app, setup, clock):
    login(client)
    assert client.get("/api/v1/queues").status_code == 200
    clock.advance(minutes=auth.DEFAULT_IDLE_MINUTES + 1)
    response = client.get("/api/v1/queues")
    assert response.status_code == 401 and response.json["error"] == "session_expired"


# --- changing one's password --------------------------------------------------------------------

def change(client, current="correct horse", new="a new long secret", repeat=None, token=True):
    page = client.get("/staff/password")
    data = {"current_password": current, "new_password": new, "repeat_password": new if repeat is None else repeat}
    if token:
        data["csrf_token"] = csrf_token(page.text)
    return client.post("/staff/password", data=data, follow_redirects=True)


def alice() -> StaffUser:
    db.session.expire_all()
    return db.session.scalar(select(StaffUser).where(StaffUser.username == "alice"))


def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(app, setup):
    client = browser(app)
    assert client.get("/staff/password").status_code == 302  # logged-in people only
    login(client)
    copied = browser(app, copy_of=client)
    done = change(client)
    assert done.status_code == 200 and "Your password is changed" in done.text
    assert logged_in(client) and not logged_in(copied)
    assert alice().check_password("a new long secret") and not alice().check_password("correct horse")


@pytest.mark.parametrize(("current", "new", "repeat", "words"), [
    ("wrong", "a new long secret", None, "The current password is wrong."),
    ("correct horse", "short", None, "at least 10 characters"),
    ("correct horse", "a new long secret", "a new long secreT", "not the same"),
    ("correct horse", "correct horse", None, "must differ"),
])
def test_refused_password_changes_say_why_and_change_nothing(client, setup, current, new, repeat, words):
    login(client)
    response = change(client, current, new, repeat)
    assert response.status_code == 400 and words in response.text
    assert alice().check_password("correct horse") and logged_in(client)


def test_a_password_change_needs_the_csrf_token(client, setup):
    login(client)
    assert change(client, token=False).status_code == 400
    assert alice().check_password("correct horse")


def test_guessing_the_current_password_counts_toward_the_lock(client, setup):
    login(client)
    for _ in range(5):
        change(client, current="guess")
    response = change(client)
    assert response.status_code == 429 and alice().check_password("correct horse")


def test_the_cli_password_change_ends_sessions_too(client, app, setup, runner):
    login(client)
    result = runner.invoke(args=["user", "set-password", "alice"], input="another password\nanother password\n")
    assert result.exit_code == 0 and "every session" in result.output
    assert not logged_in(client)


def test_login_page_speaks_the_staff_language(client, setup):
    fail(client, times=5)
    page = client.get("/staff/login", headers={"Accept-Language": "ja"})
    response = client.post("/staff/login", headers={"Accept-Language": "ja"}, data={
        "username": "alice", "password": "correct horse", "csrf_token": csrf_token(page.text)})
    assert response.status_code == 429 and "ログイン" in response.text and "Too many" not in response.text

