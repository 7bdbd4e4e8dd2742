#!/usr/bin/env python3
"""The operator's console at scale (issue 28): each page's latency, one request after another
from one logged-in admin (what a person clicking sees), on a large seeded database.

    DATABASE_URL=sqlite:///tmp/scale/console.db bench/console.py     # 1M articles, 100k users
    bench/console.py --database postgres://postgres@127.0.0.1:5432/conduit_scale_1000000

The database must have been made by `conduit seed` (demo users log in with password123); this
makes demo1 an admin and leaves it so. Each page is asked `--requests` times over one kept-alive
connection after a few unmeasured warm-up requests; the figures are p50, p95 and p99 in
milliseconds, and the bar is p95 under 100 ms. Traffic goes only to the server started here on
127.0.0.1.
"""

import argparse
import http.client
import os
import statistics
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the harness: server start, free ports, the JSON client)

BAR_MS = 100


def console_login(port, email, password):
    """Logs in through the console's form; its session cookie."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = urllib.parse.urlencode({"email": email, "password": password})
    connection.request("POST", "/admin/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    response.read()
    cookie = response.getheader("set-cookie") or ""
    if response.status != 303 or "conduit_admin=" not in cookie:
        raise SystemExit(f"console login failed: {response.status} {cookie!r}")
    return cookie.split(";", 1)[0]


def timings(port, cookie, path, requests):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Cookie": cookie}
    samples = []
    for i in range(requests + 3):
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise SystemExit(f"{path}: {response.status} {body[:300]!r}")
        if i >= 3:
            samples.append(elapsed)
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]  # noqa: E731
    return statistics.median(samples), pick(0.95), pick(0.99), len(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(run.ROOT, "target/release/conduit"), help="conduit binary")
    parser.add_argument("--database", default=os.environ.get("DATABASE_URL"), help="a seeded database (DATABASE_URL)")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per page (default 200)")
    parser.add_argument("--users", type=int, default=100_000, help="demo users in the database (default 100000)")
    args = parser.parse_args()
    if not args.database:
        raise SystemExit("name a database seeded by `conduit seed`: --database or DATABASE_URL")
    env = dict(os.environ, DATABASE_URL=args.database, CONDUIT_LOG_FORMAT="json", RUST_LOG="warn",
               CONDUIT_MAX_REQUESTS_PER_ADDRESS="1000000", CONDUIT_LOGIN_ATTEMPTS="1000000",
               CONDUIT_JWT_SECRET=os.environ.get("CONDUIT_JWT_SECRET", "a bench secret of at least 32 characters!!"))
    server, origin = run.start_promoted(args.bin, env, "demo1", "admin")
    try:
        port = int(origin.rsplit(":", 1)[1])
        client = run.Client(origin + "/api")
        listing = client.call("GET", "/articles?limit=1")
        total, slug = listing["articlesCount"], listing["articles"][0]["slug"]
        users = client.call("GET", f"/profiles/demo{max(2, args.users // 2)}")  # a user from the middle
        cookie = console_login(port, "demo1@example.com", "password123")
        pages = {
            "dashboard": "/admin",
            "users, first page": "/admin/users",
            "users, a prefix (demo5...)": "/admin/users?q=demo5",
            "users, a rare prefix (none match)": "/admin/users?q=zzz",
            "users, suspended (none are)": "/admin/users?state=suspended",
            "users, from the middle": f"/admin/users?after={args.users // 2}",
            "a user": f"/admin/users/{users['profile']['username']}",
            "reports": "/admin/reports",
            "moderation log": "/admin/log",
            "articles, newest": "/admin/articles",
            "articles, a search (one common word)": "/admin/articles?q=rust",
            "articles, a search (two words)": "/admin/articles?q=rust+token",
            "an article and its comments": f"/admin/articles/{urllib.parse.quote(slug)}",
            "mail": "/admin/mail",
            "mail, dead": "/admin/mail?state=dead",
        }
        print(f"{total:,} articles; {args.requests} requests per page, one at a time", file=sys.stderr)
        rows = []
        for name, path in pages.items():
            p50, p95, p99, size = timings(port, cookie, path, args.requests)
            rows.append((name, path, p50, p95, p99, size))
            print(f"  {name:38} p50 {p50:7.2f}  p95 {p95:7.2f}  p99 {p99:7.2f} ms  ({size:,} bytes)", file=sys.stderr)
        print(f"| page | path | p50 ms | p95 ms | p99 ms | under {BAR_MS} ms at p95 |")
        print("|---|---|---:|---:|---:|---|")
        for name, path, p50, p95, p99, _ in rows:
            print(f"| {name} | `{path}` | {p50:.2f} | {p95:.2f} | {p99:.2f} | {'yes' if p95 < BAR_MS else '**no**'} |")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
