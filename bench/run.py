#!/usr/bin/env python3
"""Load-test harness for Conduit, or any RealWorld API server.

Starts a release `conduit` on a fresh database (or uses a running server), seeds it through the
public API only, then measures each scenario with wrk at 16 and 64 connections. Reports, per
scenario: requests/s, p50/p99/max latency, non-2xx and socket errors, server RSS (idle and peak)
and CPU-seconds per 10,000 requests (when the server runs here), and requests/s as a fraction of
the /health/live ceiling and of the seed article's bare Axum example (bench/hello, `GET /user`),
measured in the same run. Writes a Markdown table and an SVG chart to bench/results/.

    bench/run.py                              # release build on a fresh SQLite database
    bench/run.py --postgres URL               # on PostgreSQL (an admin URL ending in /postgres:
                                              # a fresh database is made and dropped)
    bench/run.py --url http://HOST:PORT/api   # any running RealWorld server (seeded here)
    bench/run.py --smoke                      # a few seconds per scenario, to prove it works
    bench/run.py --instructions               # instructions per request under callgrind (hello,
                                              # /health/live, the cached reads): noise-free
    bench/run.py --articles 1000000 [--postgres URL]
                                              # 1,000 against 1,000,000 articles side by side
                                              # (bench/scale.py)

Traffic goes only to the server given or started here. Every run is bounded by --duration per
scenario and connection count.
"""

import argparse
import datetime
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
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LUA = os.path.join(ROOT, "bench", "lua")
RESULTS = os.path.join(ROOT, "bench", "results")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# name: (method and path, whether it needs the token, Lua script or None)
SCENARIOS = {
    "health_live": ("GET /health/live", False, None),
    "tags": ("GET /tags", False, None),
    "articles": ("GET /articles?limit=20", False, None),
    "articles_by_tag": ("GET /articles?tag={tag}", False, None),
    "article": ("GET /articles/{slug}", False, None),
    "comments": ("GET /articles/{slug}/comments", False, None),
    "feed": ("GET /articles/feed", True, None),
    "user": ("GET /user", True, None),
    "create_article": ("POST /articles", True, "post_article.lua"),
    "login": ("POST /users/login", False, "login.lua"),
    "mix_90_10": ("90% reads, 10% POST /articles", True, "mix.lua"),
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
    """Keep-alive JSON client for seeding. `api` is the base URL including its /api prefix."""

    def __init__(self, api):
        parsed = urllib.parse.urlparse(api)
        self.prefix = parsed.path.rstrip("/")
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=30)

    def call(self, method, path, body=None, token=None, expect=(200, 201)):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        self.conn.request(method, self.prefix + path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status not in expect:
            raise SystemExit(f"seeding failed: {method} {path} -> {response.status} {data[:200]!r}")
        return json.loads(data) if data else None


def seed(api, articles, seed_number):
    """Users, articles with tags, follows, favorites and comments, through the API only. The
    same seed number gives the same data (names carry a run id so a live server can be seeded
    again)."""
    rng = random.Random(seed_number)
    client = Client(api)
    run = secrets.token_hex(3)
    users = max(10, articles // 20)
    tokens, names = [], []
    for i in range(users):
        name = f"bench_{run}_{i}"
        body = {"user": {"username": name, "email": f"{name}@example.com", "password": "benchmark-password"}}
        tokens.append(client.call("POST", "/users", body)["user"]["token"])
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
        slugs.append(client.call("POST", "/articles", body, tokens[author])["article"]["slug"])
        progress("articles", i + 1, articles)
    # The reader (user 0) follows a tenth of the authors, so the feed has work to do.
    for i in range(1, users, 10):
        client.call("POST", f"/profiles/{names[i]}/follow", None, tokens[0])
    activity = articles
    for i in range(activity):
        who = rng.randrange(users)
        if i % 3 == 0:
            client.call("POST", f"/profiles/{names[rng.randrange(users)]}/follow", None, tokens[who])
        elif i % 3 == 1:
            client.call("POST", f"/articles/{rng.choice(slugs)}/favorite", None, tokens[who])
        else:
            client.call("POST", f"/articles/{rng.choice(slugs)}/comments", {"comment": {"body": "A seeded comment."}}, tokens[who])
        progress("activity", i + 1, activity)
    return {"token": tokens[0], "email": f"{names[0]}@example.com", "slug": slugs[len(slugs) // 2], "tag": "tag7"}


def proc_status(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except OSError:
        return None


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def load_script(name, data, extra=""):
    """The scenario script with the shared prelude (lua/common.lua) and the seeded names filled in."""
    with open(os.path.join(LUA, "common.lua")) as f:
        prelude = f.read()
    with open(os.path.join(LUA, name)) as f:
        body = f.read()
    return (prelude + "\n" + body + extra).replace("BENCH_SLUG", data["slug"]).replace("BENCH_EMAIL", data["email"])


def wrk(url, token, script, data, duration, connections, threads, pid, extra=""):
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "--latency"]
    if token:
        command += ["-H", f"Authorization: Token {token}"]
    work = None
    if script:
        work = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        work.write(load_script(script, data, extra))
        work.close()
        command += ["-s", work.name]
    command.append(url)
    peak, stop = [0.0], threading.Event()

    def sample():
        while not stop.is_set():
            rss = proc_status(pid, "VmRSS") if pid else None
            if rss:
                peak[0] = max(peak[0], rss)
            stop.wait(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    cpu_before = cpu_seconds(pid) if pid else None
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        stop.set()
        sampler.join()
        if work:
            os.unlink(work.name)
    cpu_after = cpu_seconds(pid) if pid else None
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    latency = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out)
    p = {m.group(1): to_ms(m.group(2), m.group(3)) for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": p.get("50"),
        "p99": p.get("99"),
        "max": to_ms(latency.group(1), latency.group(2)) if latency else None,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(g) for g in sockets.groups()) if sockets else 0,
        "rss_peak": peak[0] or None,
        "cpu_per_10k": (cpu_after - cpu_before) / requests * 10_000 if cpu_before is not None and requests else None,
    }


def build_hello(args):
    """The seed's bare Axum example (bench/hello), built in release like conduit."""
    if args.hello:
        return args.hello
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "bench-hello"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target/release/hello")


def start(command, ready_url, env=None):
    """Starts a server and waits until `ready_url` answers."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parsed = urllib.parse.urlparse(ready_url)
    for _ in range(600):
        try:
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
            conn.request("GET", parsed.path)
            if conn.getresponse().status < 500:
                return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"{command[0]} exited: {process.stderr.read().decode()}")
            time.sleep(0.1)
    raise SystemExit(f"{command[0]} did not answer {ready_url}")


def start_promoted(binary, env, name, role="admin"):
    """Gives `name` a role with `conduit user promote` on env's database, then starts a server on
    it on a free port; (process, origin)."""
    promoted = subprocess.run([binary, "user", "promote", name, "--role", role], env=env, capture_output=True,
                              text=True)
    if promoted.returncode != 0:
        raise SystemExit(promoted.stderr)
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    return start([binary], origin + "/health/ready", dict(env, CONDUIT_BIND=f"127.0.0.1:{port}")), origin


def instructions_per_request(command, url, requests, token=None, env=None):
    """Instructions the server runs per request, counted by callgrind over `requests` keep-alive
    requests after as many to warm up (the count is the same whatever else the machine does)."""
    out = tempfile.mkdtemp(prefix="conduit-callgrind-")
    parsed = urllib.parse.urlparse(url)
    process = start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/callgrind.%p.out",
                     "--dump-instr=no", *command], f"{parsed.scheme}://{parsed.netloc}/", env)
    try:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        headers = {"Authorization": f"Token {token}"} if token else {}

        def send(n):
            for _ in range(n):
                conn.request("GET", parsed.path + (f"?{parsed.query}" if parsed.query else ""), headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise SystemExit(f"{url} answered {response.status} under callgrind")

        send(requests)  # warm-up: caches, allocator, lazy statics
        subprocess.run(["callgrind_control", "--zero", str(process.pid)], check=True, capture_output=True)
        send(requests)
        subprocess.run(["callgrind_control", "--dump", str(process.pid)], check=True, capture_output=True)
        total = 0
        for name in os.listdir(out):
            with open(os.path.join(out, name)) as f:
                text = f.read()
            # Only the dump made after the measured requests (the final dump at exit is ignored).
            if ".out." in name:
                match = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(r"^totals:\s+(\d+)", text, re.M)
                total += int(match.group(1)) if match else 0
        return total / requests
    finally:
        process.terminate()
        process.wait(timeout=60)
        shutil.rmtree(out, ignore_errors=True)


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


# A soak fails on what a leak looks like, past warm-up: open file descriptors growing by more than
# a few, or RSS by more than half. BENCHMARKS.md's 10-minute soaks held 19-22 descriptors and
# RSS within +0.2% (+11.8% with the data growing); the 30 s one of scripts/test is compared from
# its 20th second to its 30th.
SOAK_FD_GROWTH = 5
SOAK_RSS_GROWTH = 0.5


def soak(api, data, args, pid):
    """The mix at ~70% of its measured maximum for args.soak seconds, in 10-second slices."""
    connections = 16
    steady = "" if args.soak_growth else "\nsteady = true\n"
    flat = wrk(api, data["token"], "mix.lua", data, 5, connections, args.threads, pid, steady)
    target = flat["rps"] * 0.7
    # Each connection waits this long before each request, so together they send at most the
    # target rate (a little less, by the time requests take).
    delay_ms = max(1, round(1000 * connections / target))
    print(f"maximum {flat['rps']:,.0f} req/s; soaking at ~{target:,.0f} req/s ({delay_ms} ms between requests "
          f"per connection) for {args.soak} s", file=sys.stderr)
    # wrk waits delay() milliseconds before each request of a connection.
    pacing = f"\nfunction delay() return {delay_ms} end\n" + steady
    writes = "articles published (the data grows)" if args.soak_growth else "favorite/unfavorite (the data stays the same size)"
    lines = [f"soak: 90/10 mix at ~70% of {flat['rps']:,.0f} req/s, {connections} connections, {args.soak} s; "
             f"writes: {writes}", "",
             "| t (s) | req/s | p99 | errors | RSS | open fds |", "|---|---|---|---|---|---|"]
    samples = []
    elapsed = 0
    while elapsed < args.soak:
        step = min(10, args.soak - elapsed)
        r = wrk(api, data["token"], "mix.lua", data, step, connections, args.threads, pid, pacing)
        elapsed += step
        time.sleep(1)  # let the slice's connections close before counting descriptors
        rss, fds = proc_status(pid, "VmRSS") if pid else None, open_fds(pid) if pid else None
        errors = r["non2xx"] + r["socket_errors"]
        samples.append((elapsed, r["rps"], r["p99"], errors, rss, fds))
        lines.append(f"| {elapsed} | {r['rps']:,.0f} | {fmt(r['p99'], '{:.2f} ms')} | {errors} | "
                     f"{fmt(rss, '{:.1f} MiB')} | {fmt(fds, '{}')} |")
        print(lines[-1], file=sys.stderr, flush=True)
    # Drift after warm-up: compare the last sample with the first one past the first third.
    warm = samples[len(samples) // 3] if samples else None
    last = samples[-1] if samples else None
    summary = []
    if warm and last and warm[4] and last[4]:
        summary.append(f"RSS drift after warm-up: {(last[4] - warm[4]) / warm[4]:+.1%} ({warm[4]:.1f} -> {last[4]:.1f} MiB)")
    if warm and last and warm[5] is not None and last[5] is not None:
        summary.append(f"open fds: {warm[5]} -> {last[5]}")
    total_errors = sum(s[3] for s in samples)
    summary.append(f"errors: {total_errors}")
    failures = [f"{total_errors} errors"] if total_errors else []
    if warm and last and warm[4] and last[4] and (last[4] - warm[4]) / warm[4] > SOAK_RSS_GROWTH:
        failures.append(f"RSS grew {(last[4] - warm[4]) / warm[4]:+.1%} after warm-up "
                        f"({warm[4]:.1f} -> {last[4]:.1f} MiB; at most {SOAK_RSS_GROWTH:+.0%})")
    if warm and last and warm[5] is not None and last[5] is not None and last[5] - warm[5] > SOAK_FD_GROWTH:
        failures.append(f"open fds grew by {last[5] - warm[5]} after warm-up ({warm[5]} -> {last[5]}; "
                        f"at most {SOAK_FD_GROWTH} more)")
    table = "\n".join(lines + [""] + summary)
    print("\n" + table)
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    with open(os.path.join(args.out, f"{stamp}-soak.md"), "w") as f:
        f.write(table + "\n")
    if failures:
        raise SystemExit("the soak failed: " + "; ".join(failures))


def instructions(args, env, binary, origin, api, data):
    """Instructions per request under callgrind: the bare hello, then conduit (restarted under
    valgrind on the seeded database) for /health/live and the cached reads."""
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    n = args.instruction_requests
    hello_bin = build_hello(args)
    port = free_port()
    targets = [("hello: the seed's bare Axum, GET /user", [hello_bin, f"127.0.0.1:{port}"],
                f"http://127.0.0.1:{port}/user", None, None)]
    reads = [("/health/live", origin + "/health/live", None), ("GET /api/tags", api + "/tags", None),
             ("GET /api/articles/{slug}", api + f"/articles/{data['slug']}", None),
             ("GET /api/user", api + "/user", data["token"])]
    # As deployed by default (an access log line per request, at `info`), and with `RUST_LOG=warn`.
    logged = {k: v for k, v in env.items() if k != "RUST_LOG"}
    targets += [(name, [binary], url, token, (logged, env)) for name, url, token in reads]
    lines = [f"instructions per request (valgrind --tool=callgrind, {n} requests after {n} to warm up, one "
             f"keep-alive connection; {args.articles} articles)", "",
             "| target | instructions/request, default logs | x hello | with RUST_LOG=warn | x hello |",
             "|---|---|---|---|---|"]
    base = None
    for name, command, url, token, envs in targets:
        if envs is None:
            base = instructions_per_request(command, url, n, token)
            lines.append(f"| {name} | {base:,.0f} | 1.00 | | |")
        else:
            logged_count = instructions_per_request(command, url, n, token, envs[0])
            quiet_count = instructions_per_request(command, url, n, token, envs[1])
            lines.append(f"| {name} | {logged_count:,.0f} | {logged_count / base:.2f} | {quiet_count:,.0f} | "
                         f"{quiet_count / base:.2f} |")
        print(lines[-1], file=sys.stderr, flush=True)
    table = "\n".join(lines)
    print("\n" + table)
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    with open(os.path.join(args.out, f"{stamp}-instructions.md"), "w") as f:
        f.write(table + "\n")


def fmt(value, pattern, missing="n/a"):
    return missing if value is None else pattern.format(value)


def svg_chart(rows, title):
    """Horizontal bars of requests/s per scenario at the highest connection count."""
    top = max(r["connections"] for r in rows)
    rows = [r for r in rows if r["connections"] == top]
    width, bar_h, left = 760, 22, 170
    height = 50 + bar_h * len(rows)
    peak = max(r["rps"] for r in rows) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<text x="10" y="20" font-size="14">{title} (req/s, {top} connections)</text>']
    for i, r in enumerate(rows):
        y = 35 + i * bar_h
        w = (width - left - 90) * r["rps"] / peak
        color = "#c0392b" if r["failed"] else "#2e86c1"
        parts.append(f'<text x="10" y="{y + 15}">{r["scenario"]}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" fill="{color}"/>')
        parts.append(f'<text x="{left + w + 5:.1f}" y="{y + 15}">{r["rps"]:,.0f}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", metavar="URL", help="run conduit on PostgreSQL")
    parser.add_argument("--url", help="benchmark a running RealWorld server; give its API base, e.g. http://127.0.0.1:3000/api")
    parser.add_argument("--articles", type=int, default=1000,
                        help="articles to seed (default 1000). Above 10,000 the run is bench/scale.py's instead: "
                             "databases of 1,000 and of ARTICLES articles made by `conduit seed`, every read and "
                             "write scenario on both side by side (add --keep DIR to reuse them)")
    parser.add_argument("--keep", metavar="DIR", help="with --articles above 10,000: passed to bench/scale.py")
    parser.add_argument("--seed", type=int, default=1, help="seed number for the data (default 1)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario and connection count (default 10)")
    parser.add_argument("--connections", default="16,64", help="comma-separated connection counts (default 16,64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    parser.add_argument("--smoke", action="store_true", help="2 s per scenario, 16 connections, 50 articles: proves it works")
    parser.add_argument("--out", default=RESULTS, help="directory for the Markdown table and SVG chart")
    parser.add_argument("--bin", help="use this conduit binary instead of building a release one")
    parser.add_argument("--hello", metavar="BIN", help="use this build of bench/hello instead of building a release one")
    parser.add_argument("--instructions", action="store_true",
                        help="instead of the scenarios: instructions per request under valgrind's callgrind, for the "
                             "bare Axum hello, /health/live and the cached reads (tags, one article, the current user)")
    parser.add_argument("--instruction-requests", type=int, default=2000, metavar="N",
                        help="requests counted per target with --instructions (default 2000, after as many to warm up)")
    parser.add_argument("--soak", type=int, metavar="SECONDS",
                        help="instead of the scenarios: measure the 90/10 mix flat out, then run it at about 70%% of that "
                             "for SECONDS, sampling RSS, open file descriptors and errors every 10 s")
    parser.add_argument("--soak-growth", action="store_true",
                        help="in the soak, let the write tenth publish articles (the database grows) instead of "
                             "favoriting and unfavoriting one (it stays the same size)")
    args = parser.parse_args()
    if args.articles > 10_000 and not args.url:
        # Seeding a million articles through the API would take hours; `conduit seed` takes
        # minutes, and the question at this size is the ratio to 1,000 articles, run side by side.
        import scale
        sys.argv = [os.path.join(ROOT, "bench", "scale.py"), "--large", str(args.articles)]
        sys.argv += ["--postgres", args.postgres] if args.postgres else []
        sys.argv += ["--keep", args.keep] if args.keep else []
        sys.argv += ["--bin", args.bin] if args.bin else []
        if not args.bin:
            subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "conduit"], cwd=ROOT, check=True)
        return scale.main()
    if args.smoke:
        args.duration, args.connections, args.articles = 2, "16", 50
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    names = args.scenarios.split(",")
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")

    server, made_db = None, None
    work = tempfile.mkdtemp(prefix="conduit-bench-")
    try:
        if args.url:
            api, backend, pid = args.url.rstrip("/"), "given server", None
            origin = api[: -len(urllib.parse.urlparse(api).path) or None]
        else:
            binary = args.bin or os.path.join(ROOT, "target/release/conduit")
            if not args.bin:
                subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "conduit"], cwd=ROOT, check=True)
            port = free_port()
            origin = f"http://127.0.0.1:{port}"
            api = origin + "/api"
            env = dict(os.environ, CONDUIT_LOG_FORMAT="json", RUST_LOG="warn", CONDUIT_BIND=f"127.0.0.1:{port}",
                       CONDUIT_MAX_REQUESTS_PER_ADDRESS="1000000", CONDUIT_MAX_CONNECTIONS_PER_ADDRESS="1000000", CONDUIT_ARTICLES_PER_HOUR="1000000000", CONDUIT_COMMENTS_PER_MINUTE="1000000000", CONDUIT_LOGIN_ATTEMPTS="1000000", CONDUIT_REGISTRATIONS_PER_HOUR="1000000")
            if args.postgres:
                url = args.postgres.rstrip("/")
                if url.endswith("/postgres"):
                    made_db = (url, f"conduit_bench_{os.getpid()}")
                    subprocess.run(["psql", "-q", url, "-c", f"CREATE DATABASE {made_db[1]}"], check=True)
                    url = url.rsplit("/", 1)[0] + "/" + made_db[1]
                env.update(DATABASE_URL=url, CONDUIT_JWT_SECRET=secrets.token_hex(32))
                backend = "postgres"
            else:
                env.update(DATABASE_URL=f"sqlite://{work}/bench.db")
                backend = "sqlite"
            server = subprocess.Popen([binary], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            pid = server.pid
            for _ in range(300):
                try:
                    Client(origin).call("GET", "/health/ready")
                    break
                except (OSError, SystemExit):
                    if server.poll() is not None:
                        raise SystemExit(f"conduit exited: {server.stderr.read().decode()}")
                    time.sleep(0.1)
        data = seed(api, args.articles, args.seed)
        if made_db:
            # Measure the steady state, not the minute after a bulk load: autovacuum would soon
            # set the visibility map and the planner statistics that a fresh table lacks (an
            # unfiltered count(*) then reads the index alone instead of every row). Only done
            # on a database this harness made; a server given by --url is measured as it is.
            subprocess.run(["psql", "-q", url, "-c", "VACUUM ANALYZE"], check=True)
        time.sleep(2)
        if args.soak:
            return soak(api, data, args, pid)
        if args.instructions:
            if not server:
                raise SystemExit("--instructions needs a server started here (not --url)")
            server.terminate()
            server.wait(timeout=30)
            server = None
            return instructions(args, env, binary, origin, api, data)
        hello_bin = build_hello(args)
        hello_port = free_port()
        hello_url = f"http://127.0.0.1:{hello_port}/user"
        hello = start([hello_bin, f"127.0.0.1:{hello_port}"], hello_url)
        try:
            hello_rows = {c: wrk(hello_url, None, None, data, args.duration, c, args.threads, hello.pid)
                          for c in [int(c) for c in args.connections.split(",")]}
        finally:
            hello.terminate()
            hello.wait(timeout=30)
        for c, r in hello_rows.items():
            print(f"{'hello (bare axum)':<16} c={c:<3} {r['rps']:>10,.0f} req/s  p99 {fmt(r['p99'], '{:.2f}')} ms",
                  file=sys.stderr, flush=True)
        idle = proc_status(pid, "VmRSS") if pid else None
        rows = []
        # Reads first at every connection count, then writes: writes grow the data the reads
        # would otherwise be measured on.
        writes = {"create_article", "login", "mix_90_10"}
        plan = [(c, n) for group in (False, True) for c in [int(c) for c in args.connections.split(",")]
                for n in names if (n in writes) == group]
        for connections, name in plan:
            target, needs_token, script = SCENARIOS[name]
            path = target.partition(" ")[2].format(**data)
            if name == "health_live":
                url = origin + "/health/live"
            elif name == "mix_90_10":
                url = api  # the Lua script writes each request
            else:
                url = api + path
            result = wrk(url, data["token"] if needs_token else None, script, data, args.duration, connections,
                         args.threads, pid)
            result.update(scenario=name, target=target.format(**data), connections=connections)
            result["failed"] = result["non2xx"] > 0 or result["socket_errors"] > 0
            rows.append(result)
            print(f"{name:<16} c={connections:<3} {result['rps']:>10,.0f} req/s  p99 {fmt(result['p99'], '{:.2f}')} ms"
                  f"  errors {result['non2xx'] + result['socket_errors']}", file=sys.stderr, flush=True)
        ceiling = {r["connections"]: r["rps"] for r in rows if r["scenario"] == "health_live"}
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
        lines = [f"backend: {backend}; {args.articles} articles (seed {args.seed}); wrk -t{args.threads} "
                 f"-d{args.duration}s; {os.cpu_count()} cores; idle RSS {fmt(idle, '{:.1f} MiB')}", "",
                 "| scenario | conns | req/s | of hello | of ceiling | p50 | p99 | max | errors | peak RSS | CPU-s/10k |",
                 "|---|---|---|---|---|---|---|---|---|---|---|"]
        for c, r in hello_rows.items():
            lines.append(
                f"| hello: the seed's bare Axum, GET /user | {c} | {r['rps']:,.0f} | 100% | | "
                f"{fmt(r['p50'], '{:.2f} ms')} | {fmt(r['p99'], '{:.2f} ms')} | {fmt(r['max'], '{:.1f} ms')} | "
                f"{r['non2xx'] + r['socket_errors']} | {fmt(r['rss_peak'], '{:.1f} MiB')} | {fmt(r['cpu_per_10k'], '{:.2f}')} |")
        for r in rows:
            share = r["rps"] / ceiling[r["connections"]] if ceiling.get(r["connections"]) else None
            of_hello = r["rps"] / hello_rows[r["connections"]]["rps"] if r["connections"] in hello_rows else None
            errors = r["non2xx"] + r["socket_errors"]
            lines.append(
                f"| {r['scenario']} | {r['connections']} | {r['rps']:,.0f} | {fmt(of_hello, '{:.0%}')} | {fmt(share, '{:.0%}')} | "
                f"{fmt(r['p50'], '{:.2f} ms')} | {fmt(r['p99'], '{:.2f} ms')} | {fmt(r['max'], '{:.1f} ms')} | "
                f"{'**FAILED** ' if r['failed'] else ''}{errors} | {fmt(r['rss_peak'], '{:.1f} MiB')} | "
                f"{fmt(r['cpu_per_10k'], '{:.2f}')} |")
        table = "\n".join(lines)
        print("\n" + table)
        os.makedirs(args.out, exist_ok=True)
        name = f"{stamp}-{backend.replace(' ', '-')}{'-smoke' if args.smoke else ''}"
        with open(os.path.join(args.out, name + ".md"), "w") as f:
            f.write(table + "\n")
        with open(os.path.join(args.out, name + ".svg"), "w") as f:
            f.write(svg_chart(rows, f"Conduit on {backend}"))
        print(f"\nwrote {os.path.join(args.out, name)}.md and .svg", file=sys.stderr)
        if any(r["failed"] for r in rows):
            raise SystemExit("some scenarios had errors (marked FAILED)")
    finally:
        if server:
            server.terminate()
            server.wait(timeout=30)
        if made_db:
            subprocess.run(["psql", "-q", made_db[0], "-c", f"DROP DATABASE IF EXISTS {made_db[1]} WITH (FORCE)"])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
