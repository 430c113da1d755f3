"""The management guard: the before-request check every /v0/management route passes.

Order (upstream's, with the changes in docs/decisions.md, "Security"): management enabled at all
(else 404) -> client address -> ban (403) -> allow-remote (403) -> key present (401) ->
local password (loopback only) -> MANAGEMENT_PASSWORD -> the config's bcrypt hash
(401 and a counted failure when wrong).
"""

from __future__ import annotations

import hmac
import os

from flask import Response, current_app, request

from ..errors import ApiError
from .address import client_address, is_local, parse_networks
from .ban import go_duration

NOT_FOUND_TEXT = "404 page not found"


def env_password() -> str:
    return (os.environ.get("MANAGEMENT_PASSWORD") or "").strip()


def presented_key() -> str:
    """Authorization (Bearer or the whole value), else X-Management-Key."""
    auth = request.headers.get("Authorization", "")
    key = auth
    parts = auth.split(" ", 1)
    if parts[0].lower() == "bearer":
        # "Bearer " arrives as "Bearer" (servers strip trailing blanks): an empty token
        key = parts[1] if len(parts) == 2 else ""
    return key or request.headers.get("X-Management-Key", "")


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def trusted_networks(state):
    """The parsed `remote-management.trusted-proxies`, once per config version."""
    return state.store.derived("trusted-networks", lambda data: parse_networks(
        ((data.get("remote-management") or {}).get("trusted-proxies")) or ()))


CLIENT_KEY = "cliproxy_mgmt.client"


def request_client() -> str:
    """The client address of the current request (normalised; trusted proxies honoured), once per request."""
    environ = request.environ
    if CLIENT_KEY not in environ:
        state = current_app.extensions["cliproxy_mgmt"]
        environ[CLIENT_KEY] = client_address(environ, trusted_networks(state))
    return environ[CLIENT_KEY]


def _not_found():
    return Response(NOT_FOUND_TEXT, status=404, mimetype="text/plain")


def check_management_enabled():
    """Flask before_request for the management routes that need no key (the OAuth callback):
    they answer only while the management API is enabled at all."""
    state = current_app.extensions["cliproxy_mgmt"]
    state.store.refresh()
    if not (state.store.get("remote-management", "secret-key", default="") or env_password()
            or state.local_password):
        return _not_found()
    return None


def check_management_access():
    """Flask before_request for the management blueprint; returns a response to refuse."""
    state = current_app.extensions["cliproxy_mgmt"]
    state.store.refresh()
    remote_cfg = state.store.get("remote-management", default={}) or {}
    secret = str(remote_cfg.get("secret-key") or "")
    env = env_password()
    if not (secret or env or state.local_password):
        return _not_found()

    client = request_client()
    local = is_local(client)
    if not local:
        left = state.bans.remaining(client)
        if left > 0:
            raise ApiError(403, "IP banned due to too many failed attempts. Try again in "
                           + go_duration(left))
        if not (remote_cfg.get("allow-remote") is True or env):
            raise ApiError(403, "remote management disabled")

    key = presented_key()
    if not key:
        raise ApiError(401, "missing management key")
    if local and state.local_password and _equal(key, state.local_password):
        return None
    if env and _equal(key, env):
        if not local:
            state.bans.success(client)
        return None
    if not secret and not env and not local:
        raise ApiError(403, "remote management key not set")
    if secret and state.verifier.verify(secret, key):
        if not local:
            state.bans.success(client)
        return None
    if not local:
        state.bans.failure(client)
    raise ApiError(401, "invalid management key")
