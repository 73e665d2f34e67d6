"""The virtual phone reads everyone's texts and replies as anyone: open from this machine only,
an admin's tool from anywhere else, and a forged X-Forwarded-For changes nothing."""
import pytest

from core.extensions import db

from .conftest import RequestIsolatedClient, build_app
from .helpers import NUMBER, login, make_staff

REMOTE = {"REMOTE_ADDR": "10.1.2.3"}
PAGES = ("/virtual-phone", "/api/v1/virtual-phone/numbers", f"/api/v1/virtual-phone/messages?number={NUMBER}")


@pytest.fixture
def phone(app, vm):
    app.extensions["seed.virtual_modem"] = vm
    yield vm
    app.extensions.pop("seed.virtual_modem", None)


def client_from(app, address):
    app.test_client_class = RequestIsolatedClient
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


@pytest.fixture
def remote(app):
    return client_from(app, REMOTE["REMOTE_ADDR"])


def send(client, **environ):
    return client.post("/api/v1/virtual-phone/send", json={"from": NUMBER, "text": "hello"}, environ_base=environ)


def refused(response):
    """Not served: 401 for the API, the login page for a person."""
    if response.request.path.startswith("/api/"):
        return response.status_code == 401 and response.json["error"] == "unauthorized"
    return response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_open_without_login_from_loopback(client, phone):
    for path in PAGES:
        assert client.get(path).status_code == 200, path
    assert client.get("/virtual-phone", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    assert send(client).status_code == 202
    assert [m["body"] for m in phone.sent_from(NUMBER)] == ["hello"]


def test_refused_without_login_from_another_address(remote, phone):
    for path in PAGES:
        assert refused(remote.get(path)), path
    assert send(remote, **REMOTE).status_code == 401
    assert phone.sent_from(NUMBER) == []


def test_a_forged_forwarded_for_does_not_make_a_remote_client_local(remote, phone):
    for forged in ("127.0.0.1", "::1", "127.0.0.1, 127.0.0.1"):
        response = remote.get("/api/v1/virtual-phone/numbers", headers={"X-Forwarded-For": forged})
        assert refused(response), forged
    assert refused(remote.get("/virtual-phone", headers={"Forwarded": "for=127.0.0.1"}))


def test_a_proxy_on_this_machine_we_were_not_told_to_trust_does_not_make_everyone_local(client, phone):
    # nginx on the same host, TRUSTED_PROXIES left at 0: the peer is loopback, the client is not.
    response = client.get("/api/v1/virtual-phone/numbers", headers={"X-Forwarded-For": "203.0.113.9"})
    assert refused(response)


def test_staff_who_are_not_admins_are_refused(remote, phone, setup):
    login(remote)  # alice, staff of the branch
    assert remote.get("/api/v1/virtual-phone/numbers").status_code == 403
    assert remote.get("/virtual-phone").status_code == 403
    assert send(remote, **REMOTE).status_code == 403
    assert phone.sent_from(NUMBER) == []


def test_admins_may_use_it_from_anywhere(remote, phone, setup):
    make_staff("root", "admin password", role="admin")
    db.session.commit()
    login(remote, "root", "admin password")
    for path in PAGES:
        assert remote.get(path).status_code == 200, path
    assert send(remote, **REMOTE).status_code == 202


@pytest.mark.parametrize(("peer", "forwarded", "local"), [
    ("127.0.0.1", "10.1.2.3", False),  # the proxy forwards a remote client
    ("127.0.0.1", "127.0.0.1, 10.1.2.3", False),  # the client's own forged entry is not the proxy's
    ("127.0.0.1", "127.0.0.1", True),  # a browser on the proxy's machine
    ("10.1.2.3", "127.0.0.1", True),  # a proxy elsewhere vouches for a client on its loopback
])
def test_behind_one_trusted_proxy_the_forwarded_address_decides(tmp_path, clock, vm, peer, forwarded, local):
    app = build_app(f"sqlite:///{tmp_path / 'seed.db'}", clock, tmp_path, TRUSTED_PROXIES="1")
    app.extensions["seed.virtual_modem"] = vm
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = peer
    response = client.get("/api/v1/virtual-phone/numbers", headers={"X-Forwarded-For": forwarded})
    assert (response.status_code == 200) is local, response.status_code
