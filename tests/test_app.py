"""The factory, configuration, secret key, migrations and the CLI."""
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from core.config import normalise_database_url
from core.database import upgrade_database
from core.extensions import db
from core.models import Branch, Counter, Service, StaffUser
from core.seed import seed_demo

from .helpers import schema_differences


def test_secret_key_is_generated_once_into_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    instance = tmp_path / "instance"
    first = create_app({"INSTANCE_PATH": str(instance), "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    second = create_app({"INSTANCE_PATH": str(instance), "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    key_file = instance / "secret_key"
    assert len(first.config["SECRET_KEY"]) == 64
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text().strip()
    assert key_file.stat().st_mode & 0o077 == 0  # readable by the owner only


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'seed.db'}"


def test_instance_config_then_environment_override_defaults(tmp_path, monkeypatch):
    (tmp_path / "config.py").write_text('DEFAULT_TIMEZONE = "Asia/Tokyo"\nSECRET_KEY = "from-file"\n')
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db.invalid/seed")
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.config["DEFAULT_TIMEZONE"] == "Asia/Tokyo"
    assert app.config["SECRET_KEY"] == "from-env"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.invalid/seed"


def test_database_url_forms():
    assert normalise_database_url("postgresql://a@b/c") == "postgresql+psycopg://a@b/c"
    assert normalise_database_url("sqlite:////x.db") == "sqlite:////x.db"


def test_factory_starts_no_threads(tmp_path):
    import threading

    import time

    before = set(threading.enumerate())
    create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    # Flask-Limiter's in-memory store fires a one-shot 10 ms cleanup timer when made; nothing may last.
    deadline = time.monotonic() + 1
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert set(threading.enumerate()) - before == set()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_build_exactly_the_models_schema(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'm.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_database")
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    upgrade_database(app)
    upgrade_database(app)  # at every start: the second run is a no-op
    with app.app_context():
        with db.engine.connect() as conn:
            diff = schema_differences(conn)
        assert diff == [], "models changed without a migration: flask --app run db migrate -m '...'"
        db.drop_all()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE alembic_version")


def test_seed_demo_on_empty_database_only(app):
    password = seed_demo()
    assert password and len(password) >= 12
    branch = db.session.scalar(select(Branch))
    assert [(s.code, s.name) for s in branch.services] == [("A", "General"), ("B", "Appointments")]
    assert [c.name for c in branch.counters] == ["1", "2", "3"]
    admin = db.session.scalar(select(StaffUser).where(StaffUser.username == "admin"))
    assert admin.is_admin and admin.check_password(password)
    assert seed_demo() is None  # never again, never a second admin


# --- CLI --------------------------------------------------------------------------------------

def test_cli_user_create_and_set_password(runner, setup):
    result = runner.invoke(args=["user", "create", "bob", "--password", "long enough pw"])
    assert result.exit_code == 0, result.output
    bob = db.session.scalar(select(StaffUser).where(StaffUser.username == "bob"))
    assert bob.role == "staff" and bob.check_password("long enough pw") and bob.branch_id == setup[0].id

    generated = runner.invoke(args=["user", "create", "carol", "--role", "admin"])
    assert "Password (shown once):" in generated.output
    shown = generated.output.split("Password (shown once):")[1].strip()
    assert db.session.scalar(select(StaffUser).where(StaffUser.username == "carol")).check_password(shown)

    changed = runner.invoke(args=["user", "set-password", "bob"], input="another password\nanother password\n")
    assert changed.exit_code == 0, changed.output
    db.session.expire_all()
    assert db.session.scalar(select(StaffUser).where(StaffUser.username == "bob")).check_password("another password")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["user", "create", "alice", "--password", "long enough pw"], "exists already"),
        (["user", "create", "<b>x</b>", "--password", "long enough pw"], "Usernames are"),
        (["user", "create", "dave", "--password", "short"], "at least 10"),
        (["service", "create", "AB", "Two letters"], "one letter"),
        (["service", "create", "A", "Again"], "service A already"),
        (["service", "create", "C", "Cash", "--counters", "1,9"], "Unknown counter"),
        (["counter", "create", "3", "--services", "A,Q"], "Unknown service"),
        (["counter", "create", "1", "--services", "A"], "counter 1 already"),
        (["branch", "set", "--timezone", "Mars/Olympus"], "Unknown time zone"),
        (["branch", "set", "--hours", "mon 17:00-09:00"], "opening must come before"),
        (["branch", "set", "--hours", "someday 9-5"], "Cannot read hours"),
        (["branch", "set", "--country", "Georgia"], "two-letter"),
    ],
)
def test_cli_refusals_are_clear_and_change_nothing(runner, setup, args, message):
    counts = lambda: [db.session.scalar(select(db.func.count()).select_from(m)) for m in (StaffUser, Service, Counter)]  # noqa: E731
    before = counts()
    branch_before = (setup[0].timezone, dict(setup[0].opening_hours), setup[0].country)
    result = runner.invoke(args=args)
    assert result.exit_code != 0 and message in result.output, result.output
    db.session.expire_all()
    assert counts() == before
    branch = db.session.get(Branch, setup[0].id)
    assert (branch.timezone, branch.opening_hours, branch.country) == branch_before


def test_cli_service_counter_branch(runner, setup):
    assert runner.invoke(args=["service", "create", "c", "Cash desk", "--minutes", "3", "--counters", "2"]).exit_code == 0
    listing = runner.invoke(args=["service", "list"]).output
    assert "C  Cash desk  ~3 min  counters: 2  slots: 15 min x 1" in listing
    assert runner.invoke(args=["service", "set", "c", "--slot-minutes", "20", "--capacity", "3"]).exit_code == 0
    assert "slots: 20 min x 3" in runner.invoke(args=["service", "list"]).output
    assert runner.invoke(args=["counter", "create", "3", "--services", "A,C"]).exit_code == 0
    result = runner.invoke(args=["branch", "set", "--timezone", "Asia/Tbilisi", "--country", "ge", "--sender", "City Office",
                                 "--hours", "mon-fri 09:00-18:00; sat 10:00-13:00", "--language", "ka"])
    assert result.exit_code == 0, result.output
    branch = db.session.get(Branch, setup[0].id)
    assert (branch.timezone, branch.country, branch.sender_name, branch.default_language) == (
        "Asia/Tbilisi", "GE", "City Office", "ka")
    assert branch.opening_hours["fri"] == [["09:00", "18:00"]] and branch.opening_hours["sat"] == [["10:00", "13:00"]]
    assert "sun" not in branch.opening_hours
    assert "Asia/Tbilisi" in runner.invoke(args=["branch", "list"]).output


def test_cli_branch_create(runner, app):
    result = runner.invoke(args=["branch", "create", "Tokyo Office", "--timezone", "Asia/Tokyo", "--country", "jp",
                                 "--language", "ja", "--hours", "mon-sat 10:00-19:00"])
    assert result.exit_code == 0, result.output
    branch = db.session.scalar(select(Branch))
    assert (branch.name, branch.sender_name, branch.timezone, branch.country, branch.default_language) == (
        "Tokyo Office", "Tokyo Office", "Asia/Tokyo", "JP", "ja")
    assert sorted(branch.opening_hours) == ["fri", "mon", "sat", "thu", "tue", "wed"]
    refused = runner.invoke(args=["branch", "create", "x" * 81])
    assert refused.exit_code != 0 and "1-80 characters" in refused.output
    assert db.session.scalar(select(db.func.count(Branch.id))) == 1


def test_compiled_translations_match_their_catalogues(tmp_path):
    """The .mo files the app reads are committed: they must be what pybabel compiles from the .po."""
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    def plain(value):  # a plural message's forms come as a list from the .mo, a tuple from the .po
        return tuple(value) if isinstance(value, (list, tuple)) else value

    root = Path(__file__).resolve().parent.parent / "translations"
    template = {plain(m.id) for m in read_po(open(root / "messages.pot", "rb")) if m.id}
    for language in ("ja", "ka"):
        folder = root / language / "LC_MESSAGES"
        catalogue = read_po(open(folder / "messages.po", "rb"))
        compiled = read_mo(open(folder / "messages.mo", "rb"))
        expected = {plain(m.id): plain(m.string) for m in catalogue if m.id and not m.fuzzy}
        assert {plain(m.id): plain(m.string) for m in compiled if m.id} == expected, \
            f"run: pybabel compile -d translations ({language})"
        assert all(expected.get(msgid) for msgid in template), f"{language}: untranslated texts"


def test_a_database_upgraded_by_a_newer_seed_is_refused_untouched(tmp_path, clock):
    """An older Seed must not run on a schema it does not know: a clear message, nothing changed."""
    from sqlalchemy import text

    from core.config import ConfigError

    from .conftest import build_app

    app = build_app(f"sqlite:///{tmp_path / 'seed.db'}", clock, tmp_path)
    upgrade_database(app)
    with app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed1234'"))
        db.session.commit()
        tables = set(db.inspect(db.engine).get_table_names())
    with pytest.raises(ConfigError) as refused:
        upgrade_database(app)
    message = str(refused.value)
    assert "f00dfeed1234" in message and "newer version of Seed" in message and "Nothing was changed" in message
    with app.app_context():
        assert db.session.scalar(text("SELECT version_num FROM alembic_version")) == "f00dfeed1234"
        assert set(db.inspect(db.engine).get_table_names()) == tables
        db.engine.dispose()


def test_every_text_the_code_marks_is_in_the_catalogues(tmp_path):
    """What pybabel extracts from the code today (scripts/translations' own command), not only the
    committed template, is translated: a text marked with a keyword the template missed (lazy
    report labels once) or added without running the script fails here."""
    import subprocess
    import sys

    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parent.parent
    sources = (root / "translations" / "SOURCES").read_text().split()
    script = (root / "scripts" / "translations").read_text()
    assert "-k _l -k lazy_pgettext:1c,2" in script and "$(cat translations/SOURCES)" in script
    pot = tmp_path / "messages.pot"
    subprocess.run([str(Path(sys.executable).parent / "pybabel"), "-q", "extract", "-F", "babel.cfg", "-k", "_l",
                    "-k", "lazy_pgettext:1c,2", "--no-location", "-o", str(pot), *sources], cwd=root, check=True)

    def key(message):
        ident = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
        return (message.context, ident)

    marked = {key(m) for m in read_po(open(pot, "rb")) if m.id}
    assert len(marked) > 1000
    for language in ("ja", "ka"):
        catalogue = read_po(open(root / "translations" / language / "LC_MESSAGES" / "messages.po", "rb"))
        translated = {key(m) for m in catalogue if m.id and not m.fuzzy and (
            all(m.string) if isinstance(m.string, (list, tuple)) else m.string)}
        missing = sorted(marked - translated, key=str)
        assert not missing, f"{language}: {len(missing)} texts untranslated (run scripts/translations), e.g. {missing[:8]}"
