#!/usr/bin/env python3
"""Mail and the account lifecycle at scale, against a real SMTP server (aiosmtpd).

On a SQLite database seeded with `conduit seed --articles N`:
  1. delivery: N registrations from 16 clients at once; how fast their verification mails
     reach the SMTP server, and the longest wait from the 201 to delivery;
  2. a reset flood: 64 connections asking password resets for one address for a few seconds
     (the limit answers 429 after five), and reads measured beside it;
  3. export and deletion of the demo users with the most articles (one deleted with their
     content, one kept under the tombstone).

    bench/mail.py [--bin target/release/conduit] [--articles 100000] [--registrations 500]

Traffic goes only to servers started here on 127.0.0.1.
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the harness: ports, servers, wrk)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SINK = os.path.join(ROOT, "crates/server/tests/support/smtp_sink.py")


def python_with_aiosmtpd(work):
    for candidate in (os.environ.get("CONDUIT_TEST_PYTHON"), os.path.join(ROOT, "target/tmp/smtp-venv/bin/python")):
        if candidate and subprocess.run([candidate, "-c", "import aiosmtpd"], capture_output=True).returncode == 0:
            return candidate
    venv = os.path.join(work, "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([os.path.join(venv, "bin/pip"), "install", "--quiet", "aiosmtpd"], check=True)
    return os.path.join(venv, "bin/python")


def received(folder):
    return [name for name in os.listdir(folder) if name.endswith(".json")]


def wait_for_outbox_drained(binary, work, within=60):
    """Waits until the outbox has nothing queued (`conduit mail list --state queued`): every
    message accepted so far has been sent, so the inbox holds all it is going to get."""
    env = dict(os.environ, DATABASE_URL=f"sqlite://{work}/conduit.db")
    deadline = time.time() + within
    while True:
        listed = subprocess.run([binary, "mail", "list", "--state", "queued"], cwd=work, env=env,
                                capture_output=True, text=True, check=True).stdout
        if listed.startswith("the outbox is empty"):
            return
        if time.time() > deadline:
            raise SystemExit(f"mail still queued {within} s after the flood:\n{listed}")
        time.sleep(0.2)


def serve(binary, work, port, smtp_port, extra=()):
    env = dict(os.environ, CONDUIT_LOG_FORMAT="json", RUST_LOG="warn", CONDUIT_BIND=f"127.0.0.1:{port}",
               DATABASE_URL=f"sqlite://{work}/conduit.db", CONDUIT_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
               CONDUIT_PUBLIC_URL="https://frontend.example",
               CONDUIT_REGISTRATIONS_PER_HOUR="1000000", CONDUIT_MAX_REQUESTS_PER_ADDRESS="1000000", CONDUIT_MAX_CONNECTIONS_PER_ADDRESS="1000000", CONDUIT_ARTICLES_PER_HOUR="1000000000", CONDUIT_COMMENTS_PER_MINUTE="1000000000", CONDUIT_LOGIN_ATTEMPTS="1000000")
    env.update(extra)
    origin = f"http://127.0.0.1:{port}"
    return run.start([binary], origin + "/health/ready", env), origin


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(ROOT, "target/release/conduit"))
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--registrations", type=int, default=500)
    parser.add_argument("--duration", type=int, default=5, help="seconds of the reset flood")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="conduit-mail-")
    processes = []
    try:
        started = time.time()
        subprocess.run([args.bin, "seed", "--articles", str(args.articles)], cwd=work, check=True,
                       env=dict(os.environ, DATABASE_URL=f"sqlite://{work}/conduit.db"), stdout=subprocess.DEVNULL)
        print(f"seeded {args.articles} articles in {time.time() - started:.0f} s", file=sys.stderr)
        inbox = os.path.join(work, "inbox")
        smtp_port = run.free_port()
        sink = subprocess.Popen([python_with_aiosmtpd(work), SINK, str(smtp_port), inbox], stdout=subprocess.PIPE)
        processes.append(sink)
        assert sink.stdout.readline().strip() == b"ready"
        server, origin = serve(args.bin, work, run.free_port(), smtp_port)
        processes.append(server)
        api = origin + "/api"

        # 1. Delivery of N verification mails queued at once.
        n = args.registrations
        accepted = {}

        def register(worker):
            client = run.Client(api)
            for i in range(worker, n, 16):
                name = f"mailbench{i}"
                client.call("POST", "/users", {"user": {"username": name, "email": f"{name}@example.com",
                                                        "password": "password123"}})
                accepted[f"{name}@example.com"] = time.time()

        delivered_at = {}
        done = threading.Event()

        def watch():
            # Polls the inbox while the registrations run, so each delivery is timed when it lands.
            while len(delivered_at) < n and not done.is_set():
                for name in received(inbox):
                    if name not in delivered_at:
                        delivered_at[name] = time.time()
                time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        t0 = time.time()
        watcher.start()
        threads = [threading.Thread(target=register, args=(w,)) for w in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        registered = time.time() - t0
        watcher.join(300)
        done.set()
        delivered = max(delivered_at.values()) - t0
        waits = []
        for name, at in delivered_at.items():
            to = json.load(open(os.path.join(inbox, name)))["rcpt_tos"][0]
            if to in accepted:
                waits.append(at - accepted[to])
        waits.sort()
        rows = [("registrations (16 clients)", f"{n / registered:.0f}/s", f"{n} in {registered:.1f} s"),
                ("verification mails delivered", f"{len(delivered_at) / delivered:.0f}/s",
                 f"{len(delivered_at)} of {n} by {delivered:.1f} s; wait from 201 to delivery p50 "
                 f"{waits[len(waits) // 2] * 1000:.0f} ms, max {waits[-1] * 1000:.0f} ms")]

        # 2. A reset flood for one address, then reads beside a second flood.
        client = run.Client(api)
        token = client.call("POST", "/users/login", {"user": {"email": "demo1@example.com",
                                                              "password": "password123"}})["user"]["token"]
        flood_lua = os.path.join(work, "flood.lua")
        with open(flood_lua, "w") as f:
            f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    'wrk.body = \'{"user":{"email":"demo1@example.com"}}\'\n')
        before = len(received(inbox))
        out = subprocess.run(["wrk", "-t2", "-c64", f"-d{args.duration}s", "--latency", "-s", flood_lua,
                              api + "/users/password-reset"], capture_output=True, text=True, check=True).stdout
        rps = float(out.split("Requests/sec:")[1].split()[0])
        non2xx = int(out.split("Non-2xx or 3xx responses:")[1].split()[0]) if "Non-2xx" in out else 0
        p99 = out.split(" 99%")[1].split()[0]
        wait_for_outbox_drained(args.bin, work)
        rows.append(("reset flood, one address, 64 connections", f"{rps:.0f}/s",
                     f"{non2xx} refused (429), p99 {p99}; reset mails sent: {len(received(inbox)) - before}"))
        reader = subprocess.Popen(["wrk", "-t1", "-c16", f"-d{args.duration}s", "--latency", api + "/articles"],
                                  stdout=subprocess.PIPE, text=True)
        subprocess.run(["wrk", "-t1", "-c64", f"-d{args.duration}s", "-s", flood_lua, api + "/users/password-reset"],
                       capture_output=True, check=True)
        out = reader.communicate()[0]
        rows.append(("GET /api/articles beside the flood, 16 connections",
                     f"{float(out.split('Requests/sec:')[1].split()[0]):.0f}/s", f"p99 {out.split(' 99%')[1].split()[0]}"))

        # 3. Export and delete the demo users with the most articles.
        db = sqlite3.connect(os.path.join(work, "conduit.db"))
        heavy = db.execute("SELECT u.username, u.email, count(*) FROM articles a JOIN users u ON u.id = a.author_id "
                           "WHERE u.username LIKE 'demo%' GROUP BY u.id ORDER BY 3 DESC LIMIT 2").fetchall()
        db.close()

        def timed(method, path, user_token, body=None):
            t = time.time()
            data = client.call(method, path, body, token=user_token, expect=(200, 204))
            return (time.time() - t) * 1000, data

        for (name, email, count), keep in zip(heavy, (False, True)):
            if keep:
                server.terminate()
                server.wait()
                server, origin = serve(args.bin, work, run.free_port(), smtp_port, {"CONDUIT_DELETED_CONTENT": "keep"})
                processes.append(server)
            # A fresh connection: the server closes keep-alive connections idle for 10 s.
            client = run.Client(origin + "/api")
            user_token = client.call("POST", "/users/login", {"user": {"email": email, "password": "password123"}})[
                "user"]["token"]
            ms, export = timed("GET", "/user/export", user_token)
            size = len(json.dumps(export))
            rows.append((f"GET /api/user/export, {name} ({count} articles)", f"{ms:.0f} ms",
                         f"{size / 1024:.0f} KiB, {len(export['export']['comments'])} comments, "
                         f"{len(export['export']['favorites'])} favorites"))
            ms, _ = timed("DELETE", "/user", user_token)
            rows.append((f"DELETE /api/user, {name}, content {'kept' if keep else 'deleted'}", f"{ms:.0f} ms", ""))

        print(f"\nMail and the account lifecycle, SQLite, {args.articles} articles seeded\n")
        print("| what | rate or time | detail |\n|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    finally:
        for p in processes:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
