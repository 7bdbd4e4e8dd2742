#!/usr/bin/env python3
"""Two conduit builds side by side on identical data, for before/after figures on a noisy machine.

Seeds one SQLite database through the public API (with the first binary), copies it for each
binary, starts both, then runs every scenario on A and on B in alternation, several rounds, and
reports each side's median requests/s, p99 and the ratio B/A. Alternating short runs means the
machine's slow and fast moments fall on both sides alike.

    bench/ab.py /tmp/conduit-before target/release/conduit
    bench/ab.py A B --scenarios articles,feed --rounds 5 --duration 3 --connections 16
    bench/ab.py BIN BIN --a-env CONDUIT_DB_POOL_SIZE=2 --b-env CONDUIT_DB_POOL_SIZE=8   # one setting

Traffic goes only to the two servers started here on 127.0.0.1.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the harness: seeding, wrk and its parsing)


def start(binary, database, port, extra_env=()):
    env = dict(os.environ, CONDUIT_LOG_FORMAT="json", RUST_LOG="warn", CONDUIT_BIND=f"127.0.0.1:{port}",
               CONDUIT_MAX_REQUESTS_PER_ADDRESS="1000000", CONDUIT_MAX_CONNECTIONS_PER_ADDRESS="1000000", CONDUIT_ARTICLES_PER_HOUR="1000000000", CONDUIT_COMMENTS_PER_MINUTE="1000000000", CONDUIT_LOGIN_ATTEMPTS="1000000", CONDUIT_REGISTRATIONS_PER_HOUR="1000000",
               DATABASE_URL=f"sqlite://{database}")
    env.update(pair.split("=", 1) for pair in extra_env)
    origin = f"http://127.0.0.1:{port}"
    return run.start([binary], origin + "/health/ready", env), origin


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="the first conduit binary (the 'before')")
    parser.add_argument("b", help="the second conduit binary (the 'after')")
    parser.add_argument("--a-env", action="append", default=[], metavar="VAR=VALUE",
                        help="environment for A only (repeatable), e.g. CONDUIT_DB_POOL_SIZE=2")
    parser.add_argument("--b-env", action="append", default=[], metavar="VAR=VALUE", help="environment for B only")
    parser.add_argument("--scenarios", default="health_live,tags,articles,articles_by_tag,article,comments,feed,user",
                        help="comma-separated read scenarios of bench/run.py")
    parser.add_argument("--articles", type=int, default=1000, help="articles to seed (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations per scenario (default 3)")
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run (default 4)")
    parser.add_argument("--connections", type=int, default=64, help="connections (default 64)")
    parser.add_argument("--analyze", action="store_true",
                        help="run `conduit analyze` (A's) on the seeded database before copying it, as `conduit seed` "
                             "and operators after a bulk load do: the planner then has statistics")
    args = parser.parse_args()
    names = args.scenarios.split(",")
    for name in names:
        if name not in run.SCENARIOS or run.SCENARIOS[name][2]:
            raise SystemExit(f"{name}: only the read scenarios without a Lua script can be compared")

    work = tempfile.mkdtemp(prefix="conduit-ab-")
    servers = []
    try:
        seeded = os.path.join(work, "seed.db")
        server, origin = start(args.a, seeded, run.free_port())
        data = run.seed(origin + "/api", args.articles, 1)
        server.terminate()
        server.wait(timeout=30)
        if args.analyze:
            subprocess.run([args.a, "analyze"], env=dict(os.environ, DATABASE_URL=f"sqlite://{seeded}"), check=True,
                           capture_output=True)
        sides = {}
        for side, binary, extra_env in (("A", args.a, args.a_env), ("B", args.b, args.b_env)):
            database = os.path.join(work, f"{side}.db")
            for suffix in ("", ".jwt-secret"):  # the same secret, so the seeded token works on both
                if os.path.exists(seeded + suffix):
                    shutil.copy(seeded + suffix, database + suffix)
            server, origin = start(binary, database, run.free_port(), extra_env)
            servers.append(server)
            sides[side] = (origin, server.pid)
        results = {(name, side): [] for name in names for side in sides}
        for name in names:
            target, needs_token, _ = run.SCENARIOS[name]
            path = target.partition(" ")[2].format(**data)
            for round_ in range(args.rounds):
                order = ("A", "B") if round_ % 2 == 0 else ("B", "A")
                for side in order:
                    origin, pid = sides[side]
                    url = origin + ("/health/live" if name == "health_live" else "/api" + path)
                    r = run.wrk(url, data["token"] if needs_token else None, None, data, args.duration,
                                args.connections, 2, pid)
                    if r["non2xx"] or r["socket_errors"]:
                        raise SystemExit(f"{name} on {side}: {r['non2xx']} non-2xx, {r['socket_errors']} socket errors")
                    results[(name, side)].append(r)
            a = statistics.median(r["rps"] for r in results[(name, "A")])
            b = statistics.median(r["rps"] for r in results[(name, "B")])
            print(f"{name:<16} A {a:>9,.0f}  B {b:>9,.0f}  B/A {b / a:.2f}", file=sys.stderr, flush=True)
        lines = [f"A = {' '.join(args.a_env + [args.a])}", f"B = {' '.join(args.b_env + [args.b])}",
                 f"SQLite, {args.articles} articles (seed 1{', analyzed' if args.analyze else ''}); {args.connections} connections; {args.rounds} alternating "
                 f"runs of {args.duration} s per side; medians", "",
                 "| scenario | A req/s | B req/s | B/A | A p99 | B p99 |", "|---|---|---|---|---|---|"]
        for name in names:
            a, b = results[(name, "A")], results[(name, "B")]
            ra, rb = statistics.median(r["rps"] for r in a), statistics.median(r["rps"] for r in b)
            pa, pb = statistics.median(r["p99"] for r in a), statistics.median(r["p99"] for r in b)
            lines.append(f"| {name} | {ra:,.0f} | {rb:,.0f} | {rb / ra:.2f} | {pa:.2f} ms | {pb:.2f} ms |")
        print("\n".join(lines))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
