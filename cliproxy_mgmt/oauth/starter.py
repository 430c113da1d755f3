"""What provider plugins return from `register_oauth_starters`, and what their code gets.

* `Login`: a way to obtain a credential through the management API; it adds `routes()`
  (e.g. vertex's `POST /vertex/import`, iflow's cookie login).
* `OAuthStarter(Login)`: an OAuth or device-code login started by `GET <route>`. The core
  owns the session, the `is_webui` callback listener, callback hand-over, status polling,
  saving the token file and completing the session; the starter supplies only the
  provider-specific steps: `authorize(flow)` (the URL to show) and `complete(flow)` (run in
  a background thread: wait for the callback or poll, exchange, and return a `Credential`).
* `Flow`: one login in progress, handed to those two methods.

Provider URLs are `endpoints` with upstream's real defaults; config.yaml can override
each as `oauth-endpoints.<endpoints_key>.<endpoint name>` (docs/oauth-endpoints.md).
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlencode
from dataclasses import dataclass, field
from typing import Callable

import requests

from ..outbound import usable_proxy
from ..safeload import load_json
from .callbacks import Callback
from .pkce import hex_state

HTTP_TIMEOUT = 30.0         # seconds, each provider request
CALLBACK_TIMEOUT = 300.0    # how long a browser login waits for its callback (upstream: 5 min)
CALLBACK_POLL = 0.5         # seconds between two looks for the callback file


class LoginError(Exception):
    """The login failed; `message` is what GET /get-auth-status reports for the session."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Abandoned(Exception):
    """The session ended meanwhile (expired, or completed by another login): stop quietly."""


@dataclass(frozen=True)
class Credential:
    """A token file to save in auth-dir: upstream's file name and fields, so upstream can use it."""

    name: str
    data: dict
    indent: bool = False  # 2-space indented JSON (vertex) instead of compact JSON


class _Http(requests.Session):
    """A requests session with a default timeout."""

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return super().request(method, url, **kwargs)


def http_session(config) -> requests.Session:
    """A session for provider calls: the config's `proxy-url` when set, else the environment's.

    The proxy is read as api-call reads it (`outbound.usable_proxy`: socks5 resolves names
    through the proxy)."""
    session = _Http()
    proxy = usable_proxy(config.get("proxy-url", default=""))
    if proxy:
        # Environment proxies would override the session's own (requests' merge order).
        session.trust_env = False
        session.proxies = {"http": proxy, "https": proxy}
    return session


class Login:
    """A way to obtain a credential through the management API.

    provider   the id of the registered provider the login belongs to.
    name       the login's canonical name (the `oauth-endpoints` key; for OAuth starters
               also the session provider, e.g. "anthropic").
    endpoints  default endpoint URLs by name.
    """

    provider: str = ""
    name: str = ""
    endpoints: dict = {}

    def routes(self) -> list[tuple[str, list, Callable]]:
        """Extra management routes: (rule, methods, view function) under /v0/management.

        Views run in a request context; `cliproxy_mgmt.conventions.store()` is the config.
        """
        return []

    def endpoint(self, config, name: str) -> str:
        """Endpoint `name`: `oauth-endpoints.<name of the login>.<name>` if set, else the default."""
        value = config.get("oauth-endpoints", self.name, name, default=None)
        if isinstance(value, str) and value.strip():
            return value.strip()
        return self.endpoints[name]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name or self.provider}>"


class OAuthStarter(Login):
    """An OAuth or device-code login started by `GET /v0/management<route>`.

    route           e.g. "/anthropic-auth-url"; answers {"status":"ok","url","state"}.
    name            the session provider (callback files, POST /oauth-callback's `provider`).
    aliases         other `provider` spellings POST /oauth-callback accepts (e.g. "claude").
    callback_route  the browser callback on the main server (no management key), e.g.
                    "/anthropic/callback"; "" for a device flow (no callback, no listener).
                    The `is_webui` listener's port is that of the "redirect-uri" endpoint.
    complete_all    a success also ends every other pending session of the provider.
    error_status    start errors carry "status": "error" (iflow's answers do).
    params          (name, JSON type, description) of the start route's own query
                    parameters, for the API description (e.g. gemini's `project_id`).
    timeout_error, save_error   session errors for a missing callback and a failed save.
    extra_fields    JSON schemas of the fields `start_extras` adds to the start answer.
    """

    route: str = ""
    aliases: tuple = ()
    callback_route: str = ""
    complete_all: bool = True
    error_status: bool = False
    params: tuple = ()
    timeout_error: str = "Timeout waiting for OAuth callback"
    save_error: str = "Failed to save authentication tokens"
    extra_fields: dict = {}

    @property
    def oauth_provider(self) -> str:
        """The key a client uses for this login: `<key>` of the start route `/<key>-auth-url`
        (what the web UI's OAuth page builds its path from, e.g. "gemini-cli"); "" when the
        route does not have that form."""
        route = self.route.strip("/")
        return route[:-len("-auth-url")] if route.endswith("-auth-url") and "/" not in route else ""

    def new_state(self) -> str:
        """A fresh state value (must pass `callbacks.valid_state`)."""
        return hex_state()

    def authorize(self, flow: "Flow") -> str:
        """Return the URL the user opens; runs in the request. Keep per-login secrets
        (PKCE verifier, device code) in `flow.values`. Raise `ApiError` to refuse."""
        raise NotImplementedError

    def start_extras(self, flow: "Flow") -> dict:
        """Fields the start answer carries besides status, url and state (e.g. a device
        flow's `user_code`); called after `authorize`."""
        return {}

    def complete(self, flow: "Flow") -> Credential:
        """Finish the login in a background thread and return the token file to save.

        Use `flow.wait_callback()` (browser logins) or `flow.sleep()` between polls (device
        flows); raise `LoginError(message)` to fail the session.
        """
        raise NotImplementedError


@dataclass
class Flow:
    """One login in progress."""

    starter: OAuthStarter
    state: str
    config: object                      # the app's ConfigStore
    sessions: object                    # SessionStore
    wakeup: threading.Event
    auth_dir: str | None
    query: dict = field(default_factory=dict)   # the start request's query parameters
    values: dict = field(default_factory=dict)  # the starter's own per-login data
    http: requests.Session | None = None          # default: `http_session(config)`

    def __post_init__(self):
        if self.http is None:
            self.http = http_session(self.config)

    def endpoint(self, name: str) -> str:
        return self.starter.endpoint(self.config, name)

    def authorize_url(self, params: dict) -> str:
        """The `authorize` endpoint with `params` as its query, in sorted order."""
        return self.endpoint("authorize") + "?" + urlencode(sorted(params.items()))

    def post_json(self, name: str, **kwargs) -> dict | None:
        """`json_object` of a POST to endpoint `name`."""
        return self.json_object("POST", self.endpoint(name), **kwargs)

    def json_object(self, method: str, url: str, **kwargs) -> dict | None:
        """Ask `url` for JSON (`kwargs` go to requests: `data=`, `json=`, `auth=`, `params=`,
        `headers=` added to `Accept`); the answer's JSON object (read with safeload's limits)
        on status 200, else None, a failed request too."""
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        try:
            resp = self.http.request(method, url, headers=headers, **kwargs)
            body = load_json(resp.content) if resp.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None
        return body if isinstance(body, dict) else None

    def pending(self) -> bool:
        return self.sessions.is_pending(self.state, self.starter.name)

    def sleep(self, seconds: float) -> None:
        """Wait, then raise `Abandoned` if the session is no longer pending; a cancelled
        session (which wakes the flow) ends the wait at once."""
        deadline = time.monotonic() + seconds
        while True:
            if not self.pending():
                raise Abandoned()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.wakeup.wait(min(left, 1.0))
            self.wakeup.clear()

    def wait_callback(self, timeout: float = CALLBACK_TIMEOUT) -> Callback:
        """The provider's callback; `LoginError(starter.timeout_error)` when none comes in time."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.pending():
                raise Abandoned()
            try:
                found = self.sessions.take_callback(self.auth_dir, self.starter.name, self.state)
            except OSError:
                found = None
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise LoginError(self.starter.timeout_error)
            self.wakeup.wait(min(CALLBACK_POLL, left))
            self.wakeup.clear()
