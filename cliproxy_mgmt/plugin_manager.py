"""Building the plugin manager: one fresh manager per app, never a module global."""

from __future__ import annotations

import importlib
import os
import sys

import pluggy

NAME = "cliproxy_mgmt"  # the pluggy project name, the marker name and the entry-point group

# Core features written as plugins (they use the same hooks as any provider).
CORE_PLUGINS = ("cliproxy_mgmt.oauth_models",)

# The package of built-in providers lists its own members (so the core names no provider).
# It is the repo's plugins/ folder, installed under the core's name (setup.py).
BUILTIN_PROVIDERS = "cliproxy_mgmt.providers"

# Every built-in, registered by dotted name so a third-party entry point called e.g.
# "claude" cannot collide with one of them.
DEFAULT_PLUGINS = CORE_PLUGINS + tuple(importlib.import_module(BUILTIN_PROVIDERS).PROVIDER_PLUGINS)

TRACE_ENV = "CLIPROXY_MGMT_TRACE_PLUGINS"


def get_plugin_manager(*, load_entrypoints: bool = True, extra=(), blocked=()) -> pluggy.PluginManager:
    """Return a new manager: specs, blocked names, entry points, built-ins, `extra`, then check_pending()."""
    from . import hookspecs

    pm = pluggy.PluginManager(NAME)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(NAME)
    for dotted in DEFAULT_PLUGINS:
        if not pm.is_blocked(dotted):
            pm.register(importlib.import_module(dotted), name=dotted)
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    if os.environ.get(TRACE_ENV):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def describe_plugins(pm: pluggy.PluginManager) -> list[dict]:
    """Name, distribution version and implemented hooks of every registered plugin."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    described = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        described.append({
            "name": name,
            "version": dist.version if dist is not None else None,
            "hooks": sorted(impl.name for impl in pm.get_hookcallers(plugin) or ()),
        })
    return sorted(described, key=lambda d: d["name"])
