#!/usr/bin/env python3
"""Side-by-side timings of the `conduit` package against the usual pure-Python-facing
libraries, measured in one run. Needs: pip install ./crates/python argon2-cffi pyjwt

    python crates/python/bench.py
"""

import os
import time

import argon2
import jwt

import conduit

SECRET = "benchmark secret, long enough for HS256 keys"


def rate(label, fn, seconds=2.0):
    fn()  # warm up
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        count += 1
    per_second = count / elapsed
    print(f"| {label} | {per_second:,.0f}/s | {1e6 / per_second:,.1f} µs |")
    return per_second


print(f"{os.cpu_count()} cores\n")
print("| operation | rate | per call |")
print("|---|---|---|")
token = conduit.mint_token({"sub": 1}, SECRET)
a = rate("conduit.verify_token", lambda: conduit.verify_token(token, SECRET))
b = rate("jwt.decode (PyJWT, HS256)", lambda: jwt.decode(token, SECRET, algorithms=["HS256"]))
print(f"\nverify_token / PyJWT: {a / b:.2f}x\n")

print("| operation | rate | per call |")
print("|---|---|---|")
same_params = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
phc = conduit.hash_password("benchmark password")
a = rate("conduit.verify_password (m=19456,t=2,p=1)", lambda: conduit.verify_password("benchmark password", phc))
b = rate("argon2-cffi verify (same hash)", lambda: same_params.verify(phc, "benchmark password"))
print(f"\nverify_password / argon2-cffi: {a / b:.2f}x\n")

pairs = [("benchmark password", phc)] * 16
print("| verify_passwords, 16 pairs | wall time | pairs/s |")
print("|---|---|---|")
base = None
for threads in (1, 2):
    conduit.verify_passwords(pairs[:2], threads=threads)
    start = time.perf_counter()
    conduit.verify_passwords(pairs, threads=threads)
    elapsed = time.perf_counter() - start
    base = base or elapsed
    print(f"| {threads} thread{'s' if threads > 1 else ''} | {elapsed * 1000:,.0f} ms | {len(pairs) / elapsed:,.1f} (x{base / elapsed:.2f}) |")
