"""`GET /model-definitions/<channel>` and the `register_model_definitions` hook."""

from __future__ import annotations

import pytest

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.records import ModelDefinitions
from cliproxy_mgmt.registry import PluginError
from cliproxy_mgmt.testing import ManagementClient

CHANNELS = {"claude": 10, "gemini": 7, "vertex": 12, "gemini-cli": 6, "aistudio": 10, "codex": 11,
            "qwen": 4, "iflow": 15, "gemini-interactions": 7, "kimi": 8, "antigravity": 13, "xai": 16,
            "x-ai": 16, "grok": 16}
ALWAYS = ("id", "object", "created", "owned_by", "type")
OPTIONAL = {"display_name", "name", "version", "description", "inputTokenLimit", "outputTokenLimit",
            "supportedGenerationMethods", "context_length", "max_completion_tokens",
            "supported_parameters", "thinking", "supportedInputModalities", "supportedOutputModalities"}


class Acme:
    __name__ = "acme-models"

    @hookimpl
    def register_model_definitions(self):
        return [ModelDefinitions("Acme-Chat", [{"id": "acme-1", "object": "model", "created": 1,
                                                "owned_by": "acme", "type": "acme"}])]


def test_hook_register_model_definitions(make_app):
    mgmt = ManagementClient(make_app(plugins=[Acme()]).test_client())
    assert mgmt.get("/model-definitions/acme-chat").get_json() == {
        "channel": "acme-chat", "models": [{"id": "acme-1", "object": "model", "created": 1,
                                           "owned_by": "acme", "type": "acme"}]}


def test_a_channel_registered_twice_is_a_start_up_error(make_app):
    class Twin:
        __name__ = "twin-models"

        @hookimpl
        def register_model_definitions(self):
            return [ModelDefinitions("GEMINI", [])]
    with pytest.raises(PluginError, match="'gemini'.*'twin-models'"):
        make_app(plugins=[Twin()])


@pytest.mark.parametrize("channel, count", CHANNELS.items())
def test_built_in_catalogues_have_upstream_shape(mgmt, channel, count):
    body = mgmt.get(f"/model-definitions/{channel.upper()}").get_json()
    assert body["channel"] == channel and len(body["models"]) == count
    for model in body["models"]:
        assert all(model.get(k) not in (None, "") for k in ALWAYS) and model["object"] == "model"
        assert set(model) <= set(ALWAYS) | OPTIONAL
        assert all(v not in (0, False, "", [], {}) for v in (model.get("thinking") or {}).values())


@pytest.mark.parametrize("channel", ["openai", "anthropic", " Gemini-API "])
def test_unknown_channel(mgmt, channel):
    r = mgmt.get(f"/model-definitions/{channel}")
    assert (r.status_code, r.get_json()) == (400, {"error": "unknown channel", "channel": channel.strip()})


def test_blank_channel_is_required(mgmt):
    r = mgmt.get("/model-definitions/%20")
    assert (r.status_code, r.get_json()) == (400, {"error": "channel is required"})


def test_channel_aliases_serve_the_same_catalogue(mgmt):
    """gemini-interactions is the gemini list; x-ai and grok are the xai list (upstream)."""
    models = lambda channel: mgmt.get(f"/model-definitions/{channel}").get_json()["models"]  # noqa: E731
    assert models("gemini-interactions") == models("gemini")
    assert models("x-ai") == models("grok") == models("xai")
    xai_ids = [m["id"] for m in models("xai")]
    assert xai_ids[-6:] == ["grok-imagine-image", "grok-imagine-image-quality", "grok-imagine-image-2.0",
                            "grok-imagine-video", "grok-imagine-video-1.5", "grok-imagine-video-1.5-preview"]
    assert all(m["type"] == "antigravity" and m["created"] == 0 for m in models("antigravity"))
