"""The operator's console in a real browser: Playwright driving Debian's Chromium against a real
`conduit serve`, once on SQLite and once on PostgreSQL (a database of its own on the server
named by CONDUIT_TEST_PG_URL, dropped at the end).

Each server sends mail to an SMTP server of the test's own (aiosmtpd, in this process) that
refuses for good the addresses a test puts in `refused` and keeps the rest in `delivered`; it
takes scheduled backups into a folder of its own (the first one at start-up); it cuts off a body
not sent within 2 seconds (CONDUIT_BODY_TIMEOUT); and it asks for the password again 5 seconds
after a login (CONDUIT_REAUTH_WINDOW), so the tests see both sides
of the re-authentication window.

Accounts are made as a person would: registered over the API, then promoted with
`conduit user promote` against the same database. The accessibility check injects axe-core
(from npm; AXE_CORE_JS names its axe.min.js) into a context that bypasses the page's CSP
(the console allows no script at all, by design).

Set CONDUIT_BIN to test another build (default: target/debug/conduit), CHROMIUM for another
browser (default: /usr/bin/chromium).
"""

import contextlib
import json
import os
import pathlib
import secrets
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("CONDUIT_BIN", str(ROOT / "target" / "debug" / "conduit"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PASSWORD = "a console test password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, token=None):
    """One API request; (status, parsed JSON body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


REAUTH_WINDOW_SECS = 5
# Short, so that a body sent a byte a second is cut off within the test's time.
BODY_TIMEOUT_SECS = 2


class Mailbox:
    """An SMTP server's handler: refuses the addresses in `refused` (550, for good), keeps the
    recipients of every other message in `delivered`."""

    def __init__(self):
        self.refused = set()
        self.delivered = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.delivered.extend(envelope.rcpt_tos)
        return "250 OK"


def wait_ready(base, server, log=None):
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            return
        except OSError:
            assert server.poll() is None, open(log).read() if log else "the server exited"
            time.sleep(0.1)
    raise AssertionError(f"{base} did not become ready")


class Site:
    """A running conduit and how to make people on it."""

    def __init__(self, base, env, backend, mailbox=None, backups=None):
        self.base = base
        self.env = env
        self.backend = backend
        self.mailbox = mailbox
        self.backups = backups

    def register(self, name, email=None):
        email = email or f"{name}@example.com"
        status, body = call(
            self.base, "POST", "/api/users", {"user": {"username": name, "email": email, "password": PASSWORD}}
        )
        assert status == 201, body
        return body["user"]["token"]

    def promote(self, name, role="admin"):
        subprocess.run([BIN, "user", "promote", name, "--role", role], env=self.env, check=True, capture_output=True)

    @contextlib.contextmanager
    def another_instance(self):
        """A second `conduit serve` on the same database (and token secret); its base URL."""
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([BIN, "serve", "--bind", f"127.0.0.1:{port}"], env=self.env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(base, server)
            yield base
        finally:
            server.terminate()
            server.wait(timeout=30)

    def unique(self, name):
        return f"{name}{secrets.token_hex(3)}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(request):
    work = tempfile.mkdtemp(prefix="conduit-console-")
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    pg_admin = None
    database = None
    if request.param == "sqlite":
        env["DATABASE_URL"] = f"sqlite://{work}/conduit.db"
    else:
        pg_admin = os.environ.get("CONDUIT_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        database = f"conduit_console_{secrets.token_hex(4)}"
        subprocess.run(["psql", "-q", pg_admin, "-c", f"CREATE DATABASE {database}"], check=True)
        env["DATABASE_URL"] = pg_admin.rsplit("/", 1)[0] + "/" + database
        env["CONDUIT_JWT_SECRET"] = secrets.token_hex(32)
    # Generous limits: the tests register and log in more than a person does in an hour.
    env["CONDUIT_REGISTRATIONS_PER_HOUR"] = "1000"
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    env["CONDUIT_SMTP_URL"] = f"smtp://127.0.0.1:{smtp.port}"
    env["CONDUIT_PUBLIC_URL"] = "http://127.0.0.1:9"
    env["CONDUIT_MAIL_RETRY"] = "1"
    backups = pathlib.Path(work) / "backups"
    env["CONDUIT_BACKUP_DIR"] = str(backups)
    env["CONDUIT_REAUTH_WINDOW"] = str(REAUTH_WINDOW_SECS)
    env["CONDUIT_BODY_TIMEOUT"] = str(BODY_TIMEOUT_SECS)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(f"{work}/conduit.log", "w")
    server = subprocess.Popen([BIN, "serve", "--bind", f"127.0.0.1:{port}"], env=env, stdout=log, stderr=log)
    try:
        wait_ready(base, server, f"{work}/conduit.log")
        yield Site(base, env, request.param, mailbox, backups)
    finally:
        server.terminate()
        server.wait(timeout=30)
        smtp.stop()
        if database:
            subprocess.run(["psql", "-q", pg_admin, "-c", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"])


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    context = browser.new_context()
    yield context
    context.close()


def log_in(page, site, name):
    """Logs `name` in through the console's login form; the page is then the dashboard."""
    page.goto(site.base + "/admin")
    assert page.url.endswith("/admin/login")
    page.get_by_label("Email").fill(f"{name}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(site.base + "/admin")
