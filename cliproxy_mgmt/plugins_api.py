"""/plugins and /plugin-store: the installed plugins as the web UI's Plugins page reads them.

Shapes are upstream's (its plugins are Go shared objects; ours are pluggy plugins, built-in
or installed with pip). Every entry carries upstream's keys, plus what a pluggy plugin is
about: `name`, `version`, `description`, `builtin` and `registers` (its providers, config
sections, routes, logins, auth-file types and model channels). Switching a plugin off or on
is `plugin_state`'s business; the setting lives at `plugins.configs.<id>.enabled`, and the
rest of `plugins.configs.<id>` is the plugin's config (GET/PUT/PATCH /plugins/<id>/config).
There is no plugin store: GET /plugin-store is an empty store, installing is refused.
Errors use upstream's envelope `{"error": "<code>", "message": "<text>"}`.
"""

from __future__ import annotations

import inspect
import os

from flask import Blueprint, current_app, jsonify

from .build_info import version as package_version
from .conventions import read_body, set_path, store
from .errors import ApiError
from .oauth.starter import OAuthStarter
from .openapi import describe
from .plugin_manager import DEFAULT_PLUGINS
from .plugin_state import gate, is_valid_id, plugin_configs
from .safeload import INT64_MAX, INT64_MIN, load_json

bp = Blueprint("plugins_api", __name__)

PLUGINS_DIR = "plugins"  # upstream's default; ours is the package of built-in providers
_OBJECT = {"type": "object"}
_ID = ("id", "string", "")


def _state():
    return current_app.extensions["cliproxy_mgmt"]


def _checked_id(ident: str) -> str:
    if not is_valid_id(ident):
        raise ApiError(400, "invalid_plugin_id", message="invalid plugin id")
    return ident


def _description(plugin) -> str:
    doc = inspect.getdoc(plugin) if inspect.ismodule(plugin) else inspect.getdoc(type(plugin))
    return (doc or "").strip().split("\n\n", 1)[0].replace("\n", " ")


def _path(plugin) -> str:
    path = getattr(plugin, "__file__", None) or getattr(inspect.getmodule(type(plugin)), "__file__", None) or ""
    return os.path.dirname(path) if os.path.basename(path) == "__init__.py" else path


def _registered_entry(state, ident: str, name: str, plugin, versions: dict, configs: dict, off) -> dict:
    contributions = state.registry.contributions.get(name, {})
    logins = contributions.get("logins", ())
    oauth_keys = [login.oauth_provider for login in logins
                  if isinstance(login, OAuthStarter) and login.oauth_provider]
    version = versions.get(id(plugin)) or (package_version() if name in DEFAULT_PLUGINS else "")
    enabled = ident not in off
    title = ident
    providers = contributions.get("providers", ())
    labels = [p.label for p in state.registry.providers.values() if p.id in providers and p.label]
    if labels:
        title = labels[0]
    return {
        "id": ident, "path": _path(plugin), "configured": ident in configs, "registered": True,
        "enabled": enabled, "effective_enabled": enabled,
        "supports_oauth": bool(oauth_keys), "oauth_provider": oauth_keys[0] if oauth_keys else "",
        "logo": "", "config_fields": [], "menus": [],
        "metadata": {"name": title, "version": version, "author": "", "github_repository": "",
                     "logo": "", "config_fields": []},
        "name": title, "version": version, "description": _description(plugin),
        "builtin": name in DEFAULT_PLUGINS,
        "registers": {
            "providers": list(providers),
            "config_sections": list(contributions.get("config_sections", ())),
            "routes": list(gate(state).routes.get(ident, ())),
            "logins": [getattr(login, "route", "") or login.name or login.provider for login in logins],
            "auth_file_types": list(contributions.get("auth_file_types", ())),
            "model_channels": list(contributions.get("model_definitions", ())),
        },
    }


def _configured_entry(ident: str, config: dict) -> dict:
    """A `plugins.configs` entry that names no installed plugin."""
    return {"id": ident, "path": "", "configured": True, "registered": False,
            "enabled": config.get("enabled") is not False, "effective_enabled": False,
            "supports_oauth": False, "oauth_provider": "", "logo": "", "config_fields": [],
            "menus": [], "metadata": None}


def list_plugins(state) -> dict:
    data = state.store.data
    configs = plugin_configs(data)
    off = gate(state).disabled(state.store)
    pm = state.pm
    versions = {id(plugin): dist.version for plugin, dist in pm.list_plugin_distinfo()}
    entries = {}
    for ident, name in gate(state).ids.items():
        plugin = pm.get_plugin(name)
        if plugin is not None:
            entries[ident] = _registered_entry(state, ident, name, plugin, versions, configs, off)
    for ident, config in configs.items():
        if ident not in entries and is_valid_id(ident):
            entries[ident] = _configured_entry(ident, config)
    return {"plugins_enabled": True, "plugins_dir": PLUGINS_DIR,
            "plugins": [entries[ident] for ident in sorted(entries)]}


@bp.get("/plugins")
@describe("The installed plugins: what each registers, and whether it is switched on",
          ok={"type": "object", "properties": {"plugins_enabled": {"type": "boolean"},
                                               "plugins_dir": {"type": "string"},
                                               "plugins": {"type": "array", "items": _OBJECT}}})
def get_plugins():
    return jsonify(list_plugins(_state()))


def _json_object_body() -> dict:
    try:
        body = load_json(read_body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_body", message=str(exc)) from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", message="body must be a JSON object")
    return body


def _check_config(config: dict) -> None:
    if "enabled" in config and not isinstance(config["enabled"], bool):
        raise ApiError(400, "invalid_config", message="enabled must be a boolean")
    priority = config.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise ApiError(400, "invalid_config", message="priority must be an integer")
    if priority is not None and not INT64_MIN <= priority <= INT64_MAX:  # (Go's int)
        raise ApiError(400, "invalid_config", message="priority is out of range")


def _write_config(ident: str, change) -> None:
    """Apply `change(config)` to `plugins.configs.<id>` by a targeted edit: only the keys that
    change are written, so the entry's other keys and comments stay as they are."""
    def edit(draft):
        current = plugin_configs(draft).get(ident)
        config = dict(current) if isinstance(current, dict) else {}
        change(config)
        _check_config(config)
        if not isinstance(current, dict):
            set_path(draft, ("plugins", "configs", ident), config)
            return
        for key in [k for k in current if k not in config]:
            del current[key]
        for key, value in config.items():
            if key not in current or current[key] != value:
                current[key] = value
    store().edit(edit)


@bp.patch("/plugins/<ident>/enabled")
@describe("Switch a plugin on or off (its routes, logins and config sections; its config is kept)",
          body={"type": "object", "properties": {"enabled": {"type": "boolean"}}, "required": ["enabled"]},
          ok={"type": "object", "properties": {"status": {"type": "string"}}})
def patch_plugin_enabled(ident: str):
    _checked_id(ident)
    try:
        body = load_json(read_body())
    except (ValueError, UnicodeDecodeError):
        body = None
    enabled = body.get("enabled") if isinstance(body, dict) else None
    if not isinstance(enabled, bool):
        raise ApiError(400, "invalid_body", message="enabled is required")
    _write_config(ident, lambda config: config.__setitem__("enabled", enabled))
    return jsonify({"status": "ok"})


def _known(state, ident: str) -> bool:
    return ident in gate(state).ids or ident in plugin_configs(state.store.data)


@bp.get("/plugins/<ident>/config")
@describe("A plugin's config (`plugins.configs.<id>`)", ok=_OBJECT)
def get_plugin_config(ident: str):
    _checked_id(ident)
    state = _state()
    if not _known(state, ident):
        raise ApiError(404, "plugin_not_found", message="plugin not found")
    return jsonify(plugin_configs(state.store.data).get(ident, {}))


@bp.put("/plugins/<ident>/config")
@describe("Replace a plugin's config", body=_OBJECT, ok={"type": "object", "properties": {"status": {"type": "string"}}})
def put_plugin_config(ident: str):
    _checked_id(ident)
    body = _json_object_body()

    def replace(config):
        config.clear()
        config.update(body)
    _write_config(ident, replace)
    return jsonify({"status": "ok"})


@bp.patch("/plugins/<ident>/config")
@describe("Change keys of a plugin's config (null removes a key)", body=_OBJECT,
          ok={"type": "object", "properties": {"status": {"type": "string"}}})
def patch_plugin_config(ident: str):
    _checked_id(ident)
    body = _json_object_body()

    def merge(config):
        for key, value in body.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
    _write_config(ident, merge)
    return jsonify({"status": "ok"})


@bp.delete("/plugins/<ident>")
@describe("Remove a plugin's config entry (an installed plugin is uninstalled with pip)", ok=_OBJECT)
def delete_plugin(ident: str):
    _checked_id(ident)
    state = _state()
    if ident in gate(state).ids:
        raise ApiError(409, "plugin_delete_unsupported", restart_required=False,
                       message=f"plugin {ident} is an installed Python package: uninstall it with pip, "
                               "or switch it off")
    if ident not in plugin_configs(state.store.data):
        raise ApiError(404, "plugin_not_found", message="plugin not found")

    def remove(draft):
        del draft["plugins"]["configs"][ident]
    store().edit(remove)
    return jsonify({"status": "deleted", "id": ident, "path": "", "file_deleted": False,
                    "configured_removed": True, "restart_required": False})


@bp.get("/plugin-store")
@describe("The plugin store: always empty (plugins are installed with pip)", ok=_OBJECT)
def get_plugin_store():
    return jsonify({"plugins_enabled": True, "plugins_dir": PLUGINS_DIR, "sources": [], "plugins": []})


@bp.post("/plugin-store/<ident>/install")
@describe("Install from the plugin store: refused, there is none", query=[
    ("source", "string", "store source id"), ("version", "string", "plugin version")], ok=_OBJECT)
def install_plugin(ident: str):
    _checked_id(ident)
    raise ApiError(404, "plugin_store_unavailable",
                   message="this server has no plugin store: install plugins with pip and restart it")
