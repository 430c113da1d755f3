"""`/vertex-api-key`: Vertex-compatible
third-party endpoints, an API key plus a base-url; both are required."""

from __future__ import annotations

from operator import itemgetter

from flask import Blueprint

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.conventions import (
    ObjectList,
    add_object_list,
    normalize_headers,
    normalize_models,
    normalize_prefix,
    put_field,
    text,
)

MODEL = {"name": str, "alias": str}
FIELDS = {"api-key": str, "priority": int, "prefix": str, "base-url": str, "proxy-url": str,
          "headers": {str: str}, "models": [MODEL], "weight": int, "excluded-models": [str],
          "disable-cooling": bool, "request-retry": int}


def normalize(item: dict) -> dict | None:
    """Trim; drop the entry without a key or a base-url; keep models with a name and an alias."""
    for name in ("api-key", "base-url"):
        item[name] = text(item.get(name)).strip()
        if not item[name]:
            return None
    put_field(item, "proxy-url", text(item.get("proxy-url")).strip())
    put_field(item, "models", normalize_models(item.get("models"), both=True))
    put_field(item, "prefix", normalize_prefix(item.get("prefix")))
    put_field(item, "headers", normalize_headers(item.get("headers")))
    return item


VERTEX = ObjectList(
    route="/vertex-api-key", key="vertex-api-key", fields=FIELDS, normalize=normalize,
    unique_by=itemgetter("api-key", "base-url"),  # one entry per key and base-url: the first wins
    nullable_fields=("weight", "disable-cooling", "request-retry"),
    patch_fields=("api-key", "weight", "prefix", "base-url", "proxy-url", "headers", "models",
                  "excluded-models", "disable-cooling", "request-retry"))


@hookimpl(specname="register_config_sections")
def vertex_key_sections():
    return [VERTEX.section(order=50, provider="vertex")]


@hookimpl(specname="register_blueprints")
def vertex_key_routes():
    bp = Blueprint("vertex_keys", __name__)
    add_object_list(bp, VERTEX)
    return [bp]
