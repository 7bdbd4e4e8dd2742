#!/usr/bin/env python3
"""The plans of the hot queries, on a seeded database of each backend (issue 14: which index
serves each one, at a million articles).

The statements are the server's own: read from the store crates' SQLx offline data (`.sqlx/`),
so what is explained is exactly what runs. PostgreSQL: each is prepared and run under
`EXPLAIN (ANALYZE, BUFFERS)` with a generic plan, the plan sqlx's cached statements get after
five runs. SQLite: `EXPLAIN QUERY PLAN` (SQLite plans do not depend on the values here).

    bench/plans.py --sqlite /tmp/scale/scale-1000000.db
    bench/plans.py --postgres postgres://postgres@127.0.0.1:5432/conduit_scale_1000000
"""

import argparse
import glob
import json
import os
import sqlite3
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name: (a fragment only that statement has, its arguments by number; {names} come from facts())
HOT = {
    "listing, all": ("FROM (SELECT id FROM articles WHERE id < $4", [20, 0, None, "{middle}"]),
    "listing, by tag": ("FROM article_tags WHERE name = $5 AND article_id < $4", [20, 0, None, "{middle}", "{tag}"]),
    "listing, by author": ("WHERE a2.author_id = (SELECT id FROM users WHERE username = $5)", [20, 0, None, "{middle}", "{author}"]),
    "listing, favorited by": ("WHERE f2.user_id = (SELECT id FROM users WHERE username = $5)", [20, 0, None, "{middle}", "{favoriter}"]),
    "listing, deepest offset": ("FROM (SELECT id FROM articles WHERE id < $4", [20, 9980, None, "{top}"]),
    "feed": ("WHERE f2.follower_id = $3 AND a2.id < $4", [20, 0, "{viewer}", "{top}"]),
    "one article (cache miss)": ('JOIN users u ON u.id = a.author_id WHERE a.slug = $1', ["{slug}", "{viewer}"]),
    "its comments": ("WHERE c.article_id = $1 AND c.id > $3", ["{article}", "{viewer}", 0, 500, 0]),
    "tag list": ("FROM counts WHERE kind = 'tag' GROUP BY key", [100]),
    "tag list's version": ("FROM counts WHERE kind = 'tags_changed'", []),
    "user by id (token check)": ('created_at AS "created_at!: DateTime<Utc>" FROM users WHERE id = $1', ["{viewer}"]),
    "profile": ("FROM users u WHERE u.username = $1", ["{author}", "{viewer}"]),
    "favorite": ("INSERT INTO favorites (user_id, article_id) SELECT $1", ["{viewer}", "{slug}"]),
    "follow": ("INSERT INTO follows (follower_id, followee_id) SELECT $1", ["{viewer}", "{author}"]),
}


def statements(crate):
    found = {}
    for path in glob.glob(os.path.join(ROOT, "crates", crate, ".sqlx", "*.json")):
        text = json.load(open(path))["query"]
        flat = " ".join(text.split())
        for name, (fragment, _) in HOT.items():
            if fragment in flat:
                if name in found and found[name] != text:
                    raise SystemExit(f"'{fragment}' matches more than one statement of {crate}")
                found[name] = text
    missing = [n for n in HOT if n not in found]
    if missing:
        raise SystemExit(f"no statement of {crate} matches {missing}: update HOT in {__file__}")
    return {name: found[name] for name in HOT}


def arguments(name, facts):
    return [facts[a[1:-1]] if isinstance(a, str) and a.startswith("{") else a for a in HOT[name][1]]


def sqlite_facts(db):
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    top = one("SELECT max(id) FROM articles")
    slug, article = db.execute("SELECT slug, id FROM articles WHERE id <= ? ORDER BY id DESC LIMIT 1",
                               (top // 2,)).fetchone()
    return {"top": top + 1, "middle": top // 2, "slug": slug, "article": article,
            "tag": one("SELECT key FROM counts WHERE kind = 'tag' GROUP BY key ORDER BY sum(n) DESC LIMIT 1"),
            "author": one(f"SELECT u.username FROM articles a JOIN users u ON u.id = a.author_id WHERE a.id = {top}"),
            "favoriter": "demo1", "viewer": one("SELECT id FROM users WHERE username = 'demo1'")}


def explain_sqlite(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    facts = sqlite_facts(db)
    for name, sql in statements("store-sqlite").items():
        args = {str(i + 1): v for i, v in enumerate(arguments(name, facts))}
        # sqlx binds every $N; Python's sqlite3 wants a value for each name the text uses.
        rows = db.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
        print(f"### {name}\n")
        for _, parent, _, detail in rows:
            depth = 0
            ids = {r[0]: r[1] for r in rows}
            p = parent
            while p:
                depth, p = depth + 1, ids.get(p, 0)
            print("    " + "  " * depth + detail)
        print()


def psql(url, sql):
    return subprocess.run(["psql", "-XtAq", url, "-c", sql], capture_output=True, text=True, check=True).stdout


def literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def explain_postgres(url):
    one = lambda sql: psql(url, sql).strip()  # noqa: E731
    top = int(one("SELECT max(id) FROM articles"))
    slug, article = one(f"SELECT slug || ' ' || id FROM articles WHERE id <= {top // 2} "
                        "ORDER BY id DESC LIMIT 1").rsplit(" ", 1)
    facts = {"top": top + 1, "middle": top // 2, "slug": slug, "article": int(article),
             "tag": one("SELECT key FROM counts WHERE kind = 'tag' GROUP BY key ORDER BY sum(n) DESC LIMIT 1"),
             "author": one(f"SELECT u.username FROM articles a JOIN users u ON u.id = a.author_id WHERE a.id = {top}"),
             "favoriter": "demo1", "viewer": int(one("SELECT id FROM users WHERE username = 'demo1'"))}
    scans = []
    for name, sql in statements("store-postgres").items():
        args = ", ".join(literal(a) for a in arguments(name, facts))
        # Writes are explained inside a transaction that is rolled back: nothing changes.
        script = (f"SET plan_cache_mode = force_generic_plan; BEGIN; PREPARE q AS {sql};\n"
                  f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE q{f'({args})' if args else ''}; ROLLBACK;")
        out = subprocess.run(["psql", "-XtAq", url], input=script, capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"{name}: {out.stderr}")
        print(f"### {name}\n")
        print("\n".join("    " + line for line in out.stdout.rstrip().splitlines()))
        print()
        # A hot query that reads a whole table is the plan going wrong at scale (as a generic
        # plan once hashed every article to join a page of 20): say so, and fail.
        scans += [f"{name}: {line.strip()}" for line in out.stdout.splitlines()
                  if "Seq Scan on" in line]
    if scans:
        raise SystemExit("whole-table scans in hot queries:\n  " + "\n  ".join(scans))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", metavar="FILE", help="a seeded SQLite database (opened read-only)")
    parser.add_argument("--postgres", metavar="URL", help="a seeded PostgreSQL database")
    args = parser.parse_args()
    if not (args.sqlite or args.postgres):
        parser.error("give --sqlite FILE or --postgres URL")
    if args.sqlite:
        explain_sqlite(args.sqlite)
    if args.postgres:
        explain_postgres(args.postgres)


if __name__ == "__main__":
    sys.exit(main())
