"""`/claude-api-key` and the `claude-header-defaults`
section of GET /config, which only config.yaml sets."""

from __future__ import annotations

from flask import Blueprint

from cliproxy_mgmt import ConfigSection, hookimpl
from cliproxy_mgmt.conventions import (
    SCOPED_ERROR_RULE,
    ObjectList,
    add_object_list,
    fits,
    normalize_models,
    normalize_shared_fields,
    text,
)

MODEL = {"name": str, "alias": str}
FIELDS = {"api-key": str, "priority": int, "prefix": str, "base-url": str, "proxy-url": str,
          "models": [MODEL], "headers": {str: str}, "excluded-models": [str], "weight": int,
          "rebuild-mid-system-message": bool, "disable-cooling": bool, "request-retry": int,
          "request-scoped-errors": [SCOPED_ERROR_RULE], "fingerprint-profile": str,
          "experimental-cch-signing": bool, "cloak": {"mode": str, "strict-mode": bool,
                                                      "sensitive-words": [str], "cache-user-id": bool}}

HEADER_DEFAULTS = "claude-header-defaults"
HEADER_DEFAULT_FIELDS = ("user-agent", "package-version", "runtime-version", "timeout")


def normalize(item: dict) -> dict:
    """Trim the key and URLs, clean the models; an entry is never dropped, even without a key."""
    for name in ("api-key", "base-url", "proxy-url"):
        if name in item:
            item[name] = text(item[name]).strip()
    if "models" in item:
        item["models"] = normalize_models(item["models"])
    return normalize_shared_fields(item)


CLAUDE = ObjectList(
    route="/claude-api-key", key="claude-api-key", fields=FIELDS, normalize=normalize,
    delete_trim=False, ignore_empty_match=False,
    nullable_fields=("weight", "disable-cooling", "request-retry"),
    patch_fields=("api-key", "fingerprint-profile", "weight", "prefix", "base-url", "proxy-url", "models",
                  "headers", "excluded-models", "rebuild-mid-system-message", "disable-cooling",
                  "request-retry", "request-scoped-errors"))


def header_defaults_view(value, data) -> dict:
    value = value if isinstance(value, dict) else {}
    return {name: text(value.get(name)) for name in HEADER_DEFAULT_FIELDS}


def validate_header_defaults(value) -> None:
    if not fits(value, {name: str for name in HEADER_DEFAULT_FIELDS}, strict=False):
        raise ValueError("expected a mapping of strings")


@hookimpl(specname="register_config_sections")
def claude_key_sections():
    return [CLAUDE.section(order=30, provider="claude"),
            ConfigSection(key=HEADER_DEFAULTS, view=header_defaults_view,
                          validate=validate_header_defaults, order=35, provider="claude")]


@hookimpl(specname="register_blueprints")
def claude_key_routes():
    bp = Blueprint("claude_keys", __name__)
    add_object_list(bp, CLAUDE)
    return [bp]
