"""nginx in front of two `conduit serve` processes, all throwaway, for test_nginx.py.

The nginx configuration is the README's recipe itself (the one ```nginx block of README.md,
section "Behind a proxy (nginx)"), with its example addresses, ports and certificate paths
replaced by this run's and the throwaway's own file paths added; nothing else is changed
(but for `lenient_stack`, which says why), so the test runs what the README tells people to run.

The two instances share a PostgreSQL database (created on the server named by
CONDUIT_TEST_PG_URL, dropped at the end), a throwaway Redis (sessions and rate limits) and one
token secret, and trust only nginx's address (127.0.0.1) for X-Forwarded-For and
X-Forwarded-Proto. They allow 3 registrations per address and hour, and 1 s for a body. Clients are told apart by their source address: every test client binds
its socket to an address of its own in 127.0.0.0/8 (all of it is loopback on Linux).

Set CONDUIT_BIN to test another build (default: target/debug/conduit), NGINX_BIN for another
nginx (default: `nginx` on PATH, else /usr/sbin/nginx).
"""

import http.client
import itertools
import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECRET = secrets.token_hex(32)
RUN = secrets.token_hex(4)  # makes usernames and emails unique to this run
# Small, so that a test exhausts a budget in a few requests.
REGISTRATIONS_PER_HOUR = 3
# Short, so that a slow body sent straight to Conduit is cut off within the test's time, while
# the same body sent through nginx (which buffers it) is not.
BODY_TIMEOUT_SECS = 1
NGINX_ADDRESS = "127.0.0.1"

# The README recipe's example values, each replaced by this run's.
RECIPE_BACKENDS = ("server 10.0.0.11:3000;", "server 10.0.0.12:3000;")
RECIPE_LISTEN_HTTP = "listen 80;"
RECIPE_LISTEN_HTTPS = "listen 443 ssl;"
RECIPE_CERT = "/etc/nginx/conduit.crt"
RECIPE_KEY = "/etc/nginx/conduit.key"
RECIPE_BODY_LIMIT = "client_max_body_size 1m;"

_addresses = itertools.count(2)


def client_address():
    """A loopback address no other test client uses: 127.0.0.2, 127.0.0.3, ..."""
    n = next(_addresses)
    assert n < 250, "out of client addresses"
    return f"127.0.0.{n}"


def free_port():
    with socket.socket() as s:
        s.bind((NGINX_ADDRESS, 0))
        return s.getsockname()[1]


def wait_for(what, check, timeout, process=None, log=None):
    """Polls check() until it returns something true, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if process is not None and process.poll() is not None:
            detail = pathlib.Path(log).read_text(errors="replace")[-4000:] if log else ""
            raise RuntimeError(f"{what}: the process exited with {process.returncode}\n{detail}")
        if time.monotonic() > deadline:
            detail = pathlib.Path(log).read_text(errors="replace")[-4000:] if log else ""
            raise RuntimeError(f"{what}: not within {timeout} s\n{detail}")
        time.sleep(0.05)


def accepts(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def find_binary(env_var, name, fallback):
    path = os.environ.get(env_var) or shutil.which(name) or fallback
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"{name} not found (set {env_var}, or apt-get install {name})")
    return path


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # [(name, value)], in order, repeated names kept
        self.body = body

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def header(self, name):
        values = self.all(name)
        return values[0] if values else None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def call(host, port, method, path, *, body=None, headers=(), client=None, tls=None, timeout=15):
    """One request on a fresh connection from source address `client`. `body` is sent as JSON;
    `headers` is a list of (name, value) and may repeat a name (each is its own line)."""
    source = (client, 0) if client else None
    if tls is not None:
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, source_address=source, context=tls)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout, source_address=source)
    try:
        conn.putrequest(method, path)
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(data)))
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders(data)
        response = conn.getresponse()
        return Response(response.status, response.getheaders(), response.read())
    finally:
        conn.close()


class Conduit:
    """One `conduit serve` on 127.0.0.1, on a port of its own choosing."""

    def __init__(self, name, directory, env):
        self.name = name
        self.log = directory / f"conduit-{name}.log"
        binary = os.environ.get("CONDUIT_BIN", str(ROOT / "target" / "debug" / "conduit"))
        if not os.access(binary, os.X_OK):
            pytest.fail(f"no conduit binary at {binary} (cargo build, or set CONDUIT_BIN)")
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [binary, "serve", "--bind", "127.0.0.1:0"], env=env, cwd=directory,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        self.address = wait_for(f"conduit {name} listening", self._listening, 60, self.process, self.log)
        host, port = self.address.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        wait_for(f"conduit {name} /health/live", self._live, 10, self.process, self.log)

    def _listening(self):
        for entry in self.entries():
            if entry.get("message") == "conduit is listening":
                return entry["address"]
        return None

    def _live(self):
        try:
            return call(self.host, self.port, "GET", "/health/live", timeout=2).status == 200
        except OSError:
            return False

    def entries(self):
        """Every JSON line of the log so far."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                found.append(entry)
        return found

    def access(self):
        """The access lines of the log so far, by request id."""
        return {e["request_id"]: e for e in self.entries() if e.get("message") == "response" and "request_id" in e}

    def call(self, method, path, **kw):
        return call(self.host, self.port, method, path, **kw)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=40)
        assert code == 0, f"conduit {self.name} exited with {code} after SIGTERM"


class Nginx:
    """nginx with the README's recipe in front of `backends`, all its files in `directory`."""

    def __init__(self, directory, backends, cert, key, change=None):
        self.dir = directory
        self.dir.mkdir()
        # As root, nginx's workers run as its built-in unprivileged user (nobody), which must be
        # able to walk into the directory; nginx makes its temp directories that user's. No
        # `user` directive: as another user nginx runs as that user, and would only warn.
        self.dir.chmod(0o755)
        self.http_port, self.https_port = free_port(), free_port()
        self.error_log = self.dir / "error.log"
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(render_recipe(self.dir, backends, self.http_port, self.https_port, cert, key, change))
        binary = find_binary("NGINX_BIN", "nginx", "/usr/sbin/nginx")
        with open(self.dir / "stderr.log", "wb") as out:
            self.process = subprocess.Popen(
                [binary, "-p", str(self.dir), "-c", str(self.conf), "-e", str(self.error_log),
                 "-g", f"daemon off; pid {self.dir}/nginx.pid;"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        for port in (self.http_port, self.https_port):
            wait_for(f"nginx on port {port}", lambda: accepts(NGINX_ADDRESS, port), 10, self.process,
                     self.dir / "stderr.log")

    def errors(self):
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def stop(self):
        self.process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        # A temporary file nginx could not write, a worker that died: never part of a test.
        serious = [line for line in self.errors().splitlines() if re.search(r"\[(crit|alert|emerg)\]", line)]
        assert not serious, "nginx logged:\n" + "\n".join(serious[:10])


def readme_recipe():
    """The one ```nginx block of README.md."""
    blocks = re.findall(r"^```nginx\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    assert len(blocks) == 1, f"README.md should hold exactly one ```nginx block, found {len(blocks)}"
    return blocks[0]


def render_recipe(directory, backends, http_port, https_port, cert, key, change=None):
    """The README's recipe for this run: its example values replaced (each must be there, once),
    and the throwaway's own files (logs, temp directories) kept in `directory`. `change`, an
    (old, new) pair, alters the recipe itself: only for a test that says why."""
    conf = readme_recipe()

    def replace(old, new):
        nonlocal conf
        assert conf.count(old) == 1, f"the README's nginx recipe should contain {old!r} once"
        conf = conf.replace(old, new)

    replace(RECIPE_BACKENDS[0], f"server {backends[0]};")
    replace(RECIPE_BACKENDS[1], f"server {backends[1]};")
    replace(RECIPE_LISTEN_HTTP, f"listen {NGINX_ADDRESS}:{http_port};")
    replace(RECIPE_LISTEN_HTTPS, f"listen {NGINX_ADDRESS}:{https_port} ssl;")
    replace(RECIPE_CERT, str(cert))
    replace(RECIPE_KEY, str(key))
    if change:
        replace(*change)
    own_files = "".join(
        f"\n    {directive} {directory}/{name};"
        for directive, name in [
            ("access_log", "access.log"),
            ("client_body_temp_path", "client_body_temp"),
            ("proxy_temp_path", "proxy_temp"),
            ("fastcgi_temp_path", "fastcgi_temp"),
            ("uwsgi_temp_path", "uwsgi_temp"),
            ("scgi_temp_path", "scgi_temp"),
        ]
    )
    replace("http {", "http {" + own_files)
    # warn: nginx then says when it buffers a response to a temporary file.
    return f"error_log {directory}/error.log warn;\n" + conf


def self_signed_certificate(directory):
    """A certificate for 127.0.0.1, and a client context that trusts exactly it."""
    cert, key = directory / "proxy.crt", directory / "proxy.key"
    openssl = find_binary("OPENSSL_BIN", "openssl", None)
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    context = ssl.create_default_context(cafile=str(cert))
    return cert, key, context


class Redis:
    def __init__(self, directory):
        binary = find_binary("REDIS_BIN", "redis-server", "/usr/bin/redis-server")
        self.port = free_port()
        self.log = directory / "redis.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(directory)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        wait_for("redis PING", self._pong, 10, self.process, self.log)
        self.url = f"redis://127.0.0.1:{self.port}"

    def _pong(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


class Database:
    """A database of this run's own on the PostgreSQL server of CONDUIT_TEST_PG_URL."""

    def __init__(self):
        admin = os.environ.get("CONDUIT_TEST_PG_URL")
        if not admin:
            pytest.fail("set CONDUIT_TEST_PG_URL to a PostgreSQL admin URL, e.g. "
                        "postgres://postgres@127.0.0.1:5432/postgres (scripts/test always does)")
        self.admin = admin
        self.name = f"conduit_nginx_{RUN}"
        installed = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin/psql"), reverse=True)
        self.psql = find_binary("PSQL_BIN", "psql", str(installed[0]) if installed else None)
        self.sql(f"CREATE DATABASE {self.name}")
        self.url = urllib.parse.urlsplit(admin)._replace(path=f"/{self.name}").geturl()

    def sql(self, statement):
        subprocess.run([self.psql, "-q", "-v", "ON_ERROR_STOP=1", self.admin, "-c", statement],
                       check=True, capture_output=True, timeout=60)

    def drop(self):
        self.sql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


class Stack:
    """What a test talks to: nginx's two ports, and the instances behind it."""

    def __init__(self, nginx, instances, tls):
        self.nginx = nginx
        self.instances = instances
        self.tls = tls

    def http(self, method, path, **kw):
        """Through nginx's plain-HTTP listener."""
        return call(NGINX_ADDRESS, self.nginx.http_port, method, path, **kw)

    def https(self, method, path, **kw):
        """Through nginx's TLS listener."""
        return call(NGINX_ADDRESS, self.nginx.https_port, method, path, tls=self.tls, **kw)

    def served_by(self, request_ids, timeout=5):
        """{request id: the name of the instance that logged it}, once every id is in a log (or
        after `timeout` seconds, with what was found)."""
        deadline = time.monotonic() + timeout
        while True:
            found = {}
            for instance in self.instances:
                for request_id in instance.access():
                    if request_id in request_ids:
                        assert request_id not in found, f"{request_id} was logged by two instances"
                        found[request_id] = instance.name
            if len(found) == len(set(request_ids)) or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


class Teardown:
    """Runs every stop in reverse order, even when one fails, and then raises the first failure."""

    def __init__(self):
        self.steps = []

    def add(self, step):
        self.steps.append(step)

    def run(self):
        failures = []
        for step in reversed(self.steps):
            try:
                step()
            except Exception as e:  # noqa: BLE001 - every step must run
                failures.append(e)
        if failures:
            raise failures[0]


def conduit_env(**settings):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CONDUIT_JWT_SECRET": SECRET,
        "CONDUIT_LOG_FORMAT": "json",
        "CONDUIT_REGISTRATIONS_PER_HOUR": str(REGISTRATIONS_PER_HOUR),
        "CONDUIT_BODY_TIMEOUT": str(BODY_TIMEOUT_SECS),
    }
    env.update({k: v for k, v in settings.items() if v is not None})
    return env


@pytest.fixture(scope="session")
def workdir():
    with tempfile.TemporaryDirectory(prefix="conduit-nginx-") as name:
        path = pathlib.Path(name)
        path.chmod(0o755)
        yield path


@pytest.fixture(scope="session")
def certificate(workdir):
    return self_signed_certificate(workdir)


@pytest.fixture(scope="session")
def database():
    db = Database()
    yield db
    db.drop()


@pytest.fixture(scope="session")
def stack(workdir, certificate, database):
    """Two instances behind nginx, sharing PostgreSQL, Redis and the token secret, trusting nginx."""
    teardown = Teardown()
    try:
        redis = Redis(workdir)
        teardown.add(redis.stop)
        env = conduit_env(DATABASE_URL=database.url, REDIS_URL=redis.url, CONDUIT_TRUSTED_PROXIES=NGINX_ADDRESS)
        instances = []
        for name in ("a", "b"):  # one after the other: the first migrates the new database
            instance = Conduit(name, workdir, env)
            teardown.add(instance.stop)
            instances.append(instance)
        cert, key, tls = certificate
        nginx = Nginx(workdir / "nginx", [i.address.removeprefix("http://") for i in instances], cert, key)
        teardown.add(nginx.stop)
        yield Stack(nginx, instances, tls)
    finally:
        teardown.run()


@pytest.fixture(scope="session")
def untrusting_stack(workdir, certificate, database):
    """The control: the same recipe in front of one instance that trusts no proxy (the default),
    so nginx's own address is every client's."""
    teardown = Teardown()
    try:
        instance = Conduit("untrusting", workdir, conduit_env(DATABASE_URL=database.url))
        teardown.add(instance.stop)
        cert, key, tls = certificate
        backend = instance.address.removeprefix("http://")
        nginx = Nginx(workdir / "nginx-untrusting", [backend, backend], cert, key)
        teardown.add(nginx.stop)
        yield Stack(nginx, [instance], tls)
    finally:
        teardown.run()


@pytest.fixture(scope="session")
def lenient_stack(stack, workdir, certificate):
    """The recipe with nginx's body limit raised above Conduit's (64 MiB against 1 MiB), in
    front of the same two instances: for the test that shows why the recipe does not do that."""
    cert, key, tls = certificate
    backends = [i.address.removeprefix("http://") for i in stack.instances]
    nginx = Nginx(workdir / "nginx-lenient", backends, cert, key,
                  change=(RECIPE_BODY_LIMIT, "client_max_body_size 64m;"))
    yield Stack(nginx, stack.instances, tls)
    nginx.stop()
