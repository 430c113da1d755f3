"""The antigravity provider plugin: the Antigravity (Google) OAuth login, its token files and
the antigravity model catalogue."""

from cliproxy_mgmt import Provider, hookimpl
from cliproxy_mgmt.records import ModelDefinitions

from .login import register_auth_file_types, register_oauth_starters  # noqa: F401  (hook implementations)


@hookimpl
def register_providers():
    return [Provider(id="antigravity", label="Antigravity")]


@hookimpl
def register_model_definitions():
    return ModelDefinitions.load(__name__)
