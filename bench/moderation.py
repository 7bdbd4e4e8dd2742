#!/usr/bin/env python3
"""Moderation at scale (issue 26), side by side in one run on one large database:

1. Blocks: a reader who blocks 1,000 accounts against a reader who blocks none, on the same
   listings (all articles, a tag's, an author's, a search) and the feed, alternating, several
   rounds; the rate of the reader with blocks over the rate of the one without (the issue's bar:
   at least 0.8).
2. The report queue with 100,000 open reports (one per article, written straight into the
   database beside the server: filing them over HTTP would take 100,000 accounts): its first
   page and a page from halfway down, by cursor.

    DATABASE_URL=sqlite:///tmp/scale/scale-1000000.db bench/moderation.py
    bench/moderation.py --database postgres://postgres@127.0.0.1:5432/conduit_scale_1000000

The database must have been made by `conduit seed` (the demo users log in with password123);
this adds 1,000 blocks to demo2, a moderator (demo3) and the reports, and leaves them there.
Traffic goes only to the server started here on 127.0.0.1.
"""

import argparse
import os
import random
import secrets
import sqlite3
import statistics
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the harness: wrk and its parsing, the JSON client)

BLOCKS = 1000
REPORTS = 100_000


def login(client, name):
    body = {"user": {"email": f"{name}@example.com", "password": "password123"}}
    return client.call("POST", "/users/login", body)["user"]["token"]


def authors(client, total, wanted, exclude):
    """`wanted` usernames that wrote articles, from pages all over the table."""
    found, page = [], 0
    while len(found) < wanted and page < 2000:
        cursor = f"c1{max(21, total - page * (total // 700)):x}"
        for article in client.call("GET", f"/articles?limit=100&cursor={cursor}")["articles"]:
            name = article["author"]["username"]
            if name not in exclude and name not in found:
                found.append(name)
        page += 1
    return found[:wanted]


def add_reports(database, count):
    """`count` open reports by demo4, one per article 1..count, with their queue entries."""
    if database.startswith("sqlite://"):
        db = sqlite3.connect(database.removeprefix("sqlite://"), timeout=60)
        db.execute("PRAGMA busy_timeout = 60000")
        reporter = db.execute("SELECT id FROM users WHERE username = 'demo4'").fetchone()[0]
        db.execute("DELETE FROM report_targets")
        db.execute("DELETE FROM reports")
        db.execute("INSERT INTO reports (reporter_id, target_kind, target_id, reason, details, created_at) "
                   "SELECT ?, 'article', id, 'spam', 'bench', '2026-12-07T00:00:00Z' FROM articles ORDER BY id LIMIT ?",
                   (reporter, count))
        db.execute("INSERT INTO report_targets (target_kind, target_id, open_reports, first_open_id) "
                   "SELECT 'article', target_id, 1, id FROM reports")
        db.commit()
        db.close()
    else:
        sql = f"""
            TRUNCATE report_targets; TRUNCATE reports;
            INSERT INTO reports (reporter_id, target_kind, target_id, reason, details, created_at)
            SELECT (SELECT u.id FROM users u WHERE u.username = 'demo4'), 'article', a.id, 'spam', 'bench', now()
            FROM articles a ORDER BY a.id LIMIT {count};
            INSERT INTO report_targets (target_kind, target_id, open_reports, first_open_id)
            SELECT 'article', target_id, 1, id FROM reports;
            ANALYZE reports; ANALYZE report_targets;"""
        subprocess.run(["psql", "-q", database, "-c", sql], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(run.ROOT, "target/release/conduit"), help="conduit binary")
    parser.add_argument("--database", default=os.environ.get("DATABASE_URL"), help="a seeded database (DATABASE_URL)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations per scenario (default 3)")
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run (default 4)")
    parser.add_argument("--connections", type=int, default=16, help="connections (default 16)")
    parser.add_argument("--users", type=int, default=100_000, help="demo users in the database (default 100000)")
    parser.add_argument("--prolific", action="store_true", help="block the authors of the newest articles instead")
    args = parser.parse_args()
    if not args.database:
        raise SystemExit("name a database seeded by `conduit seed`: --database or DATABASE_URL")
    env = dict(os.environ, DATABASE_URL=args.database, CONDUIT_LOG_FORMAT="json", RUST_LOG="warn",
               CONDUIT_MAX_REQUESTS_PER_ADDRESS="1000000", CONDUIT_MAX_CONNECTIONS_PER_ADDRESS="1000000",
               CONDUIT_LOGIN_ATTEMPTS="1000000", CONDUIT_JWT_SECRET=env_secret())
    server, origin = run.start_promoted(args.bin, env, "demo3", "moderator")
    try:
        client = run.Client(origin + "/api")
        plain, blocking, moderator = login(client, "demo1"), login(client, "demo2"), login(client, "demo3")
        total = client.call("GET", "/articles?limit=1")["articlesCount"]
        tag = client.call("GET", "/tags")["tags"][0]
        # An author neither reader blocks, and the accounts demo2 blocks: with --prolific the
        # authors of the newest articles (the worst case: most of every page is theirs), else
        # accounts drawn at random from the demo users, as a person's blocks would be.
        found = authors(client, total, BLOCKS + 1 if args.prolific else 50, {"demo1", "demo2", "demo3"})
        author = found.pop()
        if args.prolific:
            names = found
        else:
            rng = random.Random(26)
            names = sorted({f"demo{n}" for n in rng.sample(range(5, args.users + 1), BLOCKS)} - {author})
        while True:  # the blocks of an earlier run go first
            earlier = client.call("GET", "/user/blocks?limit=100", token=blocking)["blocks"]
            if not earlier:
                break
            for b in earlier:
                client.call("DELETE", f"/profiles/{urllib.parse.quote(b['username'])}/block", token=blocking)
        for name in names:
            client.call("POST", f"/profiles/{urllib.parse.quote(name)}/block", token=blocking)
        assert client.call("GET", "/user/blocks?limit=1", token=blocking)["blocks"], "demo2's blocks are listed"
        print(f"demo2 blocks {len(names):,} authors; {total:,} articles", file=sys.stderr, flush=True)

        scenarios = {
            "articles": "/articles?limit=20",
            "articles_by_tag": f"/articles?tag={urllib.parse.quote(tag)}",
            "articles_by_author": f"/articles?author={urllib.parse.quote(author)}",
            "search_common": "/articles?q=rust",
            "feed": "/articles/feed",
        }
        results = {(name, who): [] for name in scenarios for who in ("none", "blocks")}
        for name, path in scenarios.items():
            for round_ in range(args.rounds):
                for who in (("none", "blocks") if round_ % 2 == 0 else ("blocks", "none")):
                    token = plain if who == "none" else blocking
                    r = run.wrk(origin + "/api" + path, token, None, {}, args.duration, args.connections, 2, server.pid)
                    if r["non2xx"] or r["socket_errors"]:
                        raise SystemExit(f"{name} ({who}): {r['non2xx']} non-2xx, {r['socket_errors']} socket errors")
                    results[(name, who)].append(r)
            a = statistics.median(r["rps"] for r in results[(name, "none")])
            b = statistics.median(r["rps"] for r in results[(name, "blocks")])
            print(f"{name:<20} none {a:>9,.0f}  1,000 blocks {b:>9,.0f}  ratio {b / a:.2f}", file=sys.stderr, flush=True)

        add_reports(args.database, REPORTS)
        client = run.Client(origin + "/api")  # the old connection sat idle past the keep-alive
        first = client.call("GET", "/moderation/queue?limit=20", token=moderator)
        assert len(first["entries"]) == 20, first
        # Report ids are dense from where the table started: the cursor after the middle one.
        start = first["entries"][0]["firstReport"]
        cursor = f"c1{start + REPORTS // 2:x}"
        queue_paths = {"queue_first_page": "/moderation/queue?limit=20",
                       "queue_halfway": f"/moderation/queue?limit=20&cursor={cursor}"}
        queue_results = {}
        for name, path in queue_paths.items():
            runs = [run.wrk(origin + "/api" + path, moderator, None, {}, args.duration, args.connections, 2, server.pid)
                    for _ in range(args.rounds)]
            queue_results[name] = runs

        backend = "PostgreSQL" if args.database.startswith("postgres") else "SQLite"
        who = "the authors of the newest articles" if args.prolific else "accounts drawn at random"
        lines = [f"{backend}, {total:,} articles (`conduit seed`); a reader blocking {len(names):,} {who} against "
                 f"one blocking none; {args.connections} connections; {args.rounds} alternating runs of "
                 f"{args.duration} s each; medians", "",
                 "| scenario | no blocks req/s | 1,000 blocks req/s | ratio | no blocks p99 | 1,000 blocks p99 |",
                 "|---|---|---|---|---|---|"]
        for name in scenarios:
            a, b = results[(name, "none")], results[(name, "blocks")]
            ra, rb = statistics.median(r["rps"] for r in a), statistics.median(r["rps"] for r in b)
            pa, pb = statistics.median(r["p99"] for r in a), statistics.median(r["p99"] for r in b)
            lines.append(f"| {name} | {ra:,.0f} | {rb:,.0f} | {rb / ra:.2f} | {pa:.2f} ms | {pb:.2f} ms |")
        lines += ["", f"The report queue with {REPORTS:,} open reports (one per article):", "",
                  "| page | req/s | p50 | p99 |", "|---|---|---|---|"]
        for name, runs in queue_results.items():
            lines.append(f"| {name} | {statistics.median(r['rps'] for r in runs):,.0f} | "
                         f"{statistics.median(r['p50'] for r in runs):.2f} ms | "
                         f"{statistics.median(r['p99'] for r in runs):.2f} ms |")
        print("\n".join(lines))
    finally:
        server.terminate()
        server.wait(timeout=30)


def env_secret():
    return os.environ.get("CONDUIT_JWT_SECRET") or secrets.token_hex(32)


if __name__ == "__main__":
    main()
