"""Open Socket.IO connections are capped per client address (SOCKETS_PER_ADDRESS): one machine
on the network cannot hold every connection the server has. Spoken over Engine.IO's own
polling handshake, the first thing every screen, console and status page sends."""
import json

import pytest

from core.database import upgrade_database
from core.extensions import db

from .conftest import build_app

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


@pytest.fixture
def capped(tmp_path, clock):
    def make(**extra):
        app = build_app(f"sqlite:///{tmp_path / 'seed.db'}", clock, tmp_path, **{"SOCKETS_PER_ADDRESS": 3, **extra})
        upgrade_database(app)
        return app
    made = []
    yield lambda **extra: made.append(make(**extra)) or made[-1]
    for app in made:
        with app.app_context():
            db.engine.dispose()


def open_session(client, address=None, **headers):
    environ = {"REMOTE_ADDR": address} if address else {}
    response = client.get(HANDSHAKE, environ_base=environ, headers=headers)
    if response.status_code != 200:
        return response, None
    return response, json.loads(response.get_data(as_text=True)[1:])["sid"]  # "0{...}": the open packet


def close_session(client, sid, address):
    response = client.post(f"{HANDSHAKE}&sid={sid}", data="1", environ_base={"REMOTE_ADDR": address},
                           content_type="text/plain;charset=UTF-8")
    assert response.status_code == 200


def test_one_address_gets_its_cap_and_no_more(capped):
    app = capped()
    client = app.test_client()
    sids = [open_session(client, "10.0.0.5")[1] for _ in range(3)]
    assert all(sids) and len(set(sids)) == 3

    refused, sid = open_session(client, "10.0.0.5")
    assert sid is None and refused.status_code == 401
    assert "Too many open connections" in refused.get_data(as_text=True)
    assert len(app.extensions["socketio"].server.eio.sockets) == 3  # nothing kept for the refused one

    other, other_sid = open_session(client, "10.0.0.6")  # another machine is not affected
    assert other.status_code == 200 and other_sid


def test_a_closed_connection_frees_its_place(capped):
    app = capped()
    client = app.test_client()
    sids = [open_session(client, "10.0.0.5")[1] for _ in range(3)]
    assert open_session(client, "10.0.0.5")[1] is None

    close_session(client, sids[0], "10.0.0.5")
    assert app.extensions["seed.socket_cap"].open["10.0.0.5"] == 2
    assert open_session(client, "10.0.0.5")[1] is not None
    assert open_session(client, "10.0.0.5")[1] is None


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(capped):
    app = capped(TRUSTED_PROXIES=1)
    client = app.test_client()
    for _ in range(3):
        assert open_session(client, "127.0.0.1", **{"X-Forwarded-For": "203.0.113.7"})[1]
    assert open_session(client, "127.0.0.1", **{"X-Forwarded-For": "203.0.113.7"})[1] is None
    # the proxy's own address holds nothing: another client behind it still connects
    assert open_session(client, "127.0.0.1", **{"X-Forwarded-For": "203.0.113.8"})[1]


def test_without_a_trusted_proxy_a_forged_header_changes_nothing(capped):
    app = capped()
    client = app.test_client()
    for number in range(3):
        assert open_session(client, "10.0.0.9", **{"X-Forwarded-For": f"198.51.100.{number}"})[1]
    assert open_session(client, "10.0.0.9", **{"X-Forwarded-For": "198.51.100.99"})[1] is None


def test_zero_means_no_cap(capped):
    app = capped(SOCKETS_PER_ADDRESS=0)
    client = app.test_client()
    assert all(open_session(client, "10.0.0.5")[1] for _ in range(10))


def test_the_cap_comes_from_the_environment(tmp_path, clock, monkeypatch):
    monkeypatch.setenv("SOCKETS_PER_ADDRESS", "2")
    app = build_app(f"sqlite:///{tmp_path / 'seed.db'}", clock, tmp_path)
    assert app.extensions["seed.socket_cap"].limit == 2
