"""API tokens: made and revoked by an administrator (web page and CLI), shown once, kept hashed,
scoped to a role and branches, cheap to check, refused with a clear 401 once revoked or expired."""
import hashlib
import re

import pytest
from flask import request
from sqlalchemy import select

from core import auth, engine, tokens
from core.extensions import db
from core.tokens import ApiToken

from .helpers import csrf_token, login, make_branch, make_counter, make_service, make_staff


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def two_branches(setup):
    other = make_branch("Other")
    service = make_service(other, "A")
    make_counter(other, "1", [service])
    db.session.commit()
    return setup[0], other


def every_stored_value() -> str:
    return repr(db.session.execute(select(ApiToken.__table__)).all())


def test_cli_creates_a_token_shown_once_and_kept_as_its_sha256(runner, two_branches):
    one, other = two_branches
    made = runner.invoke(args=["token", "create", "--name", "Booking site", "--role", "staff",
                               "--branch", str(one.id), "--branch", str(other.id)])
    assert made.exit_code == 0, made.output
    secret = re.search(r"Token \(shown once.*\): (\S+)", made.output).group(1)
    assert secret.startswith("seed_") and len(secret) > 40
    token = db.session.scalar(select(ApiToken))
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in every_stored_value() and [b.id for b in token.branches] == [one.id, other.id]

    listed = runner.invoke(args=["token", "list"])
    assert "Booking site" in listed.output and "active" in listed.output and secret not in listed.output


@pytest.mark.parametrize(("args", "words"), [
    (["--name", "x", "--role", "staff"], "Choose the branches"),
    (["--name", "x", "--role", "staff", "--branch", "99"], "No branch 99"),
    (["--name", " ", "--role", "admin"], "name of 1-80"),
    (["--name", "x", "--role", "kiosk", "--branch", "1"], "Invalid value for '--role'"),
])
def test_cli_refusals_are_clear_and_make_nothing(runner, setup, args, words):
    result = runner.invoke(args=["token", "create", *args])
    assert result.exit_code != 0 and words in result.output, result.output
    assert db.session.scalar(select(ApiToken)) is None


def test_a_token_acts_in_its_branches_only(client, two_branches):
    one, other = two_branches
    _token, secret = tokens.create("Booking site", "staff", [one.id])
    mine = client.post("/api/v1/tickets", json={"service": "A"}, headers=bearer(secret))
    assert mine.status_code == 201
    theirs = engine.issue_ticket(other.services[0].id)
    assert client.get(f"/api/v1/tickets/{theirs.id}", headers=bearer(secret)).status_code == 404
    assert client.get(f"/api/v1/queues?branch={other.id}", headers=bearer(secret)).status_code == 404
    assert [t["number"] for t in client.get("/api/v1/tickets", headers=bearer(secret)).json["tickets"]] == ["A001"]


def test_the_role_of_a_token_counts(client, setup):
    _t, staff_secret = tokens.create("Screens", "staff", [setup[0].id])
    _t, admin_secret = tokens.create("Ops", "admin", [])
    assert client.get("/api/v1/templates", headers=bearer(staff_secret)).status_code == 403
    assert client.get("/api/v1/templates", headers=bearer(admin_secret)).status_code == 200


def test_the_principal_a_token_stands_for(app, setup):
    token, secret = tokens.create("Booking site", "manager", [setup[0].id])
    with app.test_request_context("/api/v1/queues", headers=bearer(secret)):
        who = auth.load_from_request(request)
    assert (who.is_authenticated, who.is_active, who.is_anonymous, who.is_admin) == (True, True, False, False)
    assert (who.username, who.display_name, who.role) == ("token:Booking site", "Booking site", "manager")
    assert (who.branch_id, who.branch_ids, who.get_id()) == (setup[0].id, [setup[0].id], f"token:{token.id}")
    assert not hasattr(who, "id")  # what it does is never recorded as some staff member's


def test_a_token_opens_the_api_only_not_the_staff_pages(client, setup):
    _t, secret = tokens.create("Ops", "admin", [])
    response = client.get("/staff/counter", headers=bearer(secret))
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_checking_a_token_needs_no_password_hash(client, setup, monkeypatch):
    _t, secret = tokens.create("Screens", "staff", [setup[0].id])

    def slow_hash(*args):
        raise AssertionError("a token request checked a password hash")

    monkeypatch.setattr(auth, "check_password_hash", slow_hash)
    monkeypatch.setattr(type(setup[3]), "check_password", slow_hash)
    assert client.get("/api/v1/queues", headers=bearer(secret)).status_code == 200


@pytest.mark.parametrize("secret", ["seed_" + "x" * 43, "not-even-ours", "seed_" + "y" * 500, ""])
def test_unknown_tokens_get_a_clear_401(client, setup, secret):
    response = client.get("/api/v1/queues", headers=bearer(secret))
    assert response.status_code == 401 and response.json["error"] in ("invalid_token", "unauthorized")
    assert response.json["message"]


def test_revoked_and_expired_tokens_are_refused_with_reasons(client, setup, clock, runner):
    revoked, revoked_secret = tokens.create("Old site", "staff", [setup[0].id])
    _t, expiring_secret = tokens.create("Trial", "staff", [setup[0].id], expires_days=1)
    assert client.get("/api/v1/queues", headers=bearer(revoked_secret)).status_code == 200
    assert runner.invoke(args=["token", "revoke", str(revoked.id)]).exit_code == 0
    refused = client.get("/api/v1/queues", headers=bearer(revoked_secret))
    assert refused.status_code == 401 and refused.json["error"] == "invalid_token"
    assert "revoked" in refused.json["message"] and "Old site" in refused.json["message"]

    clock.advance(hours=23, minutes=59)
    assert client.get("/api/v1/queues", headers=bearer(expiring_secret)).status_code == 200
    clock.advance(minutes=1)
    expired = client.get("/api/v1/queues", headers=bearer(expiring_secret))
    assert expired.status_code == 401 and "expired" in expired.json["message"]
    assert "revoked" in runner.invoke(args=["token", "list"]).output


def test_last_use_is_written_at_most_once_a_minute(client, setup, clock):
    token, secret = tokens.create("Screens", "staff", [setup[0].id])
    last_used = lambda: db.session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token.id))  # noqa: E731
    assert last_used() is None
    first = clock.now()
    client.get("/api/v1/queues", headers=bearer(secret))
    assert last_used() == first
    clock.advance(seconds=59)
    client.get("/api/v1/queues", headers=bearer(secret))
    assert last_used() == first
    clock.advance(seconds=1)
    client.get("/api/v1/queues", headers=bearer(secret))
    assert last_used() == clock.now()


def test_a_kiosk_token_is_no_api_token(client, setup):
    _kiosk, secret = tokens.create_kiosk(setup[0].id, "Entrance")
    response = client.get("/api/v1/queues", headers=bearer(secret))
    assert response.status_code == 401 and "kiosk" in response.json["message"]


# --- the administrator's page ---------------------------------------------------------------------

@pytest.fixture
def admin(client, setup):
    make_staff("root", role="admin")
    db.session.commit()
    login(client, "root")
    return client


def test_an_admin_creates_a_token_on_the_page_and_sees_it_once(admin, two_branches):
    one, other = two_branches
    page = admin.get("/staff/admin/tokens")
    assert page.status_code == 200 and "No tokens yet" in page.text
    made = admin.post("/staff/admin/tokens", data={
        "name": "Booking site", "role": "manager", "branches": [str(one.id), str(other.id)], "expires_days": "30",
        "csrf_token": csrf_token(page.text)})
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    secret = re.search(r'<code id="secret">([^<]+)</code>', made.text).group(1)
    assert admin.get("/api/v1/queues", headers=bearer(secret)).status_code == 200

    again = admin.get("/staff/admin/tokens")
    assert "Booking site" in again.text and secret not in again.text  # shown once only
    token = db.session.scalar(select(ApiToken))
    assert (token.role, token.created_by, [b.id for b in token.branches]) == ("manager", "root", [one.id, other.id])


def test_an_admin_revokes_a_token_on_the_page(admin, setup):
    token, secret = tokens.create("Old site", "staff", [setup[0].id])
    page = admin.get("/staff/admin/tokens")
    done = admin.post(f"/staff/admin/tokens/{token.id}/revoke", data={"csrf_token": csrf_token(page.text)},
                      follow_redirects=True)
    assert "Old site is revoked" in done.text
    with pytest.raises(tokens.TokenRefused, match="revoked"):
        tokens.principal_for(secret)


def test_refused_token_forms_say_why_and_make_nothing(admin, setup):
    page = admin.get("/staff/admin/tokens")
    refused = admin.post("/staff/admin/tokens", data={"name": "No branches", "role": "staff",
                                                      "csrf_token": csrf_token(page.text)})
    assert refused.status_code == 400 and "Choose the branches" in refused.text
    assert db.session.scalar(select(ApiToken)) is None


def test_only_admins_reach_the_token_pages(client, setup):
    token, _secret = tokens.create("Ops", "admin", [])
    assert client.get("/staff/admin/tokens").status_code == 302
    login(client)  # alice, staff
    assert client.get("/staff/admin/tokens").status_code == 403
    page = client.get("/staff/counter")
    assert client.post(f"/staff/admin/tokens/{token.id}/revoke",
                       data={"csrf_token": csrf_token(page.text)}).status_code == 403
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).revoked_at is None


def test_the_token_page_speaks_japanese(admin, setup):
    page = admin.get("/staff/admin/tokens", headers={"Accept-Language": "ja"})
    assert '<html lang="ja">' in page.text and "API" in page.text and "No tokens yet" not in page.text
