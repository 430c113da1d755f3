"""The app factory."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from flask import Blueprint, Flask
from flask.json.provider import DefaultJSONProvider

from . import oauth, plugin_state
from .build_info import version_headers
from .config.known_keys import warn_unknown_keys
from .config.schema import CORE_KEYS, make_validator
from .config.store import ConfigStore
from .errors import register_error_handlers
from .plugin_manager import get_plugin_manager
from .registry import Registry, collect, collect_sections
from .safeload import load_json
from .security.ban import BanList
from .security.guard import check_management_access
from .security.keys import KeyVerifier, hash_secret, is_hashed
from .storage.base import Storage
from .storage.files import FileStorage
from .storage.select import open_storage

log = logging.getLogger(__name__)

CONFIG_ENV = "CLIPROXY_MGMT_CONFIG"
MANAGEMENT_PREFIX = "/v0/management"


class StrictJSONProvider(DefaultJSONProvider):
    """Answers keep their key order and non-ASCII text; `request.get_json()` (a plugin's
    route may use it) reads through the same strict, limited loader as every other body."""

    sort_keys = False
    ensure_ascii = False

    def loads(self, s, **kwargs):
        return load_json(s)


@dataclass
class State:
    """Per-app state, stored at `app.extensions["cliproxy_mgmt"]`."""

    store: ConfigStore
    pm: object
    registry: Registry
    local_password: str = ""
    verifier: KeyVerifier = field(default_factory=KeyVerifier)
    bans: BanList = field(default_factory=BanList)
    storage: Storage = field(default_factory=FileStorage)
    extras: dict = field(default_factory=dict)  # per-feature state (usage store, OAuth sessions, ...)


def hash_plaintext_secret(store: ConfigStore) -> None:
    """Replace a plaintext `remote-management.secret-key` by its bcrypt hash (a targeted edit)."""
    secret = store.get("remote-management", "secret-key", default="")
    if not secret or not isinstance(secret, str) or is_hashed(secret):
        return
    hashed = hash_secret(secret)
    store.edit(lambda d: d["remote-management"].__setitem__("secret-key", hashed))


def core_blueprints() -> list[Blueprint]:
    """The core's own resources, each a blueprint module with a `bp`."""
    from . import config_api, index, openapi, plugins_api, settings
    from .authfiles import api as authfiles_api
    from .oauth import api as oauth_api

    return [index.bp, settings.bp, config_api.bp, openapi.bp, authfiles_api.bp, oauth_api.bp,
            plugins_api.bp, *feature_blueprints()]


def feature_blueprints() -> list[Blueprint]:
    """Usage statistics, logs and the outbound-request routes."""
    from . import api_call, latest_version, logs, quota, scoped_errors, usage, usage_queue

    return [usage.bp, logs.bp, api_call.bp, latest_version.bp, scoped_errors.bp, quota.bp, usage_queue.bp]


def init_features(app: Flask) -> None:
    """Per-app state and app-level routes of the features: usage store, log file, panel, CORS,
    /healthz, the auth-dir's leftovers."""
    from . import authfiles, cors, health, logs, usage, usage_queue, web_ui

    for feature in (usage, usage_queue, logs, web_ui, cors, health, authfiles):
        feature.init_app(app)


def create_app(config_path: str | None = None, *, plugins=(), load_entrypoints: bool = True,
               local_password: str = "", blocked=()) -> Flask:
    """Build the app on `config_path` (default: $CLIPROXY_MGMT_CONFIG, then ./config.yaml).

    `plugins` are extra plugin objects (tests), `load_entrypoints` loads third-party plugins,
    `local_password` is `serve --local-password`: valid for loopback clients, never stored.
    """
    path = config_path or os.environ.get(CONFIG_ENV) or "config.yaml"
    pm = get_plugin_manager(load_entrypoints=load_entrypoints, extra=plugins, blocked=blocked)
    section_owners: dict = {}
    sections = collect_sections(pm, CORE_KEYS, section_owners)
    storage = open_storage(pm, path, os.environ)
    try:
        store = ConfigStore(path, validate=make_validator(sections), backend=storage.config)
    except BaseException:
        storage.close()
        raise
    storage.on_change(lambda: store.refresh(force=True))
    registry = collect(pm, store, sections, section_owners)

    app = Flask(__name__)
    app.json = StrictJSONProvider(app)
    register_error_handlers(app)
    state = State(store=store, pm=pm, registry=registry, local_password=local_password or "",
                  storage=storage, bans=storage.bans or BanList())
    app.extensions["cliproxy_mgmt"] = state

    management = Blueprint("management", __name__, url_prefix=MANAGEMENT_PREFIX)
    management.before_request(check_management_access)
    management.before_request(plugin_state.refuse_if_disabled)

    @management.after_request
    def _version_headers(response):
        response.headers.update(version_headers())
        return response

    for child in core_blueprints() + registry.blueprints:
        management.register_blueprint(child)
    oauth.init_app(app, management)  # the plugins' logins and their browser callbacks
    app.register_blueprint(management)
    plugin_state.init_app(app, MANAGEMENT_PREFIX)  # switched-off plugins' routes answer 409

    store.on_load(hash_plaintext_secret)
    store.on_load(warn_unknown_keys(sections))
    init_features(app)
    warn_undescribed_routes(app)
    return app


def warn_undescribed_routes(app: Flask) -> None:
    """A route (a plugin's, usually) missing from GET /openapi.json is worth a start-up warning."""
    from .openapi import undescribed

    for route in undescribed(app):
        method, _, path = route.partition(" ")
        log.warning("route %s %s%s has no OpenAPI description (openapi.describe), so "
                    "/openapi.json leaves it out", method, MANAGEMENT_PREFIX, path)
