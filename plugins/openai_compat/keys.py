"""`/openai-compatibility`: named
OpenAI-compatible upstreams, selected by `name`; an entry without a base-url is dropped.

A legacy `api-keys: [key]` inside an entry is migrated into `api-key-entries` (skipping
empty and repeated keys) and disappears from the file on the next write.
"""

from __future__ import annotations

from flask import Blueprint

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.conventions import (
    SCOPED_ERROR_RULE,
    ObjectList,
    add_object_list,
    normalize_headers,
    normalize_prefix,
    put_field,
    text,
)

KEY_ENTRY = {"api-key": str, "proxy-url": str, "weight": int}
FIELDS = {"name": str, "priority": int, "prefix": str, "base-url": str, "api-key-entries": [KEY_ENTRY],
          "api-keys": [str], "models": [{"name": str, "alias": str}], "headers": {str: str},
          "disabled": bool, "support-prompt-cache-key": bool, "disable-cooling": bool,
          "request-retry": int, "request-scoped-errors": [SCOPED_ERROR_RULE]}


def key_entries(item: dict) -> list:
    """The entries' keys trimmed (an empty key is kept), then the legacy keys not yet listed."""
    entries = [{**e, "api-key": text(e.get("api-key")).strip()}
               for e in item.get("api-key-entries") or () if isinstance(e, dict)]
    listed = {e["api-key"] for e in entries}
    for key in item.pop("api-keys", None) or ():
        key = text(key).strip()
        if key and key not in listed:
            listed.add(key)
            entries.append({"api-key": key})
    return entries


def normalize(item: dict) -> dict | None:
    """Trim name and base-url (an entry without a base-url is dropped); `models` stay as given."""
    if "name" in item:
        item["name"] = text(item["name"]).strip()
    base_url = text(item.get("base-url")).strip()
    if not base_url:
        return None
    item["base-url"] = base_url
    put_field(item, "api-key-entries", key_entries(item))
    put_field(item, "prefix", normalize_prefix(item.get("prefix")))
    put_field(item, "headers", normalize_headers(item.get("headers")))
    return item


def key_weights(item: dict) -> list:
    """The routing weights of an upstream: one per `api-key-entries` item (it has none of its own)."""
    entries = item.get("api-key-entries")
    return [(f"api-key-entries[{k}].weight", entry.get("weight"))
            for k, entry in enumerate(entries if isinstance(entries, list) else ()) if isinstance(entry, dict)]


def show(item: dict) -> dict:
    """As upstream shows a provider: `disabled` always present (a disabled one registers no
    credentials but stays in the config)."""
    item["disabled"] = item.get("disabled") is True
    return item


OPENAI_COMPAT = ObjectList(
    route="/openai-compatibility", key="openai-compatibility", fields=FIELDS, normalize=normalize,
    key_field="name", match_param="name", delete_param="name", delete_trim=False,
    ignore_empty_match=False, missing_message="missing name or index", show=show, weights=key_weights,
    nullable_fields=("disable-cooling", "request-retry"),
    patch_fields=("name", "prefix", "disabled", "disable-cooling", "base-url", "api-key-entries", "models",
                  "headers", "support-prompt-cache-key", "request-retry", "request-scoped-errors"))


def credentials(data: dict) -> list:
    """Each key of each upstream, filed under the upstream's lower-cased `name` (GET /api-key-usage);
    none of a `disabled` upstream, which the proxy does not register."""
    return [(text(item.get("name")).strip().lower() or "unknown", item["base-url"], entry["api-key"])
            for item in OPENAI_COMPAT.entries(data) if item.get("disabled") is not True
            for entry in item.get("api-key-entries") or () if entry.get("api-key")]


@hookimpl(specname="register_config_sections")
def openai_compat_sections():
    return [OPENAI_COMPAT.section(order=40, provider="openai-compatibility",
                                  credentials=credentials)]


@hookimpl(specname="register_blueprints")
def openai_compat_routes():
    bp = Blueprint("openai_compat_keys", __name__)
    add_object_list(bp, OPENAI_COMPAT)
    return [bp]
