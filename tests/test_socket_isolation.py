"""Every Socket.IO namespace the app serves, tried as staff of another branch, as a manager of
another branch and signed out: what the URL-map walk (test_isolation.py) does for routes, for the
live connections. A namespace added without a rule here fails the walk."""
import pytest

from core.extensions import db, socketio
from core.models import Ticket

from .helpers import login, make_branch, make_counter, make_service, make_staff


@pytest.fixture
def world(app):
    one, two = make_branch("One"), make_branch("Two")
    for branch in (one, two):
        make_counter(branch, "1", [make_service(branch, "A")], is_open=True)
    make_staff("bob", branch=two)
    make_staff("boss", role="manager", branch=two)
    make_staff("alice", role="manager", branch=one)
    db.session.commit()
    response = app.test_client().post("/api/v1/checkins", json={"branch": one.id, "service": "A"})
    assert response.status_code == 201
    ticket = db.session.get(Ticket, response.json["ticket"]["id"])
    return {"one": one.id, "two": two.id, "token": ticket.access_token}


# namespace -> (what a client sends for branch 1's data, who may have it). Displays are public
# screens (ticket numbers only, no names unless the branch turns them on); a status page's key is
# its ticket's secret link.
RULES = {
    "/display": (lambda w: {"branch": w["one"]}, {"anonymous", "bob", "boss", "alice"}),
    "/console": (lambda w: {"branch": w["one"]}, {"alice"}),
    "/reports/live": (lambda w: {"branch": w["one"]}, {"alice"}),
    "/status": (lambda w: {"token": w["token"]}, {"anonymous", "bob", "boss", "alice"}),
}
PEOPLE = ("anonymous", "bob", "boss", "alice")


def served_namespaces(app) -> set[str]:
    return set(app.extensions["socketio"].server.namespace_handlers) - {"/"}


def test_every_namespace_has_a_rule(app):
    assert served_namespaces(app) == set(RULES), "a new namespace needs a rule in RULES"


@pytest.mark.parametrize("person", PEOPLE)
def test_branch_one_live_data_reaches_only_who_may_see_it(app, world, person):
    client = app.test_client()
    if person != "anonymous":
        login(client, person)
    for namespace in sorted(served_namespaces(app)):
        auth, allowed = RULES[namespace]
        socket = socketio.test_client(app, namespace=namespace, auth=auth(world), flask_test_client=client)
        connected = socket.is_connected(namespace)
        assert connected == (person in allowed), (namespace, person)
        if connected:
            socket.disconnect(namespace=namespace)
        else:
            assert [p for p in socket.queue if p["namespace"] == namespace] == []  # nothing sent before the refusal


def test_a_status_link_is_the_only_key_to_its_ticket(app, world):
    for token in ("", "x" * 10, world["token"][:-1], world["token"] + "a"):
        socket = socketio.test_client(app, namespace="/status", auth={"token": token})
        assert not socket.is_connected("/status"), token
