"""`/interactions-api-key`: Gemini API keys used only for direct `/v1beta/interactions`
requests (upstream's runtime provider `gemini-interactions`).

The entries are upstream's GeminiKey, sanitised as upstream does for this newer list: an
entry needs an api-key or a base-url, and duplicates (same api-key, base-url, proxy-url,
prefix and headers) keep the first.
"""

from __future__ import annotations

from flask import Blueprint

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.conventions import (
    SCOPED_ERROR_RULE,
    ObjectList,
    add_object_list,
    normalize_shared_fields,
    put_field,
    text,
)

KEY = "interactions-api-key"
MODEL = {"name": str, "alias": str}
FIELDS = {"api-key": str, "priority": int, "weight": int, "prefix": str, "base-url": str, "proxy-url": str,
          "models": [MODEL], "headers": {str: str}, "excluded-models": [str], "disable-cooling": bool,
          "request-retry": int, "request-scoped-errors": [SCOPED_ERROR_RULE]}


def normalize(item: dict) -> dict | None:
    """Trim the key and the URLs; drop the entry when it has neither a key nor a base-url."""
    item["api-key"] = text(item.get("api-key")).strip()
    for name in ("base-url", "proxy-url"):
        put_field(item, name, text(item.get(name)).strip())
    if not item["api-key"] and not item.get("base-url"):
        return None
    return normalize_shared_fields(item)


def _identity(item: dict) -> tuple:
    """What makes two entries the same (the list keeps the first)."""
    headers = item.get("headers") or {}
    return (item["api-key"], item.get("base-url", ""), item.get("proxy-url", ""), item.get("prefix", ""),
            tuple(sorted(headers.items())))


INTERACTIONS = ObjectList(
    route="/interactions-api-key", key=KEY, fields=FIELDS, normalize=normalize, unique_by=_identity,
    delete_not_found=True, unique_match=True,
    nullable_fields=("weight", "disable-cooling", "request-retry"),
    patch_fields=("api-key", "weight", "prefix", "base-url", "proxy-url", "headers", "excluded-models",
                  "disable-cooling", "request-retry", "request-scoped-errors"))


@hookimpl(specname="register_config_sections")
def interactions_key_sections():
    # /api-key-usage files these keys under upstream's runtime provider name
    return [INTERACTIONS.section(order=15, provider="gemini",
                                 credentials=lambda data: INTERACTIONS.credentials("gemini-interactions", data))]


@hookimpl(specname="register_blueprints")
def interactions_key_routes():
    bp = Blueprint("interactions_keys", __name__)
    add_object_list(bp, INTERACTIONS)
    return [bp]
