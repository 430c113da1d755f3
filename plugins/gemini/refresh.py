"""The access token of a gemini-cli file for POST /api-call.

Upstream hands the file's token to golang.org/x/oauth2: a token whose `expiry` is within 10 s
(or that is empty) is refreshed at Google's token endpoint with the gemini-cli client, through
the credential's proxy. The refreshed token is kept in memory only, never written to the file;
later calls reuse it until it expires in turn.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

import requests

from cliproxy_mgmt.records import TokenContext, TokenRefreshError
from cliproxy_mgmt.safeload import load_json

from .login import CLIENT_ID, CLIENT_SECRET, GeminiCLILogin

EXPIRY_MARGIN = timedelta(seconds=10)  # oauth2's expiryDelta
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)")


def access_token(data: dict, ctx: TokenContext) -> str:
    """The file's access token, or a fresher one: remembered, or refreshed now."""
    token = _file_token(data)
    key = (ctx.name, token["refresh_token"])
    remembered = ctx.memory.get(key)
    if remembered and _later(remembered["expiry"], token["expiry"]):
        token = remembered
    if token["access_token"] and not _expired(token["expiry"]):
        return token["access_token"]
    fresh = _refresh(ctx, token)
    ctx.memory.put(key, fresh)
    return fresh["access_token"]


def _file_token(data: dict) -> dict:
    """access_token, refresh_token, token_type and expiry (None: never expires) of a file:
    the `token` object's fields, else the top-level ones (upstream's fallback)."""
    nested = data.get("token") if isinstance(data.get("token"), dict) else {}

    def field(name: str) -> str:
        for source in (nested, data):
            value = source.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return ""

    return {"access_token": field("access_token"), "refresh_token": field("refresh_token"),
            "token_type": field("token_type"), "expiry": _parse_time(field("expiry"))}


def _parse_time(text: str) -> datetime | None:
    """An RFC 3339 time (Go writes up to 9 fraction digits); None when absent or invalid."""
    found = _RFC3339.fullmatch(text)
    if not found:
        return None
    base, fraction, zone = found.groups()
    try:
        parsed = datetime.fromisoformat(base + ("+00:00" if zone in "Zz" else zone))
    except ValueError:
        return None
    return parsed + timedelta(microseconds=int((fraction or "")[:6].ljust(6, "0")))


def _expired(expiry: datetime | None) -> bool:
    return expiry is not None and expiry - EXPIRY_MARGIN < datetime.now(timezone.utc)


def _later(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and (b is None or a > b)


def _refresh(ctx: TokenContext, token: dict) -> dict:
    """oauth2's refresh: client credentials in the form body (Google's AuthStyleInParams)."""
    if not token["refresh_token"]:
        raise TokenRefreshError("token expired and refresh token is not set")
    form = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"],
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    url = GeminiCLILogin().endpoint(ctx.config, "token")
    try:
        resp = ctx.http.post(url, data=form, timeout=ctx.timeout)
        if not 200 <= resp.status_code < 300:
            raise TokenRefreshError(f"token endpoint: status {resp.status_code}: {resp.text[:200]}")
        got = _body(resp)
    except (requests.RequestException, ValueError) as exc:
        raise TokenRefreshError(f"token endpoint: {exc}") from None
    access = got.get("access_token")
    if not isinstance(access, str) or not access.strip():
        raise TokenRefreshError("server response missing access_token")
    seconds = got.get("expires_in")
    try:
        seconds = int(seconds) if seconds not in (None, "") else 0
    except (TypeError, ValueError):
        seconds = 0
    expiry = datetime.now(timezone.utc) + timedelta(seconds=seconds) if seconds > 0 else None
    refresh = got.get("refresh_token")
    return {"access_token": access.strip(),
            "token_type": got.get("token_type") if isinstance(got.get("token_type"), str) else "",
            "refresh_token": refresh if isinstance(refresh, str) and refresh else token["refresh_token"],
            "expiry": expiry}


def _body(resp: requests.Response) -> dict:
    """The token response: JSON, or a form-encoded body (oauth2 accepts both)."""
    kind = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "text/plain"):
        return dict(parse_qsl(resp.text))
    got = load_json(resp.content)
    return got if isinstance(got, dict) else {}
