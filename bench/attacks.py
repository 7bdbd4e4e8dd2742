#!/usr/bin/env python3
"""The hostile-client attacks of BENCHMARKS.md's "Hostile clients" table, against a real server.

    bench/attacks.py --bin target/release/conduit            # this build
    bench/attacks.py --bin /path/to/an/older/conduit         # the same attacks on another build

Starts the binary on a fresh SQLite database (behind a "proxy" on 127.0.0.1, so that
X-Forwarded-For can name the attacker's addresses), runs each attack the way an attacker would
send it, and prints one line per attack with what the server did. Only 127.0.0.1 is contacted;
every attack is bounded in count and time. The cargo tests (crates/server/tests/attacks.rs) are
what hold each outcome; this prints the figures for before/after tables.
"""

import argparse
import base64
import concurrent.futures
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import free_port, proc_status, wrk  # noqa: E402  (the harness: a free port, wrk and its parsing)

SECRET = "attacks.py secret, long enough for HS256 keys"


def call(base, method, path, body=None, token=None, headers=None, raw=None, timeout=60):
    """(status, parsed body or None, response headers, seconds)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(base + path, data=data, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text, status, got = response.read(), response.status, response.headers
    except urllib.error.HTTPError as e:
        text, status, got = e.read(), e.code, e.headers
    took = time.perf_counter() - started
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return status, parsed, got, took


def tally(statuses):
    counts = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    return ", ".join(f"{n}x {s}" for s, n in sorted(counts.items()))


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(claims):
    """An HS256 token with the server's secret: what a token from an old login looks like."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def claims_of(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class Server:
    def __init__(self, binary, extra_env=None):
        self.dir = tempfile.TemporaryDirectory()
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        env = dict(PATH=os.environ.get("PATH", ""), DATABASE_URL=f"sqlite://{self.dir.name}/c.db",
                   CONDUIT_JWT_SECRET=SECRET, CONDUIT_LOG_FORMAT="json", RUST_LOG="error",
                   CONDUIT_BIND=f"127.0.0.1:{port}", CONDUIT_TRUSTED_PROXIES="127.0.0.1", **(extra_env or {}))
        self.env = env
        self.binary = binary
        self.process = subprocess.Popen([binary], env=env, cwd=self.dir.name,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                if call(self.base, "GET", "/health/live")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("the server did not start")

    def register(self, name, ip):
        status, body, _, _ = call(self.base, "POST", "/api/users", {"user": {
            "username": name, "email": f"{name}@example.com", "password": "password123"}},
            headers={"X-Forwarded-For": ip})
        assert status == 201, (status, body)
        return body["user"]["token"]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.dir.cleanup()


def login(base, ip, email, password):
    return call(base, "POST", "/api/users/login", {"user": {"email": email, "password": password}},
                headers={"X-Forwarded-For": ip})


def parallel(jobs, workers):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda job: job(), jobs))


def parallel_guesses(server):
    server.register("victim", "192.0.2.1")
    started = time.perf_counter()
    one = parallel([lambda i=i: login(server.base, "203.0.113.7", "victim@example.com", f"guess {i}")
                    for i in range(120)], 120)
    took = time.perf_counter() - started
    many = parallel([lambda i=i: login(server.base, f"198.51.100.{i}", "victim@example.com", f"guess {i}")
                     for i in range(120)], 120)
    return [f"120 wrong logins at once from one address: {tally(r[0] for r in one)} "
            f"(401 = evaluated by Argon2) in {took:.1f} s",
            f"120 more at once from 120 addresses: {tally(r[0] for r in many)}"]


def lockout(server):
    server.register("owner", "192.0.2.2")
    for i in range(30):
        login(server.base, "203.0.113.66", "owner@example.com", f"guess {i}")
    status = login(server.base, "192.0.2.20", "owner@example.com", "password123")[0]
    return [f"30 wrong logins for someone else's account, then the owner from another address: {status}"]


def stolen_token(server):
    """A copy of a token from a login an hour ago; its owner changes the password with it."""
    token = server.register("stolen", "192.0.2.3")
    now = int(time.time())
    old = mint({**claims_of(token), "iat": now, "exp": now + 3600, "auth_time": now - 3600, "jti": "1" * 32})
    copy = old
    change = {"user": {"password": "a new password!", "currentPassword": "password123"}}
    status = call(server.base, "PUT", "/api/user", change, token=old)[0]
    if status == 422:  # a build without currentPassword
        status = call(server.base, "PUT", "/api/user", {"user": {"password": "a new password!"}}, token=old)[0]
    replay = call(server.base, "GET", "/api/user", token=copy)[0]
    back = call(server.base, "PUT", "/api/user", {"user": {"password": "attacker's again"}}, token=copy)[0]
    return [f"password change with an hour-old token T ({status}), then a copy of T: GET /api/user {replay}, "
            f"changing the password back {back}"]


def stale_token_change(server):
    token = server.register("stale", "192.0.2.4")
    claims = claims_of(token)
    now = int(time.time())
    old = mint({**claims, "iat": now, "exp": now + 3600, "auth_time": now - 3600,
                "jti": "0" * 32})
    status = call(server.base, "PUT", "/api/user", {"user": {"email": "attacker@example.com"}}, token=old)[0]
    return [f"email change with a token whose login was an hour ago, no current password: {status}"]


def session_logout(server):
    server.register("browser", "192.0.2.5")
    status, body, headers, _ = call(server.base, "POST", "/api/session",
                                    {"user": {"email": "browser@example.com", "password": "password123"}})
    cookie = headers["Set-Cookie"].split(";")[0]
    token = body["user"]["token"]
    out = call(server.base, "DELETE", "/api/session", headers={"Cookie": cookie, "Origin": server.base})[0]
    after = call(server.base, "GET", "/api/user", token=token)[0]
    return [f"token from a session login, after DELETE /api/session ({out}): GET /api/user {after}"]


def text_plain_login(server):
    server.register("victim2", "192.0.2.6")
    raw = json.dumps({"user": {"email": "victim2@example.com", "password": "password123"}}).encode()
    status, _, headers, _ = call(server.base, "POST", "/api/session", raw=raw, headers={"Content-Type": "text/plain"})
    cookie = "a session cookie" if headers.get("Set-Cookie") else "no cookie"
    return [f"cross-site text/plain POST /api/session: {status}, {cookie}"]


def last_admin(server):
    token = server.register("boss", "192.0.2.7")
    subprocess.run([server.binary, "user", "promote", "boss"], env=server.env, cwd=server.dir.name,
                   check=True, capture_output=True)
    status = call(server.base, "PUT", "/api/admin/users/boss", {"user": {"active": False}}, token=token)[0]
    return [f"the only admin deactivates themself: {status}"]


def registrations_from_one_address(server):
    statuses = [call(server.base, "POST", "/api/users", {"user": {
        "username": f"r{i}", "email": f"r{i}@example.com", "password": "password123"}},
        headers={"X-Forwarded-For": "203.0.113.99"})[0] for i in range(25)]
    return [f"25 registrations from one address: {tally(statuses)}"]


def slow_body(server):
    host, port = server.base.removeprefix("http://").split(":")
    started = time.perf_counter()
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"user\":")
        s.settimeout(60)
        answer = b""
        try:
            while chunk := s.recv(4096):
                answer += chunk
        except OSError:
            pass
    status = answer.split(b" ")[1].decode() if answer else "no answer"
    return [f"a body announced as 1000 bytes, 8 sent: {status} after {time.perf_counter() - started:.1f} s"]


def flood(server):
    reader = server.register("reader", "192.0.2.8")
    results = {}

    def flooder(i):
        ip = f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}"
        if i % 2 == 0:
            return call(server.base, "POST", "/api/users", {"user": {
                "username": f"f{i}", "email": f"f{i}@example.com", "password": "password123"}},
                headers={"X-Forwarded-For": ip})
        return call(server.base, "POST", "/api/users/login", {"user": {
            "email": "reader@example.com", "password": f"guess {i}"}}, headers={"X-Forwarded-For": ip})

    def reads():
        time.sleep(0.2)
        got = []
        for _ in range(50):
            got += parallel([lambda: call(server.base, "GET", "/api/user", token=reader)] * 8, 8)
        results["reads"] = got

    with concurrent.futures.ThreadPoolExecutor(1) as one:
        reading = one.submit(reads)
        flood_answers = parallel([lambda i=i: flooder(i) for i in range(500)], 500)
        reading.result()
    got = results["reads"]
    latencies = sorted(r[3] for r in got)
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    slowest = max(r[3] for r in flood_answers)
    return [f"500 registrations and logins at once (500 addresses): {tally(r[0] for r in flood_answers)}, "
            f"slowest answer {slowest:.1f} s",
            f"400 token reads (8 at a time) during it: {tally(r[0] for r in got)}, "
            f"p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99:.1f} ms"]


FLOOD_CONNECTIONS = 500


def reads(r):
    """One wrk run of reads, in a line."""
    return f"{r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, {r['non2xx']} non-2xx"


def sustained_flood(server):
    """wrk: 10 s of token reads at 16 connections, alone, then beside a 10 s flood."""
    reader = server.register("reader", "192.0.2.8")
    names = {"slug": "", "email": ""}  # nothing for the harness to fill in
    url = f"{server.base}/api/user"
    alone = wrk(url, reader, None, names, 10, 16, 1, server.process.pid)
    with concurrent.futures.ThreadPoolExecutor(1) as one:
        flooding = one.submit(wrk, server.base, None, "flood.lua", names, 12, FLOOD_CONNECTIONS, 1, None)
        time.sleep(1)
        beside = wrk(url, reader, None, names, 10, 16, 1, server.process.pid)
        flood = flooding.result()

    return [f"token reads alone: {reads(alone)}",
            f"token reads beside a {FLOOD_CONNECTIONS}-connection flood of registrations and logins: {reads(beside)}",
            f"the flood: {flood['rps']:.0f} answers/s, p99 {flood['p99']:.1f} ms"]


def open_slow_body(server, method, path, ip, token=None):
    """A connection that sent a request's headers and the start of a 1,000-byte body, kept open."""
    host, port = server.base.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)))
    auth = f"Authorization: Token {token}\r\n" if token else ""
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {ip}\r\n{auth}"
              f"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"user\":".encode())
    return s


def slow_login_bodies(server):
    """200 login bodies trickling in from 200 addresses, then a real login from another."""
    server.register("owner3", "192.0.2.9")
    slow = [open_slow_body(server, "POST", "/api/users/login", f"10.7.{i // 256}.{i % 256}") for i in range(200)]
    time.sleep(0.5)
    status, _, _, took = login(server.base, "192.0.2.90", "owner3@example.com", "password123")
    for s in slow:
        s.close()
    return [f"200 slow login bodies from 200 addresses, then a real login: {status} in {took * 1000:.0f} ms"]


def slow_put_bodies(server):
    """One account's slow PUT /api/user bodies, more than CONDUIT_MAX_CONCURRENCY (256 here), then
    reads from other addresses."""
    token = server.register("holder", "192.0.2.10")
    slow = [open_slow_body(server, "PUT", "/api/user", "203.0.113.50", token) for _ in range(300)]
    time.sleep(0.5)
    reads = parallel([lambda i=i: call(server.base, "GET", "/api/articles", headers={"X-Forwarded-For": f"192.0.2.{100 + i}"})
                      for i in range(20)], 20)
    own = call(server.base, "GET", "/api/articles", headers={"X-Forwarded-For": "203.0.113.50"})
    for s in slow:
        s.close()
    return [f"300 slow PUT /api/user bodies with one token from one address, then 20 reads from others: "
            f"{tally(r[0] for r in reads)}; a read from the holder's address: {own[0]}"]


slow_put_bodies.env = {"CONDUIT_MAX_CONCURRENCY": "256"}


def deep_offset_flood(server):
    """10 s of reads from one address, alone, then beside 64 connections from another address all
    asking the deepest allowed offset (on 10,000 seeded articles)."""
    subprocess.run([server.binary, "seed", "--articles", "10000"], env=server.env, cwd=server.dir.name,
                   check=True, capture_output=True)
    names = {"slug": "", "email": ""}
    url = f"{server.base}/api/tags"
    alone = wrk(url, None, "from_reader.lua", names, 10, 16, 1, server.process.pid)
    with concurrent.futures.ThreadPoolExecutor(1) as one:
        flooding = one.submit(wrk, f"{server.base}/api/articles?offset=9980", None, None, names, 12, 64, 1, None)
        time.sleep(1)
        beside = wrk(url, None, "from_reader.lua", names, 10, 16, 1, server.process.pid)
        flood = flooding.result()

    return [f"GET /api/tags from one address alone: {reads(alone)}",
            f"the same beside 64 connections from another address asking ?offset=9980: {reads(beside)}",
            f"the flood: {flood['rps']:.0f} answers/s ({flood['non2xx']} non-2xx, i.e. 429), p99 {flood['p99']:.1f} ms"]


HEAVY_CONNECTIONS = 64
HEAVY_TARGETS = ["page", "listing", "export"]
RSS_GUARD_MB = 4096


def heavy_pages(server):
    """Peak RSS while HEAVY_CONNECTIONS connections ask, for 10 s, a third each the heaviest anonymous
    pages (an article's comments, ?limit=1000, over 1,000 comments of 16,384 four-byte characters;
    a listing of 100 articles with every field at its longest) and the heaviest export (an
    account of 100 articles of 1,000,000 characters)."""
    talker = server.register("talker", "192.0.2.11")
    writer = server.register("writer", "192.0.2.12")
    status, body, _, _ = call(server.base, "POST", "/api/articles",
                              {"article": {"title": "Thread", "description": "d", "body": "b"}}, token=talker)
    slug = body["article"]["slug"]
    comment = "\U0001F600" * 16_384
    parallel([lambda: call(server.base, "POST", f"/api/articles/{slug}/comments", {"comment": {"body": comment}},
                           token=talker) for _ in range(1000)], 8)
    # The heaviest listing too: every field of the writer's articles, and the bio shown with
    # each, at its longest in four-byte characters.
    wide = "\U0001F600"
    call(server.base, "PUT", "/api/user", {"user": {"bio": wide * 4096}}, token=writer)
    article_body = "a" * 1_000_000
    created = parallel([lambda i=i: call(server.base, "POST", "/api/articles", {"article": {
        "title": f"{i}" + wide * 250, "description": wide * 1024, "body": article_body,
        "tagList": [f"{j}" + wide * 60 for j in range(32)]}}, token=writer) for i in range(100)], 4)
    listing = call(server.base, "GET", "/api/articles?author=writer&limit=100")
    listing_bytes = len(json.dumps(listing[1], ensure_ascii=False).encode()) if listing[1] else 0
    page = call(server.base, "GET", f"/api/articles/{slug}/comments?limit=1000")
    page_bytes = len(json.dumps(page[1], ensure_ascii=False).encode()) if page[1] else 0
    rss_before = proc_status(server.process.pid, "VmRSS") or 0
    hwm_before = proc_status(server.process.pid, "VmHWM") or 0
    names = {"slug": "", "email": ""}
    killed = threading_guard(server.process.pid, RSS_GUARD_MB)
    targets = {"page": (f"{server.base}/api/articles/{slug}/comments?limit=1000", None),
               "listing": (f"{server.base}/api/articles?author=writer&limit=100", None),
               "export": (f"{server.base}/api/user/export", writer)}
    asked = [t for t in HEAVY_TARGETS if t in targets]
    third = max(1, HEAVY_CONNECTIONS // len(asked))
    idle = {"rps": float("nan")}
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        runs = {t: pool.submit(wrk, targets[t][0], targets[t][1], None, names, 10, third, 1,
                               server.process.pid if i == 0 else None) for i, t in enumerate(asked)}
        try:
            done = {t: run.result() for t, run in runs.items()}
            pages, listings, exports = (done.get(t, idle) for t in ("page", "listing", "export"))
        except Exception as e:  # wrk fails when the server is killed
            pages = exports = None
            error = repr(e)
    killed.stop()
    peak = proc_status(server.process.pid, "VmHWM")
    if killed.fired:
        return [f"{HEAVY_CONNECTIONS} connections on the heaviest page and export: killed past {RSS_GUARD_MB} MB of RSS"]
    if pages is None:
        return [f"heavy pages: could not run: {error}"]
    return [f"the 100 long articles: {tally(r[0] for r in created)}",
            f"one anonymous page of 1,000 comments asked with limit=1000: {page_bytes / 1e6:.1f} MB of JSON; "
            f"the listing of 100 articles with every field at its longest: {listing_bytes / 1e6:.1f} MB",
            f"{third} connections each on {', '.join(asked)} (the export: of 100 MB of articles), 10 s: "
            f"page {pages['rps']:.1f} req/s, listing {listings['rps']:.1f} req/s, export {exports['rps']:.1f} req/s; "
            f"RSS {rss_before:.0f} MB before (peak {hwm_before:.0f} MB while the data was written), "
            f"peak {peak:.0f} MB (VmHWM)"]


heavy_pages.env = {"CONDUIT_COMMENTS_PER_MINUTE": "1000000", "CONDUIT_ARTICLES_PER_HOUR": "1000000",
                   "CONDUIT_EXPORTS_PER_HOUR": "1000000", "CONDUIT_MAX_REQUESTS_PER_ADDRESS": "1000000",
                   "CONDUIT_BODY_LIMIT": "2000000"}


class threading_guard:  # noqa: N801  (used like a function)
    """Kills `pid` if its RSS passes `limit_mb`, so that a measurement of an unbounded build cannot
    take the machine down."""

    def __init__(self, pid, limit_mb):
        import threading
        self.fired = False
        self.stopped = threading.Event()

        def watch():
            while not self.stopped.wait(0.05):
                rss = proc_status(pid, "VmRSS")
                if rss and rss > limit_mb:
                    self.fired = True
                    os.kill(pid, 9)
                    return
        self.thread = threading.Thread(target=watch, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopped.set()
        self.thread.join()


ATTACKS = [parallel_guesses, lockout, stolen_token, stale_token_change, session_logout, text_plain_login,
           last_admin, registrations_from_one_address, slow_body, flood, sustained_flood, slow_login_bodies,
           slow_put_bodies, deep_offset_flood, heavy_pages]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the conduit binary to attack")
    parser.add_argument("--only", help="run only the attack of this name")
    parser.add_argument("--flood-connections", type=int, default=FLOOD_CONNECTIONS,
                        help="connections of the sustained flood (default 500)")
    parser.add_argument("--heavy-connections", type=int, default=HEAVY_CONNECTIONS,
                        help="connections of heavy_pages (default 64; an unbounded build may need fewer)")
    parser.add_argument("--heavy-targets", default=",".join(HEAVY_TARGETS),
                        help="what heavy_pages asks, comma-separated: page, listing, export (default all)")
    args = parser.parse_args()
    globals()["HEAVY_TARGETS"] = args.heavy_targets.split(",")
    globals()["FLOOD_CONNECTIONS"] = args.flood_connections
    globals()["HEAVY_CONNECTIONS"] = args.heavy_connections
    for attack in ATTACKS:
        if args.only and attack.__name__ != args.only:
            continue
        # Each attack on a fresh server, so none inherits another's counters.
        server = Server(os.path.abspath(args.bin), getattr(attack, "env", None))
        try:
            for line in attack(server):
                print(f"{attack.__name__}: {line}", flush=True)
        except Exception as e:  # an old build may answer in ways an attack does not expect
            print(f"{attack.__name__}: could not run: {e!r}", flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
