"""Logs seen from outside (issue 14): one line per event, as text or JSON (LOG_FORMAT=json), with
the request's id, the branch it is about, and phone numbers masked.

Lines that hold a whole number are logged on a logger of their own that does not propagate: the
suite's watch for unmasked numbers (tests/number_watch.py) reads every line that reaches the root.
"""
import io
import json
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import requests

from core import logs
from core.config import ConfigError
from core.extensions import db
from messaging.phones import masked

from .conftest import build_app, new_postgres_database
from .helpers import NUMBER, csrf_token, login, make_branch, make_service, make_staff
from .live import RunningSystem
from .test_deploy import over_https, site  # noqa: F401  (nginx in front of a stand-in for Seed)

MASKED = masked(NUMBER)  # +99555****456
UNMASKED = re.compile(r"(?:\+|%2[Bb])\d{8,15}")
GENERATED = re.compile(r"[0-9a-f]{32}")
CHECK_IN = {"service": "A", "phone": NUMBER, "sms_consent": True, "language": "en"}


@contextmanager
def captured(fmt):
    """What the process's root handler (logs.configure) would write, in `fmt`, at INFO: the
    migrations' alembic.ini leaves the root at WARNING during the tests."""
    stream = io.StringIO()
    handler = logs.make_handler(fmt, stream, masked)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@contextmanager
def private_logger(fmt):
    """A logger that writes only to a handler of `fmt` (and never to the root)."""
    stream = io.StringIO()
    logger = logging.getLogger("tests.logs.private")
    handler = logs.make_handler(fmt, stream, masked)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def branch_two(app):
    """Two branches (the second is the one the tests use, so its id is not the default 1), with
    service A and a manager "mona" of branch two."""
    make_branch("One", country="GE")
    two = make_branch("Two", country="GE")
    make_service(two, "A")
    make_staff("mona", role="manager", branch=two)
    db.session.commit()
    return two


# ---- JSON ------------------------------------------------------------------------------------

def test_a_check_in_logs_json_lines_with_its_request_id_and_the_number_masked(client, branch_two):
    with captured("json") as stream:
        response = client.post("/api/v1/checkins", json={**CHECK_IN, "branch": branch_two.id},
                               headers={"X-Request-ID": "kiosk-7.check_in"})
    assert response.status_code == 201, response.json
    assert response.headers["X-Request-ID"] == "kiosk-7.check_in"
    lines = json_lines(stream.getvalue())
    (queued,) = [line for line in lines if line["logger"] == "messaging.outbox"]
    assert queued["message"].endswith(f"welcome text to {MASKED} queued")
    assert queued["request_id"] == "kiosk-7.check_in"
    assert (queued["method"], queued["path"]) == ("POST", "/api/v1/checkins")
    assert queued["level"] == "INFO" and isinstance(queued["process"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", queued["time"])
    assert NUMBER[4:] not in stream.getvalue()


def test_a_line_names_the_branch_the_request_is_about(client, branch_two):
    login(client, "mona")
    page = client.get("/admin/screens", query_string={"branch": branch_two.id})
    with captured("json") as stream:
        made = client.post(f"/admin/screens/kiosks?branch={branch_two.id}",
                           data={"name": "Upstairs", "csrf_token": csrf_token(page.text)})
    assert made.status_code == 201
    (created,) = [line for line in json_lines(stream.getvalue()) if line["logger"] == "core.tokens"]
    assert "'Upstairs' (kiosk) created by mona" in created["message"]
    assert created["branch"] == branch_two.id
    assert created["path"] == "/admin/screens/kiosks"  # without ?branch=...
    assert GENERATED.fullmatch(created["request_id"]) and created["request_id"] == made.headers["X-Request-ID"]


@pytest.mark.parametrize("sent", [None, "", "has space", "a" * 65, "<script>", "semi;colon", "ünï"])
def test_an_id_that_does_not_look_like_one_is_replaced(client, sent):
    headers = {} if sent is None else {"X-Request-ID": sent}
    first, second = (client.get("/api/v1/health", headers=headers) for _ in range(2))
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(GENERATED.fullmatch(value) for value in ids) and ids[0] != ids[1]


def test_an_id_that_looks_like_one_is_kept(client):
    for sent in ("a", "0123456789abcdef0123456789abcdef", "req-1.2_3", "Z" * 64):
        assert client.get("/api/v1/health", headers={"X-Request-ID": sent}).headers["X-Request-ID"] == sent


def test_socket_io_requests_get_an_id_too(client):
    response = client.get("/socket.io/?EIO=4&transport=polling", headers={"X-Request-ID": "screen-3"})
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "screen-3"


def test_an_exception_is_one_field_of_one_line():
    def fail():
        raise ValueError(f"cannot text {NUMBER}\nsecond line")

    with private_logger("json") as (log, stream):
        try:
            fail()
        except ValueError:
            log.exception("texting %s failed", NUMBER)
        log.warning("after")
    first, after = json_lines(stream.getvalue())  # two events, two lines
    assert first["message"] == f"texting {MASKED} failed" and first["level"] == "ERROR"
    assert first["exception"].startswith("Traceback (most recent call last):")
    assert f"ValueError: cannot text {MASKED}\nsecond line" in first["exception"]
    assert "request_id" not in first  # not in a request
    assert after["message"] == "after" and "exception" not in after
    assert NUMBER[4:] not in stream.getvalue()


def test_extra_fields_are_written_and_masked():
    with private_logger("json") as (log, stream):
        log.info("reply routed", extra={"sender": NUMBER, "detail": {"to": [f"%2B{NUMBER[1:]}"]}, "inbox": 7})
    (line,) = json_lines(stream.getvalue())
    assert line["sender"] == MASKED and line["detail"] == {"to": [MASKED]} and line["inbox"] == 7
    assert not UNMASKED.search(stream.getvalue())


# ---- text ------------------------------------------------------------------------------------

def test_the_text_line_is_as_before_with_the_request_id_at_its_end(client, branch_two):
    with captured("text") as stream:
        client.post("/api/v1/checkins", json={**CHECK_IN, "branch": branch_two.id}, headers={"X-Request-ID": "r1"})
        logging.getLogger("tests.logs").warning("outside any request")
    queued, outside = [line for line in stream.getvalue().splitlines() if "queued" in line or "outside" in line]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO messaging\.outbox: outbox \d+: welcome text to "
                        + re.escape(MASKED) + r" queued request_id=r1", queued)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING tests\.logs: outside any request", outside)


# ---- settings --------------------------------------------------------------------------------

@pytest.fixture
def restored_logging():
    """configure() replaces the root handler (and this suite's number watch with it): put back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from_app, in_use = dict(logs._from_app), dict(logs._in_use)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logs._from_app.clear()
    logs._from_app.update(from_app)
    logs._in_use.update(in_use)


def test_configure_takes_the_apps_settings_over_the_environment(restored_logging, monkeypatch, tmp_path, clock):
    monkeypatch.setenv("LOG_FORMAT", "text")
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    stream = io.StringIO()
    logs.configure(stream=stream)  # before the app: the environment's
    logging.getLogger("tests.logs").info("from the environment")
    # instance/config.py and the environment both end in app.config; the app's is what counts
    build_app(f"sqlite:///{tmp_path / 'seed.db'}", clock, tmp_path, LOG_FORMAT="json", LOG_LEVEL="warning")
    logs.configure(stream=stream)
    logging.getLogger("tests.logs").info("not at WARNING")
    logging.getLogger("tests.logs").warning("as JSON")
    text, json_line = stream.getvalue().splitlines()
    assert text.endswith(" INFO tests.logs: from the environment")
    assert json.loads(json_line)["message"] == "as JSON"
    root = logging.getLogger()
    assert len(root.handlers) == 1 and root.level == logging.WARNING
    assert logging.getLogger("apscheduler").level == logging.WARNING
    assert logs.format_in_use() == "json"


def test_a_bad_setting_in_the_environment_waits_for_the_apps_clear_refusal(restored_logging, monkeypatch, tmp_path,
                                                                             clock):
    monkeypatch.setenv("LOG_FORMAT", "jsonn")
    logs._from_app.clear()
    assert isinstance(logs.configure(stream=io.StringIO()).formatter, logs.TextFormatter)
    with pytest.raises(ConfigError, match="LOG_FORMAT is 'jsonn': text or json"):
        build_app(f"sqlite:///{tmp_path / 'seed.db'}", clock, tmp_path)
    with pytest.raises(ConfigError, match="LOG_LEVEL is 'LOUD'"):
        build_app(f"sqlite:///{tmp_path / 'seed.db'}", clock, tmp_path, LOG_FORMAT="json", LOG_LEVEL="LOUD")


# ---- the real server ---------------------------------------------------------------------------

def banner(line: str) -> bool:
    """run.py's words for the person who started it (where it listens, the first password's file):
    printed, not logged."""
    return not line.strip() or line.startswith("  ")


@pytest.fixture
def own_database():
    """A PostgreSQL database of its own, which run.py's migrations build from nothing."""
    with new_postgres_database("seed_logs") as url:
        yield url


def test_run_py_with_log_format_json_writes_only_json_lines(tmp_path, own_database):
    """The real server on PostgreSQL (whose waits let gevent run the requests side by side): the
    app's lines and gunicorn's error and access lines are JSON, each request's lines carry its own
    id, and no number or query string is written."""
    system = RunningSystem(tmp_path / "instance", port=5620, env={
        "LOG_FORMAT": "json", "SEED_COUNTRY": "GE", "DATABASE_URL": own_database}).start(timeout=60)
    numbers = [f"{NUMBER[:-3]}40{i}" for i in range(6)]
    try:
        start = threading.Barrier(6)

        def check_in(i):
            start.wait()  # all six at once
            return requests.post(system.base + "/api/v1/checkins", json={**CHECK_IN, "phone": numbers[i]}, timeout=20,
                                 headers={"X-Request-ID": f"check-in-{i}"})

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(check_in, range(6)))
        assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers]
        assert [a.headers["X-Request-ID"] for a in answers] == [f"check-in-{i}" for i in range(6)]
        kiosk = requests.get(system.base + "/kiosk/1", timeout=10)
        assert kiosk.status_code == 200
        asked = requests.get(f"{system.base}/api/v1/virtual-phone/messages?number=%2B{NUMBER[1:]}", timeout=10,
                             headers={"X-Request-ID": "bad id"})
        assert asked.status_code == 200
        assert requests.get(f"{system.base}/t/{NUMBER}", timeout=10).status_code == 404
    finally:
        system.stop()
    output = "".join(system.output)
    lines = [json.loads(line) for line in output.splitlines() if not banner(line)]
    assert len(lines) > 10

    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in lines)
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    by_id = {line["request_id"]: line for line in access}
    for i in range(6):
        line = by_id[f"check-in-{i}"]
        assert (line["method"], line["path"], line["status"]) == ("POST", "/api/v1/checkins", 201)
        assert line["remote_addr"] == "127.0.0.1" and line["duration_ms"] >= 0
        # the line the app wrote during that request carries the same id (and only that request's number)
        (queued,) = [q for q in lines if q["logger"] == "messaging.outbox" and q.get("request_id") == f"check-in-{i}"]
        assert queued["message"].endswith(f"welcome text to {masked(numbers[i])} queued")
        assert queued["process"] == line["process"]
    assert by_id[kiosk.headers["X-Request-ID"]]["branch"] == 1  # /kiosk/<branch_id>
    phone = by_id[asked.headers["X-Request-ID"]]
    assert GENERATED.fullmatch(phone["request_id"]) and phone["path"] == "/api/v1/virtual-phone/messages"
    assert {"path": f"/t/{MASKED}", "status": 404}.items() <= next(
        line for line in access if line["path"].startswith("/t/")).items()
    assert not [line for line in access if "?" in line["path"]]
    assert not UNMASKED.search(output) and not any(number[4:] in output for number in numbers)


# ---- behind nginx ------------------------------------------------------------------------------

def test_nginx_gives_each_request_its_own_id(site):  # noqa: F811  (the fixture imported above)
    seen = []
    for _ in range(2):
        status, answer = over_https(site, "GET", "/staff/", headers={"X-Request-ID": "chosen-by-the-client"})
        assert status == 200
        seen.append(json.loads(answer)["headers"]["x-request-id"])
    assert all(GENERATED.fullmatch(value) for value in seen) and seen[0] != seen[1]
