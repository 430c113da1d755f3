"""The qwen provider plugin."""

from cliproxy_mgmt import Provider, hookimpl


@hookimpl
def register_providers():
    return [Provider(id="qwen")]
