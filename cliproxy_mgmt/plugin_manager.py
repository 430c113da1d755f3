"""Building the plugin manager: one fresh manager per app, never a module global."""

from __future__ import annotations

import importlib
import os
import sys
import types

import pluggy

from .registry import PluginError

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


class HookMismatch(PluginError, pluggy.PluginValidationError):
    """A plugin implements a hook the specs do not have, or with arguments they do not have."""

    def __init__(self, plugin, message: str):
        pluggy.PluginValidationError.__init__(self, plugin, message)


def get_plugin_manager(*, load_entrypoints: bool = True, extra=(), blocked=()) -> pluggy.PluginManager:
    """Return a new manager: specs, blocked names, entry points, built-ins, `extra`, then check_pending().

    A plugin that fails to import, or implements a hook the specs do not have (a misspelled
    name) or with arguments they do not have, is a `registry.PluginError` naming it.
    """
    from . import hookspecs

    pm = pluggy.PluginManager(NAME)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    try:
        if load_entrypoints:
            try:
                pm.load_setuptools_entrypoints(NAME)
            except Exception as exc:  # noqa: BLE001 - whatever a plugin's import raises
                raise PluginError(_import_failure(exc)) from None
        for dotted in DEFAULT_PLUGINS:
            if not pm.is_blocked(dotted):
                pm.register(importlib.import_module(dotted), name=dotted)
        for plugin in extra:
            pm.register(plugin)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise HookMismatch(exc.plugin, f"plugin {_plugin_name(pm, exc.plugin)!r} does not fit the hook "
                                       f"specs: {_hook_problem(exc)}") from None
    if os.environ.get(TRACE_ENV):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def _plugin_name(pm, plugin) -> str:
    """The name it was registered under, else its module's or class's name (not an id)."""
    name = pm.get_name(plugin)
    if name and not name.isdigit():
        return name
    return getattr(plugin, "__name__", None) or type(plugin).__qualname__


def _import_failure(exc: Exception) -> str:
    """Name the entry point whose import failed (pluggy's exception does not)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=NAME):
        try:
            ep.load()
        except Exception as again:  # noqa: BLE001
            return f"plugin {ep.name!r} ({ep.value}) failed to import: {type(again).__name__}: {again}"
    return f"a plugin failed to import: {type(exc).__name__}: {exc}"


def _hook_problem(exc: pluggy.PluginValidationError) -> str:
    """pluggy's message without the plugin's repr (a module path), e.g. "unknown hook 'x'"."""
    text = str(exc)
    if text.startswith("unknown hook"):
        return text.split(" in plugin ", 1)[0]
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())  # one line


def _shipped(plugin) -> bool:
    """Part of this package (the core's own plugins and the built-in providers)?"""
    module = plugin.__name__ if isinstance(plugin, types.ModuleType) else type(plugin).__module__
    return module.split(".")[0] in (NAME, BUILTIN_PROVIDERS)


def describe_plugins(pm: pluggy.PluginManager) -> list[dict]:
    """Name, version and implemented hooks of every registered plugin (a built-in's version is
    the package's own)."""
    from . import __version__

    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    described = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        builtin = __version__ if _shipped(plugin) else None
        described.append({
            "name": name,
            "version": dist.version if dist is not None else builtin,
            "hooks": sorted(impl.name for impl in pm.get_hookcallers(plugin) or ()),
        })
    return sorted(described, key=lambda d: d["name"])
