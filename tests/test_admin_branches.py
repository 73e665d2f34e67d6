"""Branch settings: the pages, the JSON API and `flask branch ...` call one service layer. Bad
zones, hours, colours, countries and logos get an error on their field and change nothing; a
manager reaches only their own branches; closures stop bookings on SQLite and PostgreSQL; and an
unknown SEED_TIMEZONE stops the start with a clear message."""
import base64
import io
import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import select, text

from app import create_app
from core import appointments, zones
from core.audit import AuditEntry
from core.config import ConfigError
from core.errors import NotFound, ValidationError
from core.extensions import db
from core.models import Branch, Closure
from core.settings import branches as settings
from core.settings import branding

from .helpers import bearer, csrf_token, login, make_branch, make_counter, make_service, make_staff


def png(size=(40, 20), colour=(29, 78, 216)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 30), (200, 10, 10)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def two(app):
    """Branch one with its manager and staff, branch two with its own; an administrator."""
    one, other = make_branch("Branch One"), make_branch("Branch Two", timezone="Asia/Tokyo", country="JP")
    for branch, name in ((one, "1"), (one, "2"), (other, "1")):
        make_counter(branch, name)
    make_staff("root", role="admin")
    make_staff("manny", role="manager", branch=one)
    make_staff("alice", branch=one)
    db.session.commit()
    return one, other


def fingerprint(branch_id) -> str:
    """The branch row, its closures and the logo files: what a refused change must leave alone."""
    db.session.rollback()
    row = db.session.execute(text("SELECT * FROM branch WHERE id = :b"), {"b": branch_id}).one()
    closures = db.session.execute(text("SELECT * FROM closure WHERE branch_id = :b ORDER BY id"),
                                  {"b": branch_id}).all()
    files = sorted(p.name for p in branding.folder().glob("*")) if branding.folder().exists() else []
    return repr((tuple(row), closures, files))


def page_form(branch, **changes) -> dict:
    """The edit form as the page sends it, with `changes`."""
    form = {"name": branch.name, "sender_name": branch.sender_name, "timezone": branch.timezone,
            "country": branch.country, "language": branch.default_language, "languages": ["en", "ja", "ka"],
            "primary": "#1d4ed8", "accent": "#f59e0b"}
    for day in ("mon", "tue", "wed", "thu", "fri"):
        form[f"hours-{day}-open-1"], form[f"hours-{day}-close-1"] = "09:00", "17:00"
        form[f"hours-{day}-open-2"], form[f"hours-{day}-close-2"] = "", ""
    for day in ("sat", "sun"):
        form[f"hours-{day}-closed"] = "on"
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}


def post_page(client, url, form, files=None):
    page = client.get(url)
    data = {**form, "csrf_token": csrf_token(page.text)}
    if files:
        data.update(files)
    return client.post(url, data=data, content_type="multipart/form-data")


# --- the pages ----------------------------------------------------------------------------------

def test_the_list_shows_each_branch_with_its_local_time(client, two):
    login(client, "root")
    page = client.get("/admin/branches")
    assert page.status_code == 200
    assert "Branch One" in page.text and "Branch Two" in page.text and "Asia/Tokyo" in page.text
    tokyo_row = re.search(r'<tr data-branch="%d">(.*?)</tr>' % two[1].id, page.text, re.S).group(1)
    assert "6:00\u202fPM" in tokyo_row or "6:00 PM" in tokyo_row  # 09:00 UTC is 18:00 in Tokyo
    one_row = re.search(r'<tr data-branch="%d">(.*?)</tr>' % two[0].id, page.text, re.S).group(1)
    assert re.search(r"<td>2</td>", one_row)  # two counters
    assert 'href="/admin/branches/new"' in page.text


def test_the_edit_page_saves_every_field(client, two):
    one = two[0]
    login(client, "root")
    form = page_form(one, name="Branch Uno", sender_name="Uno", timezone="Asia/Tbilisi", country="ge",
                     language="ka", languages=["ka", "en"], show_names="on", primary="#112233", accent="#AABBCC",
                     **{"hours-mon-close-1": "12:00", "hours-mon-open-2": "13:00", "hours-mon-close-2": "17:30",
                        "hours-fri-closed": "on"})
    response = post_page(client, f"/admin/branches/{one.id}", form)
    assert response.status_code == 302, response.text
    assert "saved" in client.get(response.location).text
    db.session.refresh(one)
    assert (one.name, one.sender_name, one.timezone, one.country) == ("Branch Uno", "Uno", "Asia/Tbilisi", "GE")
    assert (one.default_language, one.languages, one.show_names) == ("ka", ["ka", "en"], True)
    assert one.opening_hours["mon"] == [["09:00", "12:00"], ["13:00", "17:30"]]
    assert "fri" not in one.opening_hours and "sat" not in one.opening_hours
    assert one.branding == {"primary": "#112233", "accent": "#aabbcc"}
    entry = db.session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()))
    assert entry.action == "settings.changed" and entry.branch_id == one.id and "timezone" in entry.detail["fields"]


def test_the_zone_is_chosen_from_real_zones_only(client, two):
    login(client, "root")
    page = client.get(f"/admin/branches/{two[1].id}").text
    assert not re.search(r'<input[^>]+name="timezone"', page)  # no free text
    choice = re.search(r'<select id="f-timezone" name="timezone".*?</select>', page, re.S).group(0)
    offered = re.findall(r'<option value="([^"]+)"', choice)
    assert "Asia/Tbilisi" in offered and "Europe/Tbilisi" not in offered
    assert all(zones.is_zone(zone) for zone in offered)
    assert re.findall(r'<option value="([^"]+)" selected', choice) == ["Asia/Tokyo"]
    assert '<optgroup label="Asia">' in choice


BAD_FIELDS = [
    ("timezone", {"timezone": "Europe/Tbilisi"}, "Asia/Tbilisi"),
    ("opening_hours.tue", {"hours-tue-open-1": "18:00"}, "opening must come before closing"),
    ("opening_hours.wed", {"hours-wed-open-2": "16:00", "hours-wed-close-2": "18:00"}, "overlap"),
    ("primary", {"primary": "blue"}, "#rrggbb"),
    ("country", {"country": "XX"}, "two-letter"),
    ("languages", {"languages": None}, "at least one language"),
    ("language", {"language": "ja", "languages": ["en", "ka"]}, "default language"),
    ("name", {"name": " "}, "required"),
]


@pytest.mark.parametrize("field, changes, words", BAD_FIELDS, ids=[case[0] for case in BAD_FIELDS])
def test_a_bad_field_gets_its_error_and_changes_nothing(client, two, field, changes, words):
    one = two[0]
    login(client, "root")
    before = fingerprint(one.id)
    response = post_page(client, f"/admin/branches/{one.id}", page_form(one, **{"name": "Renamed", **changes}))
    assert response.status_code == 400
    error = re.search(r'<p class="field-error" id="err-%s" role="alert">([^<]*)</p>' % re.escape(field), response.text)
    assert error and words in error.group(1).replace("&#39;", "'"), response.text[-3000:]
    assert 'value="Renamed"' in response.text or field == "name"  # what was typed is kept
    assert fingerprint(one.id) == before


def test_logo_upload_preview_serve_replace_and_remove(client, two, app):
    one = two[0]
    login(client, "root")
    response = post_page(client, f"/admin/branches/{one.id}", page_form(one),
                         {"logo": (io.BytesIO(png()), "logo.png")})
    assert response.status_code == 302, response.text
    db.session.refresh(one)
    name = one.branding["logo"]
    assert re.fullmatch(rf"branch-{one.id}-[0-9a-f]{{8}}\.png", name)
    assert f'src="/branding/{name}"' in client.get(f"/admin/branches/{one.id}").text  # the preview
    client.post("/staff/logout", data={"csrf_token": csrf_token(client.get("/staff/inbox").text)})
    served = client.get(f"/branding/{name}")  # public: the kiosk shows it
    assert served.status_code == 200 and served.mimetype == "image/png" and served.data == png()
    assert "max-age=31536000" in served.headers["Cache-Control"]
    assert client.get("/branding/..%2Fseed.db").status_code == 404
    assert client.get("/branding/branch-1-00000000.png").status_code == 404

    login(client, "root")
    post_page(client, f"/admin/branches/{one.id}", page_form(one), {"logo": (io.BytesIO(jpeg()), "photo.jpg")})
    db.session.refresh(one)
    assert one.branding["logo"].endswith(".jpg")
    assert not (branding.folder() / name).exists()  # the old file went with the old logo
    post_page(client, f"/admin/branches/{one.id}", page_form(one, remove_logo="on"))
    db.session.refresh(one)
    assert "logo" not in one.branding and list(branding.folder().glob("*")) == []


@pytest.mark.parametrize("upload, words", [
    (b"GIF89a" + b"\0" * 50, "Only PNG and JPEG"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "Only PNG and JPEG"),
    (b"\x89PNG\r\n\x1a\n" + b"not really", "not a readable image"),
    (png()[:8] + b"\0" * (512 * 1024), "at most 512 KB"),
], ids=["gif", "svg", "fake-png", "too-big"])
def test_a_bad_logo_is_refused_and_changes_nothing(client, two, upload, words):
    one = two[0]
    login(client, "root")
    before = fingerprint(one.id)
    response = post_page(client, f"/admin/branches/{one.id}", page_form(one, name="Renamed"),
                         {"logo": (io.BytesIO(upload), "logo.png")})
    assert response.status_code == 400
    assert words in re.search(r'id="err-logo" role="alert">([^<]*)<', response.text).group(1)
    assert fingerprint(one.id) == before


def test_only_admins_create_branches(client, two):
    login(client, "manny")
    assert client.get("/admin/branches/new").status_code == 403
    assert 'href="/admin/branches/new"' not in client.get("/admin/branches").text
    client.post("/staff/logout", data={"csrf_token": csrf_token(client.get("/staff/inbox").text)})
    login(client, "root")
    response = post_page(client, "/admin/branches/new", page_form(Branch(name="", sender_name="", timezone="Asia/Tokyo",
                                                                         country="JP", default_language="ja"),
                                                                  name="東京支店", sender_name=""))
    assert response.status_code == 302, response.text
    made = db.session.scalar(select(Branch).where(Branch.name == "東京支店"))
    assert (made.sender_name, made.timezone, made.default_language) == ("東京支店", "Asia/Tokyo", "ja")
    assert response.location.endswith(f"/admin/branches/{made.id}")


def test_a_manager_sees_and_edits_only_their_branch(client, two):
    one, other = two
    login(client, "manny")
    listing = client.get("/admin/branches")
    assert "Branch One" in listing.text and "Branch Two" not in listing.text
    assert client.get(f"/admin/branches/{other.id}").status_code == 404
    before = fingerprint(other.id)
    page = client.get(f"/admin/branches/{one.id}")
    token = csrf_token(page.text)
    taken = client.post(f"/admin/branches/{other.id}", data={**page_form(other, name="Mine"), "csrf_token": token})
    assert taken.status_code == 404
    assert client.post(f"/admin/branches/{other.id}/closures",
                       data={"first_day": "2026-05-01", "csrf_token": token}).status_code == 404
    assert fingerprint(other.id) == before
    assert post_page(client, f"/admin/branches/{one.id}", page_form(one, name="Mine")).status_code == 302


def test_staff_get_403_everywhere(client, two):
    one = two[0]
    login(client, "alice")
    for url in ("/admin/branches", "/admin/branches/new", f"/admin/branches/{one.id}"):
        assert client.get(url).status_code == 403, url
    headers = bearer("alice")
    assert client.get("/api/v1/admin/branches", headers=headers).status_code == 403
    assert client.put(f"/api/v1/admin/branches/{one.id}", json={"name": "x"}, headers=headers).status_code == 403
    assert client.get(f"/api/v1/admin/branches/{one.id}/closures", headers=headers).status_code == 403


def test_closures_on_the_page(client, two):
    one = two[0]
    login(client, "manny")
    url = f"/admin/branches/{one.id}"
    page = client.get(url)
    response = client.post(f"{url}/closures", data={"first_day": "2026-05-03", "last_day": "2026-05-01",
                                                    "message": "Spring", "csrf_token": csrf_token(page.text)})
    assert response.status_code == 400 and 'id="err-last_day"' in response.text and 'value="Spring"' in response.text
    assert settings.closures(one) == []
    response = client.post(f"{url}/closures", data={"first_day": "2026-05-01", "last_day": "2026-05-03",
                                                    "message": "Spring holiday", "csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    page = client.get(url)
    closure = settings.closures(one)[0]
    assert "Spring holiday" in page.text and f'data-closure="{closure.id}"' in page.text
    assert "data-confirm=" in page.text
    response = client.post(f"{url}/closures/{closure.id}/delete", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302 and settings.closures(one) == []


# --- JSON ---------------------------------------------------------------------------------------

def test_the_json_api(client, two):
    one, other = two
    root = bearer("root")
    listed = client.get("/api/v1/admin/branches", headers=root).json["branches"]
    assert {b["name"] for b in listed} == {"Branch One", "Branch Two"}
    assert set(listed[0]) == {"id", "name", "sender_name", "timezone", "country", "language", "languages",
                              "opening_hours", "show_names", "branding", "closures"}

    made = client.post("/api/v1/admin/branches", headers=root, json={
        "name": "Tokyo", "timezone": "Asia/Tokyo", "country": "JP", "language": "ja", "languages": ["ja", "en"],
        "opening_hours": {"mon": [["09:00", "18:00"]]}, "branding": {"primary": "#ff0000"}})
    assert made.status_code == 201, made.json
    assert made.json["sender_name"] == "Tokyo" and made.json["branding"] == {"primary": "#ff0000"}

    one_json = client.get(f"/api/v1/admin/branches/{one.id}", headers=root).json
    same = client.put(f"/api/v1/admin/branches/{one.id}", headers=root, json=one_json)  # GET's shape goes back
    assert same.status_code == 200 and same.json == one_json

    before = fingerprint(one.id)
    bad = client.put(f"/api/v1/admin/branches/{one.id}", headers=root,
                     json={"name": "Changed", "timezone": "Europe/Tbilisi"})
    assert bad.status_code == 400 and set(bad.json["detail"]) == {"timezone"}
    assert "Asia/Tbilisi" in bad.json["detail"]["timezone"]
    for body in ({"opening_hours": {"mon": [["9", "17"]]}}, {"branding": {"accent": "red"}}, {"country": "ZZ"},
                 {"languages": []}, {"timezon": "UTC"}, {"show_names": "maybe"},
                 {"opening_hours": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}):
        assert client.put(f"/api/v1/admin/branches/{one.id}", headers=root, json=body).status_code == 400, body
    assert fingerprint(one.id) == before

    patched = client.put(f"/api/v1/admin/branches/{one.id}", headers=root, json={"show_names": True})
    assert patched.json["show_names"] is True and patched.json["name"] == "Branch One"

    logo = "data:image/png;base64," + base64.b64encode(png()).decode()
    with_logo = client.put(f"/api/v1/admin/branches/{one.id}", headers=root, json={"logo": logo})
    assert with_logo.status_code == 200 and with_logo.json["branding"]["logo"].endswith(".png")


def test_closures_over_json(client, two):
    one = two[0]
    manny = bearer("manny")
    url = f"/api/v1/admin/branches/{one.id}/closures"
    added = client.post(url, headers=manny, json={"first_day": "2026-12-24", "last_day": "2026-12-26",
                                                  "message": "Holidays"})
    assert added.status_code == 201 and added.json["last_day"] == "2026-12-26"
    assert client.get(url, headers=manny).json["closures"] == [added.json]
    assert client.get(f"/api/v1/admin/branches/{one.id}", headers=manny).json["closures"] == [added.json]
    bad = client.post(url, headers=manny, json={"first_day": "2026-01-01", "last_day": "2027-06-01"})
    assert bad.status_code == 400 and set(bad.json["detail"]) == {"last_day"}
    assert client.post(url, headers=manny, json={"first_day": "24.12.2026"}).json["detail"] == {
        "first_day": "Give a date as YYYY-MM-DD."}
    assert client.delete(f"{url}/{added.json['id']}", headers=manny).status_code == 204
    assert client.delete(f"{url}/{added.json['id']}", headers=manny).status_code == 404


def test_the_api_keeps_a_manager_to_their_branch(client, two):
    one, other = two
    manny = bearer("manny")
    assert [b["id"] for b in client.get("/api/v1/admin/branches", headers=manny).json["branches"]] == [one.id]
    assert client.post("/api/v1/admin/branches", headers=manny, json={"name": "Mine"}).status_code == 403
    before = fingerprint(other.id)
    assert client.get(f"/api/v1/admin/branches/{other.id}", headers=manny).status_code == 404
    assert client.put(f"/api/v1/admin/branches/{other.id}", headers=manny, json={"name": "x"}).status_code == 404
    assert client.post(f"/api/v1/admin/branches/{other.id}/closures", headers=manny,
                       json={"first_day": "2026-05-01"}).status_code == 404
    closure = settings.add_closure(other, "2026-05-01")
    assert client.delete(f"/api/v1/admin/branches/{other.id}/closures/{closure.id}", headers=manny).status_code == 404
    # nor through their own branch's address
    assert client.delete(f"/api/v1/admin/branches/{one.id}/closures/{closure.id}", headers=manny).status_code == 404
    assert db.session.get(Closure, closure.id) is not None
    assert client.put(f"/api/v1/admin/branches/{one.id}", headers=manny, json={"name": "Mine"}).status_code == 200


# --- the command line ---------------------------------------------------------------------------

def test_the_cli_calls_the_same_rules(runner, two, tmp_path):
    one = two[0]
    refused = runner.invoke(args=["branch", "create", "Tbilisi", "--timezone", "Europe/Tbilisi", "--primary", "red"])
    assert refused.exit_code != 0
    assert "timezone: Unknown time zone Europe/Tbilisi. Did you mean Asia/Tbilisi?" in refused.output
    assert "primary:" in refused.output
    assert db.session.scalar(select(Branch).where(Branch.name == "Tbilisi")) is None

    made = runner.invoke(args=["branch", "create", "Tbilisi", "--timezone", "Asia/Tbilisi", "--country", "GE",
                               "--languages", "ka,en", "--language", "ka",
                               "--hours", "mon-fri 09:00-13:00 14:00-18:00; sat 10:00-13:00"])
    assert made.exit_code == 0, made.output
    tbilisi = db.session.scalar(select(Branch).where(Branch.name == "Tbilisi"))
    assert tbilisi.opening_hours["fri"] == [["09:00", "13:00"], ["14:00", "18:00"]]
    assert tbilisi.languages == ["ka", "en"]

    before = fingerprint(one.id)
    for option, value in (("--hours", "fri-mon 09:00-17:00"), ("--country", "XX"), ("--languages", "en,fr")):
        assert runner.invoke(args=["branch", "set", "--branch", str(one.id), option, value]).exit_code != 0
    assert fingerprint(one.id) == before
    logo = tmp_path / "logo.png"
    logo.write_bytes(png())
    done = runner.invoke(args=["branch", "set", "--branch", str(one.id), "--sender", "One", "--logo", str(logo)])
    assert done.exit_code == 0, done.output
    db.session.refresh(one)
    assert one.sender_name == "One" and one.branding["logo"].endswith(".png")
    assert "Tbilisi" in runner.invoke(args=["branch", "list"]).output

    added = runner.invoke(args=["branch", "closure", "add", "2026-05-01", "2026-05-02", "--branch", str(one.id),
                                "--message", "May Day"])
    assert added.exit_code == 0, added.output
    assert "May Day" in runner.invoke(args=["branch", "closure", "list", "--branch", str(one.id)]).output
    closure_id = settings.closures(one)[0].id
    backwards = runner.invoke(args=["branch", "closure", "add", "2026-05-02", "2026-05-01", "--branch", str(one.id)])
    assert backwards.exit_code != 0 and "last_day:" in backwards.output
    assert runner.invoke(args=["branch", "closure", "remove", str(closure_id), "--branch", str(one.id)]).exit_code == 0
    assert settings.closures(one) == []


# --- start-up -----------------------------------------------------------------------------------

def test_an_unknown_seed_timezone_stops_the_start(tmp_path, monkeypatch):
    monkeypatch.setenv("SEED_TIMEZONE", "Europe/Tbilisi")
    with pytest.raises(ConfigError) as stopped:
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}", "SECRET_KEY": "t",
                    "INSTANCE_PATH": str(tmp_path / "instance")})
    assert "SEED_TIMEZONE" in str(stopped.value.code) and "Did you mean Asia/Tbilisi?" in str(stopped.value.code)
    monkeypatch.setenv("SEED_TIMEZONE", "Asia/Tbilisi")
    assert create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}", "SECRET_KEY": "t",
                       "INSTANCE_PATH": str(tmp_path / "instance")}).config["DEFAULT_TIMEZONE"] == "Asia/Tbilisi"


def test_zone_suggestions():
    assert zones.suggestions("Europe/Tbilisi") == ["Asia/Tbilisi"]
    assert zones.suggestions("Asia/Tokio")[0] == "Asia/Tokyo"
    assert zones.suggestions("Nowhere/Atall") == []
    assert not zones.is_zone("localtime") and zones.is_zone("UTC")


# --- closures and bookings, on SQLite and PostgreSQL ----------------------------------------------

@pytest.fixture
def clinic(any_db_app, clock):
    branch = make_branch("Clinic", timezone="Asia/Tbilisi", country="GE",
                         opening_hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")})
    service = make_service(branch, "B", "Appointments", slot_minutes=30, slot_capacity=1)
    db.session.commit()
    return branch, service


def tbilisi(day, hour, minute=0):
    return datetime(2026, 3, day, hour, minute, tzinfo=ZoneInfo("Asia/Tbilisi"))  # the 2nd is a Monday


def test_closures_refuse_bookings_and_hide_slots(clinic):
    branch, service = clinic
    closure = settings.add_closure(branch, date(2026, 3, 4), date(2026, 3, 5), "Inventory")
    assert settings.is_closed(branch, date(2026, 3, 5)).id == closure.id
    assert settings.is_closed(branch, date(2026, 3, 6)) is None
    assert settings.closed_days(branch, date(2026, 3, 1), date(2026, 3, 31)) == {date(2026, 3, 4), date(2026, 3, 5)}
    assert settings.open_on(branch, tbilisi(3, 10)) and not settings.open_on(branch, tbilisi(4, 10))
    assert not settings.open_on(branch, tbilisi(3, 17))  # closing time
    assert not settings.open_on(branch, tbilisi(7, 10))  # Saturday
    assert settings.open_on(branch, datetime(2026, 3, 3, 16, 59))  # no zone: the branch's wall clock

    with pytest.raises(ValidationError) as refused:
        appointments.book(service.id, tbilisi(4, 10))
    assert refused.value.detail == {"starts_at": "closed"} and "Inventory" in refused.value.message
    with pytest.raises(ValidationError):
        appointments.book(service.id, tbilisi(3, 17, 30))  # outside the hours, as before
    slots = appointments.free_slots(service, tbilisi(3, 16, 0), count=2)
    assert slots == [tbilisi(3, 16, 30), tbilisi(6, 9)]  # the 4th and 5th are skipped
    assert appointments.book(service.id, tbilisi(6, 9)).id

    settings.remove_closure(branch, closure.id)
    assert settings.is_closed(branch, date(2026, 3, 4)) is None
    with pytest.raises(NotFound):
        settings.remove_closure(branch, closure.id)


def test_closure_rules(clinic):
    branch, _service = clinic
    for first, last, message, field in ((date(2026, 5, 2), date(2026, 5, 1), "", "last_day"),
                                        (date(2026, 1, 1), date(2027, 1, 2), "", "last_day"),
                                        ("2026-02-30", None, "", "first_day"),
                                        (date(2026, 5, 1), None, "x" * 201, "message"),
                                        (date(2026, 5, 1), None, "two\nlines", "message")):
        with pytest.raises(ValidationError) as refused:
            settings.add_closure(branch, first, last, message)
        assert field in refused.value.detail
    assert db.session.scalars(select(Closure)).all() == []
    year = settings.add_closure(branch, date(2026, 1, 1), date(2026, 12, 31))  # 365 days: allowed
    assert (year.last_day - year.first_day).days == 364


def test_the_service_layer_refuses_all_at_once(clinic):
    branch, _service = clinic
    before = fingerprint(branch.id)
    with pytest.raises(ValidationError) as refused:
        settings.update(branch, {"name": "x" * 81, "sender_name": "", "timezone": "Mars/Olympus",
                                 "country": "ge1", "language": "fr", "languages": "en,xx",
                                 "opening_hours": {"mon": [["09:00", "25:00"]], "funday": []},
                                 "primary": "#12345", "show_names": "perhaps"})
    assert set(refused.value.detail) == {"name", "sender_name", "timezone", "country", "language", "languages",
                                         "opening_hours.mon", "opening_hours", "primary", "show_names"}
    assert fingerprint(branch.id) == before
    settings.update(branch, {"opening_hours": "mon-fri 09:00-17:00; sun 10:00-12:00", "timezone": "Asia/Tokyo"})
    db.session.refresh(branch)
    assert branch.timezone == "Asia/Tokyo" and branch.opening_hours["sun"] == [["10:00", "12:00"]]


# --- Chromium -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def live_system(tmp_path_factory):
    from .live import running_system

    with running_system(tmp_path_factory.mktemp("branches"),
                        'DEFAULT_COUNTRY = "GE"\nDEFAULT_TIMEZONE = "Asia/Tbilisi"\n') as running:
        yield running


def test_the_edit_page_in_chromium(live_system, tmp_path):
    """Choose a zone, open Saturdays, upload a logo (previewed before saving), add a closure and
    remove it after a confirmation that can be declined."""
    from playwright.sync_api import expect

    from .live import chromium, sign_in

    with chromium() as browser:
        page = sign_in(browser.new_page(viewport={"width": 1280, "height": 900}), live_system)

        page.goto(live_system.base + "/admin/branches/1")
        expect(page.locator("#f-timezone")).to_have_value("Asia/Tbilisi")
        page.select_option("#f-timezone", "Asia/Tokyo")
        page.uncheck("#hours-sat-closed")
        page.fill("input[name=hours-sat-open-1]", "10:00")
        page.fill("input[name=hours-sat-close-1]", "13:00")
        page.set_input_files("#f-logo", files=[{"name": "logo.png", "mimeType": "image/png", "buffer": png()}])
        expect(page.locator("#logo-preview")).to_have_attribute("src", re.compile(r"^data:image/png"))
        page.click("#save-branch")
        expect(page.locator(".flash.ok")).to_be_visible()
        expect(page.locator("#f-timezone")).to_have_value("Asia/Tokyo")
        expect(page.locator("input[name=hours-sat-open-1]")).to_have_value("10:00")
        logo_url = page.locator("#logo-preview").get_attribute("src")
        assert re.fullmatch(r"/branding/branch-1-[0-9a-f]{8}\.png", logo_url)
        assert page.request.get(live_system.base + logo_url).body() == png()

        page.fill("#f-first_day", "2030-05-01")
        page.fill("#f-message", "Closed for May Day")
        page.click("#closure-form button[type=submit]")
        row = page.locator("tr[data-closure]")
        expect(row).to_contain_text("Closed for May Day")
        page.once("dialog", lambda dialog: dialog.dismiss())
        row.locator("button").click()
        expect(row).to_have_count(1)  # declined: still there
        page.once("dialog", lambda dialog: dialog.accept())
        row.locator("button").click()
        expect(page.locator("tr[data-closure]")).to_have_count(0)
