"""`/xai-api-key`: xAI API keys for the native xAI executor (Responses API).

Upstream's XAIKey is its CodexKey: the same fields and rules (an entry without a base-url is
dropped on every write), except that `alpha-search` is always off for xAI, so it is never
stored. The UI's form default base-url is `https://api.x.ai/v1`.
"""

from __future__ import annotations

from flask import Blueprint

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.conventions import (
    SCOPED_ERROR_RULE,
    ObjectList,
    add_object_list,
    normalize_models,
    normalize_shared_fields,
    text,
)

KEY = "xai-api-key"
MODEL = {"name": str, "alias": str}
FIELDS = {"api-key": str, "priority": int, "weight": int, "prefix": str, "base-url": str, "websockets": bool,
          "proxy-url": str, "models": [MODEL], "headers": {str: str}, "excluded-models": [str],
          "disable-cooling": bool, "request-retry": int, "request-scoped-errors": [SCOPED_ERROR_RULE]}


def normalize(item: dict) -> dict | None:
    """Trim the key and URLs, clean the models; drop the entry when it has no base-url."""
    for name in ("api-key", "base-url", "proxy-url"):
        if name in item:
            item[name] = text(item[name]).strip()
    if not item.get("base-url"):
        return None
    item.pop("alpha-search", None)  # forced off for xAI (upstream), so never written
    if "models" in item:
        item["models"] = normalize_models(item["models"])
    return normalize_shared_fields(item)


XAI = ObjectList(
    route="/xai-api-key", key=KEY, fields=FIELDS, normalize=normalize,
    delete_trim=False, ignore_empty_match=False,
    nullable_fields=("weight", "disable-cooling", "request-retry"),
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
