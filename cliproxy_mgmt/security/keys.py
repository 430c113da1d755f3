"""Management keys: bcrypt hashing, and verification that runs bcrypt once per key."""

from __future__ import annotations

import hashlib
import hmac
import threading

import bcrypt

BCRYPT_COST = 10
BCRYPT_MAX_BYTES = 72
HASH_PREFIXES = ("$2a$", "$2b$", "$2y$")
MAX_CONCURRENT_BCRYPT = 2  # unauthenticated floods must not pin every core


class SecretTooLong(ValueError):
    """A plaintext secret-key longer than bcrypt can use."""


def is_hashed(secret: str) -> bool:
    """Upstream's rule: longer than 4 characters and a bcrypt prefix."""
    return len(secret) > 4 and secret.startswith(HASH_PREFIXES)


def hash_secret(plain: str) -> str:
    """bcrypt-hash a plaintext secret (cost 10, as upstream)."""
    raw = plain.encode("utf-8")
    if len(raw) > BCRYPT_MAX_BYTES:
        raise SecretTooLong(
            f"remote-management.secret-key is {len(raw)} bytes; bcrypt uses at most "
            f"{BCRYPT_MAX_BYTES}: choose a shorter key")
    return bcrypt.hashpw(raw, bcrypt.gensalt(BCRYPT_COST)).decode("ascii")


class KeyVerifier:
    """Check a presented key against a stored bcrypt hash, remembering keys that matched.

    The cache holds SHA-256 digests of (stored hash, presented key): a changed hash misses
    by construction, and nothing in memory reveals a key.
    """

    MAX_CACHED = 256

    def __init__(self):
        self._good: dict[bytes, None] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT_BCRYPT)

    @staticmethod
    def _digest(stored: str, key: bytes) -> bytes:
        return hashlib.sha256(stored.encode() + b"\0" + key).digest()

    def verify(self, stored: str, presented: str) -> bool:
        # Go's bcrypt looks at the first 72 bytes only; Python's bcrypt 5 raises beyond that.
        key = presented.encode("utf-8")[:BCRYPT_MAX_BYTES]
        digest = self._digest(stored, key)
        if any(hmac.compare_digest(digest, known) for known in list(self._good)):
            return True
        try:
            with self._slots:
                matched = bcrypt.checkpw(key, stored.encode("utf-8"))
        except ValueError:  # not a bcrypt hash
            return False
        if matched:
            with self._lock:
                if len(self._good) >= self.MAX_CACHED:
                    self._good.pop(next(iter(self._good)))
                self._good[digest] = None
        return matched
