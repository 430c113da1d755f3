"""The built-in provider plugins, each an ordinary pluggy plugin (see cliproxy_mgmt/hookspecs.py).

This folder is installed as the package `cliproxy_mgmt.providers` (setup.py), so an installed
cliproxy-mgmt adds no top-level name besides `cliproxy_mgmt`.
"""

# Registered by the core in this order, by dotted name.
PROVIDER_PLUGINS = (
    "cliproxy_mgmt.providers.gemini",
    "cliproxy_mgmt.providers.claude",
    "cliproxy_mgmt.providers.codex",
    "cliproxy_mgmt.providers.openai_compat",
    "cliproxy_mgmt.providers.vertex",
    "cliproxy_mgmt.providers.amp",
    "cliproxy_mgmt.providers.qwen",
    "cliproxy_mgmt.providers.iflow",
    "cliproxy_mgmt.providers.xai",
    "cliproxy_mgmt.providers.kimi",
    "cliproxy_mgmt.providers.antigravity",
)
