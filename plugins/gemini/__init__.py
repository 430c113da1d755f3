"""The gemini provider plugin: Gemini API keys, and the gemini, gemini-cli and aistudio model catalogues."""

from cliproxy_mgmt import Provider, hookimpl
from cliproxy_mgmt.records import ModelDefinitions

from .keys import gemini_key_routes, gemini_key_sections  # noqa: F401  (hook implementations)
from .login import register_auth_file_types, register_oauth_starters  # noqa: F401  (hook implementations)


@hookimpl
def register_providers():
    return [Provider(id="gemini")]


@hookimpl
def register_model_definitions():
    return ModelDefinitions.load(__name__)
