"""Collecting what plugins register, with the host's checks (duplicate ids are start-up errors)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pluggy


class PluginError(RuntimeError):
    """Plugins registered something that cannot work together."""


def call_each(pm: pluggy.PluginManager, hook_name: str, **kwargs) -> list[tuple[str, object]]:
    """Call every implementation of a registration hook; return (plugin name, item) pairs.

    The implementations are called one by one (rather than through `pm.hook`) so every item
    can be attributed to its plugin for the duplicate-id errors. Opt-in arguments are honoured.
    """
    caller = getattr(pm.hook, hook_name)
    found = []
    for impl in caller.get_hookimpls():  # in registration order
        result = impl.function(*[kwargs[name] for name in impl.argnames])
        for item in result or ():
            found.append((impl.plugin_name, item))
    return found


def unique_by(pairs, what: str, key) -> dict:
    """Index items by `key(item)`; a second item with the same id is a PluginError naming both plugins."""
    seen: dict = {}
    owners: dict = {}
    for plugin, item in pairs:
        ident = key(item)
        if ident in seen:
            raise PluginError(f"duplicate {what} {ident!r}: registered by plugin "
                              f"{owners[ident]!r} and by plugin {plugin!r}")
        seen[ident] = item
        owners[ident] = plugin
    return seen


@dataclass
class Registry:
    """Everything the plugins of one app registered, by id."""

    providers: dict = field(default_factory=dict)
    config_sections: dict = field(default_factory=dict)
    blueprints: list = field(default_factory=list)
    oauth_starters: list = field(default_factory=list)
    auth_file_types: dict = field(default_factory=dict)
    model_definitions: dict = field(default_factory=dict)  # lower-cased channel -> [model]
    # plugin name -> {"providers": [id], "config_sections": [key], "blueprints": [name],
    #                 "logins": [login], "auth_file_types": [type], "model_definitions": [channel]}
    contributions: dict = field(default_factory=dict)


def collect_sections(pm: pluggy.PluginManager, core_keys, owners: dict | None = None) -> dict:
    """The config sections, checked against each other and against the core's own keys.

    `owners`, when given, receives section key -> name of the plugin that registered it."""
    pairs = call_each(pm, "register_config_sections")
    if owners is not None:
        owners.update((section.key, plugin) for plugin, section in pairs)
    sections = unique_by(pairs, "config section", lambda s: s.key)
    for key in sections:
        if key in core_keys:
            raise PluginError(f"config section {key!r} is a core key and cannot be taken by a plugin")
    unique_by([(plugin, (key, section)) for plugin, section in pairs for key in (section.key, *section.legacy_keys)],
              "config key (section or legacy)", lambda pair: pair[0])
    return dict(sorted(sections.items(), key=lambda kv: kv[1].order))


def collect(pm: pluggy.PluginManager, config, sections: dict, section_owners: dict | None = None) -> Registry:
    """Call the registration hooks once and check what came back."""
    contributions: dict = {}

    def note(kind, pairs, ident):
        for plugin, item in pairs:
            contributions.setdefault(plugin, {}).setdefault(kind, []).append(ident(item))
        return pairs

    provider_pairs = note("providers", call_each(pm, "register_providers", config=config), lambda p: p.id)
    providers = unique_by(provider_pairs, "provider", lambda p: p.id)
    blueprint_pairs = note("blueprints", call_each(pm, "register_blueprints", config=config), lambda bp: bp.name)
    unique_by(blueprint_pairs, "blueprint name", lambda bp: bp.name)
    starter_pairs = note("logins", call_each(pm, "register_oauth_starters", config=config), lambda login: login)
    starters = [item for _, item in starter_pairs]
    types = unique_by(note("auth_file_types", call_each(pm, "register_auth_file_types", config=config),
                           lambda t: t.type), "auth-file type", lambda t: t.type)
    models = unique_by(note("model_definitions", call_each(pm, "register_model_definitions"),
                            lambda d: d.channel.strip().lower()),
                       "model-definitions channel", lambda d: d.channel.strip().lower())
    for key, plugin in (section_owners or {}).items():
        contributions.setdefault(plugin, {}).setdefault("config_sections", []).append(key)
    for what, items in (("OAuth starter", starters), ("auth-file type", types.values()),
                        ("config section", sections.values())):
        for item in items:
            provider = getattr(item, "provider", None)
            if provider and provider not in providers:
                raise PluginError(f"{what} {item!r} names provider {provider!r}, which no plugin registered")
    return Registry(providers=providers, config_sections=sections,
                    blueprints=[bp for _, bp in blueprint_pairs],
                    oauth_starters=starters, auth_file_types=types,
                    model_definitions={channel: d.models for channel, d in models.items()},
                    contributions=contributions)
