"""A real `conduit` server for the cross-tests: the debug binary on a fresh SQLite database with
a known token secret, on a free port. Set CONDUIT_BIN to test another build."""

import json
import os
import pathlib
import signal
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
SECRET = "python cross-test secret, long enough for HS256"


class Server:
    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.db = pathlib.Path(self.dir.name) / "conduit.db"
        self.bin = os.environ.get("CONDUIT_BIN", str(ROOT / "target" / "debug" / "conduit"))
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": f"sqlite://{self.db}",
            "CONDUIT_JWT_SECRET": SECRET,
            "CONDUIT_LOG_FORMAT": "json",
            # The tests register many users from 127.0.0.1.
            "CONDUIT_REGISTRATIONS_PER_HOUR": "100000",
        }
        self.process = subprocess.Popen(
            [self.bin, "serve", "--bind", "127.0.0.1:0"], env=self.env, cwd=self.dir.name,
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )
        for line in self.process.stdout:
            try:
                log = json.loads(line)
            except ValueError:
                continue
            if log.get("message") == "conduit is listening":
                self.base = log["address"]
                break
        else:
            raise RuntimeError(f"conduit exited before listening: {self.process.wait()}")
        # Keep draining the log so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()

    def request(self, method, path, body=None, token=None):
        """Returns (status, parsed JSON body or None)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Token {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, json.loads(text) if text else None

    def cli(self, *args):
        return subprocess.run([self.bin, *args], env=self.env, cwd=self.dir.name,
                              capture_output=True, text=True, timeout=60)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) == 0
        self.dir.cleanup()


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()
