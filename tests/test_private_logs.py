"""What `python run.py` writes to its logs and to instance/: no phone number in a log line, no
password on a stdout that is not a terminal, nothing in instance/ another account can read."""
import io
import logging
import re
import stat
import time

import pytest
import requests

from core.security import PhoneMaskFilter
from messaging.phones import masked
from run import announce_first_password

from .helpers import NUMBER, csrf_token
from .live import RunningSystem

MASKED = "+99555****456"  # messaging.phones.masked(NUMBER)
UNMASKED = re.compile(r"(?:\+|%2[Bb])\d{8,15}")


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    instance = tmp_path_factory.mktemp("private") / "instance"  # run.py creates it
    running = RunningSystem(instance, env={"SEED_COUNTRY": "GE"}).start()
    yield running
    running.stop()


def mode(path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_no_phone_number_reaches_a_log_line(system):
    admin = ("admin", system.admin_password)
    status, body, _ = system.request("POST", "/api/v1/checkins",
                                     {"service": "A", "phone": NUMBER, "sms_consent": True, "language": "en"})
    assert status == 201, body
    link = body["ticket"]["status_url"]  # whoever has it may cancel the visit: no log keeps it whole
    token = link.rsplit("/", 1)[1]
    assert requests.get(link, timeout=10).status_code == 200
    browser = requests.Session()
    page = browser.get(system.base + "/staff/login", timeout=10)
    browser.post(system.base + "/staff/login", timeout=10,
                 data={"username": admin[0], "password": admin[1], "csrf_token": csrf_token(page.text)})
    assert browser.get(f"{system.base}/staff/inbox/{NUMBER}", timeout=10).status_code == 200
    assert browser.get(f"{system.base}/staff/inbox/%2B{NUMBER[1:]}", timeout=10).status_code == 200
    for query in (f"%2B{NUMBER[1:]}", NUMBER, f"%2b{NUMBER[1:]}"):
        status, _, _ = system.request("GET", f"/api/v1/virtual-phone/messages?number={query}")
        assert status == 200, query
    assert requests.get(f"{system.base}/t/{NUMBER}", timeout=10).status_code == 404  # the number in a 404's path
    deadline = time.monotonic() + 15  # the welcome text goes through the gateway: its log lines too
    while time.monotonic() < deadline:
        if system.request("GET", f"/api/v1/virtual-phone/messages?number=%2B{NUMBER[1:]}")[1]["messages"]:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the welcome text was not delivered")
    system.stop()
    output = "".join(system.output)

    assert f'"GET /staff/inbox/{MASKED} HTTP/1.1" 200' in output, "the access log has the requests, masked"
    assert "/api/v1/virtual-phone/messages?number=" + MASKED in output
    leaks = [line for line in output.splitlines() if UNMASKED.search(line) or NUMBER[4:] in line]
    assert leaks == []
    assert f"GET /t/{token[:4]}... HTTP/1.1" in output and token not in output and token[4:] not in output
    assert not list(system.instance.rglob("*.log"))  # the logs are stdout and stderr, nothing else


def test_the_first_password_goes_to_a_private_file_and_only_its_path_to_stdout(system):
    password_file = system.instance / "first-admin-password.txt"
    password = system.admin_password
    assert password and password_file.read_text().strip() == password
    output = "".join(system.output)
    assert f"password in {password_file}" in output
    assert password not in output  # stdout is a pipe here, as under systemd or docker
    assert mode(password_file) == 0o600


def test_the_password_is_shown_on_a_terminal(tmp_path):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for out, shown in ((io.StringIO(), False), (Terminal(), True)):
        announce_first_password(tmp_path / "first-admin-password.txt", "s3cret-pw", out)
        assert ("s3cret-pw" in out.getvalue()) is shown
        assert str(tmp_path / "first-admin-password.txt") in out.getvalue()


def test_instance_is_private_while_running(system):
    instance = system.instance
    if system.process.poll() is not None:  # the first test stopped it: start again on the same folder
        system.start()
    db = instance / "seed.db"
    assert db.exists() and (instance / "secret_key").exists()
    assert (instance / "seed.db-wal").exists(), "SQLite runs in WAL mode"
    for path in (instance, *instance.rglob("*")):
        if path.is_symlink():  # the virtual modem's link to its pty
            continue
        expected = 0o700 if path.is_dir() else 0o600
        assert mode(path) == expected, f"{path} is {oct(mode(path))}"


def test_the_filter_masks_messages_arguments_and_tracebacks():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PhoneMaskFilter(masked))
    logger = logging.getLogger("tests.private_logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("GET /staff/inbox/%s?number=%%2B%s&other=%%2b%s", NUMBER, NUMBER[1:], NUMBER[1:])
        try:
            raise ValueError(f"cannot text {NUMBER}")
        except ValueError:
            logger.exception("failed")
        logger.warning("ticket A001, 12 waiting, +44 20 (not a number), +1234567 (too short)")
        logger.warning("GET /a/Zm9vYmFyYmF6cXV4cXV1eDEy HTTP/1.1, GET /t/abcdEFGH_-ijklmn?x=1, GET /t/new")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert NUMBER[1:] not in output and output.count(MASKED) == 4
    assert "+44 20 (not a number), +1234567 (too short)" in output
    assert "GET /a/Zm9v... HTTP/1.1, GET /t/abcd...?x=1, GET /t/new" in output  # a customer's links: their start only
