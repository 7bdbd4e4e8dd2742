#!/usr/bin/env python3
"""Load-test harness for Conduit: start a release server, seed it through the public API, and
measure each scenario with wrk. Prints a Markdown table of requests/s, p99 latency and the
server's resident memory.

    bench/run.py                          # release build on a fresh SQLite database
    bench/run.py --postgres URL           # on PostgreSQL (URL of an empty database, or an
                                          # admin URL ending in /postgres: a fresh one is made)
    bench/run.py --url http://HOST:PORT   # an already running server (seeded by this script)

Traffic goes only to the address given or started here (127.0.0.1). Runs are bounded by
--duration per scenario.
"""

import argparse
import http.client
import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCENARIOS = {
    # name: (path, needs token)
    "tags": ("/api/tags", False),
    "articles": ("/api/articles?limit=20", False),
    "article": ("/api/articles/{slug}", False),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def progress(label, done, total):
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r{label:<10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


class Client:
    def __init__(self, base):
        parsed = urllib.parse.urlparse(base)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)

    def call(self, method, path, body=None, token=None, expect=(200, 201)):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status not in expect:
            raise SystemExit(f"seeding failed: {method} {path} -> {response.status} {data[:200]!r}")
        return json.loads(data) if data else None


def seed(base, articles, seed_number):
    """Users, articles with tags, follows, favorites and comments, all through the API, the same
    every time for the same seed number."""
    rng = random.Random(seed_number)
    client = Client(base)
    run = secrets.token_hex(3)  # lets a long-lived server be seeded twice
    users = max(10, articles // 20)
    tokens, names = [], []
    for i in range(users):
        name = f"bench_{run}_{i}"
        body = {"user": {"username": name, "email": f"{name}@example.com", "password": "benchmark-password"}}
        tokens.append(client.call("POST", "/api/users", body)["user"]["token"])
        names.append(name)
        progress("users", i + 1, users)
    tags = [f"tag{i}" for i in range(20)]
    slugs = []
    for i in range(articles):
        author = rng.randrange(users)
        body = {"article": {
            "title": f"Benchmark article {i} {run}",
            "description": "A seeded article for load testing",
            "body": "Lorem ipsum dolor sit amet. " * rng.randint(5, 50),
            "tagList": rng.sample(tags, rng.randint(1, 3)),
        }}
        slugs.append(client.call("POST", "/api/articles", body, tokens[author])["article"]["slug"])
        progress("articles", i + 1, articles)
    extras = articles
    for i in range(extras):
        who = rng.randrange(users)
        kind = i % 3
        if kind == 0:
            client.call("POST", f"/api/profiles/{names[rng.randrange(users)]}/follow", None, tokens[who])
        elif kind == 1:
            client.call("POST", f"/api/articles/{rng.choice(slugs)}/favorite", None, tokens[who])
        else:
            client.call("POST", f"/api/articles/{rng.choice(slugs)}/comments",
                        {"comment": {"body": "A seeded comment."}}, tokens[who])
        progress("activity", i + 1, extras)
    return {"token": tokens[0], "slug": slugs[len(slugs) // 2]}


def rss_mib(pid):
    if pid is None:
        return None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def wrk(url, token, duration, connections, threads):
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Token {token}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, float(p99.group(1)) * scale, int(errors.group(1)) if errors else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", metavar="URL", help="run conduit on this PostgreSQL database")
    parser.add_argument("--url", help="benchmark an already running server")
    parser.add_argument("--articles", type=int, default=1000, help="articles to seed (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="seed number for the data (default 1)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario (default 10)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")

    server = None
    work = tempfile.mkdtemp(prefix="conduit-bench-")
    made_db = None
    try:
        if args.url:
            base, backend, pid = args.url.rstrip("/"), "given", None
        else:
            subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "conduit"], cwd=ROOT, check=True)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = dict(os.environ, CONDUIT_LOG_FORMAT="json", RUST_LOG="warn", CONDUIT_BIND=f"127.0.0.1:{port}")
            if args.postgres:
                url = args.postgres
                if url.rstrip("/").endswith("/postgres"):
                    made_db = (url, f"conduit_bench_{os.getpid()}")
                    subprocess.run(["psql", "-q", url, "-c", f"CREATE DATABASE {made_db[1]}"], check=True)
                    url = url.rstrip("/").rsplit("/", 1)[0] + "/" + made_db[1]
                env.update(DATABASE_URL=url, CONDUIT_JWT_SECRET=secrets.token_hex(32))
                backend = "postgres"
            else:
                env.update(DATABASE_URL=f"sqlite://{work}/bench.db")
                backend = "sqlite"
            server = subprocess.Popen([os.path.join(ROOT, "target/release/conduit")], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            pid = server.pid
            for _ in range(300):
                try:
                    Client(base).call("GET", "/health")
                    break
                except (OSError, SystemExit):
                    if server.poll() is not None:
                        raise SystemExit(f"conduit exited: {server.stderr.read().decode()}")
                    time.sleep(0.1)
        data = seed(base, args.articles, args.seed)
        print(f"\nbackend: {backend}, {args.articles} articles, wrk -t{args.threads} -c{args.connections} "
              f"-d{args.duration}s, {os.cpu_count()} cores\n")
        print("| scenario | path | req/s | p99 | non-2xx | RSS after |")
        print("|---|---|---|---|---|---|")
        for name in args.scenarios.split(","):
            path, needs_token = SCENARIOS[name]
            path = path.format(**data)
            rps, p99, errors = wrk(base + path, data["token"] if needs_token else None,
                                   args.duration, args.connections, args.threads)
            rss = rss_mib(pid)
            rss_text = f"{rss:.1f} MiB" if rss is not None else "n/a"
            print(f"| {name} | `{path}` | {rps:,.0f} | {p99:.2f} ms | {errors} | {rss_text} |", flush=True)
    finally:
        if server:
            server.terminate()
            server.wait(timeout=30)
        if made_db:
            subprocess.run(["psql", "-q", made_db[0], "-c", f"DROP DATABASE IF EXISTS {made_db[1]} WITH (FORCE)"])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
