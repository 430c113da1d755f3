"""`POST /iflow-auth-url`: log in with a browser's iFlow platform cookie.

Synchronous: the `BXAuth` cookie buys an API key from the platform, which is saved as an
iflow token file keeping only that cookie. Every answer carries `"status"`.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import requests
from flask import jsonify

from cliproxy_mgmt.authfiles import auth_files
from cliproxy_mgmt.conventions import read_body, store
from cliproxy_mgmt.errors import ApiError
from cliproxy_mgmt.oauth import OAuthError, http_session, now_rfc3339, unix_ms
from cliproxy_mgmt.safeload import InvalidJSON, load_json
from cliproxy_mgmt.openapi import describe

BROWSER_HEADERS = {
    "User-Agent": ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/124.0.0.0 Safari/537.36"),
    "Accept": "application/json, text/plain, */*",
    "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8",
}
_BXAUTH = re.compile(r"(?:^|;)\s*BXAuth=([^;]*)")


def normalize_cookie(raw: str) -> str:
    """Whitespace collapsed, ending in `;`."""
    cookie = " ".join(raw.split())
    return cookie if cookie.endswith(";") else cookie + ";"


def bxauth(cookie: str) -> str | None:
    found = _BXAUTH.search(cookie)
    return found.group(1).strip() if found else None


def sanitize(name: str) -> str:
    """A key name fit for a file name: `*` becomes `x`, only `[A-Za-z0-9_@.-]` is kept."""
    return re.sub(r"[^A-Za-z0-9_@.-]", "", name.replace("*", "x"))


def _duplicate(token: str) -> str | None:
    """The name of an iflow file already holding this BXAuth value."""
    folder = auth_files().folder()
    try:
        found = list(folder.scan())
    except OSError:
        raise OAuthError(500, "failed to check duplicate") from None
    for name, _, _ in found:
        if not name.startswith("iflow-"):
            continue
        try:
            data = load_json(folder.read(name))
        except (ApiError, InvalidJSON):
            continue
        cookie = data.get("cookie") if isinstance(data, dict) else None
        if isinstance(cookie, str) and bxauth(cookie) == token:
            return name
    return None


def _platform_call(http, method: str, url: str, what: str, **kw) -> dict:
    """One call to the platform's API-key endpoint; its `data` object, or 400 with the reason."""
    try:
        resp = http.request(method, url, **kw)
        body = load_json(resp.content)
    except requests.RequestException as exc:
        raise OAuthError(400, f"{what} failed: {exc}") from None
    except ValueError:
        raise OAuthError(400, f"{what} failed: status {resp.status_code}, not JSON") from None
    if resp.status_code != 200 or not isinstance(body, dict) or not body.get("success"):
        message = body.get("message") if isinstance(body, dict) else None
        raise OAuthError(400, f"{what} failed: {message or f'status {resp.status_code}'}")
    data = body.get("data")
    return data if isinstance(data, dict) else {}


def cookie_login(starter):
    """The view of `POST /iflow-auth-url` for the iflow starter."""

    @describe("Log in to iFlow with a platform cookie (BXAuth)", body={
        "type": "object", "properties": {"cookie": {"type": "string"}}}, ok={"type": "object"})
    def iflow_cookie_login():
        try:
            body = load_json(read_body())
        except InvalidJSON:
            body = None
        raw = body.get("cookie") if isinstance(body, dict) else None
        if not isinstance(raw, str) or not raw.strip():
            raise OAuthError(400, "cookie is required")
        cookie = normalize_cookie(raw)
        token = bxauth(cookie)
        if token is None:
            raise OAuthError(400, "cookie missing BXAuth field")
        existing = _duplicate(token)
        if existing:
            raise OAuthError(409, "duplicate BXAuth found", existing_file=existing)

        config = store()
        url = starter.endpoint(config, "api-key")
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        with http_session(config) as http:
            http.headers.update(BROWSER_HEADERS, Cookie=cookie)
            info = _platform_call(http, "GET", url, "get API key info")
            name = str(info.get("name") or "").strip()
            if not name:
                raise OAuthError(400, "failed to extract email from token")
            fresh = _platform_call(http, "POST", url, "refresh API key", json={"name": name},
                                   headers={"Origin": origin, "Referer": origin + "/"})
        api_key = str(fresh.get("apiKey") or info.get("apiKey") or "")
        expired = str(fresh.get("expireTime") or info.get("expireTime") or "")
        base = sanitize(name) or str(unix_ms())
        try:
            path = auth_files().save(f"iflow-{base}-{int(time.time())}.json", {
                "access_token": "", "refresh_token": "", "last_refresh": now_rfc3339(), "expired": expired,
                "api_key": api_key, "email": name, "token_type": "", "scope": "",
                "cookie": f"BXAuth={token};", "type": "iflow",
            })
        except (OSError, ApiError):
            raise OAuthError(500, "failed to save authentication tokens") from None
        return jsonify({"email": name, "expired": expired, "saved_path": path, "status": "ok", "type": "iflow"})

    return iflow_cookie_login
