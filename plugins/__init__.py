"""The built-in provider plugins, each an ordinary pluggy plugin (see cliproxy_mgmt/hookspecs.py)."""

# Registered by the core in this order, by dotted name.
PROVIDER_PLUGINS = (
    "plugins.gemini",
    "plugins.claude",
    "plugins.codex",
    "plugins.openai_compat",
    "plugins.vertex",
    "plugins.amp",
    "plugins.qwen",
    "plugins.iflow",
    "plugins.xai",
    "plugins.kimi",
    "plugins.antigravity",
)
