"""Cross-origin access, for configured origins only (docs/decisions.md, "Cross-origin access").

`remote-management.cors-allowed-origins` lists the origins (e.g. `https://panel.example`;
`*` allows any). For an allowed `Origin`, a preflight OPTIONS is answered 204 before the
management key is checked (browsers send no credentials in a preflight), and responses carry
`Access-Control-Allow-Origin: <that origin>`. For any other origin nothing is added, so the
browser refuses the cross-origin read. Upstream answers `*` to everyone.
"""

from __future__ import annotations

from flask import Response, current_app, request

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
# What a cross-origin page may read besides the simple headers: every X-CPA-* header the web
# UI reads (version, build date, the plugin switch), upstream's other exposed names, downloads.
EXPOSED = ("X-CPA-VERSION, X-CPA-COMMIT, X-CPA-BUILD-DATE, X-CPA-SUPPORT-PLUGIN, X-CPA-HOME-VERSION, "
           "X-CPA-HOME-BUILD-DATE, X-SERVER-VERSION, X-SERVER-BUILD-DATE, Location, Retry-After, "
           "X-Request-Id, Content-Disposition")
PREFLIGHT_MAX_AGE = "600"


def _normalize(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def allowed_origins(data: dict) -> frozenset:
    remote = data.get("remote-management")
    values = remote.get("cors-allowed-origins") if isinstance(remote, dict) else None
    return frozenset(_normalize(v) for v in values or () if isinstance(v, str) and v.strip())


def _allowed() -> tuple[bool, bool]:
    """(is the request's Origin allowed, is any origin configured)."""
    config = current_app.extensions["cliproxy_mgmt"].store
    origins = config.derived("cors-origins", allowed_origins)
    origin = request.headers.get("Origin")
    return bool(origin) and ("*" in origins or _normalize(origin) in origins), bool(origins)


def _preflight():
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    current_app.extensions["cliproxy_mgmt"].store.refresh()
    allowed, _ = _allowed()
    if not allowed:
        return None  # handled like any request: no CORS headers, the guard decides
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
    # Upstream allows "*"; echoing the request's list also covers Authorization, which "*" doesn't.
    asked = request.headers.get("Access-Control-Request-Headers")
    if asked:
        response.headers["Access-Control-Allow-Headers"] = asked
    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    response.vary.update(("Access-Control-Request-Method", "Access-Control-Request-Headers"))
    return response


def _headers(response):
    allowed, configured = _allowed()
    if configured:
        response.vary.add("Origin")  # the answer depends on the Origin: caches must know
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = request.headers["Origin"]
        if request.method != "OPTIONS":
            response.headers["Access-Control-Expose-Headers"] = EXPOSED
    return response


def init_app(app) -> None:
    """Answer allowed preflights before any guard runs; add CORS headers for allowed origins."""
    app.before_request(_preflight)
    app.after_request(_headers)
