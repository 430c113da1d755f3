"""Unknown top-level config keys: kept (they may be upstream's newer keys), but named in a warning.

A key is known when the core's schema, a plugin's config section (or its legacy keys) or
CLIProxyAPI itself reads it. A misspelling such as `remote-managment:` silently does
nothing, so every load warns about it with the closest known key.
"""

from __future__ import annotations

import difflib
import logging

from .schema import CORE_KEYS

log = logging.getLogger(__name__)

# Top-level keys of CLIProxyAPI's own config (its Config struct) that this server does not
# validate itself; provider sections come from the plugins.
UPSTREAM_KEYS = frozenset({
    "host", "port", "tls", "credential-concurrency", "credential-in-flight", "remote-management",
    "plugins", "auth-dir", "debug", "pprof", "commercial-mode", "logging-to-file",
    "logs-max-total-size-mb", "error-logs-max-files", "usage-statistics-enabled",
    "redis-usage-queue-retention-seconds", "disable-cooling", "save-cooldown-status",
    "transient-error-cooldown-seconds", "auth-auto-refresh-workers", "request-retry",
    "max-retry-credentials", "max-retry-interval", "quota-exceeded", "routing", "ws-auth",
    "antigravity-signature-cache-enabled", "antigravity-signature-bypass-strict", "antigravity",
    "gemini-api-key", "interactions-api-key", "codex-api-key", "xai-api-key", "xai", "codex",
    "codex-header-defaults", "claude-api-key", "claude-header-defaults", "disable-claude-cloak-mode",
    "openai-compatibility", "vertex-api-key", "oauth-excluded-models", "oauth-model-alias",
    "oauth-request-scoped-errors", "payload", "proxy-url", "disable-image-generation",
    "gpt-image-2-base-model", "video-result-auth-cache-ttl", "force-model-prefix", "request-log",
    "claude-code", "api-keys", "passthrough-headers", "streaming", "nonstream-keepalive-interval",
    # legacy keys upstream still reads and migrates
    "auth", "generative-language-api-key", "amp-upstream-url", "amp-upstream-api-key",
    "amp-restrict-management-to-localhost", "amp-model-mappings", "ampcode",
})


def known_keys(sections: dict) -> frozenset:
    """Every top-level key something reads: the core, the plugins' sections, CLIProxyAPI."""
    plugin_keys = {k for key, section in sections.items()
                   for k in (key, *getattr(section, "legacy_keys", ()))}
    return CORE_KEYS | UPSTREAM_KEYS | plugin_keys


def unknown_key_warnings(data: dict, sections: dict) -> list[str]:
    """One message per unknown top-level key, with the closest known key when there is one."""
    known = known_keys(sections)
    messages = []
    for key in data:
        if not isinstance(key, str) or key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]}?)" if close else ""
        messages.append(f"unknown config key {key}{hint}: kept, but nothing reads it")
    return messages


def warn_unknown_keys(sections: dict):
    """A `ConfigStore.on_load` listener that logs `unknown_key_warnings` for every loaded text."""
    def listener(store) -> None:
        for message in unknown_key_warnings(store.data, sections):
            log.warning("%s", message)

    return listener
