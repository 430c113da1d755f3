"""cliproxy-acme: Acme Cloud as a provider of cliproxy-mgmt, in one small module.

Installed with pip, it is found through its entry point (group `cliproxy_mgmt`, see
pyproject.toml); nothing in cliproxy-mgmt changes. It adds:

* the provider `acme`;
* the config key `acme-api-key`, a list of `{api-key, base-url, prefix, headers}`, shown in
  GET /config and edited with `/acme-api-key` (upstream's object-list conventions);
* the auth-file type `acme`: token files `{"type": "acme", "email": ...}` in auth-dir;
* the model catalogue of the channel `acme` (GET /model-definitions/acme).
"""

from flask import Blueprint

from cliproxy_mgmt import Provider, hookimpl
from cliproxy_mgmt.conventions import (
    ObjectList,
    add_object_list,
    normalize_headers,
    normalize_prefix,
    put_field,
    text,
)
from cliproxy_mgmt.records import AuthFileType, ModelDefinitions

PROVIDER = "acme"


def normalize(item: dict) -> dict | None:
    """Trim the key (an entry without one is dropped) and the base-url; tidy prefix and headers."""
    item["api-key"] = text(item.get("api-key")).strip()
    if not item["api-key"]:
        return None
    put_field(item, "base-url", text(item.get("base-url")).strip())
    put_field(item, "prefix", normalize_prefix(item.get("prefix")))
    put_field(item, "headers", normalize_headers(item.get("headers")))
    return item


ACME_KEYS = ObjectList(
    route="/acme-api-key", key="acme-api-key", normalize=normalize,
    fields={"api-key": str, "base-url": str, "prefix": str, "headers": {str: str}},
    patch_fields=("api-key", "base-url", "prefix", "headers"), delete_not_found=True)


@hookimpl
def register_providers():
    return [Provider(id=PROVIDER, label="Acme Cloud")]


@hookimpl
def register_config_sections():
    return [ACME_KEYS.section(order=900, provider=PROVIDER)]


@hookimpl
def register_blueprints():
    bp = Blueprint("acme", __name__)
    add_object_list(bp, ACME_KEYS)
    return [bp]


@hookimpl
def register_auth_file_types():
    return [AuthFileType(type="acme", provider=PROVIDER)]


@hookimpl
def register_model_definitions():
    return ModelDefinitions.load(__name__)
