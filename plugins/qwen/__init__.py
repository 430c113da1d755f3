"""The qwen provider plugin: the device-code login and qwen token files."""

from cliproxy_mgmt import Provider, hookimpl
from cliproxy_mgmt.records import ModelDefinitions

from .login import register_auth_file_types, register_oauth_starters  # noqa: F401  (hook implementations)


@hookimpl
def register_providers():
    return [Provider(id="qwen")]


@hookimpl
def register_model_definitions():
    return ModelDefinitions.load(__name__)
