"""The xai provider plugin: xAI API keys, the xAI (Grok) device-code login and its token
files, and the xai model catalogue (also served as the `x-ai` and `grok` channels)."""

from cliproxy_mgmt import Provider, hookimpl
from cliproxy_mgmt.records import ModelDefinitions

from .keys import xai_key_routes, xai_key_sections  # noqa: F401  (hook implementations)
from .login import register_auth_file_types, register_oauth_starters  # noqa: F401  (hook implementations)

CHANNEL_ALIASES = ("x-ai", "grok")  # upstream's other names of the xai channel


@hookimpl
def register_providers():
    return [Provider(id="xai", label="xAI")]


@hookimpl
def register_model_definitions():
    [xai] = ModelDefinitions.load(__name__)
    return [xai, *(ModelDefinitions(channel=name, models=xai.models) for name in CHANNEL_ALIASES)]
