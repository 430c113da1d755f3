"""The records plugins return through the hooks (see hookspecs.py).

OAuth starters are objects rather than records: see `cliproxy_mgmt.oauth.OAuthStarter`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable

import requests


@dataclass(frozen=True)
class Provider:
    """A provider a plugin adds: `id` is unique across all plugins (e.g. "acme")."""

    id: str
    label: str = ""


@dataclass(frozen=True)
class ConfigSection:
    """A top-level config.yaml key a plugin owns.

    key       the YAML key, e.g. "gemini-api-key"; unique across all plugins.
    view      view(value, data) -> what GET /config shows for it (value is None when absent).
    validate  validate(value) raises ValueError when a loaded value has the wrong shape; the
              config is then refused (start-up error, 400 on PUT /config.yaml, reload skipped).
    validate_change  validate_change(value, before): the same check of a value a write
              changed, given the value in force before it (None when absent). The leading and
              trailing items of a list that are the very objects of `before` were checked
              before and may be skipped, so checking one changed entry of a long list costs
              that entry. Default: validate(value).
    legacy_keys  old top-level keys whose data the section reads in (e.g. a renamed key);
              the plugin drops them from the file when it writes the section itself, never
              on an unrelated write (upstream drops them on every save, losing their data).
              No two sections may claim the same key.
    order     position in GET /config among the plugin sections (upstream's field order).
    provider  the provider id the section belongs to ("" for none); it must be registered.
    credentials  credentials(data) -> [(provider, base_url, api_key), ...]: the API-key
              credentials the section defines, which GET /api-key-usage reports on (provider
              as upstream names it there, lower-cased); default: none.
    """

    key: str
    view: Callable[[object, dict], object]
    validate: Callable[[object], None] = lambda value: None
    validate_change: Callable[[object, object], None] | None = None
    legacy_keys: tuple = ()
    order: int = 100
    provider: str = ""
    credentials: Callable[[dict], list] | None = None


def top_level_email(data: dict) -> str:
    value = data.get("email")
    return value.strip() if isinstance(value, str) else ""


class TokenRefreshError(Exception):
    """Raised by `AuthFileType.access_token` when the credential's token could not be refreshed
    (POST /api-call then answers 400 `auth token refresh failed`)."""


class TokenMemory:
    """Tokens an `access_token` hook refreshed (never written to the file), kept per app and
    auth-file type: safe for the server's threads, and bounded (the oldest refresh goes)."""

    def __init__(self, limit: int = 256):
        self._limit = limit
        self._items: dict = {}
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            return self._items.get(key)

    def put(self, key, value) -> None:
        with self._lock:
            self._items.pop(key, None)
            self._items[key] = value
            while len(self._items) > self._limit:
                self._items.pop(next(iter(self._items)))


@dataclass(frozen=True)
class TokenContext:
    """What `AuthFileType.access_token` gets besides the parsed file.

    name     the file's name in auth-dir.
    http     a session through the credential's proxy (its `proxy_url`, then `proxy-url`),
             never the environment's; pass `timeout` to each request.
    config   the config store: `config.get("oauth-endpoints", ...)`, or a login's
             `endpoint(config, name)` for the provider URLs users may override.
    memory   a `TokenMemory` kept per app and per auth-file type, e.g. for refreshed tokens
             (which are never written to the file).
    timeout  seconds each request may take.
    """

    name: str
    http: requests.Session
    config: object
    memory: TokenMemory
    timeout: float = 60.0


@dataclass(frozen=True)
class AuthFileType:
    """A kind of token file in auth-dir, recognised by its top-level `"type"` value.

    type      the file's `type` (compared lower-cased), e.g. "gemini"; unique across plugins.
    provider  the id of the registered provider it belongs to.
    listed_as what GET /auth-files shows as `type` and `provider` (upstream's runtime provider,
              e.g. "gemini-cli" for `type: gemini`); default: `type`.
    email     email(data) -> str: the account's email; default: the top-level `email`.
    describe  describe(data, email) -> dict: extra or replaced listing fields (e.g. `account`,
              codex's `id_token` claims); called with the parsed file, must not raise.
    models_channel  the `model-definitions` channel whose models GET /auth-files/models
              lists for such a file; default: `listed_as`.
    access_token  access_token(data, ctx: TokenContext) -> str: the token `$TOKEN$` stands for
              in POST /api-call, refreshed first when the provider needs it; "" when there is
              none, `TokenRefreshError` when a refresh failed. Default: the first non-empty
              token field of the file (`api_call.file_token`).
    """

    type: str
    provider: str
    listed_as: str = ""
    email: Callable[[dict], str] = top_level_email
    describe: Callable[[dict, str], dict] | None = None
    models_channel: str = ""
    access_token: Callable[[dict, TokenContext], str] | None = None

    @property
    def shown(self) -> str:
        return self.listed_as or self.type


@dataclass(frozen=True)
class ModelDefinitions:
    """The static model catalogue of one channel, served by GET /model-definitions/<channel>.

    channel  e.g. "gemini-cli"; unique across all plugins, matched case-insensitively.
    models   upstream's ModelInfo objects as plain dicts (`id`, `object`, `created`,
             `owned_by`, `type`, then the optional fields), in the order they are listed.
    """

    channel: str
    models: list = field(default_factory=list)

    @classmethod
    def load(cls, package: str, resource: str = "models.json") -> list["ModelDefinitions"]:
        """Read `{channel: [ModelInfo, ...], ...}` from a JSON file shipped inside `package`."""
        data = json.loads(resources.files(package).joinpath(resource).read_text(encoding="utf-8"))
        return [cls(channel=channel, models=models) for channel, models in data.items()]
