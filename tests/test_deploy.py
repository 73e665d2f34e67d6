"""deploy/: the systemd units, the nginx site, the settings example and seedctl, each checked by
the program that will read it. systemd-analyze verifies every unit against this checkout's own
interpreter and run.py; the commands the units run are asked for their options; nginx serves the
site in front of a stand-in for Seed (TLS, the redirect, a WebSocket, the forwarded headers, the
body limit); the settings example is held against the variables the code reads."""
import functools
import http.client
import json
import os
import re
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import run
from app import create_app
from core import config, zones

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = ("seed-web.service", "seed-scheduler.service", "seed-gateway@.service", "seed.service")
INSTANCE = "3"  # the branch id a gateway unit is verified with
SITE = DEPLOY / "nginx" / "seed.conf"
EXAMPLE = DEPLOY / "seed.env.example"
# What each unit runs: run.py with these first arguments (none: the default role, "all"), or
# `flask --app run` with these.
ROLES = {
    "seed-web.service": ("run.py", ["--role", "web"]),
    "seed-scheduler.service": ("flask", ["scheduler", "run"]),
    "seed-gateway@.service": ("flask", ["modem", "run", "--branch", INSTANCE]),
    "seed.service": ("run.py", []),
}
MODEM_DEVICES = {"char-ttyUSB rw", "char-ttyACM rw"}


def tool(name, how_to_get):
    """A program the test needs, found on PATH or in sbin (nginx is in /usr/sbin, outside a
    normal user's PATH). Missing, the test fails and says how to get it: a check that
    silently skips on the machine that lacks it checks nothing there."""
    found = shutil.which(name) or next((str(p) for p in (Path("/usr/sbin", name), Path("/sbin", name))
                                        if os.access(p, os.X_OK)), None)
    if not found:
        pytest.fail(f"{name} is not installed, so deploy/ cannot be checked: {how_to_get}", pytrace=False)
    return found


def systemd_analyze():
    return tool("systemd-analyze", "install Debian's systemd package (apt-get install systemd).")


def nginx():
    return tool("nginx", "./scripts/test installs Debian's nginx; or apt-get install nginx.")


# ---- the units ----------------------------------------------------------------------------------

def read_unit(name):
    """[(section, key, value)] in file order: a unit may repeat a key (DeviceAllow=, After=)."""
    entries, section = [], None
    for line in (DEPLOY / name).read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def values(name, key):
    return [value for _section, k, value in read_unit(name) if k == key]


def one(name, key):
    found = values(name, key)
    assert len(found) == 1, f"{name}: {key}= set {len(found)} times"
    return found[0]


def defaults(name):
    """The unit's Environment= defaults, as its command line sees them without /etc/seed/seed.env."""
    found = {}
    for line in values(name, "Environment"):
        for pair in line.split():
            key, _, value = pair.partition("=")
            found[key] = value
    return found


def command(name):
    """The unit's ExecStart as argv, its ${VARIABLES} at their defaults and %i the instance."""
    line = one(name, "ExecStart").replace("%i", INSTANCE)
    env = defaults(name)
    line = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], line)
    return line.split()


def example_settings():
    """{key: value} for every "KEY=value" (set) and "#KEY=value" (documented, left at default)."""
    found = {}
    for line in EXAMPLE.read_text().splitlines():
        match = re.match(r"#?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


@pytest.fixture(scope="module")
def unit_tree(tmp_path_factory):
    """The units as they would be installed, with /opt/seed this checkout, its .venv this test's
    interpreter, and /etc/seed a folder holding the settings example; through links under a
    temporary folder, so the paths in the units are free of the spaces and % a checkout's path
    may hold."""
    base = tmp_path_factory.mktemp("units")
    (base / "seed").symlink_to(ROOT)
    (base / "bin").symlink_to(Path(sys.executable).parent)
    (base / "etc").mkdir()
    shutil.copy(EXAMPLE, base / "etc" / "seed.env")
    units = base / "system"
    units.mkdir()
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        text = text.replace("/opt/seed/.venv/bin/", f"{base}/bin/").replace("/opt/seed", f"{base}/seed")
        text = text.replace("/etc/seed/", f"{base}/etc/")
        (units / name).write_text(text)
    return units


def verify(unit_tree, unit):
    result = subprocess.run([systemd_analyze(), "verify", str(unit_tree / unit)],
                            capture_output=True, text=True, timeout=60)
    # Lines about our units (other units the system has may have their own complaints).
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "seed" in line.lower()]
    return result.returncode, ours


@pytest.mark.parametrize("name", UNITS)
def test_unit_verifies(unit_tree, name):
    """systemd-analyze verify: every key known and well-formed, the programs there and executable.
    A template unit is verified as an instance of it."""
    unit = name.replace("@.", f"@{INSTANCE}.")
    code, complaints = verify(unit_tree, unit)
    assert code == 0 and not complaints, "\n".join(complaints)


def test_verify_finds_a_broken_unit(unit_tree):
    """The check above can fail: a unit whose program is missing, or with a key systemd does not
    know, is reported."""
    text = (unit_tree / "seed-web.service").read_text()
    broken = unit_tree / "seed-broken.service"
    broken.write_text(text.replace("/bin/python ", "/bin/no-such-python ").replace("Restart=always", "Restart=sometimes"))
    try:
        code, complaints = verify(unit_tree, broken.name)
    finally:
        broken.unlink()
    assert code != 0
    assert any("no-such-python" in line for line in complaints)
    assert any("sometimes" in line for line in complaints)


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """The flask commands, as `flask --app run` finds them (no database needed for --help)."""
    folder = tmp_path_factory.mktemp("cli")
    app = create_app({"TESTING": True, "SECRET_KEY": "tests-only", "INSTANCE_PATH": str(folder / "instance"),
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'seed.db'}"})
    return app.test_cli_runner()


@pytest.mark.parametrize("name", UNITS)
def test_unit_runs_its_role_with_options_that_exist(name, cli, capsys):
    """The command each unit starts is the one for its role, and every option it passes exists
    (a renamed option would fail only at the first start on a real box)."""
    argv = command(name)
    program, role = ROLES[name]
    assert Path(argv[0]).parent == Path("/opt/seed/.venv/bin")
    assert one(name, "WorkingDirectory") == "/opt/seed"  # `flask --app run` finds run.py there
    if program == "run.py":
        assert argv[:2] == ["/opt/seed/.venv/bin/python", "/opt/seed/run.py"]
        args = argv[2:]
        assert args[:len(role)] == role
        with pytest.raises(SystemExit) as done:  # argparse checks choices (--role web) before --help
            run.main(args + ["--help"])
        assert done.value.code == 0
        shown = capsys.readouterr().out
    else:
        assert argv[:3] == ["/opt/seed/.venv/bin/flask", "--app", "run"]
        args = argv[3:]
        assert args[:len(role)] == role
        words = [arg for arg in args if not arg.startswith("-") and not arg.isdigit()]
        result = cli.invoke(args=words + ["--help"])
        assert result.exit_code == 0, result.output
        shown = result.output
    for option in (arg for arg in args if arg.startswith("--")):
        assert option in shown, f"{name}: {' '.join(argv)} passes {option}, which it does not take"


@pytest.mark.parametrize("name", UNITS)
def test_unit_is_hardened(name):
    """Its own account, nothing of the system writable but the instance folder, a private /tmp,
    no way to gain privileges, and back up whenever it stops."""
    assert one(name, "User") == "seed"
    assert one(name, "ProtectSystem") == "strict"
    assert one(name, "PrivateTmp") == "yes"
    assert one(name, "NoNewPrivileges") == "yes"
    assert one(name, "CapabilityBoundingSet") == ""
    assert one(name, "Restart") == "always"
    assert one(name, "StartLimitIntervalSec") == "0"  # a box that runs for years never gives up
    assert one(name, "ReadWritePaths") == example_settings()["SEED_INSTANCE_PATH"]
    assert "/etc/seed/seed.env" in values(name, "EnvironmentFile")
    assert one(name, "WantedBy") == "multi-user.target"


@pytest.mark.parametrize("name", UNITS)
def test_only_a_modem_process_reaches_devices(name):
    """The gateway (and the one-box process, which runs one) reaches the USB modems' serial ports
    through the dialout group, with their drivers loaded before it starts (the allow-list is
    resolved then); the web and the scheduler see no device at all."""
    drives_a_modem = name in ("seed-gateway@.service", "seed.service")
    allowed = set(values(name, "DeviceAllow"))
    if drives_a_modem:
        assert one(name, "SupplementaryGroups") == "dialout"
        assert MODEM_DEVICES <= allowed
        assert one(name, "DevicePolicy") == "closed"
        assert values(name, "PrivateDevices") == []
        loaded = " ".join(values(name, "After"))
        assert "modprobe@usbserial.service" in loaded and "modprobe@cdc_acm.service" in loaded
    else:
        assert one(name, "PrivateDevices") == "yes"
        assert not allowed and not values(name, "SupplementaryGroups")


def test_a_gateway_per_branch():
    """The template's instance is the branch: its command, its own optional settings file."""
    assert command("seed-gateway@.service")[-2:] == ["--branch", INSTANCE]
    assert "-/etc/seed/gateway-%i.env" in values("seed-gateway@.service", "EnvironmentFile")


# ---- the settings example ---------------------------------------------------------------------

@functools.cache
def variables_the_code_reads():
    """Environment variables the code reads: core/config.py's table, and every literal
    os.environ/getenv lookup in the app's packages (not tests/ or bench/)."""
    found = set(config.ENVIRONMENT)
    lookup = re.compile(r"""(?:os\.environ(?:\.get|\.setdefault)?\s*[\[(]\s*|getenv\(\s*)["']([A-Z][A-Z0-9_]*)["']""")
    skip = {"tests", "bench", "node_modules", "test-artifacts", "__pycache__"}
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in skip and not name.startswith(".")]
        for name in files:
            if name.endswith(".py"):
                found.update(lookup.findall(Path(folder, name).read_text(encoding="utf-8")))
    return found


def variables_the_units_use():
    return {name for unit in UNITS for name in re.findall(r"\$\{(\w+)\}", one(unit, "ExecStart"))}


def test_the_example_sets_only_what_is_read():
    """No setting in the example that nothing reads (a typo would be silently ignored)."""
    read = variables_the_code_reads() | variables_the_units_use()
    unknown = set(example_settings()) - read
    assert not unknown, f"deploy/seed.env.example sets {sorted(unknown)}, which nothing reads"


def test_every_variable_read_is_in_the_example():
    """Every variable the code or the units read is in the example, set or documented: a city's
    administrator learns of each one there."""
    missing = (variables_the_code_reads() | variables_the_units_use()) - set(example_settings())
    assert not missing, f"deploy/seed.env.example does not mention {sorted(missing)}"


def test_example_values_are_ones_seed_starts_with():
    settings = example_settings()
    assert settings["TRUSTED_PROXIES"] == "1"  # nginx, deploy/nginx/seed.conf, is one hop
    assert zones.is_zone(settings["SEED_TIMEZONE"])
    assert config.normalise_database_url(settings["DATABASE_URL"]).startswith("postgresql+psycopg://")
    assert settings["REDIS_URL"].startswith("redis://")
    for unit in UNITS:  # a unit's own default agrees with the example's documented one
        for key, value in defaults(unit).items():
            if key in settings:
                assert settings[key] == value, f"{unit} defaults {key} to {value}, the example says {settings[key]}"


def test_example_reads_the_same_in_a_shell(tmp_path):
    """seedctl reads the file as a shell does, systemd as an environment file: with every
    documented setting switched on, a shell reads every value the way systemd does (quotes
    removed, spaces kept)."""
    switched_on = tmp_path / "seed.env"
    switched_on.write_text(re.sub(r"(?m)^#([A-Z][A-Z0-9_]*=)", r"\1", EXAMPLE.read_text()))
    shown = subprocess.run(["sh", "-c", f'set -a; . "{switched_on}"; env -0'], capture_output=True,
                           text=True, check=True, env={"PATH": os.environ["PATH"]}).stdout
    environment = dict(item.partition("=")[::2] for item in shown.split("\0") if item)
    for key, value in example_settings().items():
        if value and value[0] in "\"'":
            assert value[-1] == value[0] and environment[key] == value[1:-1]
        else:
            assert not re.search(r"[\s$&;`\\\"']", value), f"{key}: quote a value with spaces or shell characters"
            assert environment[key] == value
    assert environment["SEED_BRANCH_NAME"] == "City Office"


def test_seedctl_runs_flask_with_the_settings(tmp_path):
    """seedctl runs `flask --app run ARGS` from the code's folder with every setting of the
    settings file exported, as the services get them (quotes removed, spaces kept)."""
    home = tmp_path / "opt-seed"
    (home / ".venv" / "bin").mkdir(parents=True)
    flask = home / ".venv" / "bin" / "flask"  # a stand-in that shows what it was given
    flask.write_text('#!/bin/sh\necho "cwd=$(pwd)"\necho "args=$*"\n'
                     'echo "instance=$SEED_INSTANCE_PATH"\necho "branch=$SEED_BRANCH_NAME"\n')
    flask.chmod(0o755)
    settings = tmp_path / "seed.env"
    settings.write_text('# a comment\nSEED_INSTANCE_PATH=/var/lib/seed\nSEED_BRANCH_NAME="City Office"\n')
    me = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    env = {"PATH": os.environ["PATH"], "SEED_HOME": str(home), "SEED_ENV_FILE": str(settings), "SEED_USER": me}
    result = subprocess.run(["sh", str(DEPLOY / "seedctl"), "user", "create", "maria", "--name", "Maria Q"],
                            capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"cwd={home}", "args=--app run user create maria --name Maria Q",
                                          "instance=/var/lib/seed", "branch=City Office"]

    missing = subprocess.run(["sh", str(DEPLOY / "seedctl"), "user", "list"], capture_output=True, text=True,
                             env={**env, "SEED_ENV_FILE": str(tmp_path / "nowhere.env")}, timeout=30)
    assert missing.returncode == 1 and "cannot read" in missing.stderr


# ---- the nginx site ---------------------------------------------------------------------------

def blocks(text, opener):
    """The bodies of the blocks that start with `opener` (e.g. "location /socket.io/")."""
    found, start = [], 0
    while (at := text.find(opener + " {", start)) >= 0:
        depth, i = 0, text.index("{", at)
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                found.append(text[i + 1:j])
                break
        start = i + 1
    return found


def directive(body, name):
    match = re.search(rf"(?m)^\s*{name}\s+([^;]*);", body)
    return match and match.group(1)


def seconds(value):
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value).groups()
    return int(number) * {"ms": 0.001, None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def site_text():
    return re.sub(r"(?m)#.*$", "", SITE.read_text())


def test_every_proxied_location_forwards_the_client():
    """nginx's proxy_set_header lines are not inherited by a location that sets any of its own:
    each proxying location sets every header Seed believes (TRUSTED_PROXIES=1) itself."""
    locations = [body for body in blocks(site_text(), "location /") + blocks(site_text(), "location /socket.io/")
                 if "proxy_pass" in body]
    assert len(locations) == 2
    for body in locations:
        assert directive(body, "proxy_http_version") == "1.1"
        headers = dict(line.split(None, 1) for line in re.findall(r"proxy_set_header\s+([^;]+);", body))
        assert headers["X-Forwarded-For"] == "$remote_addr"
        assert headers["X-Forwarded-Proto"] == "$scheme"
        # As the browser wrote it, port included: Engine.IO compares it with the page's origin.
        assert headers["X-Forwarded-Host"] == "$http_host" and headers["Host"] == "$http_host"


def test_websockets_stay_open():
    """A display holds its socket all day: nginx must not end it for being quiet between
    Engine.IO's pings (every 25 s) nor for a long day."""
    (body,) = blocks(site_text(), "location /socket.io/")
    assert seconds(directive(body, "proxy_read_timeout")) >= 3600
    assert seconds(directive(body, "proxy_send_timeout")) >= 3600
    assert directive(body, "proxy_buffering") == "off"


class Backend(socketserver.ThreadingTCPServer):
    """A stand-in for Seed behind nginx: answers every request with what it received, and a
    WebSocket upgrade with 101, then echoes what comes."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), BackendRequest)
        self.seen = []


class BackendRequest(socketserver.StreamRequestHandler):
    def handle(self):
        while line := self.rfile.readline():  # several requests per kept-alive connection
            headers = {}
            while (header := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = self.rfile.read(int(headers.get("content-length", 0)))
            self.server.seen.append({"line": line.decode().strip(), "headers": headers, "body": len(body)})
            if headers.get("upgrade", "").lower() == "websocket":
                self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
                self.wfile.flush()
                while chunk := self.rfile.read1(65536):
                    self.wfile.write(chunk)
                    self.wfile.flush()
                return
            answer = json.dumps({"headers": headers, "body": len(body)}).encode()
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                             % len(answer) + answer)
            self.wfile.flush()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def nginx_config(folder, site):
    """A whole nginx configuration around the site, with every path in `folder`, as Debian's
    nginx.conf includes sites-enabled/ in its http block."""
    (folder / "seed.conf").write_text(site)
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = folder / "nginx.conf"
    main.write_text(f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'};\nevents {{}}\n"
                    f"http {{\n    access_log {folder / 'access.log'};\n{temp}\n    include {folder / 'seed.conf'};\n}}\n")
    return main


def with_test_certificate(folder, site):
    """The site with its placeholder certificate paths pointing at a throwaway self-signed pair."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    openssl = tool("openssl", "apt-get install openssl (ca-certificates brings it).")
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-subj", "/CN=seed.example.org", "-days", "2", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    site = re.sub(r"(?m)^(\s*ssl_certificate)\s+\S+;", rf"\1 {cert};", site)
    return re.sub(r"(?m)^(\s*ssl_certificate_key)\s+\S+;", rf"\1 {key};", site)


def test_nginx_accepts_the_site(tmp_path):
    """nginx -t on the site as shipped (only the certificate paths, placeholders, replaced)."""
    main = nginx_config(tmp_path, with_test_certificate(tmp_path, SITE.read_text()))
    result = subprocess.run([nginx(), "-t", "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, result.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """nginx serving the site on free local ports in front of the stand-in backend."""
    binary = nginx()
    folder = tmp_path_factory.mktemp("nginx")
    backend = Backend()
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    http_port, https_port = free_port(), free_port()
    text = with_test_certificate(folder, SITE.read_text())
    text = re.sub(r"(?m)^\s*listen\s+\[::\]:\d+[^;]*;\n", "", text)  # the machine may have no IPv6
    text, plain = re.subn(r"(?m)^(\s*)listen\s+80;", rf"\1listen 127.0.0.1:{http_port};", text)
    text, secure = re.subn(r"(?m)^(\s*)listen\s+443 ssl;", rf"\1listen 127.0.0.1:{https_port} ssl;", text)
    text, upstreams = re.subn(r"(?m)^(\s*)server 127\.0\.0\.1:8000\b",
                              rf"\1server 127.0.0.1:{backend.server_address[1]}", text)
    assert (plain, secure, upstreams) == (1, 1, 1), "the site's listen or upstream lines changed: update this fixture"
    main = nginx_config(folder, text)
    process = subprocess.Popen([binary, "-p", str(folder), "-c", str(main), "-e", str(folder / "error.log"),
                                "-g", "daemon off; master_process off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"nginx did not start: {process.stderr.read().decode()}"
                                f"{(folder / 'error.log').read_text() if (folder / 'error.log').exists() else ''}")
                time.sleep(0.05)
        yield {"http": http_port, "https": https_port, "backend": backend}
    finally:
        process.terminate()
        process.wait(timeout=10)
        backend.shutdown()
        backend.server_close()


def tls():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def over_https(site, method, path, body=None, headers=()):
    connection = http.client.HTTPSConnection("127.0.0.1", site["https"], context=tls(), timeout=20)
    try:
        connection.request(method, path, body=body, headers={"Host": "seed.example.org", **dict(headers)})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_plain_http_goes_to_https(site):
    connection = http.client.HTTPConnection("127.0.0.1", site["http"], timeout=20)
    connection.request("GET", "/staff/inbox?filter=unread", headers={"Host": "seed.example.org"})
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == "https://seed.example.org/staff/inbox?filter=unread"
    connection.close()


def test_seed_sees_the_client_not_what_it_claims(site):
    """Seed (TRUSTED_PROXIES=1) believes the last hop of each header: nginx sets them from what it
    saw, so a client cannot pose as another address or host."""
    status, answer = over_https(site, "GET", "/staff/", headers={"X-Forwarded-For": "10.9.8.7",
                                                                 "X-Forwarded-Host": "evil.example"})
    assert status == 200
    seen = json.loads(answer)["headers"]
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-host"] == "seed.example.org" and seen["host"] == "seed.example.org"
    assert "upgrade" not in seen


def test_body_limit_above_seeds_own(site):
    """A body Seed itself may refuse (over MAX_CONTENT_LENGTH, 1 MB) still reaches it, so its own
    clear message is what people see; a much larger one nginx refuses."""
    status, answer = over_https(site, "POST", "/admin/branches/1/logo", body=b"x" * 1_500_000,
                                headers={"Content-Type": "application/octet-stream"})
    assert status == 200 and json.loads(answer)["body"] == 1_500_000
    status, _ = over_https(site, "POST", "/admin/branches/1/logo", body=b"x" * 3_000_000,
                           headers={"Content-Type": "application/octet-stream"})
    assert status == 413


def test_socket_io_upgrades_to_a_websocket(site):
    """A display's WebSocket passes nginx: the upgrade reaches Seed with the client's address
    and the host as the browser wrote it (here on a port other than 443), and data flows both
    ways over it afterwards."""
    raw = socket.create_connection(("127.0.0.1", site["https"]), timeout=20)
    with tls().wrap_socket(raw, server_hostname="seed.example.org") as sock:
        sock.sendall(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: seed.example.org:8443\r\n"
                     b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Forwarded-For: 10.9.8.7\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        for message in (b"40/display,", b"42/display,[\"update\"]"):
            sock.sendall(message)
            echoed = b""
            while len(echoed) < len(message):
                echoed += sock.recv(4096)
            assert echoed == message
    upgrade = next(entry for entry in site["backend"].seen if entry["line"].startswith("GET /socket.io/"))
    assert upgrade["headers"]["upgrade"] == "websocket"
    assert upgrade["headers"]["connection"].lower() == "upgrade"
    assert upgrade["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert upgrade["headers"]["x-forwarded-proto"] == "https"
    # Engine.IO accepts the socket only when its Origin (https://seed.example.org:8443) is this host
    assert upgrade["headers"]["x-forwarded-host"] == "seed.example.org:8443"
