"""Staff accounts from the browser, the JSON API and the command line (issue 12, "Users"): one
service layer (core/settings/users.py) beneath all three, the scope rule for managers, sessions
that end at once, the last administrator kept, and each person's own language."""
import json

import pytest
from sqlalchemy import func, select

from core import audit
from core.errors import ValidationError
from core.extensions import db
from core.models import StaffUser
from core.settings import users

from .helpers import at_once, bearer, csrf_token, login, make_branch, make_staff

PASSWORD = "correct horse"


@pytest.fixture
def people(app):
    """Branches one and two; root (admin of everything), mona (manager of one), sam (staff of one),
    tess (staff of two only), bo (staff of one and two), ada (an admin whose home is one)."""
    one, two = make_branch("Branch One"), make_branch("Branch Two")
    make_staff("root", role="admin")
    make_staff("mona", role="manager", branch=one)
    make_staff("sam", branch=one)
    make_staff("tess", branch=two)
    bo = make_staff("bo", branch=one)
    bo.other_branches = [two]
    make_staff("ada", role="admin", branch=one)
    db.session.commit()
    return {"one": one.id, "two": two.id, **{u.username: u.id for u in db.session.scalars(select(StaffUser))}}


def user(username) -> StaffUser:
    db.session.rollback()  # see what the requests committed
    return db.session.scalar(select(StaffUser).where(StaffUser.username == username))


def count_users() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(StaffUser))


def entries() -> list:
    db.session.rollback()
    return db.session.scalars(select(audit.AuditEntry).order_by(audit.AuditEntry.id)).all()


def as_(client, username):
    login(client, username, PASSWORD)
    return client


def post_form(client, url, data=None):
    token = csrf_token(client.get("/staff/password").text)
    return client.post(url, data={**(data or {}), "csrf_token": token})


def signed_in(client) -> bool:
    return client.get("/staff/password").status_code == 200


# --- JSON: create, read, update ----------------------------------------------------------------

def test_an_admin_creates_an_account_whose_generated_password_signs_in(client, app, people):
    as_(client, "root")
    created = client.post("/api/v1/admin/users", json={
        "username": "nina", "display_name": "Nina", "role": "manager", "branches": [people["two"], people["one"]],
        "language": "ja"})
    assert created.status_code == 201, created.json
    assert created.headers["Cache-Control"] == "no-store"
    shown = created.json["user"]
    assert shown == {"id": shown["id"], "username": "nina", "display_name": "Nina", "role": "manager",
                     "branches": [people["two"], people["one"]], "language": "ja", "active": True, "editable": True}
    password = created.json["password"]
    assert user("nina").branch_ids == [people["two"], people["one"]]  # the home branch first
    entry = entries()[-1]
    assert (entry.action, entry.target, entry.branch_id) == ("user.created", "user:nina", people["two"])
    assert password not in json.dumps(entry.detail)
    other = app.test_client()
    login(other, "nina", password)
    assert signed_in(other)


def test_json_never_shows_a_password_hash(client, people):
    as_(client, "root")
    for path in ("/api/v1/admin/users", f"/api/v1/admin/users/{people['sam']}"):
        response = client.get(path)
        assert response.status_code == 200
        assert "pbkdf2" not in response.text and "password" not in response.text and "epoch" not in response.text
    assert client.get(f"/api/v1/admin/users/{people['sam']}").json["user"]["username"] == "sam"


def test_every_field_error_at_once_and_nothing_changes(client, people):
    as_(client, "root")
    before, logged = count_users(), len(entries())
    refused = client.post("/api/v1/admin/users", json={
        "username": "no spaces", "display_name": "", "role": "chief", "branches": [99999], "language": "fr",
        "password": "short"})
    assert refused.status_code == 400
    assert set(refused.json["detail"]) == {"username", "display_name", "role", "branches", "language", "password"}
    assert (count_users(), len(entries())) == (before, logged)

    sam = user("sam")
    refused = client.put(f"/api/v1/admin/users/{people['sam']}", json={
        "display_name": "Samuel", "branches": ["x"], "active": "no"})
    assert refused.status_code == 400 and set(refused.json["detail"]) == {"branches", "active"}
    assert user("sam").display_name == sam.display_name and len(entries()) == logged  # not even the valid name


def test_a_username_clashes_whatever_its_case(client, people):
    as_(client, "root")
    refused = client.post("/api/v1/admin/users", json={"username": "SAM", "display_name": "Sam two",
                                                       "branches": [people["one"]]})
    assert refused.status_code == 400 and set(refused.json["detail"]) == {"username"}
    renamed = client.put(f"/api/v1/admin/users/{people['tess']}", json={"username": "Mona"})
    assert renamed.status_code == 400 and "username" in renamed.json["detail"]
    assert client.put(f"/api/v1/admin/users/{people['tess']}", json={"username": "Tess"}).status_code == 200


def test_staff_and_managers_need_a_branch_admins_do_not(client, people):
    as_(client, "root")
    response = client.post("/api/v1/admin/users", json={"username": "nobody", "display_name": "N", "branches": []})
    assert response.status_code == 400 and set(response.json["detail"]) == {"branches"}
    made = client.post("/api/v1/admin/users", json={"username": "boss", "display_name": "B", "role": "admin"})
    assert made.status_code == 201 and made.json["user"]["branches"] == []
    assert client.put(f"/api/v1/admin/users/{made.json['user']['id']}", json={"role": "staff"}).status_code == 400


def test_update_changes_only_the_fields_given_and_is_audited(client, people):
    as_(client, "root")
    response = client.put(f"/api/v1/admin/users/{people['sam']}", json={
        "role": "manager", "branches": [people["two"], people["one"]], "language": "ka"})
    assert response.status_code == 200, response.json
    sam = user("sam")
    assert (sam.role, sam.branch_ids, sam.language, sam.display_name) == ("manager", [people["two"], people["one"]],
                                                                          "ka", "Sam")
    entry = entries()[-1]
    assert (entry.action, entry.target) == ("settings.changed", "user:sam")
    assert entry.detail == {"fields": ["role", "language", "branches"], "role": "manager", "language": "ka",
                            "branches": [people["two"], people["one"]]}
    assert client.put(f"/api/v1/admin/users/{people['sam']}", json={"password": "a new long one"}).status_code == 400


def test_an_api_token_of_an_admin_may_manage_accounts(client, people):
    headers = bearer("root")
    assert client.get("/api/v1/admin/users", headers=headers).status_code == 200
    response = client.put(f"/api/v1/admin/users/{people['sam']}", json={"active": False}, headers=headers)
    assert response.status_code == 200 and response.json["user"]["active"] is False


# --- who may ------------------------------------------------------------------------------------

def test_staff_get_403_everywhere(client, people):
    as_(client, "sam")
    sam = people["sam"]
    for path in ("/admin/users", "/admin/users/new", f"/admin/users/{sam}", f"/admin/users/{sam}/deactivate",
                 f"/admin/users/{sam}/reset-password", "/api/v1/admin/users", f"/api/v1/admin/users/{sam}"):
        assert client.get(path).status_code == 403, path
    for path in ("/admin/users/new", f"/admin/users/{sam}", f"/admin/users/{sam}/deactivate",
                 f"/admin/users/{sam}/reactivate", f"/admin/users/{sam}/reset-password"):
        assert post_form(client, path, {"username": "x1", "display_name": "X", "role": "manager",
                                        "home_branch": people["one"]}).status_code == 403, path
    new = {"username": "x1", "display_name": "X", "branches": [people["one"]]}
    assert client.post("/api/v1/admin/users", json=new).status_code == 403
    assert client.put(f"/api/v1/admin/users/{sam}", json={"role": "manager"}).status_code == 403
    assert client.post(f"/api/v1/admin/users/{sam}/reset-password", json={}).status_code == 403
    assert user("sam").role == "staff" and user("x1") is None and user("sam").check_password(PASSWORD)


def test_a_manager_sees_the_users_of_their_branches_only(client, people):
    as_(client, "mona")
    listed = {u["username"]: u for u in client.get("/api/v1/admin/users").json["users"]}
    assert set(listed) == {"ada", "bo", "mona", "sam"}  # tess is branch two's only; root has no branch
    assert listed["bo"]["branches"] == [people["one"]]  # branch two is not the manager's to know of
    assert listed["sam"]["editable"] and not listed["bo"]["editable"] and not listed["ada"]["editable"]
    page = client.get("/admin/users").text
    assert "sam" in page and "tess" not in page and "Branch Two" not in page
    assert client.get("/admin/users", query_string={"branch": people["two"]}).status_code == 404
    assert client.get("/api/v1/admin/users", query_string={"branch": people["two"]}).status_code == 404


def test_a_manager_cannot_see_or_change_another_branchs_user(client, people):
    as_(client, "mona")
    tess, logged = people["tess"], len(entries())
    for method, path in (("GET", f"/api/v1/admin/users/{tess}"), ("PUT", f"/api/v1/admin/users/{tess}"),
                         ("POST", f"/api/v1/admin/users/{tess}/reset-password"), ("GET", f"/admin/users/{tess}"),
                         ("GET", f"/admin/users/{tess}/deactivate"), ("GET", f"/admin/users/{tess}/reset-password")):
        # reset-password takes no field: one sent is refused (400) before the account is looked up
        body = {} if path.endswith("reset-password") else {"active": False}
        kwargs = {"json": body} if path.startswith("/api") and method != "GET" else {}
        assert client.open(path, method=method, **kwargs).status_code == 404, (method, path)
    for path in (f"/admin/users/{tess}", f"/admin/users/{tess}/deactivate", f"/admin/users/{tess}/reactivate",
                 f"/admin/users/{tess}/reset-password"):
        assert post_form(client, path, {"display_name": "Hacked"}).status_code == 404, path
    assert user("tess").active and user("tess").display_name == "Tess" and len(entries()) == logged
    assert client.get("/api/v1/admin/users/999999").status_code == 404


def test_a_manager_cannot_change_an_admin_or_someone_also_in_another_branch(client, people):
    as_(client, "mona")
    for name in ("bo", "ada"):
        ident = people[name]
        assert client.get(f"/api/v1/admin/users/{ident}").status_code == 200
        assert client.put(f"/api/v1/admin/users/{ident}", json={"active": False}).status_code == 403
        assert client.post(f"/api/v1/admin/users/{ident}/reset-password", json={}).status_code == 403
        assert client.get(f"/admin/users/{ident}/deactivate").status_code == 403
        assert post_form(client, f"/admin/users/{ident}", {"display_name": "X", "role": "staff",
                                                           "home_branch": people["one"]}).status_code == 403
        assert 'id="user-form"' not in client.get(f"/admin/users/{ident}").text  # shown, not offered
    assert user("bo").active and user("ada").role == "admin"


def test_a_manager_cannot_grant_admin_or_a_branch_beyond_reach(client, people):
    as_(client, "mona")
    before = count_users()
    admin = client.post("/api/v1/admin/users", json={"username": "evil", "display_name": "E", "role": "admin",
                                                     "branches": [people["one"]]})
    assert admin.status_code == 400 and set(admin.json["detail"]) == {"role"}
    beyond = client.post("/api/v1/admin/users", json={"username": "far", "display_name": "F",
                                                      "branches": [people["one"], people["two"]]})
    unknown = client.post("/api/v1/admin/users", json={"username": "far", "display_name": "F",
                                                       "branches": [99999]})
    assert beyond.status_code == unknown.status_code == 400
    assert beyond.json["detail"] == unknown.json["detail"]  # another branch's existence is not confirmed
    assert client.put(f"/api/v1/admin/users/{people['sam']}", json={"role": "admin"}).status_code == 400
    assert client.put(f"/api/v1/admin/users/{people['sam']}", json={"branches": [people["two"]]}).status_code == 400
    assert count_users() == before and user("sam").role == "staff" and user("sam").branch_ids == [people["one"]]
    form = post_form(client, "/admin/users/new", {"username": "evil", "display_name": "E", "role": "admin",
                                                 "home_branch": people["one"]})
    assert form.status_code == 400 and 'id="err-role"' in form.text and count_users() == before
    assert 'value="admin"' not in client.get("/admin/users/new").text  # not even offered


def test_a_manager_manages_staff_and_managers_of_their_branch(client, people):
    as_(client, "mona")
    made = client.post("/api/v1/admin/users", json={"username": "kai", "display_name": "Kai",
                                                    "branches": [people["one"]]})
    assert made.status_code == 201
    promoted = client.put(f"/api/v1/admin/users/{people['sam']}", json={"role": "manager"})
    assert promoted.status_code == 200 and user("sam").role == "manager"
    assert client.put(f"/api/v1/admin/users/{made.json['user']['id']}", json={"active": False}).status_code == 200
    assert user("kai").active is False
    reset = client.post(f"/api/v1/admin/users/{people['sam']}/reset-password", json={})
    assert reset.status_code == 200 and user("sam").check_password(reset.json["password"])


# --- sessions end -------------------------------------------------------------------------------

def test_a_deactivated_persons_session_ends_at_once(client, app, people):
    sam = as_(app.test_client(), "sam")
    assert signed_in(sam)
    kept = sam.get_cookie("session").value  # a copy of the session, as a second tab or a thief holds it
    as_(client, "root")
    confirm = client.get(f"/admin/users/{people['sam']}/deactivate")
    assert confirm.status_code == 200 and 'id="confirm"' in confirm.text and user("sam").active  # asked, not done
    response = post_form(client, f"/admin/users/{people['sam']}/deactivate")
    assert response.status_code == 302 and user("sam").active is False
    assert not signed_in(sam)
    assert sam.get("/api/v1/queues").status_code == 401
    post_form(client, f"/admin/users/{people['sam']}/reactivate")
    assert user("sam").active
    replay = app.test_client()
    replay.set_cookie("session", kept)
    assert not signed_in(replay)  # reactivating does not bring the old session back
    assert signed_in(as_(sam, "sam"))  # a new sign-in works


def test_a_reset_shows_a_new_password_once_and_ends_sessions(client, app, people):
    sam = as_(app.test_client(), "sam")
    as_(client, "mona")
    confirm = client.get(f"/admin/users/{people['sam']}/reset-password")
    assert confirm.status_code == 200 and user("sam").check_password(PASSWORD)
    response = post_form(client, f"/admin/users/{people['sam']}/reset-password")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    shown = response.text.split('<code id="password">')[1].split("</code>")[0]
    assert user("sam").check_password(shown) and not user("sam").check_password(PASSWORD)
    assert not signed_in(sam)
    assert shown not in client.get(f"/admin/users/{people['sam']}").text  # once
    entry = entries()[-1]
    assert (entry.action, entry.target, entry.actor) == ("user.password_set", "user:sam", "mona")
    assert shown not in json.dumps(entry.detail)


def test_resetting_ones_own_password_keeps_this_session(client, people):
    as_(client, "root")
    response = post_form(client, f"/admin/users/{people['root']}/reset-password")
    assert response.status_code == 200 and signed_in(client)


# --- the last administrator ---------------------------------------------------------------------

def test_nobody_deactivates_themselves(client, people):
    as_(client, "root")
    response = client.put(f"/api/v1/admin/users/{people['root']}", json={"active": False})
    assert response.status_code == 400 and set(response.json["detail"]) == {"active"}
    page = post_form(client, f"/admin/users/{people['root']}/deactivate")
    assert page.status_code == 400 and user("root").active


def test_the_last_active_admin_cannot_be_deactivated_or_demoted(client, people, runner):
    as_(client, "root")
    assert client.put(f"/api/v1/admin/users/{people['ada']}", json={"active": False}).status_code == 200
    demoted = client.put(f"/api/v1/admin/users/{people['root']}", json={"role": "manager",
                                                                       "branches": [people["one"]]})
    assert demoted.status_code == 400 and "role" in demoted.json["detail"]
    result = runner.invoke(args=["user", "set", "root", "--inactive"])
    assert result.exit_code != 0 and "last active administrator" in result.output
    assert user("root").role == "admin" and user("root").active
    assert client.put(f"/api/v1/admin/users/{people['ada']}", json={"active": True}).status_code == 200
    assert client.put(f"/api/v1/admin/users/{people['root']}", json={"role": "manager",
                                                                    "branches": [people["one"]]}).status_code == 200


# --- pages --------------------------------------------------------------------------------------

def test_the_list_page_shows_each_account(client, people):
    as_(client, "root")
    page = client.get("/admin/users")
    assert page.status_code == 200
    row = page.text.split(f'data-user="{people["bo"]}"')[1].split("</tr>")[0]
    assert "bo" in row and "Staff" in row and "Branch One, Branch Two" in row and "2026-03-02 09:00" in row
    only_two = client.get("/admin/users", query_string={"branch": people["two"]}).text
    assert "tess" in only_two and ">sam<" not in only_two


@pytest.mark.parametrize("language", ["en", "ja", "ka"])
def test_the_pages_speak_each_language(client, people, language):
    as_(client, "root")
    headers = {"Accept-Language": language}
    for path in ("/admin/users", "/admin/users/new", f"/admin/users/{people['sam']}",
                 f"/admin/users/{people['sam']}/deactivate", f"/admin/users/{people['sam']}/reset-password"):
        response = client.get(path, headers=headers)
        assert response.status_code == 200 and f'lang="{language}"' in response.text, path


def test_a_new_account_by_the_form(client, people):
    as_(client, "root")
    response = post_form(client, "/admin/users/new", {
        "username": "lia", "display_name": "Lia", "role": "staff", "home_branch": people["two"],
        "branches": [people["one"], people["two"]], "language": "ka"})
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    shown = response.text.split('<code id="password">')[1].split("</code>")[0]
    lia = user("lia")
    assert lia.branch_ids == [people["two"], people["one"]] and lia.language == "ka" and lia.check_password(shown)


def test_a_refused_form_keeps_what_was_typed_and_changes_nothing(client, people):
    as_(client, "root")
    before, logged = count_users(), len(entries())
    response = post_form(client, "/admin/users/new", {"username": "x", "display_name": "Xenia Long",
                                                     "role": "staff", "home_branch": ""})
    assert response.status_code == 400
    assert 'id="err-username"' in response.text and 'id="err-branches"' in response.text
    assert 'value="Xenia Long"' in response.text
    assert (count_users(), len(entries())) == (before, logged)
    edit = post_form(client, f"/admin/users/{people['sam']}", {"username": "sam", "display_name": "",
                                                             "role": "staff", "home_branch": people["one"]})
    assert edit.status_code == 400 and 'id="err-display_name"' in edit.text and user("sam").display_name == "Sam"


def test_editing_by_the_form(client, people):
    as_(client, "mona")
    response = post_form(client, f"/admin/users/{people['sam']}", {
        "username": "samuel", "display_name": "Samuel", "role": "manager", "home_branch": people["one"],
        "language": ""})
    assert response.status_code == 302
    samuel = user("samuel")
    assert (samuel.id, samuel.display_name, samuel.role, samuel.language) == (people["sam"], "Samuel", "manager", None)
    assert entries()[-1].detail["was"] == "sam"


# --- one's own account --------------------------------------------------------------------------

def test_everyone_chooses_their_own_language(client, people):
    as_(client, "sam")
    page = client.get("/staff/password")
    assert page.status_code == 200 and "My account" in page.text
    saved = post_form(client, "/staff/language", {"language": "ja"})
    assert saved.status_code == 302 and user("sam").language == "ja"
    assert 'lang="ja"' in client.get("/staff/password", headers={"Accept-Language": "en"}).text
    refused = post_form(client, "/staff/language", {"language": "fr"})
    assert refused.status_code == 400 and user("sam").language == "ja"
    assert post_form(client, "/staff/language").status_code == 400
    post_form(client, "/staff/language", {"language": ""})
    assert user("sam").language is None
    assert 'lang="ka"' in client.get("/staff/password", headers={"Accept-Language": "ka"}).text
    assert entries()[-1].detail == {"fields": ["language"], "language": None}


# --- the command line ---------------------------------------------------------------------------

def test_the_command_line_uses_the_same_rules(runner, people):
    made = runner.invoke(args=["user", "create", "cleo", "--role", "manager", "--branch", str(people["two"]),
                               "--branch", str(people["one"])])
    assert made.exit_code == 0 and "Password (shown once):" in made.output
    assert user("cleo").branch_ids == [people["two"], people["one"]]
    clash = runner.invoke(args=["user", "create", "CLEO", "--password", "long enough pw"])
    assert clash.exit_code != 0 and "exists already" in clash.output
    changed = runner.invoke(args=["user", "set", "cleo", "--role", "staff", "--branch", str(people["one"]),
                                  "--language", "ja", "--inactive"])
    assert changed.exit_code == 0, changed.output
    cleo = user("cleo")
    assert (cleo.role, cleo.branch_ids, cleo.language, cleo.active) == ("staff", [people["one"]], "ja", False)
    refused = runner.invoke(args=["user", "set", "cleo", "--branch", "99999"])
    assert refused.exit_code != 0 and "no branch 99999" in refused.output and user("cleo").branch_ids == [people["one"]]
    assert runner.invoke(args=["user", "set", "nobody", "--active"]).exit_code != 0
    listed = runner.invoke(args=["user", "list"])
    assert "cleo" in listed.output and "(deactivated)" in listed.output and "tess" in listed.output


# --- the unique username under a race -----------------------------------------------------------

def test_two_creates_of_one_name_one_wins_the_other_is_a_field_error(any_db_app):
    app = any_db_app
    branch = make_branch()
    db.session.commit()
    branch_id = branch.id
    names = ["dora", "Dora", "DORA", "dorA", "doRa", "dOra"]
    outcomes = at_once(app, names, lambda name: users.create({"username": name, "display_name": name,
                                                              "branches": [branch_id]}))
    keys = [tuple(o) if isinstance(o, dict) else o for o in outcomes]
    assert keys.count("done") == 1 and keys.count(("username",)) == len(names) - 1, outcomes
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(StaffUser)
                             .where(func.lower(StaffUser.username) == "dora")) == 1


def test_the_databases_unique_index_is_a_field_error_too(any_db_app, monkeypatch):
    """Should a clash pass the check (a writer that does not take the lock), the insert's
    IntegrityError still becomes the username's field error, never a 500."""
    branch = make_branch()
    db.session.commit()
    users.create({"username": "eve", "display_name": "Eve", "branches": [branch.id]})
    real, calls = users._name_taken, []

    def blind_once(*args):
        calls.append(args)
        return False if len(calls) == 1 else real(*args)

    monkeypatch.setattr(users, "_name_taken", blind_once)
    with pytest.raises(ValidationError) as refused:
        users.create({"username": "eve", "display_name": "Eve again", "branches": [branch.id]})
    assert set(refused.value.detail) == {"username"}
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(StaffUser)) == 1
