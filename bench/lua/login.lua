-- POST /api/users/login with the seeded user's right password (logins that fail would be
-- rate-limited after ten). BENCH_EMAIL is substituted by bench/run.py.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"user":{"email":"BENCH_EMAIL","password":"benchmark-password"}}'
