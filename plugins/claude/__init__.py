"""The claude provider plugin: Claude API keys, header defaults and the claude model catalogue."""

from cliproxy_mgmt import Provider, hookimpl
from cliproxy_mgmt.records import ModelDefinitions

from .keys import claude_key_routes, claude_key_sections  # noqa: F401  (hook implementations)
from .login import register_auth_file_types, register_oauth_starters  # noqa: F401  (hook implementations)


@hookimpl
def register_providers():
    return [Provider(id="claude")]


@hookimpl
def register_model_definitions():
    return ModelDefinitions.load(__name__)
