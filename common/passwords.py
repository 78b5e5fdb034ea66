"""Slow salted password and secret hashes (scrypt, stdlib): only these are ever stored."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_LENGTH = 6


def hash_secret(secret: str) -> str:
    """'scrypt$n$r$p$salt$hash' for a password or CP secret."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


_DUMMY = None


def verify_secret(secret: str, stored: str | None) -> bool:
    """Whether a secret matches its stored hash (constant-time; a missing hash costs the same time)."""
    global _DUMMY
    if not stored:
        _DUMMY = _DUMMY or hash_secret("no such account")
        verify_secret(secret, _DUMMY)  # as slow as a real check: timing does not tell which ids exist
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(secret.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def new_secret() -> str:
    """A random one-time secret to hand out (shown once, stored only hashed)."""
    return secrets.token_urlsafe(24)
