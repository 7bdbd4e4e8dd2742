#!/usr/bin/env python3
"""What the search index costs a publish (issue 27: at most 20% slower than without search).

Runs one conduit binary on two copies of one seeded database: WITH the search index as the
migrations make it, and WITHOUT it (SQLite: the index's three triggers dropped; PostgreSQL: the
generated `search` column dropped, with its GIN index). Everything else (the HTML rendered at
write time, the counters, the tags) is the same on both. Then POSTs seed-shaped articles
(bench/lua/publish_seedlike.lua) to each in alternation, several rounds, and reports the
median requests/s and p99 of each and the ratio.

    bench/publish_cost.py --sqlite /tmp/scale/scale-1000000.db
    bench/publish_cost.py --postgres postgres://postgres@127.0.0.1:5432/conduit_scale_1000000

The copies are made here (a file copy; CREATE DATABASE ... TEMPLATE) and removed at the end.
Traffic goes only to the two servers started here on 127.0.0.1.
"""

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

NO_INDEX = {
    "sqlite": "DROP TRIGGER article_search_added; DROP TRIGGER article_search_removed; "
              "DROP TRIGGER article_search_changed;",
    "postgres": "ALTER TABLE articles DROP COLUMN search;",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(run.ROOT, "target/release/conduit"))
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--sqlite", metavar="FILE", help="a seeded SQLite database (copied, not changed)")
    where.add_argument("--postgres", metavar="URL", help="a seeded PostgreSQL database (used as a template)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="conduit-publish-")
    env = dict(os.environ, CONDUIT_LOG_FORMAT="json", RUST_LOG="warn", CONDUIT_MAX_REQUESTS_PER_ADDRESS="1000000",
               CONDUIT_MAX_CONNECTIONS_PER_ADDRESS="1000000", CONDUIT_ARTICLES_PER_HOUR="1000000000",
               CONDUIT_LOGIN_ATTEMPTS="1000000", CONDUIT_JWT_SECRET=secrets.token_hex(32))
    servers, databases = [], []
    try:
        sides = {}
        for side in ("WITH", "WITHOUT"):
            if args.sqlite:
                copy = os.path.join(work, f"{side}.db")
                subprocess.run(["sqlite3", args.sqlite, f".backup {copy}"], check=True)
                url = f"sqlite://{copy}"
                if side == "WITHOUT":
                    subprocess.run(["sqlite3", copy, NO_INDEX["sqlite"]], check=True)
            else:
                base, source = args.postgres.rsplit("/", 1)
                name = f"conduit_publish_{side.lower()}"
                admin = base + "/postgres"
                subprocess.run(["psql", "-q", admin, "-c", f"DROP DATABASE IF EXISTS {name}"], check=True)
                subprocess.run(["psql", "-q", admin, "-c", f"CREATE DATABASE {name} TEMPLATE {source}"], check=True)
                databases.append((admin, name))
                url = f"{base}/{name}"
                if side == "WITHOUT":
                    subprocess.run(["psql", "-q", url, "-c", NO_INDEX["postgres"]], check=True)
            port = run.free_port()
            origin = f"http://127.0.0.1:{port}"
            server = run.start([args.bin], origin + "/health/ready",
                               dict(env, DATABASE_URL=url, CONDUIT_BIND=f"127.0.0.1:{port}"))
            servers.append(server)
            client = run.Client(origin + "/api")
            login = {"user": {"email": "demo1@example.com", "password": "password123"}}
            token = client.call("POST", "/users/login", login)["user"]["token"]
            sides[side] = (origin, server.pid, token)
        results = {side: [] for side in sides}
        for round_ in range(args.rounds):
            for side in (("WITH", "WITHOUT") if round_ % 2 == 0 else ("WITHOUT", "WITH")):
                origin, pid, token = sides[side]
                data = {"slug": "", "email": ""}
                r = run.wrk(origin + "/api/articles", token, "publish_seedlike.lua", data, args.duration,
                            args.connections, 2, pid)
                if r["non2xx"] or r["socket_errors"]:
                    raise SystemExit(f"{side}: {r['non2xx']} non-2xx, {r['socket_errors']} socket errors")
                results[side].append(r)
        w = statistics.median(r["rps"] for r in results["WITH"])
        wo = statistics.median(r["rps"] for r in results["WITHOUT"])
        pw = statistics.median(r["p99"] for r in results["WITH"])
        pwo = statistics.median(r["p99"] for r in results["WITHOUT"])
        backend = "SQLite" if args.sqlite else "PostgreSQL"
        print(f"{backend}: publishing, {args.connections} connections, {args.rounds} alternating runs of "
              f"{args.duration} s per side; medians\n")
        print("| | with the search index | without | with/without |\n|---|---|---|---|")
        print(f"| publishes/s | {w:,.0f} | {wo:,.0f} | {w / wo:.2f} |")
        print(f"| p99 | {pw:.2f} ms | {pwo:.2f} ms | {pw / pwo:.2f} |")
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        for admin, name in databases:
            subprocess.run(["psql", "-q", admin, "-c", f"DROP DATABASE IF EXISTS {name}"], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
