"""The kimi provider plugin: the Kimi (Moonshot AI) device-code login, its token files and
the kimi model catalogue."""

from cliproxy_mgmt import Provider, hookimpl
from cliproxy_mgmt.records import ModelDefinitions

from .login import register_auth_file_types, register_oauth_starters  # noqa: F401  (hook implementations)


@hookimpl
def register_providers():
    return [Provider(id="kimi", label="Kimi")]


@hookimpl
def register_model_definitions():
    return ModelDefinitions.load(__name__)
