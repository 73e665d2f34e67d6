"""Helpers for tests that run the real system: `python run.py` in a subprocess, and Chromium."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # this machine's network is closed; don't let Chromium try
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",  # the display's chime plays unattended
]


def chromium_path() -> str:
    path = os.environ.get("SEED_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError("Chromium is missing: the test command installs it (apt-get install chromium chromium-driver)")
    return path


def launch_chromium(playwright):
    from playwright.sync_api import expect

    # A page's answer, not its timing, is what these tests check: on a loaded CI machine (two
    # workers, a server and Chromium each) a form's round trip has taken more than the default 5 s.
    # Waits that are themselves the point (a push within 2 s) keep their own timeout.
    expect.set_options(timeout=10_000)
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True)


@contextmanager
def chromium():
    """Headless Chromium for a module's tests (a module-scoped fixture yields from it) or one test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page, system, username: str = "admin", password: str | None = None):
    """Sign in on the staff login page (the administrator by default) and wait to have left it."""
    page.goto(system.base + "/staff/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password or system.admin_password)
    page.click("form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    return page


def signed_in(browser, system, username: str = "admin", password: str | None = None, locale: str = "en-GB"):
    """A new browser context in `locale` at a laptop's width, signed in: (context, page)."""
    context = browser.new_context(locale=locale, viewport={"width": 1366, "height": 900})
    return context, sign_in(context.new_page(), system, username, password)


@contextmanager
def running_system(folder: Path, config: str | None = None):
    """`python run.py` with its instance in `folder`/instance (config.py written from `config`),
    stopped after."""
    instance = folder / "instance"
    instance.mkdir(exist_ok=True)
    if config is not None:
        (instance / "config.py").write_text(config)
    system = RunningSystem(instance).start()
    try:
        yield system
    finally:
        system.stop()


def end_process(process, grace: float = 15) -> None:
    """Ask a server to stop (SIGTERM: gunicorn finishes its requests), and kill it if it has not
    within `grace` seconds."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(page, expression: str, timeout: float = 10_000) -> None:
    """page.wait_for_function polls its predicate with eval() inside the page, which the pages'
    Content-Security-Policy forbids (no 'unsafe-eval'); page.evaluate goes through the DevTools
    protocol, which the policy does not govern."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout:.0f} ms: {expression}")
        page.wait_for_timeout(50)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningSystem:
    """`python run.py` on a free port with its own instance folder, as a newcomer starts it."""

    def __init__(self, instance: Path, port: int | None = None, env: dict | None = None, args: list | None = None):
        self.instance = instance
        self.extra_env = env or {}
        self.args = list(args or [])  # more run.py arguments, e.g. ["--workers", "3", "--role", "web"]
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.output: list[str] = []
        self.process = None

    def start(self, timeout=30):
        env = {**os.environ, "SEED_INSTANCE_PATH": str(self.instance), "PYTHONUNBUFFERED": "1"}
        env.pop("DATABASE_URL", None)
        env.update(self.extra_env)
        self.process = subprocess.Popen(
            [sys.executable, "run.py", "--port", str(self.port), *self.args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise RuntimeError("run.py exited:\n" + "".join(self.output))
            self.output.append(line)
            if "Booting worker" in line:
                break
        # Keep reading what the server prints: a pipe nobody empties fills up (64 KiB of access log
        # lines) and the server then blocks on its next log line, every thread of it.
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/api/v1/health")[0] == 200:
                    return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise RuntimeError("run.py did not answer in time:\n" + "".join(self.output))

    def _drain(self):
        for line in self.process.stdout:
            self.output.append(line)

    def workers(self) -> list[int]:
        """The pids of gunicorn's worker processes (run.py's children), as they are now."""
        pid = self.process.pid
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    @property
    def admin_password(self) -> str | None:
        """The first start writes it to a file in instance/ and prints only the path."""
        match = re.search(r"Admin login: admin, password in (.+)$", "".join(self.output), re.MULTILINE)
        return Path(match.group(1)).read_text().strip() if match else None

    def api_token(self) -> str:
        """An administrator's API token, made once with the CLI on this system's instance."""
        if getattr(self, "_api_token", None) is None:
            env = {**os.environ, "SEED_INSTANCE_PATH": str(self.instance)}
            env.pop("DATABASE_URL", None)  # the system's own, as start() gives it
            env.update(self.extra_env)
            made = subprocess.run([sys.executable, "-m", "flask", "--app", "run", "token", "create", "--name",
                                   "live tests", "--role", "admin"], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=60, check=True)
            self._api_token = re.search(r"Token \(shown once.*\): (\S+)", made.stdout).group(1)
        return self._api_token

    def request(self, method, path, payload=None, auth=None):
        """`auth`: call as the administrator (with an admin API token: HTTP Basic is off)."""
        data = json.dumps(payload).encode() if payload is not None else (b"{}" if method == "POST" else None)
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if method == "POST":
            request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.api_token()}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null"), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null"), dict(error.headers)

    def stop(self):
        end_process(self.process)
        if getattr(self, "_drainer", None) is not None:
            self._drainer.join(5)  # it reads to the end of the output
        elif self.process and self.process.stdout:
            self.output.append(self.process.stdout.read())
