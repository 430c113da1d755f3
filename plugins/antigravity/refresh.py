"""The access token of an antigravity file for POST /api-call (upstream refreshes only these
credentials before an api-call at the target).

A token is refreshed at Google's token endpoint with the Antigravity client when its
`expired` time (else `timestamp` + `expires_in`) is less than 30 s away, or unknown, or the
file has no access token. The refreshed token is kept in memory, never written to the file
(the proxy refreshes its own); later calls reuse it until it is due again.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import requests

from cliproxy_mgmt.records import TokenContext, TokenRefreshError
from cliproxy_mgmt.safeload import load_json

from .login import CLIENT_ID, CLIENT_SECRET, AntigravityLogin

SKEW = timedelta(seconds=30)


def _text(data: dict, name: str) -> str:
    value = data.get(name)
    return value.strip() if isinstance(value, str) else ""


def _number(value) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        return 0


def expiry_of(data: dict) -> datetime | None:
    """When the file's token expires: `expired` (RFC 3339), else `timestamp` (ms) + `expires_in`."""
    try:
        return datetime.fromisoformat(_text(data, "expired").replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        pass
    seconds, stamp = _number(data.get("expires_in")), _number(data.get("timestamp"))
    if seconds > 0 and stamp > 0:
        return datetime.fromtimestamp(stamp / 1000, timezone.utc) + timedelta(seconds=seconds)
    return None


def _due(expiry: datetime | None) -> bool:
    if expiry is None:
        return True
    if expiry.tzinfo is None:
        expiry = expiry.astimezone()
    return expiry <= datetime.now(timezone.utc) + SKEW


def access_token(data: dict, ctx: TokenContext) -> str:
    token = {"access_token": _text(data, "access_token"), "expiry": expiry_of(data)}
    refresh = _text(data, "refresh_token")
    key = (ctx.name, refresh)
    remembered = ctx.memory.get(key)
    if remembered and not _due(remembered["expiry"]):
        return remembered["access_token"]
    if token["access_token"] and not _due(token["expiry"]):
        return token["access_token"]
    fresh = _refresh(ctx, refresh)
    ctx.memory.put(key, fresh)
    return fresh["access_token"]


def _refresh(ctx: TokenContext, refresh: str) -> dict:
    if not refresh:
        raise TokenRefreshError("antigravity refresh token missing")
    form = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "grant_type": "refresh_token",
            "refresh_token": refresh}
    try:
        resp = ctx.http.post(AntigravityLogin().endpoint(ctx.config, "token"), data=form, timeout=ctx.timeout)
        if not 200 <= resp.status_code < 300:
            raise TokenRefreshError(f"antigravity oauth token refresh failed: status {resp.status_code}")
        got = load_json(resp.content)
    except (requests.RequestException, ValueError) as exc:
        raise TokenRefreshError(f"antigravity oauth token refresh failed: {exc}") from None
    access = got.get("access_token") if isinstance(got, dict) else None
    if not isinstance(access, str) or not access.strip():
        raise TokenRefreshError("antigravity oauth token refresh returned empty access_token")
    seconds = _number(got.get("expires_in"))
    expiry = datetime.now(timezone.utc) + timedelta(seconds=seconds) if seconds > 0 else None
    return {"access_token": access.strip(), "expiry": expiry}
