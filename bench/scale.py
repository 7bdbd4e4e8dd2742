#!/usr/bin/env python3
"""The same reads on a small and on a large database, side by side, for issue 14's question:
does a request cost the same at 1,000 articles as at 1,000,000?

Seeds two databases with `conduit seed` (SQLite files, or PostgreSQL databases with --postgres),
starts one server on each, then runs every scenario on SMALL and on LARGE in alternation, several
rounds, and reports each side's median requests/s and p99, the ratio LARGE/SMALL, and each
server's RSS. The large database can be kept (--keep DIR) and is then reused by later runs (the
write scenarios add to it: some 15,000 articles and comments a run, little beside a million);
the small one is made afresh each run.

    bench/scale.py                                  # 1,000 against 1,000,000 on SQLite
    bench/scale.py --large 100000 --rounds 2 --duration 3
    bench/scale.py --postgres postgres://postgres@127.0.0.1:5432/postgres --keep /tmp/scale

Traffic goes only to the two servers started here on 127.0.0.1.
"""

import argparse
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the harness: wrk and its parsing, the JSON client)

# name: (path with {placeholders}, whether it needs the token, Lua script, its MODE)
SCENARIOS = {
    "articles": ("/articles?limit=20", False, None, None),
    "articles_by_tag": ("/articles?tag={tag}", False, None, None),
    "articles_by_author": ("/articles?author={author}", False, None, None),
    "articles_favorited": ("/articles?favorited={favoriter}", False, None, None),
    # Two filters at once: the slowest listing but one (0.37 at 100k). The most used tag
    # and a typical author (the middle article's: ~10 articles), whose articles are walked.
    "articles_by_tag_and_author": ("/articles?tag={tag}&author={typical_author}", False, None, None),
    "deep_offset": ("/articles?offset=9980", False, None, None),
    "deep_cursor": ("/articles?cursor={middle}", False, None, None),
    "feed": ("/articles/feed", True, None, None),
    # Search (issue 27): the corpus's most common word ("rust": in every title, description or
    # body of 87% of articles, and the most used tag), two common words, the two as a phrase, an
    # article's exact title, and a word in no article.
    "search_common": ("/articles?q=rust", False, None, None),
    "search_two_common": ("/articles?q=rust%20async", False, None, None),
    "search_phrase": ("/articles?q=%22rust%20async%22", False, None, None),
    "search_title": ("/articles?q={title}", False, None, None),
    "search_absent": ("/articles?q=zeppelin", False, None, None),
    "rss": ("/feeds/rss", False, None, None),
    "atom_by_tag": ("/feeds/tag/{tag}/atom", False, None, None),
    "tags": ("/tags", False, None, None),
    "article": ("/articles/{slug}", False, None, None),
    "comments": ("/articles/{slug}/comments", False, None, None),
    "user": ("/user", True, None, None),
    # Writes: each request by one of WRITERS users (bench/lua/scale_writes.lua).
    "create_article": ("/articles", True, "post_article.lua", None),
    "favorite": ("/articles", True, "scale_writes.lua", "favorite"),
    "favorite_one": ("/articles", True, "scale_writes.lua", "favorite_one"),
    "follow": ("/articles", True, "scale_writes.lua", "follow"),
    "comment": ("/articles", True, "scale_writes.lua", "comment"),
}
# Users who write in the write scenarios (demo2..demo65), as many as the connections of the
# issue's "64 concurrent favorites".
WRITERS = 64


def seed(binary, env, articles, keep):
    """Seeds (or, with --keep, reuses) a database of `articles` articles; returns its URL."""
    if env.get("PG_ADMIN"):
        admin = env["PG_ADMIN"]
        name = f"conduit_scale_{articles}"
        exists = subprocess.run(["psql", "-tAq", admin, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
                                capture_output=True, text=True, check=True).stdout.strip() == "1"
        url = admin.rsplit("/", 1)[0] + "/" + name
        if exists and keep:
            return url
        subprocess.run(["psql", "-q", admin, "-c", f"DROP DATABASE IF EXISTS {name}"], check=True)
        subprocess.run(["psql", "-q", admin, "-c", f"CREATE DATABASE {name}"], check=True)
    else:
        path = os.path.join(env["WORK"], f"scale-{articles}.db")
        url = f"sqlite://{path}"
        if os.path.exists(path) and keep:
            return url
        for suffix in ("", "-wal", "-shm", ".jwt-secret"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
    started = time.monotonic()
    subprocess.run([binary, "seed", "--articles", str(articles)], check=True, env=dict(env, DATABASE_URL=url))
    print(f"seeded {articles:,} articles in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    if env.get("PG_ADMIN"):
        subprocess.run(["psql", "-q", url, "-c", "VACUUM ANALYZE"], check=True)
    return url


def start(binary, env, url):
    port = run.free_port()
    origin = f"http://127.0.0.1:{port}"
    env = dict(env, DATABASE_URL=url, CONDUIT_BIND=f"127.0.0.1:{port}")
    return run.start([binary], origin + "/health/ready", env), origin


def facts(origin):
    """What the scenarios need from a seeded database: a demo user's token, an article in the
    middle, a used tag, an author and a favoriter, a cursor halfway down the listing, and for the
    writes: WRITERS users' tokens, articles spread over the table, users to follow."""
    client = run.Client(origin + "/api")
    login = {"user": {"email": "demo1@example.com", "password": "password123"}}
    token = client.call("POST", "/users/login", login)["user"]["token"]
    first = client.call("GET", "/articles?limit=1")
    total = first["articlesCount"]
    # Ids are dense from 1: the cursor after id N starts the listing halfway down.
    middle = f"c1{max(1, total // 2):x}"
    mid = client.call("GET", f"/articles?limit=1&cursor={middle}")["articles"][0]
    tag = client.call("GET", "/tags")["tags"][0]
    # Not demo1, whose feed and favorites the reads measure: its follows must stay the seed's.
    tokens = [client.call("POST", "/users/login", {"user": {
        "email": f"demo{i}@example.com", "password": "password123"}})["user"]["token"] for i in range(2, WRITERS + 2)]
    rng = random.Random(1)
    slugs, authors = [mid["slug"]], set()  # the first is the one article of favorite_one
    for _ in range(50):  # 50 pages at random depths: 1,000 articles from the whole table
        cursor = f"c1{rng.randrange(21, total + 1):x}"
        for article in client.call("GET", f"/articles?limit=20&cursor={cursor}")["articles"]:
            slugs.append(article["slug"])
            authors.add(article["author"]["username"])
    # Users who exist (they wrote those articles), never a writer (nobody follows themselves).
    writers = {f"demo{i}" for i in range(1, WRITERS + 2)}
    followable = sorted(authors - writers)
    # A listing's cost follows the rows it serves: pick an author and a favoriter with a full
    # page (20) on both sides where there is one, or the pages would differ in size, not cost.
    recent = [a["author"]["username"] for a in client.call("GET", "/articles?limit=100")["articles"]]
    author = fullest(client, "author", dict.fromkeys(recent))
    favoriter = fullest(client, "favorited", [f"demo{i}" for i in range(1, 41)])
    return {"token": token, "slug": mid["slug"], "title": mid["title"], "tag": tag, "author": author,
            "typical_author": mid["author"]["username"], "favoriter": favoriter, "middle": middle, "total": total, "email": "demo1@example.com",
            "writes": {"TOKENS": tokens, "SLUGS": slugs, "USERS": followable}}


def fullest(client, key, names):
    """The first of `names` whose listing by `key` fills a page of 20, else the fullest."""
    best = (-1, None)
    for name in names:
        count = client.call("GET", f"/articles?{key}={urllib.parse.quote(name)}&limit=1")["articlesCount"]
        if count >= 20:
            return name
        best = max(best, (count, name))
    return best[1]


def memory(pid):
    """RSS, and its parts: anonymous (heap, SQLite's page caches) and file-backed (the binary's
    text, mapped files)."""
    rss, anon, file = (run.proc_status(pid, f) for f in ("VmRSS", "RssAnon", "RssFile"))
    return f"{rss:.1f} MiB ({anon:.1f} anon + {file:.1f} file)"


def lua_extra(data, mode):
    """The write scripts' data (bench/lua/scale_writes.lua): Lua tables and the mode."""
    tables = "".join(f"\n{k} = {{{', '.join(repr(str(v)) for v in vs)}}}" for k, vs in data["writes"].items())
    return tables + f'\nMODE = "{mode}"\n'


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(run.ROOT, "target/release/conduit"), help="conduit binary")
    parser.add_argument("--small", type=int, default=1000, help="articles in the small database (default 1000)")
    parser.add_argument("--large", type=int, default=1_000_000, help="articles in the large one (default 1000000)")
    parser.add_argument("--postgres", metavar="ADMIN_URL", help="seed PostgreSQL databases through this admin URL")
    parser.add_argument("--keep", metavar="DIR", help="keep the large SQLite file here and reuse it (with --postgres: "
                                                      "keep and reuse the large database)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    parser.add_argument("--rounds", type=int, default=3, help="alternations per scenario (default 3)")
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run (default 4)")
    parser.add_argument("--connections", type=int, default=16, help="connections (default 16)")
    args = parser.parse_args()
    names = args.scenarios.split(",")
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    work = args.keep or tempfile.mkdtemp(prefix="conduit-scale-")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, CONDUIT_LOG_FORMAT="json", RUST_LOG="warn", CONDUIT_MAX_REQUESTS_PER_ADDRESS="1000000", CONDUIT_MAX_CONNECTIONS_PER_ADDRESS="1000000", CONDUIT_ARTICLES_PER_HOUR="1000000000", CONDUIT_COMMENTS_PER_MINUTE="1000000000", CONDUIT_LOGIN_ATTEMPTS="1000000",
               WORK=work, CONDUIT_JWT_SECRET=secrets.token_hex(32))
    if args.postgres:
        env["PG_ADMIN"] = args.postgres.rstrip("/")
    servers = []
    try:
        sides = {}
        for side, articles in (("SMALL", args.small), ("LARGE", args.large)):
            # The writes add articles, comments and follows: a kept small database would soon not
            # be small (15,000 articles more after one run). It takes seconds to make again.
            url = seed(args.bin, env, articles, bool(args.keep) and side == "LARGE")
            server, origin = start(args.bin, env, url)
            servers.append(server)
            sides[side] = (origin, server.pid, facts(origin))
        idle = {side: memory(pid) for side, (_, pid, _) in sides.items()}
        results = {(name, side): [] for name in names for side in sides}
        for name in names:
            path, needs_token, script, mode = SCENARIOS[name]
            for round_ in range(args.rounds):
                for side in (("SMALL", "LARGE") if round_ % 2 == 0 else ("LARGE", "SMALL")):
                    origin, pid, data = sides[side]
                    url = origin + "/api" + path.format(**{k: urllib.parse.quote(str(v)) for k, v in data.items()})
                    extra = lua_extra(data, mode)
                    r = run.wrk(url, data["token"] if needs_token else None, script, data, args.duration,
                                args.connections, 2, pid, extra)
                    if r["non2xx"] or r["socket_errors"]:
                        raise SystemExit(f"{name} on {side}: {r['non2xx']} non-2xx, {r['socket_errors']} socket errors")
                    results[(name, side)].append(r)
            s = statistics.median(r["rps"] for r in results[(name, "SMALL")])
            b = statistics.median(r["rps"] for r in results[(name, "LARGE")])
            print(f"{name:<20} small {s:>9,.0f}  large {b:>9,.0f}  large/small {b / s:.2f}", file=sys.stderr, flush=True)
        backend = "PostgreSQL" if args.postgres else "SQLite"
        lines = [f"{backend}, {sides['SMALL'][2]['total']:,} against {sides['LARGE'][2]['total']:,} articles "
                 f"(`conduit seed`); {args.connections} connections; {args.rounds} alternating runs of "
                 f"{args.duration} s per side; medians", "",
                 "| scenario | small req/s | large req/s | large/small | small p99 | large p99 |",
                 "|---|---|---|---|---|---|"]
        for name in names:
            a, b = results[(name, "SMALL")], results[(name, "LARGE")]
            ra, rb = statistics.median(r["rps"] for r in a), statistics.median(r["rps"] for r in b)
            pa, pb = statistics.median(r["p99"] for r in a), statistics.median(r["p99"] for r in b)
            lines.append(f"| {name} | {ra:,.0f} | {rb:,.0f} | {rb / ra:.2f} | {pa:.2f} ms | {pb:.2f} ms |")
        busy = {side: memory(pid) for side, (_, pid, _) in sides.items()}
        lines += ["", "| server RSS | small | large |", "|---|---|---|",
                  f"| after start and a login | {idle['SMALL']} | {idle['LARGE']} |",
                  f"| after the scenarios | {busy['SMALL']} | {busy['LARGE']} |"]
        print("\n".join(lines))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
