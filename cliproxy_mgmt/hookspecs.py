"""The plugin contract of cliproxy-mgmt.

A plugin is a module or object with functions marked `@cliproxy_mgmt.hookimpl`, registered
through the `cliproxy_mgmt` entry-point group (third parties) or `DEFAULT_PLUGINS`
(the built-in providers, which use nothing but these hooks). Every hook here except the
events at the end is a *registration* hook: it is called once per app, at start-up, and
returns plain data; the host validates it (duplicate ids are a start-up error naming both
plugins) and does the wiring. An implementation may accept any subset of a hook's
arguments (pluggy's opt-in arguments), so arguments added later never break a plugin.
Returning None means "nothing to add".

`config` is the app's ConfigStore: `config.data` is the current config.yaml as plain
data (read it at request time, it changes on every edit and reload), `config.edit(fn)`
changes it.
"""

from __future__ import annotations

import pluggy

from .plugin_manager import NAME

hookspec = pluggy.HookspecMarker(NAME)


# -- what a provider is --------------------------------------------------------------

@hookspec
def register_providers(config):
    """Return a list of `records.Provider` this plugin adds.

    :param config: the ConfigStore.
    :return: providers; each `id` must be unique across all plugins.
    """


@hookspec
def register_config_sections():
    """Return a list of `records.ConfigSection`: the top-level config keys this plugin owns.

    Called before the config is loaded (sections validate it), so it takes no config.
    Each section says how GET /config shows it, how a loaded value is validated, and which
    legacy keys it replaces. Keys must be unique across all plugins and must not be core keys.
    """


# -- HTTP ------------------------------------------------------------------------------

@hookspec
def register_blueprints(config):
    """Return a list of `flask.Blueprint` to mount under /v0/management.

    The blueprints are nested into the management blueprint, so the management-key guard
    and the JSON error handlers cover them. Leave `url_prefix` unset to keep upstream's
    flat routes (e.g. `/gemini-api-key`). Build the blueprint inside this hook (a blueprint
    can be registered on one app only once it has children); names must be unique.

    :param config: the ConfigStore.
    """


# -- credentials --------------------------------------------------------------------------

@hookspec
def register_oauth_starters(config):
    """Return a list of logins: `cliproxy_mgmt.oauth.OAuthStarter` objects, one per OAuth or
    device-code flow, and plain `cliproxy_mgmt.oauth.Login` objects for other ways of
    obtaining a credential (e.g. a service-account import route).

    A starter names its provider id, its session name (`name`, e.g. "anthropic", plus
    `aliases`), its start route (e.g. `/anthropic-auth-url`), its browser callback route and
    its default endpoint URLs (overridable in config.yaml under `oauth-endpoints.<name>`); it
    implements `authorize(flow)` (the URL to show) and `complete(flow)` (wait for the
    callback or poll, exchange, return the token file). The core owns sessions, callback
    files, the `is_webui` listener, status polling and saving the file. Any login may add
    management routes through `routes()`. Session names and aliases must be unique.

    :param config: the ConfigStore.
    """


@hookspec
def register_auth_file_types(config):
    """Return a list of `records.AuthFileType`: how to recognise a token file in auth-dir (its
    top-level `type`) and what GET /auth-files shows for it (`type`/`provider`, `email`,
    extra fields such as codex's `id_token` claims).

    Each `type` must be unique across all plugins.

    :param config: the ConfigStore.
    """


# -- models ------------------------------------------------------------------------------

@hookspec
def register_model_definitions():
    """Return a list of `records.ModelDefinitions`: the static model catalogue of each channel
    this plugin serves, for `GET /model-definitions/<channel>`.

    Called once per app at start-up, without arguments: the catalogue is data shipped with
    the plugin, not something the config changes (`ModelDefinitions.load(__name__)` in a
    plugin package reads the `models.json` inside it). Channel names are matched
    case-insensitively and must be unique across all plugins; a channel that no plugin
    registers is `400 unknown channel`.
    """


# -- events ------------------------------------------------------------------------------

@hookspec
def record_usage(record):
    """Called once for each upstream request attempt that is reported for usage statistics.

    Unlike the registration hooks above, this one is called at request time, and every
    implementation receives the record. An embedding proxy or a plugin reports a request
    with `cliproxy_mgmt.usage.record_usage(record, app=app)` (or `pm.hook.record_usage(
    record=record)`); the core's own implementation counts it in the app's statistics while
    `usage-statistics-enabled` is true (by upstream's rules). Plugins
    implement it to see every record (e.g. to export metrics). Implementations run in the
    reporting thread: keep them quick, and do not raise. The return value is ignored.

    :param record: a `cliproxy_mgmt.usage.UsageRecord` (model, client key, tokens, ...).
    """


# -- storage -------------------------------------------------------------------------------

@hookspec
def register_storage_backends():
    """Return a list of `cliproxy_mgmt.storage.BackendFactory`: storage backends for the
    config text and the auth files (e.g. git or S3), chosen at start-up by the environment.

    Called once, before the config is loaded. A factory's `selected(environ)` says whether
    the environment asks for it; `open(config_path, environ)` returns a `Storage` (see
    `cliproxy_mgmt/storage/base.py`: a `ConfigBackend` with compare-and-swap writes, an
    `AuthBackend`, and a change callback). `CLIPROXY_MGMT_STORAGE=<name>` selects by name.
    """
