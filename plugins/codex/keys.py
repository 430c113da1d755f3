"""`/codex-api-key`: like a Claude key, but an entry
without a base-url is dropped, at load as well as on every write."""

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

MODEL = {"name": str, "alias": str}
FIELDS = {"api-key": str, "priority": int, "prefix": str, "base-url": str, "proxy-url": str,
          "models": [MODEL], "headers": {str: str}, "excluded-models": [str], "websockets": bool,
          "weight": int, "alpha-search": bool, "disable-cooling": bool, "request-retry": int,
          "request-scoped-errors": [SCOPED_ERROR_RULE]}


def normalize(item: dict) -> dict | None:
    """Trim the key and URLs, clean the models; drop the entry when it has no base-url."""
    for name in ("api-key", "base-url", "proxy-url"):
        if name in item:
            item[name] = text(item[name]).strip()
    if not item.get("base-url"):
        return None
    if "models" in item:
        item["models"] = normalize_models(item["models"])
    return normalize_shared_fields(item)


CODEX = ObjectList(
    route="/codex-api-key", key="codex-api-key", fields=FIELDS, normalize=normalize,
    delete_trim=False, ignore_empty_match=False,
    nullable_fields=("weight", "disable-cooling", "request-retry"),
    patch_fields=("api-key", "weight", "prefix", "base-url", "proxy-url", "alpha-search", "models", "headers",
                  "excluded-models", "disable-cooling", "request-retry", "request-scoped-errors"))


@hookimpl(specname="register_config_sections")
def codex_key_sections():
    return [CODEX.section(order=20, provider="codex")]


@hookimpl(specname="register_blueprints")
def codex_key_routes():
    bp = Blueprint("codex_keys", __name__)
    add_object_list(bp, CODEX)
    return [bp]
