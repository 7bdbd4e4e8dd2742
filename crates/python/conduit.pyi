"""Conduit's password, token and slug rules, from the Rust code the server runs."""

from typing import Any, Optional

class InvalidToken(ValueError):
    """The token is malformed, badly signed, expired, or does not name a user."""

def hash_password(password: str) -> str:
    """Hash a password for storage exactly as the server does: an Argon2id PHC string.

    Raises ValueError if the password breaks the server's rules (8 to 256 characters).
    """

def verify_password(password: str, phc: str) -> bool:
    """True if ``password`` matches the Argon2 PHC string ``phc`` (any Argon2 library's).

    Raises ValueError if ``phc`` is not an Argon2 PHC string.
    """

def verify_passwords(pairs: list[tuple[str, str]], threads: Optional[int] = None) -> list[bool]:
    """Check many (password, phc) pairs on ``threads`` threads (default: one per core) with the
    GIL released; one bool per pair, in order."""

def verify_token(token: str, secret: str) -> dict[str, Any]:
    """Verify a Conduit token's signature and expiry (HS256, unexpired, ``sub`` a user id) and
    return its claims.

    Offline: a token revoked by a password change, a logout or a deactivation still passes until
    it expires. Use ``check_token_with_server`` where revocation matters.
    Raises InvalidToken for a bad signature, an expired token, or garbage.
    """

def check_token_with_server(token: str, base_url: str, timeout: float = 5.0) -> dict[str, Any]:
    """Ask the server at ``base_url`` (one ``GET /api/user``) whether ``token`` is valid now,
    revocation included; returns the user.

    Raises InvalidToken when the server refuses it (401), OSError when it cannot be reached.
    """

def mint_token(claims: dict[str, Any], secret: str, ttl_seconds: int = 3600) -> str:
    """Make a token for the user whose id is ``claims["sub"]``, valid for ``ttl_seconds``.

    ``claims["ver"]`` must be the user's current token version (0 until a password change or
    deactivation revokes their tokens), as ``verify_token`` shows for any current token.
    """

def slugify(title: str) -> str:
    """The slug the server gives an article with this title (before any uniqueness suffix)."""

def slug_fits(slug: str, title: str) -> bool:
    """Whether ``slug`` is the server's slug for ``title``, with or without its suffix."""
