"""The OAuth routes.

Management routes: each starter's `GET <route>` (and its extra `routes()`),
`GET /get-auth-status`, `DELETE /oauth-session`. Routes without the management key, where
the pending session's state is the only guard (as upstream): `GET`/`POST
/v0/management/oauth-callback` (answered only while the management API is enabled), and
each starter's browser callback on the main server (e.g. `GET /anthropic/callback`).
`init_app` wires the starters the plugins registered; the static routes are on `bp` and
`public_bp`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from ..authfiles import auth_files
from ..authfiles.store import resolve_auth_dir
from ..config import DEFAULT_PORT
from ..conventions import read_body
from ..errors import ApiError
from ..openapi import describe
from ..plugin_state import gate
from ..registry import PluginError
from ..safeload import InvalidJSON, load_json
from ..security.guard import check_management_enabled
from .callbacks import Callback, Wakeups, valid_state
from .forwarder import Forwarder, Forwarders
from .sessions import SessionStore
from .starter import Abandoned, Credential, Flow, LoginError, OAuthStarter

log = logging.getLogger(__name__)

bp = Blueprint("oauth", __name__)
# Mounted at the management prefix, outside the management blueprint (no management key).
public_bp = Blueprint("oauth_public", __name__)
public_bp.before_request(check_management_enabled)

EXTRA_KEY = "oauth"
_TRUTHY = ("1", "true", "yes", "on")
_STATUS = {"type": "object", "properties": {"status": {"type": "string"}, "error": {"type": "string"}}}


class OAuthError(ApiError):
    """An error answered as `{"status": "error", "error": ...}` (the OAuth routes' shape)."""

    def response(self):
        resp = jsonify({"status": "error", "error": self.error, **self.extra})
        resp.status_code = self.status
        return resp


@dataclass
class OAuthState:
    """One app's OAuth machinery, at `state.extras["oauth"]`."""

    starters: dict                      # provider name and aliases -> OAuthStarter
    sessions: SessionStore = field(default_factory=SessionStore)
    wakeups: Wakeups = field(default_factory=Wakeups)
    forwarders: Forwarders = field(default_factory=Forwarders)
    write_lock: threading.Lock = field(default_factory=threading.Lock)  # callback hand-over, save vs cancel
    views: dict = field(default_factory=dict)  # view function -> the login it belongs to


def oauth_state(state=None) -> OAuthState:
    state = state or current_app.extensions["cliproxy_mgmt"]
    return state.extras[EXTRA_KEY]


def init_app(app: Flask, management: Blueprint) -> None:
    """Register the plugins' logins: their routes under `management`, callbacks on `app`."""
    state = app.extensions["cliproxy_mgmt"]
    logins = state.registry.oauth_starters
    starters: dict = {}
    for login in logins:
        if not isinstance(login, OAuthStarter):
            continue
        for name in (login.name, *login.aliases):
            if name in starters:
                raise PluginError(f"OAuth provider name {name!r} is used by {starters[name]!r} and {login!r}")
            starters[name] = login
    for login in logins:  # the web UI names a login by its client key (`/<key>-auth-url`) too
        if isinstance(login, OAuthStarter) and login.oauth_provider:
            starters.setdefault(login.oauth_provider, login)
    oauth = state.extras[EXTRA_KEY] = OAuthState(starters=starters, sessions=state.storage.sessions or SessionStore())

    routes = Blueprint("oauth_logins", __name__)
    for login in logins:
        if isinstance(login, OAuthStarter) and login.route:
            start = _start_view(login)
            oauth.views[start] = login
            routes.add_url_rule(login.route, f"start_{login.name}", start, methods=["GET"])
            if login.callback_route:
                callback = _browser_callback_view(login)
                oauth.views[callback] = login
                app.add_url_rule(login.callback_route, f"oauth_callback_{login.name}", callback, methods=["GET"])
        for rule, methods, view in login.routes():
            oauth.views[view] = login
            routes.add_url_rule(rule, f"{login.name or login.provider}_{view.__name__}", view, methods=methods)
    management.register_blueprint(routes)
    app.register_blueprint(public_bp, url_prefix=management.url_prefix)


# -- starting a login ---------------------------------------------------------------------

def _fail(starter: OAuthStarter, status: int, message: str) -> ApiError:
    return (OAuthError if starter.error_status else ApiError)(status, message)


def _start_view(starter: OAuthStarter):
    def start():
        app_state = current_app.extensions["cliproxy_mgmt"]
        oauth = oauth_state(app_state)
        config = app_state.store
        state = starter.new_state()
        flow = Flow(starter, state, config, oauth.sessions, oauth.wakeups.event(state),
                    resolve_auth_dir(config), query=request.args.to_dict())
        try:
            url = starter.authorize(flow)
            extras = starter.start_extras(flow)
            forwarder = None
            if starter.callback_route and request.args.get("is_webui", "").strip().lower() in _TRUTHY:
                forwarder = _start_forwarder(starter, flow, oauth)
        except BaseException:
            flow.http.close()
            oauth.wakeups.drop(state)
            raise
        oauth.sessions.register(state, starter.name)
        threading.Thread(target=run_flow, args=(flow, app_state, oauth, forwarder), daemon=True,
                         name=f"oauth-{starter.name}-{state[:12]}").start()
        answer = {**extras, "state": state, "status": "ok", "url": url}
        return jsonify(dict(sorted(answer.items())))  # upstream's keys come out sorted

    start.__name__ = f"start_{starter.name}"
    query = [("is_webui", "string", "true: listen on the provider's callback port on this machine")]
    shown = {k: {"type": "string"} for k in ("status", "url", "state")}
    shown.update(starter.extra_fields)
    return describe(f"Start the {starter.name} login", query=query + list(starter.params), ok={
        "type": "object", "properties": shown})(start)


def _start_forwarder(starter: OAuthStarter, flow: Flow, oauth: OAuthState) -> Forwarder:
    port = flow.config.get("port", default=DEFAULT_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or port <= 0:
        raise _fail(starter, 500, "callback server unavailable")
    scheme = "https" if flow.config.get("tls", "enable", default=False) is True else "http"
    try:
        listen = urlsplit(flow.endpoint("redirect-uri")).port or 80
        return oauth.forwarders.start(listen, f"{scheme}://127.0.0.1:{port}{starter.callback_route}")
    except (OSError, ValueError) as exc:
        log.warning("%r: cannot start the callback listener: %s", starter, exc)
        raise _fail(starter, 500, "failed to start callback server") from None


def run_flow(flow: Flow, app_state, oauth: OAuthState, forwarder: Forwarder | None = None) -> None:
    """The background part of a login: the starter's `complete`, then save and finish."""
    starter, state = flow.starter, flow.state
    try:
        credential = starter.complete(flow)
        with oauth.write_lock:  # a cancel either comes first (nothing saved) or after the save
            if not flow.pending():
                return
            saved = _save(app_state, starter, credential)
            if not saved:
                oauth.sessions.set_error(state, starter.save_error)
            elif starter.complete_all:
                oauth.sessions.complete_provider(starter.name)
            else:
                oauth.sessions.complete(state)
    except Abandoned:
        pass
    except LoginError as exc:
        log.info("%r login %s failed: %s", starter, state, exc.message)
        oauth.sessions.set_error(state, exc.message)
    except Exception:
        log.exception("%r login %s failed", starter, state)
        oauth.sessions.set_error(state, "Authentication failed")
    finally:
        flow.http.close()
        oauth.wakeups.drop(state)
        if forwarder is not None:
            oauth.forwarders.release(forwarder)


def _save(app_state, starter: OAuthStarter, credential: Credential) -> bool:
    try:
        path = auth_files(app_state).save(credential.name, credential.data, indent=credential.indent)
    except (OSError, ApiError) as exc:
        log.error("%r: cannot save %s: %s", starter, credential.name, getattr(exc, "error", exc))
        return False
    log.info("%r: saved %s", starter, path)
    return True


# -- callbacks ---------------------------------------------------------------------------

def _hand_over(oauth: OAuthState, config, starter: OAuthStarter, callback: Callback) -> None:
    """Write the callback file for a pending session (raises OAuthError)."""
    folder = resolve_auth_dir(config)
    with oauth.write_lock:
        if not oauth.sessions.is_pending(callback.state, starter.name):
            raise OAuthError(409, "oauth flow is not pending")
        try:
            oauth.sessions.hand_over(folder, starter.name, callback)
        except (OSError, ValueError) as exc:
            log.error("cannot write the OAuth callback file: %s", exc)
            raise OAuthError(500, "failed to persist oauth callback") from None
    oauth.wakeups.wake(callback.state)


def _callback_body() -> dict:
    """POST /oauth-callback's JSON object; each field a string (or absent)."""
    try:
        body = load_json(read_body())
    except InvalidJSON:
        body = None
    if not isinstance(body, dict):
        raise OAuthError(400, "invalid body")
    fields = {}
    for name in _CALLBACK_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise OAuthError(400, "invalid body")
        fields[name] = (value or "").strip()
    return fields


def _redirect_query(url: str) -> dict:
    if not url:
        return {}
    try:
        parts = urlsplit(url)
        if any(ord(c) < 0x20 or c == "\x7f" for c in url) or (not parts.scheme and url.startswith(":")):
            raise ValueError(url)
        return {k: v[0].strip() for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    except ValueError:
        raise OAuthError(400, "invalid redirect_url") from None


def _accept_callback(provider: str, redirect_url: str, code: str, state: str, error: str):
    """Hand a provider's redirect to the pending login of `state` (both callback routes).

    `provider` may be empty: the session's provider is used. Checks in upstream's order,
    except that a provider nobody registered is refused before the state is looked up.
    """
    oauth = oauth_state()
    store = current_app.extensions["cliproxy_mgmt"].store
    starter = oauth.starters.get(provider.lower()) if provider else None
    if provider and (starter is None or gate().login_disabled(store, starter)):
        raise OAuthError(400, "unsupported provider")
    query = _redirect_query(redirect_url)
    state = state or query.get("state", "")
    code = code or query.get("code", "")
    error = error or query.get("error", "") or query.get("error_description", "")
    if not state:
        raise OAuthError(400, "state is required")
    if not valid_state(state):
        raise OAuthError(400, "invalid state")
    if not code and not error:
        raise OAuthError(400, "code or error is required")
    session = oauth.sessions.get(state)
    if session is None:
        raise OAuthError(404, "unknown or expired state")
    if session.completed:
        raise OAuthError(409, "oauth flow is already completed")
    if starter is None:
        starter = oauth.starters.get(session.provider)
        if starter is None or gate().login_disabled(store, starter):
            raise OAuthError(400, "unsupported provider")
    if not session.pending:
        raise OAuthError(409, "oauth flow is not pending")
    if session.provider != starter.name:
        raise OAuthError(400, "provider does not match state")
    _hand_over(oauth, store, starter, Callback(code=code, state=state, error=error))
    return jsonify({"status": "ok"})


_CALLBACK_FIELDS = ("provider", "redirect_url", "code", "state", "error")


@public_bp.post("/oauth-callback")
@describe("Hand a login the provider's redirect (the URL, or its code/state/error); no management key, "
          "the pending login's state is the guard; `provider` defaults to the login's", body={
              "type": "object", "properties": {k: {"type": "string"} for k in _CALLBACK_FIELDS}},
          ok=_STATUS)
def post_oauth_callback():
    body = _callback_body()
    return _accept_callback(**body)


@public_bp.get("/oauth-callback")
@describe("The provider's redirect itself (its query: code, state, error or error_description, "
          "optional provider); no management key, the pending login's state is the guard",
          query=[(n, "string", f"the redirect's {n}") for n in ("provider", "code", "state", "error",
                                                                  "error_description")], ok=_STATUS)
def get_oauth_callback():
    args = request.args
    error = (args.get("error") or "").strip() or (args.get("error_description") or "").strip()
    return _accept_callback(provider=(args.get("provider") or "").strip(), redirect_url="",
                            code=(args.get("code") or "").strip(), state=(args.get("state") or "").strip(),
                            error=error)


@bp.get("/get-auth-status")
@describe("The state of a login: wait, ok (also for a minute after it completed) or error "
          "(also for an unknown or expired state)", query=[("state", "string", "the login's state")],
          ok=_STATUS)
def get_auth_status():
    state = request.args.get("state", "").strip()
    if not state:
        return jsonify({"status": "ok"})
    if not valid_state(state):
        raise OAuthError(400, "invalid state")
    session = oauth_state().sessions.get(state)
    if session is None:
        return jsonify({"status": "error", "error": "unknown or expired state"})
    if session.completed:
        return jsonify({"status": "ok"})
    if session.status:
        return jsonify({"status": "error", "error": session.status})
    return jsonify({"status": "wait"})


@bp.delete("/oauth-session")
@describe("Cancel a pending login: its background flow stops and saves nothing",
          query=[("state", "string", "the login's state")],
          ok={"type": "object", "properties": {"status": {"type": "string"}, "cancelled": {"type": "boolean"}}})
def delete_oauth_session():
    state = request.args.get("state", "").strip()
    if not state:
        raise OAuthError(400, "missing state")
    if not valid_state(state):
        raise OAuthError(400, "invalid state")
    oauth = oauth_state()
    with oauth.write_lock:
        cancelled = oauth.sessions.cancel(state)
    if cancelled:
        oauth.wakeups.wake(state)  # a waiting flow sees it at once and stops
    return jsonify({"status": "ok", "cancelled": cancelled})


CALLBACK_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Authentication successful</title></head>
<body>
<h1>Authentication successful!</h1>
<p>You can close this window. It will close automatically in 5 seconds.</p>
<script>setTimeout(function () { window.close(); }, 5000);</script>
</body>
</html>
"""


def _browser_callback_view(starter: OAuthStarter):
    def browser_callback():
        args = request.args
        state = args.get("state", "").strip()
        oauth = oauth_state()
        if state and valid_state(state) and oauth.sessions.is_pending(state, starter.name):
            callback = Callback(code=args.get("code", "").strip(), state=state,
                                error=(args.get("error") or args.get("error_description") or "").strip())
            try:
                _hand_over(oauth, current_app.extensions["cliproxy_mgmt"].store, starter, callback)
            except OAuthError:
                pass  # the page is the same whatever happened (upstream)
        return Response(CALLBACK_PAGE, content_type="text/html; charset=utf-8")

    browser_callback.__name__ = f"callback_{starter.name}"
    return browser_callback
