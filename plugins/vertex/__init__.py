"""The vertex provider plugin: Vertex-compatible API keys and the vertex model catalogue."""

from cliproxy_mgmt import Provider, hookimpl
from cliproxy_mgmt.records import ModelDefinitions

from .keys import vertex_key_routes, vertex_key_sections  # noqa: F401  (hook implementations)
from .login import register_auth_file_types, register_oauth_starters  # noqa: F401  (hook implementations)


@hookimpl
def register_providers():
    return [Provider(id="vertex")]


@hookimpl
def register_model_definitions():
    return ModelDefinitions.load(__name__)
