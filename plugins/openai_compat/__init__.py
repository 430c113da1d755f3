"""The openai_compat provider plugin: named OpenAI-compatible upstreams."""

from cliproxy_mgmt import Provider, hookimpl

from .keys import openai_compat_routes, openai_compat_sections  # noqa: F401  (hook implementations)


@hookimpl
def register_providers():
    return [Provider(id="openai-compatibility")]
