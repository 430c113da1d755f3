"""The gemini provider plugin."""

from cliproxy_mgmt import ConfigSection, Provider, hookimpl

from .login import register_auth_file_types, register_oauth_starters  # noqa: F401  (hook implementations)

KEY = "gemini-api-key"


def _view(value, data):
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


@hookimpl
def register_providers():
    return [Provider(id="gemini")]


@hookimpl
def register_config_sections():
    return [ConfigSection(key=KEY, view=_view, order=10, provider="gemini")]
