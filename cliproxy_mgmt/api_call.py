"""POST /api-call: an HTTP request made by the server for the client.

`$TOKEN$` in a header value is replaced by the token of the auth file chosen by
`auth_index` (also `authIndex`, `AuthIndex`): the file type's `access_token` (which may
refresh it first, in memory only), else the first token field. The proxy is the auth file's
`proxy_url`, then the global `proxy-url`, then none; environment proxy variables are ignored.
The answer is 200 `{status_code, header, body}` whatever the upstream status; 502 when
nothing came back.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

import requests
from flask import Blueprint, jsonify

from . import __version__
from .authfiles import auth_files, find_by_auth_index
from .conventions import json_object, store
from .errors import ApiError, invalid_body
from .openapi import describe
from .outbound import first_proxy, session
from .records import TokenContext, TokenMemory, TokenRefreshError

bp = Blueprint("api_call", __name__)
log = logging.getLogger(__name__)

TIMEOUT = 60
PLACEHOLDER = "$TOKEN$"
INDEX_FIELDS = ("auth_index", "authIndex", "AuthIndex")
_HTTP_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 method syntax
# Token fields of an auth file, in upstream's order of preference.
TOKEN_FIELDS = ("accessToken", "access_token", "token", "id_token", "cookie")
MEMORY_KEY = "api-call-tokens"  # State.extras: {auth-file type: its TokenContext.memory}


def file_token(data: dict) -> str:
    """The credential's token: the first non-empty of TOKEN_FIELDS (`token` may be an object
    holding `access_token`/`accessToken`), then `api_key`."""
    for name in TOKEN_FIELDS + ("api_key",):
        value = data.get(name)
        if isinstance(value, dict) and name == "token":
            value = value.get("access_token") or value.get("accessToken")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def canonical(name: str) -> str:
    """Go's canonical header name: `content-type` -> `Content-Type`."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _load(body: dict) -> dict:
    """The call, with the types Go binds the body to: strings and a string-to-string map."""
    def text(name):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise invalid_body()
        return value or ""

    header = body.get("header")
    if header is not None and not (isinstance(header, dict)
                                   and all(isinstance(v, str) for v in header.values())):
        raise invalid_body()
    indexes = [text(name).strip() for name in INDEX_FIELDS]
    return {"method": text("method"), "url": text("url"), "data": text("data"),
            "header": header or {}, "auth_index": next((i for i in indexes if i), "")}


def _credential(index: str) -> tuple[str, dict] | None:
    return find_by_auth_index(None, index) if index else None


def _token(name: str, data: dict, proxy: str | None) -> str:
    """The credential's token; 400 `auth token refresh failed` / `auth token not found`."""
    files = auth_files()
    raw_type = data.get("type")
    kind = files.types.get(raw_type.strip().lower()) if isinstance(raw_type, str) else None
    if kind is None or kind.access_token is None:
        token = file_token(data)
    else:
        memories = files.state.extras.setdefault(MEMORY_KEY, {})
        memory = memories.get(kind.type) or memories.setdefault(kind.type, TokenMemory())
        with session(proxy) as http:
            try:
                token = kind.access_token(data, TokenContext(name, http, store(), memory, TIMEOUT))
            except TokenRefreshError as exc:
                log.warning("api-call: token refresh of %s failed: %s", name, exc)
                raise ApiError(400, "auth token refresh failed") from None
            except Exception:  # a plugin's bug answers as a failed refresh, not a traceback
                log.exception("auth-file type %r: access_token() failed on %s", kind.type, name)
                raise ApiError(400, "auth token refresh failed") from None
    token = token.strip() if isinstance(token, str) else ""
    if not token:
        raise ApiError(400, "auth token not found")
    return token


def _prepare(method: str, url: str, header: dict, data: str) -> requests.PreparedRequest:
    headers = {"User-Agent": f"cliproxy-mgmt/{__version__}"}
    for name, value in header.items():
        # one value per name, whatever its case (Go's Header.Set); a Host header sets the host
        headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
        headers[name] = value
    if not any(k.lower() == "accept-encoding" for k in headers):
        headers["Accept-Encoding"] = "gzip"  # and decompressed for the caller, as Go does
    try:
        if not _HTTP_TOKEN.match(method):
            raise ValueError(f"invalid method {method!r}")
        return requests.Request(method, url, headers=headers, data=data.encode() or None).prepare()
    except (requests.RequestException, ValueError, UnicodeError):
        raise ApiError(400, "failed to build request") from None


def _answer(response, transparent: bool) -> dict:
    """{status_code, header, body}; with `transparent` decompression, as Go reports it."""
    raw_headers = response.raw.headers
    decoded = transparent and raw_headers.get("Content-Encoding", "").lower() == "gzip"
    try:
        body = response.raw.read(decode_content=decoded)
    except Exception:  # urllib3 read/decode errors
        raise ApiError(502, "failed to read response") from None
    header: dict = {}
    for name, value in raw_headers.items():
        if decoded and name.lower() in ("content-encoding", "content-length"):
            continue
        header.setdefault(canonical(name), []).append(value)
    return {"status_code": response.status_code, "header": header,
            "body": body.decode("utf-8", "replace")}


@bp.post("/api-call")
@describe("Make an HTTP request from the server, with $TOKEN$ taken from an auth file",
          body={"type": "object", "properties": {
              "auth_index": {"type": "string"}, "method": {"type": "string"},
              "url": {"type": "string"}, "header": {"type": "object"},
              "data": {"type": "string"}}},
          ok={"type": "object", "properties": {
              "status_code": {"type": "integer"}, "header": {"type": "object"},
              "body": {"type": "string"}}})
def api_call():
    call = _load(json_object())
    method = call["method"].strip().upper()
    if not method:
        raise ApiError(400, "missing method")
    url = call["url"].strip()
    if not url:
        raise ApiError(400, "missing url")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ApiError(400, "invalid url") from None
    if not parts.scheme or not parts.netloc:
        raise ApiError(400, "invalid url")

    credential = _credential(call["auth_index"])
    header = call["header"]
    name, data = credential or ("", {})
    proxy = first_proxy(data.get("proxy_url"), store().get("proxy-url"))
    if credential is not None and any(PLACEHOLDER in v for v in header.values()):
        token = _token(name, data, proxy)
        header = {k: v.replace(PLACEHOLDER, token) for k, v in header.items()}

    transparent = not any(k.lower() == "accept-encoding" for k in header)
    prepared = _prepare(method, url, header, call["data"])
    with session(proxy) as s:
        try:
            response = s.send(prepared, timeout=TIMEOUT, stream=True)
        except requests.RequestException:
            raise ApiError(502, "request failed") from None
        with response:
            return jsonify(_answer(response, transparent))
