"""The gemini provider plugin: Gemini API keys (also the Interactions API list), and the gemini,
gemini-interactions (the gemini models), gemini-cli and aistudio model catalogues."""

from cliproxy_mgmt import Provider, hookimpl
from cliproxy_mgmt.records import ModelDefinitions

from .interactions import interactions_key_routes, interactions_key_sections  # noqa: F401  (hook implementations)
from .keys import gemini_key_routes, gemini_key_sections  # noqa: F401  (hook implementations)
from .login import register_auth_file_types, register_oauth_starters  # noqa: F401  (hook implementations)


@hookimpl
def register_providers():
    return [Provider(id="gemini")]


@hookimpl
def register_model_definitions():
    catalogues = ModelDefinitions.load(__name__)
    gemini = next(c for c in catalogues if c.channel == "gemini")
    return [*catalogues, ModelDefinitions(channel="gemini-interactions", models=gemini.models)]
