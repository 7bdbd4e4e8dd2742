"""The `conduit` Python package: every function on good and bad input, then cross-checked
against a real running server (see conftest.py)."""

import base64
import json
import sqlite3
import time

import argon2
import jwt
import pytest

import conduit
from conftest import SECRET

PASSWORD = "correct horse battery"


# --- passwords --------------------------------------------------------------------------------

def test_hash_password_makes_owasp_argon2id_phc_strings_with_fresh_salts():
    phc = conduit.hash_password(PASSWORD)
    assert phc.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert phc != conduit.hash_password(PASSWORD)
    assert conduit.verify_password(PASSWORD, phc)
    assert not conduit.verify_password("wrong password", phc)


@pytest.mark.parametrize("bad, message", [("", "can't be blank"), ("short7c", "too short"), ("x" * 257, "too long")])
def test_hash_password_applies_the_servers_password_rules(bad, message):
    with pytest.raises(ValueError, match=message):
        conduit.hash_password(bad)


def test_verify_password_accepts_argon2_cffi_hashes_at_their_own_parameters():
    for hasher in (argon2.PasswordHasher(), argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)):
        phc = hasher.hash(PASSWORD)
        assert conduit.verify_password(PASSWORD, phc)
        assert not conduit.verify_password("nope", phc)
    # And the other way round: argon2-cffi verifies ours.
    assert argon2.PasswordHasher().verify(conduit.hash_password(PASSWORD), PASSWORD)


@pytest.mark.parametrize("bad", ["", "garbage", "$2b$12$abcdefghijklmnopqrstuv", "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA"])
def test_verify_password_refuses_what_is_not_an_argon2_phc_string(bad):
    with pytest.raises(ValueError):
        conduit.verify_password(PASSWORD, bad)


def test_verify_passwords_checks_each_pair_in_order_on_any_thread_count():
    good, other = conduit.hash_password(PASSWORD), conduit.hash_password("another password")
    pairs = [(PASSWORD, good), ("x", good), ("another password", other), (PASSWORD, other)] * 2
    expected = [True, False, True, False] * 2
    assert conduit.verify_passwords(pairs) == expected
    for threads in (1, 2, 3, 16):
        assert conduit.verify_passwords(pairs, threads=threads) == expected
    assert conduit.verify_passwords([]) == []
    with pytest.raises(ValueError, match="pair 1"):
        conduit.verify_passwords([(PASSWORD, good), (PASSWORD, "garbage")])
    with pytest.raises(ValueError, match="threads"):
        conduit.verify_passwords(pairs, threads=0)
    with pytest.raises(ValueError, match="tuple of length"):
        conduit.verify_passwords([("only one",)])
    with pytest.raises(TypeError):
        conduit.verify_passwords([(PASSWORD, 5)])


# --- tokens -----------------------------------------------------------------------------------

def test_mint_then_verify_round_trips_and_keeps_extra_claims():
    token = conduit.mint_token({"sub": 42, "scope": "read"}, SECRET, ttl_seconds=60)
    claims = conduit.verify_token(token, SECRET)
    assert claims["sub"] == "42" and claims["scope"] == "read"
    assert 0 < claims["exp"] - time.time() <= 61 and claims["iat"] <= time.time()
    # A standard JWT library agrees on the format.
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["sub"] == "42"


@pytest.mark.parametrize("claims", [{}, {"sub": "jake"}, {"sub": None}, {"sub": 1.5}, [1, 2], "sub"])
def test_mint_token_requires_a_user_id_in_a_dict(claims):
    with pytest.raises(ValueError):
        conduit.mint_token(claims, SECRET)


def test_mint_token_refuses_bad_ttl_secret_and_unserializable_claims():
    with pytest.raises(ValueError, match="ttl_seconds"):
        conduit.mint_token({"sub": 1}, SECRET, ttl_seconds=0)
    with pytest.raises(ValueError, match="secret"):
        conduit.mint_token({"sub": 1}, "")
    with pytest.raises(ValueError, match="JSON"):
        conduit.mint_token({"sub": 1, "x": object()}, SECRET)


def test_verify_token_raises_invalid_token_for_bad_signature_expiry_and_garbage():
    good = conduit.mint_token({"sub": 1}, SECRET)
    expired = jwt.encode({"sub": "1", "iat": 1, "exp": int(time.time()) - 60}, SECRET, algorithm="HS256")
    no_user = jwt.encode({"sub": "jake", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    for token, secret, reason in [
        (good, "another secret entirely", "invalid"),
        (good[:-2], SECRET, "invalid"),
        ("garbage", SECRET, "invalid"),
        ("", SECRET, "invalid"),
        (expired, SECRET, "expired"),
        (no_user, SECRET, "invalid"),
    ]:
        with pytest.raises(conduit.InvalidToken, match=reason):
            conduit.verify_token(token, secret)
    assert issubclass(conduit.InvalidToken, ValueError)
    with pytest.raises(ValueError, match="secret"):
        conduit.verify_token(good, "")


# --- slugs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("title, slug", [
    ("How to train your dragon", "how-to-train-your-dragon"),
    ("  Hello,  World!! ", "hello-world"),
    ("Über Straße", "über-straße"),
    ("!!!", "article"),
])
def test_slugify_matches_the_server_rules(title, slug):
    assert conduit.slugify(title) == slug


def test_slug_fits_accepts_the_uniqueness_suffix():
    assert conduit.slug_fits("hello-world", "Hello World")
    assert conduit.slug_fits("hello-world-x7k2qp", "Hello World")
    assert not conduit.slug_fits("hello-world-extra", "Hello World")


# --- against a real server --------------------------------------------------------------------

def register(server, name, password=PASSWORD):
    status, body = server.request("POST", "/api/users", {"user": {
        "username": name, "email": f"{name}@example.com", "password": password}})
    assert status == 201, body
    return body["user"]["token"]


def test_api_token_verifies_in_python_and_python_token_authenticates(server):
    token = register(server, "pyjake")
    claims = conduit.verify_token(token, SECRET)
    assert claims["sub"].isdigit()
    minted = conduit.mint_token({"sub": claims["sub"]}, SECRET)
    status, body = server.request("GET", "/api/user", token=minted)
    assert status == 200 and body["user"]["username"] == "pyjake"
    # After a password change the old version is revoked; the current one works.
    status, body = server.request("PUT", "/api/user", {"user": {"password": "changed password"}}, token=token)
    assert status == 200
    renewed = conduit.verify_token(body["user"]["token"], SECRET)
    assert renewed["ver"] == claims["ver"] + 1
    assert server.request("GET", "/api/user", token=minted)[0] == 401
    current = conduit.mint_token({"sub": claims["sub"], "ver": renewed["ver"]}, SECRET)
    assert server.request("GET", "/api/user", token=current)[0] == 200
    # Claims naming no real user are refused by the server.
    status, _ = server.request("GET", "/api/user", token=conduit.mint_token({"sub": 999999}, SECRET))
    assert status == 401


def test_tampered_or_expired_tokens_are_refused_by_both(server):
    token = register(server, "pytamper")
    sub = conduit.verify_token(token, SECRET)["sub"]
    header, payload, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["sub"] = "1"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    tampered = f"{header}.{forged_payload}.{signature}"
    expired = jwt.encode({"sub": sub, "iat": 1, "exp": int(time.time()) - 5}, SECRET, algorithm="HS256")
    # Each refused for its own reason, in the same words by the package and the server.
    for bad, reason in ((tampered, "is invalid"), (expired, "has expired")):
        with pytest.raises(conduit.InvalidToken, match=f"^token {reason}"):
            conduit.verify_token(bad, SECRET)
        status, body = server.request("GET", "/api/user", token=bad)
        assert (status, body["errors"]) == (401, {"token": [reason]})


def test_hash_stored_by_the_server_verifies_in_python(server):
    register(server, "pystored", password="stored password 1")
    with sqlite3.connect(server.db) as db:
        (phc,) = db.execute("SELECT password_hash FROM users WHERE username = ?", ("pystored",)).fetchone()
    assert conduit.verify_password("stored password 1", phc)
    assert not conduit.verify_password("stored password 2", phc)


def test_hash_made_in_python_is_accepted_after_set_password_hash(server):
    register(server, "pymigrated")
    phc = conduit.hash_password("migrated password")
    done = server.cli("user", "set-password-hash", "pymigrated", phc)
    assert done.returncode == 0, done.stderr
    login = {"user": {"email": "pymigrated@example.com", "password": "migrated password"}}
    status, body = server.request("POST", "/api/users/login", login)
    assert status == 200 and body["user"]["username"] == "pymigrated"
    # A hash from argon2-cffi, at its own parameters, works the same way.
    done = server.cli("user", "set-password-hash", "pymigrated", argon2.PasswordHasher().hash("cffi password"))
    assert done.returncode == 0, done.stderr
    login["user"]["password"] = "cffi password"
    assert server.request("POST", "/api/users/login", login)[0] == 200


def test_slugify_equals_the_slug_the_api_returns(server):
    token = register(server, "pyslug")
    for title in ["Rust & Python: Friends?", "Ünïcode Tïtle 2026"]:
        status, body = server.request("POST", "/api/articles", {"article": {
            "title": title, "description": "d", "body": "b"}}, token=token)
        assert status == 201
        assert body["article"]["slug"] == conduit.slugify(title)


def test_verify_token_is_offline_and_the_server_knows_about_revocation(server):
    token = register(server, "pyrevoked")
    base = server.base
    assert conduit.check_token_with_server(token, base)["username"] == "pyrevoked"
    change = {"user": {"password": "changed password", "currentPassword": PASSWORD}}
    status, body = server.request("PUT", "/api/user", change, token=token)
    assert status == 200
    # Signature and expiry still check out offline: verify_token cannot see the revocation...
    assert conduit.verify_token(token, SECRET)["sub"].isdigit()
    # ...the server can.
    with pytest.raises(conduit.InvalidToken, match="has been revoked"):
        conduit.check_token_with_server(token, base)
    assert conduit.check_token_with_server(body["user"]["token"], base + "/")["username"] == "pyrevoked"
