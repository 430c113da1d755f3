"""The openai_compat provider plugin."""

from cliproxy_mgmt import ConfigSection, Provider, hookimpl

KEY = "openai-compatibility"


def _view(value, data):
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


@hookimpl
def register_providers():
    return [Provider(id="openai-compatibility")]


@hookimpl
def register_config_sections():
    return [ConfigSection(key=KEY, view=_view, order=40, provider="openai-compatibility")]
