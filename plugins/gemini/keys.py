"""`/gemini-api-key` and its legacy string view `/generative-language-api-key`.

The entries are upstream's GeminiKey objects. The legacy route is the list of the entries'
keys, and a legacy top-level `generative-language-api-key: [key]` is read as bare entries
and folded into `gemini-api-key` by the next write of the list.
"""

from __future__ import annotations

from operator import itemgetter

from flask import Blueprint

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.conventions import (
    SCOPED_ERROR_RULE,
    ObjectList,
    add_object_list,
    add_string_list,
    dict_items,
    normalize_shared_fields,
    put_field,
    text,
)

KEY = "gemini-api-key"
LEGACY_KEY = "generative-language-api-key"

MODEL = {"name": str, "alias": str}
FIELDS = {"api-key": str, "priority": int, "prefix": str, "base-url": str, "proxy-url": str,
          "models": [MODEL], "headers": {str: str}, "excluded-models": [str], "weight": int,
          "disable-cooling": bool, "request-retry": int, "request-scoped-errors": [SCOPED_ERROR_RULE]}


def normalize(item: dict) -> dict | None:
    """Trim the key (an entry without one is dropped) and the URLs; `models` stay as given."""
    api_key = text(item.get("api-key")).strip()
    if not api_key:
        return None
    item["api-key"] = api_key
    for name in ("base-url", "proxy-url"):
        put_field(item, name, text(item.get(name)).strip())
    return normalize_shared_fields(item)


def read(data: dict) -> list:
    """The entries, then the legacy bare keys (`unique_by` drops those already listed)."""
    legacy = data.get(LEGACY_KEY)
    bare = [{"api-key": k} for k in legacy if isinstance(k, str)] if isinstance(legacy, list) else []
    return dict_items(data, KEY) + bare


GEMINI = ObjectList(
    route="/gemini-api-key", key=KEY, fields=FIELDS, normalize=normalize,
    unique_by=itemgetter("api-key"),  # one entry per key: the first wins
    read=read, legacy_keys=(LEGACY_KEY,), delete_not_found=True, unique_match=True,
    nullable_fields=("weight", "disable-cooling", "request-retry"),
    patch_fields=("api-key", "weight", "prefix", "base-url", "proxy-url", "headers", "excluded-models",
                  "disable-cooling", "request-retry", "request-scoped-errors"))


def legacy_keys(data: dict) -> list:
    return [item["api-key"] for item in GEMINI.entries(data)]


def write_legacy_keys(draft: dict, keys: list) -> None:
    """Rebuild the list from keys: a listed key keeps its entry, a new one is added bare."""
    by_key = {}
    for item in GEMINI.entries(draft):
        by_key.setdefault(item["api-key"], item)
    GEMINI.store_entries(draft, [by_key.get(k.strip(), {"api-key": k}) for k in keys])


@hookimpl(specname="register_config_sections")
def gemini_key_sections():
    return [GEMINI.section(order=10, provider="gemini")]


@hookimpl(specname="register_blueprints")
def gemini_key_routes():
    bp = Blueprint("gemini_keys", __name__)
    add_object_list(bp, GEMINI)
    add_string_list(bp, "/generative-language-api-key", LEGACY_KEY, read=legacy_keys, write=write_legacy_keys)
    return [bp]
