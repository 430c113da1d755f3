"""PKCE, states and id_token claims: the small pieces every provider's login uses."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import time


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7636's encoding)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_pair(nbytes: int = 96) -> tuple[str, str]:
    """(code_verifier, S256 code_challenge); the verifier is `nbytes` random bytes, base64url."""
    verifier = b64url(secrets.token_bytes(nbytes))
    return verifier, b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def hex_state() -> str:
    """16 random bytes as hex (anthropic, codex)."""
    return secrets.token_hex(16)


def clock_state(prefix: str) -> str:
    """`<prefix>-<unix nanoseconds>` (gemini and qwen use `gem`, iflow `ifl`)."""
    return f"{prefix}-{time.time_ns()}"


def jwt_claims(token: str) -> dict:
    """The payload of a JWT, decoded without verifying it ({} when it is not one).

    Only for reading who logged in from a token the provider just handed us over TLS.
    """
    parts = (token or "").split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}
