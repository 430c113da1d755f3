"""The amp provider plugin: the `ampcode` block (Amp CLI upstream, keys and model mappings)."""

from cliproxy_mgmt import Provider, hookimpl

from .ampcode import ampcode_routes, ampcode_sections  # noqa: F401  (hook implementations)


@hookimpl
def register_providers():
    return [Provider(id="amp")]
