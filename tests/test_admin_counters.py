"""Counters settings: page, JSON and CLI through core/settings/counters.py. A counter that served
a ticket cannot be deleted (its history names it); a refusal changes nothing; a manager reaches
only their branches' counters."""
import pytest
from sqlalchemy import func, select

from core import engine
from core.audit import AuditEntry
from core.errors import Conflict, ValidationError
from core.extensions import db
from core.models import Branch, Counter
from core.settings import counters as settings

from .helpers import at_once, csrf_token, login, make_branch, make_counter, make_service, make_staff, submit


@pytest.fixture
def world(app):
    """Branch one (services A, B; counters 1, 2) with manager alice and staff sam; branch two
    (service A, counter 1) with manager bob."""
    one, two = make_branch("Branch One"), make_branch("Branch Two")
    a, b = make_service(one, "A"), make_service(one, "B", names={"en": "Payments", "ja": "支払い"})
    c1, c2 = make_counter(one, "1", [a]), make_counter(one, "2", [a, b])
    theirs = make_service(two, "A")
    their_counter = make_counter(two, "1", [theirs])
    make_staff("alice", role="manager", branch=one)
    make_staff("sam", branch=one)
    make_staff("bob", role="manager", branch=two)
    db.session.commit()
    return {"one": one, "two": two, "a": a, "b": b, "c1": c1, "c2": c2, "theirs": theirs, "their_counter": their_counter}


def snapshot():
    db.session.expire_all()
    return sorted(repr(sorted(settings.describe(c).items())) for c in db.session.scalars(select(Counter)))


# --- pages ---------------------------------------------------------------------------------------

def test_a_manager_adds_and_renames_a_counter(client, world):
    login(client, "alice")
    one = world["one"].id
    response = submit(client, f"/admin/counters/new?branch={one}",
                    {"name": "Window 3", "services[]": [str(world["a"].id), str(world["b"].id)]})
    assert response.status_code == 302
    counter = db.session.scalar(select(Counter).where(Counter.branch_id == one, Counter.name == "Window 3"))
    assert sorted(s.code for s in counter.services) == ["A", "B"]
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.target == f"counter:{counter.id}")).actor == "alice"
    listing = client.get(f"/admin/counters?branch={one}").text
    assert "Window 3" in listing and "Counter Window 3 is saved." in listing

    assert submit(client, f"/admin/counters/{counter.id}", {"name": "3", "services[]": [str(world["b"].id)]}).status_code == 302
    db.session.expire_all()
    counter = db.session.get(Counter, counter.id)
    assert counter.name == "3" and [s.code for s in counter.services] == ["B"]
    # no box ticked: it serves nothing
    assert submit(client, f"/admin/counters/{counter.id}", {"name": "3"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Counter, counter.id).services == []


@pytest.mark.parametrize(("data", "field", "error"), [
    ({"name": "1"}, "name", "Branch One has a counter 1 already."),
    ({"name": ""}, "name", "1 to 20 characters"),
    ({"name": "x" * 21}, "name", "1 to 20 characters"),
    ({"name": "9", "services[]": ["999999"]}, "services", "Choose services of this branch."),
    ({"name": "9", "services[]": ["many"]}, "services", "Choose services of this branch."),
])
def test_refused_fields_are_marked_and_nothing_changes(client, world, data, field, error):
    login(client, "alice")
    before = snapshot()
    response = submit(client, f"/admin/counters/new?branch={world['one'].id}", data)
    assert response.status_code == 400
    assert f'id="err-{field}"' in response.text and error in response.text
    assert snapshot() == before


def test_another_branchs_service_is_a_field_error(client, world):
    login(client, "alice")
    before = snapshot()
    response = submit(client, f"/admin/counters/{world['c1'].id}",
                    {"name": "Renamed", "services[]": [str(world["a"].id), str(world["theirs"].id)]})
    assert response.status_code == 400 and 'id="err-services"' in response.text
    assert snapshot() == before


def test_names_are_escaped(client, world):
    login(client, "alice")
    assert submit(client, f"/admin/counters/{world['c1'].id}", {"name": "<b>1</b>"}).status_code == 302
    page = client.get(f"/admin/counters?branch={world['one'].id}").text
    assert "<b>1</b>" not in page and "&lt;b&gt;1&lt;/b&gt;" in page


def test_delete_only_a_counter_that_never_served(client, world, clock):
    login(client, "alice")
    c1, c2 = world["c1"], world["c2"]
    ticket = engine.issue_ticket(world["a"].id)
    engine.call_next(c1.id)
    engine.complete(ticket.id)
    engine.set_counter_open(c1.id, False)

    page = client.get(f"/admin/counters/{c1.id}").text
    assert 'id="delete-counter"' not in page and "Give it another name instead" in page
    response = client.post(f"/admin/counters/{c1.id}/delete", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 409 and "rename it instead" in response.text
    assert db.session.get(Counter, c1.id) is not None

    page = client.get(f"/admin/counters/{c2.id}").text
    assert 'id="delete-counter"' in page
    assert client.post(f"/admin/counters/{c2.id}/delete", data={"csrf_token": csrf_token(page)}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Counter, c2.id) is None


def test_a_counter_only_a_tickets_history_names_stays(world):
    """Called at counter 2, then transferred: the ticket no longer names it, its history does."""
    c2 = world["c2"]
    ticket = engine.issue_ticket(world["b"].id)
    assert engine.call_next(c2.id).id == ticket.id
    engine.transfer(ticket.id, world["a"].id)
    engine.set_counter_open(c2.id, False)
    db.session.expire_all()
    assert db.session.get(type(ticket), ticket.id).counter_id is None
    with pytest.raises(Conflict):
        settings.delete(db.session.get(Counter, c2.id))
    assert db.session.get(Counter, c2.id) is not None


def test_an_open_counter_is_not_deleted(world):
    engine.set_counter_open(world["c2"].id, True)
    with pytest.raises(Conflict) as refused:
        settings.delete(db.session.get(Counter, world["c2"].id))
    assert "close it" in refused.value.message


# --- who may ---------------------------------------------------------------------------------------

def test_staff_get_403_everywhere(client, world):
    login(client, "sam")
    c1 = world["c1"].id
    for path in ("/admin/counters", f"/admin/counters/new?branch={world['one'].id}", f"/admin/counters/{c1}",
                 "/api/v1/admin/counters", f"/api/v1/admin/counters/{c1}"):
        assert client.get(path).status_code == 403, path
    assert client.put(f"/api/v1/admin/counters/{c1}", json={"name": "x"}).status_code == 403
    assert client.delete(f"/api/v1/admin/counters/{c1}").status_code == 403


def test_the_manager_of_branch_two_cannot_touch_branch_ones_counters(client, world, app):
    login(client, "bob")
    app.config["WTF_CSRF_ENABLED"] = False  # reach the scope rule
    one, c1 = world["one"].id, world["c1"].id
    before = snapshot()
    for path in (f"/admin/counters?branch={one}", f"/admin/counters/new?branch={one}", f"/admin/counters/{c1}",
                 f"/api/v1/admin/counters?branch={one}", f"/api/v1/admin/counters/{c1}"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/admin/counters/new?branch={one}", data={"name": "9"}).status_code == 404
    assert client.post(f"/admin/counters/{c1}", data={"name": "9"}).status_code == 404
    assert client.post(f"/admin/counters/{c1}/delete").status_code == 404
    assert client.post("/api/v1/admin/counters", json={"branch": one, "name": "9"}).status_code == 404
    assert client.put(f"/api/v1/admin/counters/{c1}", json={"name": "9"}).status_code == 404
    assert client.delete(f"/api/v1/admin/counters/{c1}").status_code == 404
    mine = client.put(f"/api/v1/admin/counters/{world['their_counter'].id}", json={"services": [world["a"].id]})
    assert mine.status_code == 400 and set(mine.json["detail"]) == {"services"}
    assert snapshot() == before


# --- JSON --------------------------------------------------------------------------------------------

def test_json_create_read_update_delete(client, world):
    login(client, "alice")
    one = world["one"].id
    created = client.post("/api/v1/admin/counters", json={"branch": one, "name": "窓口3", "services": [world["b"].id]})
    assert created.status_code == 201
    assert created.json == {"id": created.json["id"], "branch": one, "name": "窓口3", "services": [world["b"].id],
                            "is_open": False}
    ident = created.json["id"]
    got = client.get(f"/api/v1/admin/counters/{ident}").json
    assert client.put(f"/api/v1/admin/counters/{ident}", json=got).json == got  # round trip
    renamed = client.put(f"/api/v1/admin/counters/{ident}", json={"name": "4"}).json
    assert renamed["name"] == "4" and renamed["services"] == [world["b"].id]
    assert [c["name"] for c in client.get(f"/api/v1/admin/counters?branch={one}").json["counters"]] == ["1", "2", "4"]
    bad = client.post("/api/v1/admin/counters", json={"branch": one, "name": "2", "services": "all"})
    assert bad.status_code == 400 and set(bad.json["detail"]) == {"name", "services"}
    assert client.delete(f"/api/v1/admin/counters/{ident}").status_code == 204
    ticket = engine.issue_ticket(world["a"].id)
    engine.call_next(world["c1"].id)
    engine.complete(ticket.id)
    engine.set_counter_open(world["c1"].id, False)
    refused = client.delete(f"/api/v1/admin/counters/{world['c1'].id}")
    assert refused.status_code == 409 and refused.json["error"] == "conflict"


# --- CLI -------------------------------------------------------------------------------------------

def test_cli_creates_renames_and_deletes(runner, world):
    one = str(world["one"].id)
    assert runner.invoke(args=["counter", "create", "3", "--services", "A,B", "--branch", one]).exit_code == 0
    assert runner.invoke(args=["counter", "set", "3", "--name", "Window 3", "--services", "B", "--branch", one]).exit_code == 0
    db.session.expire_all()
    counter = db.session.scalar(select(Counter).where(Counter.name == "Window 3"))
    assert [s.code for s in counter.services] == ["B"]
    before = snapshot()
    refused = runner.invoke(args=["counter", "set", "Window 3", "--name", "1", "--branch", one])
    assert refused.exit_code != 0 and "name: Branch One has a counter 1 already." in refused.output
    assert snapshot() == before
    assert runner.invoke(args=["counter", "delete", "Window 3", "--branch", one]).exit_code == 0
    db.session.expire_all()
    assert db.session.get(Counter, counter.id) is None


# --- storage: SQLite and PostgreSQL ------------------------------------------------------------------

def test_one_of_two_creates_of_a_name_wins_the_other_gets_a_field_error(any_db_app):
    app = any_db_app
    branch = make_branch()
    db.session.commit()
    branch_id = branch.id
    outcomes = at_once(app, range(8), lambda _index: settings.create(db.session.get(Branch, branch_id), {"name": "1"}))
    assert outcomes.count("done") == 1, outcomes
    assert all(o == {"name": "Test Branch has a counter 1 already."} for o in outcomes if o != "done"), outcomes
    db.session.rollback()
    assert db.session.scalar(select(func.count(Counter.id))) == 1


def test_a_refused_change_and_a_delete_in_storage(any_db_app):
    branch = make_branch()
    a = make_service(branch, "A")
    one, two = make_counter(branch, "1", [a]), make_counter(branch, "2")
    db.session.commit()
    before = snapshot()
    with pytest.raises(ValidationError):
        settings.update(one, {"name": "2", "services": []})
    assert snapshot() == before
    settings.delete(two)
    settings.update(one, {"name": "2", "services": []})
    db.session.expire_all()
    assert [(c.name, c.services) for c in db.session.scalars(select(Counter))] == [("2", [])]
