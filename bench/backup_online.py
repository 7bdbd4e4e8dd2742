#!/usr/bin/env python3
"""Is a backup online? Writes and reads against a running Conduit, before and during
`conduit backup`, and their latency in each phase.

Writers publish articles at a fixed rate each (open loop: a slow answer does not slow the
next send's schedule much, it is sent as soon as the last returns), readers list articles.
The phases: `--before` seconds of baseline, then `conduit backup` (run by this script, with the
environment given) and as long as it takes, then the figures: p50/p99/max of writes and reads
per phase, refused or failed requests, the backup's time and size.

    python3 bench/backup_online.py --base http://127.0.0.1:3000 --conduit target/release/conduit \\
        --env DATABASE_URL=sqlite:///tmp/big/conduit.db --to /tmp/big/online.conduit-backup

Traffic goes to the given base only (127.0.0.1 here), bounded by the backup's duration.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import threading
import time
import urllib.parse


def connection(base):
    url = urllib.parse.urlparse(base)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=60)


def call(conn, method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    return response.status, payload


def register(base, name):
    conn = connection(base)
    user = {"user": {"username": name, "email": f"{name}@bench.example", "password": "password123"}}
    status, payload = call(conn, "POST", "/api/users", user)
    if status != 201:
        status, payload = call(conn, "POST", "/api/users/login", {"user": {"email": f"{name}@bench.example", "password": "password123"}})
    assert status in (200, 201), payload
    return json.loads(payload)["user"]["token"]


def worker(base, kind, token, rate, stop, samples, lock):
    conn = connection(base)
    interval = 1.0 / rate
    next_at = time.monotonic()
    n = 0
    while not stop.is_set():
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)
        next_at += interval
        started = time.monotonic()
        try:
            if kind == "write":
                body = {"article": {"title": f"online {token[-8:]} {n} {started}", "description": "d", "body": "b" * 500, "tagList": ["online"]}}
                status, _ = call(conn, "POST", "/api/articles", body, token)
                ok = status == 201
            else:
                status, _ = call(conn, "GET", "/api/articles?limit=20")
                ok = status == 200
        except Exception as e:  # a refused connection is a failure, counted
            status, ok = str(e), False
            conn = connection(base)
        elapsed = time.monotonic() - started
        with lock:
            samples.append((started, kind, elapsed, ok, status))
        n += 1


def summary(samples, kind, start, end):
    picked = [s for s in samples if s[1] == kind and start <= s[0] < end]
    latencies = sorted(s[2] * 1000 for s in picked)
    failed = [s for s in picked if not s[3]]
    if not latencies:
        return {"n": 0}
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    return {
        "n": len(latencies),
        "p50_ms": round(p(0.50), 2),
        "p99_ms": round(p(0.99), 2),
        "max_ms": round(latencies[-1], 2),
        "mean_ms": round(statistics.mean(latencies), 2),
        "failed": len(failed),
        "failures": sorted({str(s[4]) for s in failed})[:5],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True)
    parser.add_argument("--conduit", required=True)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the backup command")
    parser.add_argument("--to", required=True, help="the archive to write")
    parser.add_argument("--before", type=float, default=20)
    parser.add_argument("--nice", action="store_true", help="run the backup under nice -n 19, as scheduled backups are")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--write-rate", type=float, default=10, help="writes a second per writer")
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--read-rate", type=float, default=50, help="reads a second per reader")
    args = parser.parse_args()

    tokens = [register(args.base, f"onlinewriter{i}") for i in range(args.writers)]
    stop, lock, samples = threading.Event(), threading.Lock(), []
    threads = [threading.Thread(target=worker, args=(args.base, "write", t, args.write_rate, stop, samples, lock)) for t in tokens]
    threads += [threading.Thread(target=worker, args=(args.base, "read", None, args.read_rate, stop, samples, lock)) for _ in range(args.readers)]
    for t in threads:
        t.start()
    began = time.monotonic()
    time.sleep(args.before)
    env = dict(os.environ)
    env.update(kv.split("=", 1) for kv in args.env)
    backup_start = time.monotonic()
    command = (["nice", "-n", "19"] if args.nice else []) + [args.conduit, "backup", "--to", args.to]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    backup_end = time.monotonic()
    stop.set()
    for t in threads:
        t.join()
    result = {
        "backup": {
            "ok": done.returncode == 0,
            "seconds": round(backup_end - backup_start, 1),
            "bytes": os.path.getsize(args.to) if os.path.exists(args.to) else None,
            "output": (done.stdout + done.stderr).strip()[-400:],
        },
        "before": {"write": summary(samples, "write", began + 2, backup_start), "read": summary(samples, "read", began + 2, backup_start)},
        "during": {"write": summary(samples, "write", backup_start, backup_end), "read": summary(samples, "read", backup_start, backup_end)},
    }
    for kind in ("write", "read"):
        before, during = result["before"][kind], result["during"][kind]
        if before.get("n") and during.get("n"):
            result[f"{kind}_p99_ratio"] = round(during["p99_ms"] / before["p99_ms"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
