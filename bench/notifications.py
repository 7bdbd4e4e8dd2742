#!/usr/bin/env python3
"""Notifications at scale (issue 29): what an idle stream costs, how fast one event reaches
1,000 followers' streams, what 10,000 open streams cost the writes, and how long a notification
takes to reach a stream on the same instance and on another one.

    bench/notifications.py                                   # SQLite, then PostgreSQL + Redis
    bench/notifications.py --only sqlite
    bench/notifications.py --streams 2000 --followers 200    # a quick look
    bench/notifications.py --database postgres://.../conduit_scale_1m   # on a database seeded
                                                             # before (`conduit seed`), unseeded here

The clients are asyncio connections reading `text/event-stream` as a browser does (chunked
transfer decoded, events split on blank lines). Tokens are minted here with the server's secret
(HS256, as the server mints them) for users made by `conduit seed`, so that 10,000 clients need
no 10,000 logins. Figures:

- stream memory: the server's RSS before and after opening `--streams` idle streams, per stream;
- fan-out: one article by an author with `--followers` followers, each holding an open stream
  among the `--streams`: the time from sending the POST to each follower's `article` event
  (p50, p99 over every delivery of `--publishes` articles);
- write cost: median latency of POST /articles, POST comments and POST favorite with no stream
  open and with `--streams` open (rounds without, with, without; the ratio against the mean of
  the two rounds without);
- delivery: a comment on one's article written through instance A, heard on a stream held on A
  (same instance) and on B (another instance, through Redis), p50 and p99 of `--samples`.

With `--instructions`, instead: the write cost counted in instructions, which a noisy machine
does not move (less SQLite's search-index merges, which land in one window or another by chance). The server runs under valgrind's callgrind; the instructions it runs over
`--rounds` rounds of writes (a publish, a comment, a favorite) are counted with no stream open,
with `--streams` open, and with none again. With the streams open, what the server runs when no
write comes (keep-alives, the tail's poll) is counted over an idle stretch as long as the writes
took and taken off, so the figure is what the writes cost (their deliveries included: every
seeded user holds a stream, so each comment and favorite is delivered to its author's).

Everything listens on 127.0.0.1 and is stopped at the end. Raises the open-file limit to fit
the streams.
"""

import argparse
import asyncio
import base64
import gc
import hashlib
import hmac
import json
import os
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secret, user_id):
    """A token for user `user_id`, as `TokenKeys::mint` makes one (HS256, version 0)."""
    now = int(time.time())
    header = b64(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
    claims = b64(json.dumps({"sub": str(user_id), "iat": now, "exp": now + 86400, "ver": 0, "auth_time": now},
                            separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(signature)}"


def percentile(samples, q):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Stream:
    """One open `/api/notifications/stream`; `events` gets (arrival time, event, id, data)."""

    def __init__(self):
        self.raw = False
        self.events = asyncio.Queue()
        self.ready = asyncio.Event()
        self.writer = None
        self.task = None

    async def open(self, port, token, last=None):
        reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        request = (f"GET /api/notifications/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   f"Authorization: Token {token}\r\nAccept: text/event-stream\r\n")
        if last:
            request += f"Last-Event-ID: {last}\r\n"
        self.writer.write((request + "\r\n").encode())
        status = await reader.readline()
        if b" 200 " not in status:
            raise SystemExit(f"stream refused: {status!r} {await reader.read(300)!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.task = asyncio.create_task(self.read(reader))
        await self.ready.wait()

    async def read(self, reader):
        buffer = b""
        try:
            while True:
                size = int((await reader.readline()).strip() or b"0", 16)
                if size == 0:
                    return
                buffer += await reader.readexactly(size)
                await reader.readexactly(2)
                now = time.perf_counter()
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    if self.raw and b"event: notification" in block:
                        # Fan-out: the arrival time is all that is wanted; no parsing.
                        self.events.put_nowait((now, "notification", None, block))
                        continue
                    fields = {}
                    for line in block.decode().split("\n"):
                        if line and not line.startswith(":"):
                            key, _, value = line.partition(":")
                            fields[key] = value[1:] if value.startswith(" ") else value
                    if "event" not in fields:
                        continue
                    if fields["event"] == "ready":
                        self.ready.set()
                    self.events.put_nowait((now, fields["event"], fields.get("id"), fields.get("data")))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            return

    def close(self):
        if self.writer:
            self.writer.close()
        if self.task:
            self.task.cancel()


async def open_streams(port, tokens, batch=200):
    streams = []
    for start in range(0, len(tokens), batch):
        opened = [Stream() for _ in tokens[start:start + batch]]
        await asyncio.gather(*(s.open(port, t) for s, t in zip(opened, tokens[start:start + batch])))
        streams.extend(opened)
        run.progress("streams", len(streams), len(tokens))
    return streams


async def next_notification(stream, within=10):
    while True:
        at, event, ident, data = await asyncio.wait_for(stream.events.get(), within)
        if event == "notification":
            return at, json.loads(data)


class Api:
    def __init__(self, origin):
        self.client = run.Client(origin + "/api")

    def post(self, path, token, body):
        return self.client.call("POST", path, body, token=token)


def write_latencies(api, tokens, articles, rounds, turn):
    """Median ms of each kind of write, `rounds` of each. Each `turn` (0-3) favorites pairs of
    article and reader none of the others does, so every round's favorites are new ones (a
    repeated favorite writes nothing and notifies nobody) and the rounds compare like for like."""
    kinds = {"publish": [], "comment": [], "favorite": []}
    for i in range(rounds):
        token = tokens[i % len(tokens)]
        started = time.perf_counter()
        api.post("/articles", token, {"article": {"title": f"bench {secrets.token_hex(6)}",
                                                  "description": "d", "body": "a body " * 40}})
        kinds["publish"].append(time.perf_counter() - started)
        slug = articles[i % len(articles)]
        started = time.perf_counter()
        api.post(f"/articles/{slug}/comments", token, {"comment": {"body": f"comment {i}"}})
        kinds["comment"].append(time.perf_counter() - started)
        started = time.perf_counter()
        api.post(f"/articles/{articles[(i * 7 + 3) % len(articles)]}/favorite", tokens[(i * 13 + turn) % len(tokens)], {})
        kinds["favorite"].append(time.perf_counter() - started)
    return {k: statistics.median(v) * 1000 for k, v in kinds.items()}


def seed(binary, env, users):
    subprocess.run([binary, "seed", "--articles", str(users // 10), "--users", str(users), "--seed", "29"],
                   env=env, check=True, capture_output=True)


def server(binary, env):
    port = run.free_port()
    origin = f"http://127.0.0.1:{port}"
    process = run.start([binary, "serve", "--bind", f"127.0.0.1:{port}"], origin + "/health/ready", env)
    return process, port, origin


def article_slugs(api, n):
    found = api.client.call("GET", f"/articles?limit={n}")
    return [a["slug"] for a in found["articles"]]


async def scale(binary, env, args, label):
    if not args.database:
        seed(binary, env, args.streams)
    secret = env["CONDUIT_JWT_SECRET"]
    tokens = [mint(secret, i) for i in range(1, args.streams + 1)]
    process, port, origin = server(binary, env)
    api = Api(origin)
    results = {}
    try:
        author, followers = tokens[0], tokens[1:args.followers + 1]
        me = api.client.call("GET", "/user", token=author)["user"]["username"]
        for i, token in enumerate(followers):
            api.post(f"/profiles/{me}/follow", token, {})
            run.progress("follows", i + 1, len(followers))
        articles = article_slugs(api, 50)
        writers = tokens[args.followers + 1:args.followers + 201]

        write_latencies(api, writers, articles, 20, 0)  # warm-up, not counted
        before_none = write_latencies(api, writers, articles, args.rounds, 1)
        rss_before = run.proc_status(process.pid, "VmRSS")
        streams = await open_streams(port, tokens)
        # Python's cycle collector walking 10,000 streams' objects paused this client for
        # 100 ms and more, which then read as delivery time: off while measuring.
        gc.collect()
        gc.freeze()
        gc.disable()
        await asyncio.sleep(2)
        rss_after = run.proc_status(process.pid, "VmRSS")
        results["rss_mb"] = (rss_before, rss_after)
        results["per_stream_kb"] = (rss_after - rss_before) * 1024 / len(streams)

        follower_streams = streams[1:args.followers + 1]
        for s in follower_streams:
            s.raw = True
        delays = []
        for n in range(args.publishes):
            for s in follower_streams:
                while not s.events.empty():
                    s.events.get_nowait()
            sent = time.perf_counter()
            api.post("/articles", author, {"article": {"title": f"fan-out {n} {secrets.token_hex(4)}",
                                                       "description": "d", "body": "b"}})
            arrivals = await asyncio.gather(*(s.events.get() for s in follower_streams))
            assert all(b'"kind":"article"' in block for _, _, _, block in arrivals)
            delays.extend((at - sent) * 1000 for at, _, _, _ in arrivals)
        results["fanout_ms"] = (statistics.median(delays), percentile(delays, 0.99), len(delays))

        for s in follower_streams:
            s.raw = False
        with_streams = write_latencies(api, writers, articles, args.rounds, 2)
        for s in streams:
            s.close()
        gc.enable()
        await asyncio.sleep(1)
        after_none = write_latencies(api, writers, articles, args.rounds, 3)
        results["writes"] = {k: (before_none[k], with_streams[k], after_none[k]) for k in before_none}
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(f"\n## {label}: {args.streams} streams, {args.followers} followers")
    rss_before, rss_after = results["rss_mb"]
    print(f"RSS {rss_before:.1f} MB -> {rss_after:.1f} MB: {results['per_stream_kb']:.1f} KB per idle stream")
    p50, p99, n = results["fanout_ms"]
    print(f"fan-out of one article to {args.followers} open streams: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({n} deliveries)")
    for kind, (a, b, c) in results["writes"].items():
        print(f"{kind:>9}: {a:.2f} ms without, {b:.2f} ms with {args.streams} streams, {c:.2f} ms without again:"
              f" {b / ((a + c) / 2):.2f} x")
    return results


def streams_open(origin):
    """The server's own count of open streams (`/metrics`)."""
    with urllib.request.urlopen(origin + "/metrics", timeout=60) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("conduit_notification_streams "):
                return float(line.split()[1])
    raise SystemExit("no conduit_notification_streams in /metrics")


class Callgrind:
    """A server under valgrind's callgrind, whose instruction count is read between marks."""

    def __init__(self, binary, env, keep=None):
        self.keep = keep
        self.out = keep or tempfile.mkdtemp(prefix="conduit-callgrind-")
        os.makedirs(self.out, exist_ok=True)
        self.port = run.free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.process = run.start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out}/cg.%p.out",
                                  "--dump-instr=no", binary, "serve", "--bind", f"127.0.0.1:{self.port}"],
                                 self.origin + "/health/ready", env)
        self.dumps = 0

    def zero(self):
        subprocess.run(["callgrind_control", "--zero", str(self.process.pid)], check=True, capture_output=True)

    def count(self):
        """Instructions since the last `zero`, less those of SQLite's FTS5 segment merges: the
        search index merges its segments every so many commits, 26 million instructions at a
        time here, which fall into one measured window or another by chance (they cost the
        same per article with streams as without)."""
        subprocess.run(["callgrind_control", "--dump", str(self.process.pid)], check=True, capture_output=True)
        self.dumps += 1
        path = os.path.join(self.out, f"cg.{self.process.pid}.out.{self.dumps}")
        with open(path) as f:
            text = f.read()
        match = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(r"^totals:\s+(\d+)", text, re.M)
        annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                                   capture_output=True, text=True).stdout
        merges = max((int(line.split()[0].replace(",", "")) for line in annotated.splitlines()
                      if re.search(r"sqlite3\.c:fts5IndexMerge \[", line) and "=>" not in line), default=0)
        return int(match.group(1)) - merges

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=120)
        if not self.keep:
            shutil.rmtree(self.out, ignore_errors=True)


async def instructions(binary, env, args, label):
    # The streams' keep-alive comments (one per stream every 30 s, 333 a second for 10,000) are
    # no write's doing, and land in one window or another by chance, as bursts of the streams
    # opened together: they are kept out of the windows, an hour apart.
    env = dict(env, CONDUIT_NOTIFICATIONS_KEEP_ALIVE="3600")
    if not args.database:
        seed(binary, env, args.streams)
    tokens = [mint(env["CONDUIT_JWT_SECRET"], i) for i in range(1, args.streams + 1)]
    server = Callgrind(binary, env, args.profiles)
    writes = 3 * args.rounds
    try:
        api = Api(server.origin)
        articles = article_slugs(api, 50)
        writers = tokens[1:201]
        write_latencies(api, writers, articles, 20, 0)  # warm-up, not counted
        for token in writers:  # every writer's token checked once before any round counts
            api.client.call("GET", "/user", token=token)

        def counted(what):
            server.zero()
            started = time.perf_counter()
            what()
            return server.count(), time.perf_counter() - started

        without, _ = counted(lambda: write_latencies(api, writers, articles, args.rounds, 1))
        streams = await open_streams(server.port, tokens, batch=50)
        await asyncio.sleep(5)  # the streams' opening settles
        # A connection idle past the header timeout (10 s) is closed: opening 10,000 streams under
        # callgrind takes longer, so the writes go over a new one.
        api = Api(server.origin)
        gross, took = counted(lambda: write_latencies(api, writers, articles, args.rounds, 2))
        idle, idled = counted(lambda: time.sleep(took))
        for s in streams:
            s.close()
        # Until the server has let every stream go (under callgrind, well after the client did),
        # so that none of it counts as the writes'.
        while streams_open(server.origin) > 0:
            await asyncio.sleep(1)
        await asyncio.sleep(3)
        api = Api(server.origin)
        again, _ = counted(lambda: write_latencies(api, writers, articles, args.rounds, 3))
    finally:
        server.stop()
    background = idle * took / idled
    net = gross - background
    base = (without + again) / 2
    print(f"\n## {label}: instructions per write (a publish, a comment, a favorite; {writes} writes), callgrind")
    print(f"without streams {without / writes:,.0f}, again {again / writes:,.0f}")
    print(f"with {len(streams)} streams {gross / writes:,.0f} gross, of which {background / writes:,.0f} is what the "
          f"server runs idle with the streams over as long ({took:.1f} s): net {net / writes:,.0f}")
    print(f"ratio net {net / base:.3f} x, gross {gross / base:.3f} x")
    return net / base


async def delivery(binary, env, args):
    """Same instance and across instances, through Redis."""
    redis_port = run.free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
                             stdout=subprocess.DEVNULL)
    env = dict(env, REDIS_URL=f"redis://127.0.0.1:{redis_port}")
    time.sleep(0.5)
    a, port_a, origin_a = server(binary, env)
    b, port_b, _ = server(binary, env)
    try:
        api = Api(origin_a)
        secret = env["CONDUIT_JWT_SECRET"]
        reader, writer = mint(secret, 1), mint(secret, 2)
        slug = api.post("/articles", reader, {"article": {"title": f"delivery {secrets.token_hex(4)}",
                                                          "description": "d", "body": "b"}})["article"]["slug"]
        figures = {}
        for label, port in (("same instance", port_a), ("another instance", port_b)):
            stream = Stream()
            await stream.open(port, reader)
            # What an instance that had no stream open reads on waking is not a delivery.
            await asyncio.sleep(1)
            while not stream.events.empty():
                stream.events.get_nowait()
            delays = []
            for i in range(args.samples):
                body = f"{label} sample {i}"
                sent = time.perf_counter()
                api.post(f"/articles/{slug}/comments", writer, {"comment": {"body": body}})
                while True:
                    at, data = await next_notification(stream)
                    if data.get("comment", {}).get("excerpt") == body:
                        break
                delays.append((at - sent) * 1000)
                await asyncio.sleep(0.01)
            stream.close()
            figures[label] = (statistics.median(delays), percentile(delays, 0.99))
            print(f"delivery, {label}: p50 {figures[label][0]:.1f} ms, p99 {figures[label][1]:.1f} ms"
                  f" ({args.samples} comments)")
        return figures
    finally:
        for p in (a, b, redis):
            p.terminate()
            p.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(run.ROOT, "target/release/conduit"))
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--postgres", default=os.environ.get("CONDUIT_TEST_PG_URL",
                                                             "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--followers", type=int, default=1_000)
    parser.add_argument("--publishes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--database", help="a database `conduit seed` made with at least --streams users: "
                                           "measured there (it keeps what the run writes), nothing seeded")
    parser.add_argument("--instructions", action="store_true",
                        help="instead of the figures: instructions per write with and without the streams, "
                             "under valgrind's callgrind")
    parser.add_argument("--profiles", metavar="DIR",
                        help="with --instructions: keep callgrind's dumps in DIR (one per window: without the "
                             "streams, with them, idle with them, again without), for callgrind_annotate")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    base_env = dict(os.environ, CONDUIT_JWT_SECRET=secrets.token_hex(32), RUST_LOG="warn",
                    CONDUIT_MAX_CONNECTIONS_PER_ADDRESS="100000", CONDUIT_ARTICLES_PER_HOUR="100000",
                    CONDUIT_COMMENTS_PER_MINUTE="100000", CONDUIT_NEW_ACCOUNT_ARTICLES_PER_HOUR="100000",
                    CONDUIT_NEW_ACCOUNT_COMMENTS_PER_HOUR="100000", CONDUIT_MAX_REQUESTS_PER_ADDRESS="1000000")
    base_env.pop("REDIS_URL", None)
    work = tempfile.mkdtemp(prefix="conduit-notify-bench-")
    if args.database:
        env = dict(base_env, DATABASE_URL=args.database)
        label = "PostgreSQL" if args.database.startswith("postgres") else "SQLite"
        asyncio.run((instructions if args.instructions else scale)(args.bin, env, args, f"{label}, {args.database}"))
        return
    try:
        if args.only in (None, "sqlite"):
            env = dict(base_env, DATABASE_URL=f"sqlite://{work}/bench.db")
            asyncio.run((instructions if args.instructions else scale)(args.bin, env, args, "SQLite"))
        if args.only in (None, "postgres"):
            name = f"conduit_notify_bench_{secrets.token_hex(3)}"
            subprocess.run(["psql", "-q", args.postgres, "-c", f"CREATE DATABASE {name}"], check=True)
            try:
                env = dict(base_env, DATABASE_URL=args.postgres.rsplit("/", 1)[0] + "/" + name)
                if args.instructions:
                    asyncio.run(instructions(args.bin, env, args, "PostgreSQL"))
                else:
                    asyncio.run(scale(args.bin, env, args, "PostgreSQL"))
                    asyncio.run(delivery(args.bin, env, args))
            finally:
                subprocess.run(["psql", "-q", args.postgres, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
