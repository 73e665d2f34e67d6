"""Services settings: the page, the JSON API and the CLI all go through core/settings/services.py;
refused input gets an error per field and changes nothing; a manager reaches only their branches."""
import pytest
from sqlalchemy import create_engine, func, select, text

from core import engine
from core.audit import AuditEntry
from core.errors import ValidationError
from core.extensions import db
from core.models import Branch, Service
from core.settings import services as settings

from .helpers import at_once, csrf_token, login, make_branch, make_counter, make_service, make_staff, submit


@pytest.fixture
def world(app):
    """Branch one (en/ja/ka, services A and B, counters 1 and 2) with manager alice and staff sam;
    branch two (service A, counter 1) with manager bob."""
    one, two = make_branch("Branch One"), make_branch("Branch Two")
    a, b = make_service(one, "A", "General", names={"en": "General"}), make_service(one, "B", "Payments")
    c1, c2 = make_counter(one, "1", [a]), make_counter(one, "2", [a, b])
    theirs = make_service(two, "A", "Theirs")
    their_counter = make_counter(two, "1", [theirs])
    make_staff("alice", role="manager", branch=one)
    make_staff("sam", branch=one)
    make_staff("bob", role="manager", branch=two)
    db.session.commit()
    return {"one": one, "two": two, "a": a, "b": b, "c1": c1, "c2": c2, "theirs": theirs,
            "their_counter": their_counter}


def snapshot():
    """Every service as it is stored, with its counters: to prove a refusal changed nothing."""
    db.session.expire_all()
    return sorted((settings.describe(s)["id"], repr(sorted(settings.describe(s).items())))
                  for s in db.session.scalars(select(Service)))


FULL = {"code": "C", "names.en": "Cash desk", "names.ja": "会計", "names.ka": "სალარო", "avg_service_minutes": "3",
        "target_wait_minutes": "20", "priority": "2", "position": "", "active": "on", "slot_minutes": "15",
        "slot_capacity": "1"}
EDIT = {**FULL, "position": "0"}  # an edit page shows the position it has
PAUSED = {key: value for key, value in EDIT.items() if key != "active"}  # an unticked box is not sent


# --- pages ---------------------------------------------------------------------------------------

def test_a_manager_adds_a_service_named_in_three_languages(client, world):
    login(client, "alice")
    response = submit(client, f"/admin/services/new?branch={world['one'].id}",
                    {**FULL, "counters[]": [str(world["c1"].id), str(world["c2"].id)]})
    assert response.status_code == 302, response.text
    service = db.session.scalar(select(Service).where(Service.branch_id == world["one"].id, Service.code == "C"))
    assert service.name == "Cash desk" and service.names == {"en": "Cash desk", "ja": "会計", "ka": "სალარო"}
    assert (service.avg_service_minutes, service.target_wait_minutes, service.priority, service.active) == (3, 20, 2, True)
    assert sorted(c.id for c in service.counters) == sorted([world["c1"].id, world["c2"].id])
    assert service.position > max(world["a"].position, world["b"].position)  # new ones come last
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.target == f"service:{service.id}"))
    assert (entry.action, entry.actor, entry.branch_id) == ("settings.changed", "alice", world["one"].id)

    listing = client.get(f"/admin/services?branch={world['one'].id}").text
    assert '<span lang="ja" class="service-name">会計</span>' in listing
    assert '<span lang="ka" class="service-name">სალარო</span>' in listing
    edit = client.get(f"/admin/services/{service.id}").text
    assert 'lang="ja"' in edit and 'value="会計"' in edit and 'lang="ka"' in edit


@pytest.mark.parametrize(("field", "value", "error"), [
    ("code", "AB", "one letter"),
    ("code", "ı", "one letter"),  # upper() would make it I
    ("code", "a", "has a service A already"),  # codes are upper-cased, then taken
    ("avg_service_minutes", "0", "from 1 to 480"),
    ("target_wait_minutes", "481", "from 1 to 480"),
    ("priority", "10", "from 0 to 9"),
    ("position", "1000", "from 0 to 999"),
    ("slot_minutes", "4", "from 5 to 480"),
    ("slot_capacity", "many", "from 1 to 100"),
    ("names.en", "", "the branch's language"),
    ("names.ja", "x" * 81, "1 to 80 characters"),
])
def test_refused_fields_are_marked_and_nothing_changes(client, world, field, value, error):
    login(client, "alice")
    before = snapshot()
    response = submit(client, f"/admin/services/new?branch={world['one'].id}", {**FULL, field: value})
    assert response.status_code == 400
    assert f'id="err-{field}"' in response.text and error in response.text.replace("&#39;", "'")
    assert 'aria-invalid="true"' in response.text
    assert f'value="{value}"' in response.text or value == ""  # what was typed is kept
    assert snapshot() == before


def test_every_refused_field_at_once_on_edit_and_nothing_changes(client, world):
    login(client, "alice")
    before = snapshot()
    response = submit(client, f"/admin/services/{world['a'].id}",
                    {**EDIT, "code": "B", "names.en": "Renamed", "priority": "-1",
                     "counters[]": [str(world["c1"].id), str(world["their_counter"].id)]})
    assert response.status_code == 400
    for field in ("code", "priority", "counters"):
        assert f'id="err-{field}"' in response.text, field
    assert "Choose counters of this branch" in response.text
    assert snapshot() == before


def test_hostile_names_are_stored_as_text_and_shown_escaped(client, world):
    login(client, "alice")
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    response = submit(client, f"/admin/services/{world['a'].id}", {**EDIT, "code": "A", "names.ja": hostile})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Service, world["a"].id).names["ja"] == hostile
    for page in (client.get(f"/admin/services?branch={world['one'].id}").text,
                 client.get(f"/admin/services/{world['a'].id}").text):
        assert hostile not in page and "<script>alert" not in page and "&lt;script&gt;" in page


def test_pause_and_kiosk_order(client, world):
    login(client, "alice")
    a, b = world["a"], world["b"]
    assert submit(client, f"/admin/services/{b.id}", PAUSED | {"code": "B", "names.en": "Payments"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Service, b.id).active is False
    assert "Paused" in client.get(f"/admin/services?branch={world['one'].id}").text

    codes = lambda: [s.code for s in settings.in_kiosk_order(db.session.get(Branch, world["one"].id))]  # noqa: E731
    assert codes() == ["A", "B"]  # both at 0: by code
    listing = client.get(f"/admin/services?branch={world['one'].id}")
    client.post(f"/admin/services/{b.id}/move", data={"direction": "up", "csrf_token": csrf_token(listing.text)})
    db.session.expire_all()
    assert codes() == ["B", "A"]
    client.post(f"/admin/services/{b.id}/move", data={"direction": "up", "csrf_token": csrf_token(listing.text)})
    db.session.expire_all()
    assert codes() == ["B", "A"]  # already first
    client.post(f"/admin/services/{b.id}/move", data={"direction": "down", "csrf_token": csrf_token(listing.text)})
    db.session.expire_all()
    assert codes() == ["A", "B"]


def test_a_code_changes_only_on_a_day_without_tickets(client, world, clock):
    a = world["a"]
    settings.update(a, {"code": "D"})
    assert db.session.get(Service, a.id).code == "D"
    ticket = engine.issue_ticket(a.id)
    assert ticket.label == "D001"
    with pytest.raises(ValidationError) as refused:
        settings.update(a, {"code": "E"})
    assert "tomorrow" in refused.value.detail["code"]
    clock.advance(days=1)
    assert settings.update(a, {"code": "E"}).code == "E"


def test_a_new_ticket_starts_with_its_services_priority(world):
    settings.update(world["b"], {"priority": 7})
    assert engine.issue_ticket(world["b"].id).priority == 7
    assert engine.issue_ticket(world["a"].id).priority == 0
    assert engine.issue_ticket(world["b"].id, priority=1).priority == 1  # staff may choose another


# --- who may ---------------------------------------------------------------------------------------

def test_staff_get_403_everywhere(client, world):
    login(client, "sam")
    a = world["a"].id
    for path in ("/admin/services", f"/admin/services/new?branch={world['one'].id}", f"/admin/services/{a}",
                 "/api/v1/admin/services", f"/api/v1/admin/services/{a}"):
        assert client.get(path).status_code == 403, path
    assert client.put(f"/api/v1/admin/services/{a}", json={"priority": 5}).status_code == 403
    assert client.post("/api/v1/admin/services", json={"code": "Z", "names": {"en": "Z"}}).status_code == 403


def test_the_manager_of_branch_two_cannot_touch_branch_ones_services(client, world, app):
    login(client, "bob")
    app.config["WTF_CSRF_ENABLED"] = False  # reach the scope rule
    one, a = world["one"].id, world["a"].id
    before = snapshot()
    for path in (f"/admin/services?branch={one}", f"/admin/services/new?branch={one}", f"/admin/services/{a}",
                 f"/api/v1/admin/services?branch={one}", f"/api/v1/admin/services/{a}"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/admin/services/new?branch={one}", data=FULL).status_code == 404
    assert client.post(f"/admin/services/{a}", data=FULL).status_code == 404
    assert client.post(f"/admin/services/{a}/move", data={"direction": "down"}).status_code == 404
    assert client.post("/api/v1/admin/services", json={"branch": one, "code": "Z", "names": {"en": "Z"}}).status_code == 404
    assert client.put(f"/api/v1/admin/services/{a}", json={"priority": 5}).status_code == 404
    # their own service cannot take branch one's counter either
    response = client.put(f"/api/v1/admin/services/{world['theirs'].id}", json={"counters": [world["c1"].id]})
    assert response.status_code == 400 and "counters" in response.json["detail"]
    assert snapshot() == before
    own = client.get("/api/v1/admin/services").json
    assert [s["code"] for s in own["services"]] == ["A"] and own["branch"] == world["two"].id


# --- JSON --------------------------------------------------------------------------------------------

def test_json_create_read_update(client, world):
    login(client, "alice")
    one = world["one"].id
    created = client.post("/api/v1/admin/services", json={
        "branch": one, "code": "k", "names": {"en": "Passports", "ja": "旅券"}, "avg_service_minutes": 12,
        "target_wait_minutes": 30, "priority": 3, "counters": [world["c2"].id], "slot_minutes": 20, "slot_capacity": 2})
    assert created.status_code == 201, created.json
    service = created.json
    assert set(service) == {"id", "branch", "code", "name", "names", "avg_service_minutes", "target_wait_minutes",
                            "priority", "position", "active", "counters", "slot_minutes", "slot_capacity"}
    assert (service["code"], service["name"], service["branch"], service["counters"]) == ("K", "Passports", one, [world["c2"].id])
    assert service["names"] == {"en": "Passports", "ja": "旅券"} and service["active"] is True

    changed = client.put(f"/api/v1/admin/services/{service['id']}", json={"names": {"ka": "პასპორტები", "ja": ""},
                                                                          "active": False})
    assert changed.status_code == 200
    assert changed.json["names"] == {"en": "Passports", "ka": "პასპორტები"} and changed.json["active"] is False
    assert changed.json["priority"] == 3  # not given, not changed
    round_trip = client.get(f"/api/v1/admin/services/{service['id']}").json
    assert client.put(f"/api/v1/admin/services/{service['id']}", json=round_trip).json == round_trip
    listed = client.get(f"/api/v1/admin/services?branch={one}").json["services"]
    assert [s["code"] for s in listed] == ["A", "B", "K"]


def test_json_refusals_name_each_field_and_change_nothing(client, world):
    login(client, "alice")
    before = snapshot()
    response = client.post("/api/v1/admin/services", json={
        "branch": world["one"].id, "code": "B", "names": {"ja": "名前", "fr": "Nom"}, "avg_service_minutes": 2.5,
        "priority": True, "active": "maybe", "counters": [world["their_counter"].id], "colour": "red"})
    assert response.status_code == 400
    assert set(response.json["detail"]) == {"colour"}  # an unknown setting first: a typo must not pass silently
    response = client.post("/api/v1/admin/services", json={
        "branch": world["one"].id, "code": "B", "names": {"ja": "一行\n二行", "fr": "Nom"}, "avg_service_minutes": 2.5,
        "priority": True, "active": "maybe", "counters": [world["their_counter"].id]})
    assert response.status_code == 400
    assert set(response.json["detail"]) == {"code", "names.ja", "names.fr", "names.en", "avg_service_minutes",
                                            "priority", "active", "counters"}
    bad_put = client.put(f"/api/v1/admin/services/{world['a'].id}", json={"priority": 5, "slot_capacity": 0})
    assert bad_put.status_code == 400 and set(bad_put.json["detail"]) == {"slot_capacity"}
    assert client.post("/api/v1/admin/services", data="code=C").status_code == 415
    assert snapshot() == before


# --- CLI -------------------------------------------------------------------------------------------

def test_cli_names_services_in_each_language(runner, world):
    one = str(world["one"].id)
    result = runner.invoke(args=["service", "create", "c", "Cash desk", "--name-ja", "会計", "--names", "ka=სალარო",
                                 "--priority", "4", "--counters", "2", "--paused", "--branch", one])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    service = db.session.scalar(select(Service).where(Service.branch_id == world["one"].id, Service.code == "C"))
    assert service.names == {"en": "Cash desk", "ja": "会計", "ka": "სალარო"}
    assert (service.priority, service.active, [c.name for c in service.counters]) == (4, False, ["2"])
    listing = runner.invoke(args=["service", "list", "--branch", one]).output
    assert "C  Cash desk (paused)" in listing and "ja: 会計" in listing

    assert runner.invoke(args=["service", "set", "C", "--active", "--name-ka", "", "--target", "25",
                               "--branch", one]).exit_code == 0
    db.session.expire_all()
    service = db.session.get(Service, service.id)
    assert service.active and service.target_wait_minutes == 25 and "ka" not in service.names

    before = snapshot()
    refused = runner.invoke(args=["service", "set", "C", "--code", "A", "--priority", "12", "--branch", one])
    assert refused.exit_code != 0
    assert "code: Branch One has a service A already." in refused.output and "priority: Give a whole number" in refused.output
    assert snapshot() == before


# --- storage: SQLite and PostgreSQL ------------------------------------------------------------------

def test_one_of_two_creates_of_a_code_wins_the_other_gets_a_field_error(any_db_app):
    app = any_db_app
    branch = make_branch()
    db.session.commit()
    branch_id = branch.id

    def create(index):
        settings.create(db.session.get(Branch, branch_id), {"code": "C", "names": {"en": f"Cash {index}"}})

    outcomes = at_once(app, range(8), create)
    assert outcomes.count("done") == 1, outcomes
    assert all(o == {"code": "Test Branch has a service C already."} for o in outcomes if o != "done"), outcomes
    db.session.rollback()
    assert db.session.scalar(select(func.count(Service.id))) == 1


def test_a_code_taken_between_the_check_and_the_insert_is_a_field_error(any_db_app, monkeypatch):
    """The unique constraint decides last: a row another process committed after our check."""
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite's write lock is held from the check to the commit: nobody can get in between")
    branch = make_branch()
    db.session.commit()
    other = create_engine(db.engine.url)
    checked = settings._validated

    def then_someone_else_inserts(session, *args):
        values = checked(session, *args)
        with other.begin() as connection:
            connection.execute(text("INSERT INTO service (branch_id, code, name, names, avg_service_minutes, active, "
                                    "target_wait_minutes, priority, position, slot_minutes, slot_capacity) VALUES "
                                    "(:b, 'C', 'Theirs', '{}', 5, true, 15, 0, 0, 15, 1)"), {"b": branch.id})
        return values

    monkeypatch.setattr(settings, "_validated", then_someone_else_inserts)
    with pytest.raises(ValidationError) as refused:
        settings.create(branch, {"code": "C", "names": {"en": "Ours"}})
    other.dispose()
    assert refused.value.detail == {"code": "Test Branch has a service C already."}
    assert db.session.scalar(select(Service.name).where(Service.code == "C")) == "Theirs"


def test_a_refused_update_changes_nothing_in_storage(any_db_app):
    branch = make_branch()
    a, b = make_service(branch, "A"), make_service(branch, "B")
    counter = make_counter(branch, "1", [a])
    db.session.commit()
    before = snapshot()
    with pytest.raises(ValidationError):
        settings.update(a, {"names": {"en": "New"}, "priority": 3, "counters": [], "code": "B"})
    assert snapshot() == before
    settings.update(a, {"names": {"en": "New"}, "priority": 3, "counters": [], "code": "Z"})
    db.session.expire_all()
    stored = db.session.get(Service, a.id)
    assert (stored.name, stored.priority, stored.code, stored.counters) == ("New", 3, "Z", [])
    assert db.session.get(Service, b.id).code == "B" and counter.services == []
