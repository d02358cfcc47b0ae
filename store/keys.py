"""API key tokens: random, shown once, kept only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "ndk_"
#: Characters of the token kept in clear to recognise a key in listings (not enough to guess it).
SHOWN_CHARS = 10


def new_token() -> str:
    """A fresh token with 256 random bits (so a plain, unsalted hash cannot be reversed)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
