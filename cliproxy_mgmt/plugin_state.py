"""Switching plugins off and on at run time, and keeping a switched-off plugin out of service.

Where it is stored: config.yaml, where upstream keeps it, `plugins.configs.<id>.enabled`.
Unlike upstream's plugins (off unless enabled), ours are on unless that key is `false`:
every provider of this server is a plugin. The setting is written by a targeted edit
through the config store, so it survives a restart, and it is read from the store's
current data, so a change (through the API or a hand edit) applies at the next request.

What "out of service" means: every route of the plugin's blueprints, its logins' start
routes, extra routes and browser callbacks answer 409 `plugin_disabled`; POST
/oauth-callback refuses its providers; GET /config leaves its config sections out. Its
config sections stay in config.yaml untouched, and switching it on brings all of it back.
The check per request is one dictionary lookup of the endpoint plus one of a set cached
per config version.

A plugin's id is its pluggy name; a built-in's (`plugins.gemini`) is shortened to its last
part (`gemini`) unless a third-party plugin already uses that name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask import current_app, request

from .errors import ApiError
from .plugin_manager import DEFAULT_PLUGINS

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # upstream's plugin id rule
EXTRA_KEY = "plugin_gate"
MANAGEMENT_ENDPOINT = "management."


def plugin_ids(names) -> dict:
    """plugin id -> pluggy name, for the pluggy names of the registered plugins."""
    names = list(names)
    ids = {}
    for name in names:
        if name not in DEFAULT_PLUGINS:
            ids[_valid_id(name)] = name
    for name in names:
        if name in DEFAULT_PLUGINS:
            short = name.rsplit(".", 1)[-1]
            ids[short if short not in ids else name] = name
    return ids


def _valid_id(name: str) -> str:
    ident = re.sub(r"[^A-Za-z0-9._-]", "-", name).lstrip("._-")[:128]
    return ident or "plugin"


def is_valid_id(ident: str) -> bool:
    return bool(ident) and bool(ID_PATTERN.match(ident))


def plugin_configs(data: dict) -> dict:
    """`plugins.configs` of plain config data (only the mapping entries)."""
    plugins = data.get("plugins")
    configs = plugins.get("configs") if isinstance(plugins, dict) else None
    if not isinstance(configs, dict):
        return {}
    return {str(k): v for k, v in configs.items() if isinstance(v, dict)}


def disabled_ids(data: dict) -> frozenset:
    """The ids whose `plugins.configs.<id>.enabled` is false."""
    return frozenset(k for k, v in plugin_configs(data).items() if v.get("enabled") is False)


@dataclass
class PluginGate:
    """One app's map of what each plugin serves, and the per-request check."""

    ids: dict                                   # plugin id -> pluggy name
    endpoints: dict = field(default_factory=dict)  # endpoint -> plugin id
    logins: dict = field(default_factory=dict)     # id(login) -> plugin id
    sections: dict = field(default_factory=dict)   # config key -> plugin id
    routes: dict = field(default_factory=dict)     # plugin id -> ["METHOD /path", ...]

    def disabled(self, store) -> frozenset:
        """The disabled plugin ids under the store's current config (cached per version)."""
        return store.derived("plugins-disabled", disabled_ids)

    def login_disabled(self, store, login) -> bool:
        owner = self.logins.get(id(login))
        return owner is not None and owner in self.disabled(store)

    def live_sections(self, sections: dict, data: dict) -> dict:
        """The config sections of the plugins that are switched on (for GET /config)."""
        off = disabled_ids(data)
        if not off:
            return sections
        return {key: s for key, s in sections.items() if self.sections.get(key) not in off}


def gate(state=None) -> PluginGate:
    state = state or current_app.extensions["cliproxy_mgmt"]
    return state.extras[EXTRA_KEY]


def init_app(app, management_prefix: str) -> None:
    """Map every endpoint to the plugin that registered it; install the per-request check.

    Call after every blueprint and login route is registered."""
    state = app.extensions["cliproxy_mgmt"]
    registry = state.registry
    ids = plugin_ids(name for name, plugin in state.pm.list_name_plugin() if plugin is not None)
    by_name = {name: ident for ident, name in ids.items()}
    gate_ = PluginGate(ids=ids)
    blueprint_owner = {}
    for plugin, items in registry.contributions.items():
        ident = by_name.get(plugin, plugin)
        for name in items.get("blueprints", ()):
            blueprint_owner[name] = ident
        for login in items.get("logins", ()):
            gate_.logins[id(login)] = ident
        for key in items.get("config_sections", ()):
            gate_.sections[key] = ident
    login_views = getattr(state.extras.get("oauth"), "views", {})
    for rule in app.url_map.iter_rules():
        owner = None
        parts = rule.endpoint.split(".")
        if len(parts) == 3 and parts[0] == MANAGEMENT_ENDPOINT[:-1]:
            owner = blueprint_owner.get(parts[1])
        login = login_views.get(app.view_functions.get(rule.endpoint))
        if owner is None and login is not None:
            owner = gate_.logins.get(id(login))
        if owner is None:
            continue
        gate_.endpoints[rule.endpoint] = owner
        path = rule.rule[len(management_prefix):] if rule.rule.startswith(management_prefix) else rule.rule
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            gate_.routes.setdefault(owner, []).append(f"{method} {path}")
    state.extras[EXTRA_KEY] = gate_
    app.before_request(_refuse_outside_management)


def refuse_if_disabled() -> None:
    """Before a request: 409 `plugin_disabled` when the route belongs to a switched-off plugin."""
    state = current_app.extensions["cliproxy_mgmt"]
    gate_ = state.extras.get(EXTRA_KEY)
    owner = gate_.endpoints.get(request.endpoint) if gate_ is not None else None
    if owner is not None and owner in gate_.disabled(state.store):
        raise ApiError(409, "plugin_disabled",
                       message=f"plugin {owner} is disabled; enable it with PATCH /plugins/{owner}/enabled")


def _refuse_outside_management():
    # Management routes are checked after the management key (the blueprint's own hook);
    # this covers the plugins' routes on the main server (login browser callbacks).
    if request.endpoint and not request.endpoint.startswith(MANAGEMENT_ENDPOINT):
        refuse_if_disabled()
