#!/usr/bin/env python3
"""Issue 27's hostile-query flood: 64 connections asking the most expensive search shape, and
what it does to everyone else's reads.

Starts one conduit on a seeded database and measures the article listing (GET /articles, 16
connections) alone, then again while 64 other connections ask a search as fast as they can,
alternating, several rounds. Prints each side's listing p99 and requests/s, and what the flood
got (searches/s, how many were refused with 503 because the searches at once were taken).

    bench/search_flood.py --url sqlite:///tmp/scale/scale-1000000.db
    bench/search_flood.py --url postgres://postgres@127.0.0.1:5432/conduit_scale_1000000 \\
        --query '"rust rust rust"'

Traffic goes only to the server started here on 127.0.0.1.
"""

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(run.ROOT, "target/release/conduit"))
    parser.add_argument("--url", required=True, help="DATABASE_URL of a seeded database")
    parser.add_argument("--query", default='"rust rust rust"',
                        help="the search to flood with (default: a phrase of the most common word, three times: "
                             "every article has the word, few the phrase, so the walk finds few matches)")
    parser.add_argument("--tag", help="a tag filter beside the query (a phrase with a filter walks the most)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    args = parser.parse_args()
    port = run.free_port()
    origin = f"http://127.0.0.1:{port}"
    env = dict(os.environ, CONDUIT_LOG_FORMAT="json", RUST_LOG="warn", DATABASE_URL=args.url,
               CONDUIT_BIND=f"127.0.0.1:{port}", CONDUIT_MAX_REQUESTS_PER_ADDRESS="1000000",
               CONDUIT_MAX_CONNECTIONS_PER_ADDRESS="1000000", CONDUIT_JWT_SECRET=secrets.token_hex(32))
    server = run.start([args.bin], origin + "/health/ready", env)
    listing = origin + "/api/articles?limit=20"
    search = origin + "/api/articles?" + urllib.parse.urlencode({"q": args.query, **({"tag": args.tag} if args.tag else {})})
    data = {"slug": "", "email": ""}
    try:
        alone, flooded, floods = [], [], []
        for round_ in range(args.rounds):
            for side in (("alone", "flooded") if round_ % 2 == 0 else ("flooded", "alone")):
                if side == "alone":
                    alone.append(run.wrk(listing, None, None, data, args.duration, 16, 1, server.pid))
                    continue
                flood = {}
                # The flood starts first and outlasts the measured run on both sides.
                t = threading.Thread(target=lambda: flood.update(
                    run.wrk(search, None, None, data, args.duration + 2, 64, 1, None)))
                t.start()
                threading.Event().wait(1)
                flooded.append(run.wrk(listing, None, None, data, args.duration, 16, 1, server.pid))
                t.join()
                floods.append(flood)
        med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
        print(f"flood: 64 connections asking q={args.query!r}; listing: 16 connections; "
              f"{args.rounds} alternating runs of {args.duration} s; medians\n")
        print("| listing | alone | during the flood |\n|---|---|---|")
        print(f"| requests/s | {med(alone, 'rps'):,.0f} | {med(flooded, 'rps'):,.0f} |")
        print(f"| p99 | {med(alone, 'p99'):.2f} ms | {med(flooded, 'p99'):.2f} ms |")
        print(f"\nthe flood: {med(floods, 'rps'):,.0f} answers/s, of which non-2xx (503, searches at once taken) "
              f"{statistics.median(f['non2xx'] for f in floods):,.0f} per run; search p99 {med(floods, 'p99'):.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
