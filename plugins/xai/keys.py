"""`/xai-api-key`: xAI API keys for the native xAI executor (Responses API).

Upstream's XAIKey is its CodexKey: the same fields and rules (an entry without a base-url is
dropped on every write), except that `alpha-search` is always off for xAI, so it is never
stored. The UI's form default base-url is `https://api.x.ai/v1`.
"""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.conventions import add_object_list

from ..codex.keys import CODEX
from ..codex.keys import FIELDS as CODEX_FIELDS
from ..codex.keys import normalize as normalize_codex

KEY = "xai-api-key"
FIELDS = {name: kind for name, kind in CODEX_FIELDS.items() if name != "alpha-search"}


def normalize(item: dict) -> dict | None:
    """A Codex key's rules (trimmed key and URLs, clean models, no entry without a base-url),
    without `alpha-search`: forced off for xAI (upstream), so never written."""
    item.pop("alpha-search", None)
    return normalize_codex(item)


# Codex's list, but for its own fields and the PATCH fields upstream's PatchXAIKey accepts.
XAI = replace(
    CODEX, route="/xai-api-key", key=KEY, fields=FIELDS, normalize=normalize,
    patch_fields=("api-key", "priority", "weight", "prefix", "base-url", "websockets", "proxy-url", "models",
                  "headers", "excluded-models", "disable-cooling", "request-retry", "request-scoped-errors"))


@hookimpl(specname="register_config_sections")
def xai_key_sections():
    return [XAI.section(order=25, provider="xai")]


@hookimpl(specname="register_blueprints")
def xai_key_routes():
    bp = Blueprint("xai_keys", __name__)
    add_object_list(bp, XAI)
    return [bp]
