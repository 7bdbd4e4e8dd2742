-- Requests from one more client behind the trusted proxy 127.0.0.1 (bench/attacks.py): the
-- reader beside a flood, counted apart from the flooding address.
wrk.headers["X-Forwarded-For"] = "192.0.2.200"
