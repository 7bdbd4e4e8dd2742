#!/usr/bin/env python3
"""Writes per second on PostgreSQL with and without what may serialise them (issue 14): the
change notices (`NOTIFY` from the article and user triggers: a transaction that notifies takes
a database-wide lock from its commit's start to its end, WAL flush included) and the WAL flush
of each commit itself (`synchronous_commit`, which SQLite's WAL mode with `synchronous=NORMAL`
does not do).

One seeded database (made by bench/scale.py: `conduit_scale_<N>`), one server at a time,
variants alternated round by round; each variant changes the database with SQL before its
server starts and undoes it after.

    bench/notices.py --postgres postgres://postgres@127.0.0.1:5432/postgres --articles 1000000

Traffic goes only to the server started here on 127.0.0.1.
"""

import argparse
import os
import secrets
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402
import scale  # noqa: E402

# name: (SQL before, SQL after)
VARIANTS = {
    "as shipped": ("", ""),
    "no article notices": ("ALTER TABLE articles DISABLE TRIGGER articles_notify_changed",
                           "ALTER TABLE articles ENABLE TRIGGER articles_notify_changed"),
    "no WAL flush at commit": ("ALTER DATABASE {db} SET synchronous_commit = off",
                               "ALTER DATABASE {db} RESET synchronous_commit"),
}


def psql(url, sql):
    if sql:
        subprocess.run(["psql", "-Xq", url, "-c", sql], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(run.ROOT, "target/release/conduit"), help="conduit binary")
    parser.add_argument("--postgres", metavar="ADMIN_URL", required=True, help="admin URL ending in /postgres")
    parser.add_argument("--articles", type=int, default=1000, help="which conduit_scale_<N> database (default 1000)")
    parser.add_argument("--scenarios", default="favorite,favorite_one,create_article,follow,comment")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    admin = args.postgres.rstrip("/")
    name = f"conduit_scale_{args.articles}"
    url = admin.rsplit("/", 1)[0] + "/" + name
    env = dict(os.environ, CONDUIT_LOG_FORMAT="json", RUST_LOG="warn", CONDUIT_MAX_REQUESTS_PER_ADDRESS="1000000", CONDUIT_MAX_CONNECTIONS_PER_ADDRESS="1000000", CONDUIT_ARTICLES_PER_HOUR="1000000000", CONDUIT_COMMENTS_PER_MINUTE="1000000000", CONDUIT_LOGIN_ATTEMPTS="1000000",
               CONDUIT_JWT_SECRET=secrets.token_hex(32), PG_ADMIN=admin)
    scale.seed(args.bin, env, args.articles, keep=True)
    variants, names = args.variants.split(","), args.scenarios.split(",")
    results = {(s, v): [] for s in names for v in variants}
    for round_ in range(args.rounds):
        for variant in (variants if round_ % 2 == 0 else variants[::-1]):
            before, after = (sql.format(db=name) for sql in VARIANTS[variant])
            server = None
            try:
                # Inside the try: a server that fails to start must not leave the trigger off.
                psql(url, before)
                server, origin = scale.start(args.bin, env, url)
                data = scale.facts(origin)
                for scenario in names:
                    _, _, script, mode = scale.SCENARIOS[scenario]
                    extra = scale.lua_extra(data, mode)
                    r = run.wrk(origin + "/api/articles", data["token"], script, data, args.duration,
                                args.connections, 2, server.pid, extra)
                    if r["non2xx"] or r["socket_errors"]:
                        raise SystemExit(f"{scenario} / {variant}: {r['non2xx']} non-2xx, {r['socket_errors']} socket errors")
                    results[(scenario, variant)].append(r)
                    print(f"{scenario:<15} {variant:<24} {r['rps']:>8,.0f} req/s  p99 {r['p99']:.1f} ms",
                          file=sys.stderr, flush=True)
            finally:
                if server:
                    server.terminate()
                    server.wait(timeout=30)
                psql(url, after)
    print(f"PostgreSQL, `{name}`; {args.connections} connections; {args.rounds} alternating runs of "
          f"{args.duration} s per variant; medians\n")
    print("| scenario | " + " | ".join(variants) + " |")
    print("|---|" + "---|" * len(variants))
    for scenario in names:
        cells = []
        for variant in variants:
            rs = results[(scenario, variant)]
            rps, p99 = statistics.median(r["rps"] for r in rs), statistics.median(r["p99"] for r in rs)
            cells.append(f"{rps:,.0f} req/s, p99 {p99:.1f} ms")
        print(f"| {scenario} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
