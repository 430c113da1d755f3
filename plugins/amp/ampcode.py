"""The `ampcode` config block and every `/ampcode` route.

The legacy top-level keys `amp-upstream-url`, `amp-upstream-api-key`,
`amp-restrict-management-to-localhost` and `amp-model-mappings` are read into the block as
upstream's loader does, and leave the file on the block's next write.
An emptied list is written as `[]` (upstream left `upstream-api-keys` behind).
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from cliproxy_mgmt import ConfigSection, hookimpl
from cliproxy_mgmt.conventions import (
    JSON_TYPES,
    Scalar,
    fits,
    is_kind,
    json_object,
    ok,
    read_json,
    set_path,
    store,
    text,
    value_body,
)
from cliproxy_mgmt.errors import ApiError, invalid_body
from cliproxy_mgmt.openapi import describe
from cliproxy_mgmt.schemas import VALUE_SCHEMAS, StatusOK

KEY = "ampcode"
MAPPING = {"from": str, "to": str, "regex": bool}
UPSTREAM_KEY = {"upstream-api-key": str, "api-keys": [str]}
FIELDS = {"upstream-url": str, "upstream-api-key": str, "upstream-api-keys": [UPSTREAM_KEY],
          "restrict-management-to-localhost": bool, "model-mappings": [MAPPING],
          "force-model-mappings": bool}

# legacy top-level key -> block field; the localhost flag always wins, the others fill a gap
LEGACY = {"amp-upstream-url": "upstream-url", "amp-upstream-api-key": "upstream-api-key",
          "amp-restrict-management-to-localhost": "restrict-management-to-localhost",
          "amp-model-mappings": "model-mappings"}


def block(data: dict) -> dict:
    """The stored block, with the legacy keys folded in."""
    amp = dict(data[KEY]) if isinstance(data.get(KEY), dict) else {}
    for legacy, name in LEGACY.items():
        if legacy in data and (name == "restrict-management-to-localhost" or not amp.get(name)):
            amp[name] = data[legacy]
    return amp


def normalize_upstream_keys(entries) -> list:
    """Keys trimmed; an entry without an upstream key is dropped, empty client keys too."""
    result = []
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict) or not text(entry.get("upstream-api-key")).strip():
            continue
        entry = {**entry, "upstream-api-key": text(entry["upstream-api-key"]).strip()}
        keys = [k for k in (text(k).strip() for k in entry.get("api-keys") or ()) if k]
        if keys:
            entry["api-keys"] = keys
        else:
            entry.pop("api-keys", None)
        result.append(entry)
    return result


def _flag(amp: dict, name: str) -> bool:
    return amp.get(name) is True


def _mappings(amp: dict) -> list:
    value = amp.get("model-mappings")
    return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []


def view(data: dict) -> dict:
    """The block as GET /ampcode and GET /config show it (upstream's field order)."""
    amp = block(data)
    return {
        "upstream-url": text(amp.get("upstream-url")),
        "upstream-api-key": text(amp.get("upstream-api-key")),
        "upstream-api-keys": normalize_upstream_keys(amp.get("upstream-api-keys")),
        "restrict-management-to-localhost": _flag(amp, "restrict-management-to-localhost"),
        "model-mappings": _mappings(amp),
        "force-model-mappings": _flag(amp, "force-model-mappings"),
    }


def current() -> dict:
    """The block's view of the config in force, built once per config version."""
    return store().derived(f"{KEY}-view", view)


def edit(change) -> None:
    """Apply `change(block)` and write the block back (the legacy keys leave the file)."""
    def apply(draft: dict) -> None:
        amp = block(draft)
        change(amp)
        for legacy in LEGACY:
            draft.pop(legacy, None)
        if amp or KEY in draft:  # a block holding only defaults is not added
            draft[KEY] = amp
    store().edit(apply)


def _field(name: str, value, default):
    """A change setting one field of the block (not added when absent and `default`)."""
    return lambda amp: set_path(amp, (name,), value, default)


# -- routes ------------------------------------------------------------------------------

SCALARS = (
    Scalar("/ampcode/upstream-url", (KEY, "upstream-url"), str, "", write=str.strip, deletable=True),
    Scalar("/ampcode/upstream-api-key", (KEY, "upstream-api-key"), str, "", write=str.strip, deletable=True),
    Scalar("/ampcode/restrict-management-to-localhost", (KEY, "restrict-management-to-localhost"), bool, False),
    Scalar("/ampcode/force-model-mappings", (KEY, "force-model-mappings"), bool, False),
)


def add_block_scalar(bp: Blueprint, setting: Scalar) -> None:
    """GET, PUT/PATCH (and DELETE) of one field of the block, read through the legacy keys."""
    name = setting.path[-1]
    endpoint = name.replace("-", "_")

    def get_view():
        return jsonify({name: current()[name]})

    def put_view():
        value = value_body(setting.kind)
        edit(_field(name, setting.write(value) if setting.write else value, setting.default))
        return ok()

    describe(f"Read ampcode.{name}", ok={"type": "object", "properties": {
        name: {"type": JSON_TYPES[setting.kind]}}})(get_view)
    describe(f"Set ampcode.{name}", body=VALUE_SCHEMAS[setting.kind], ok=StatusOK)(put_view)
    bp.add_url_rule(setting.route, f"get_{endpoint}", get_view, methods=["GET"])
    bp.add_url_rule(setting.route, f"put_{endpoint}", put_view, methods=["PUT", "PATCH"])
    if setting.deletable:
        @describe(f"Clear ampcode.{name}", ok=StatusOK)
        def delete_view():
            edit(_field(name, setting.default, setting.default))
            return ok()
        bp.add_url_rule(setting.route, f"delete_{endpoint}", delete_view, methods=["DELETE"])


def value_body_of(kind) -> dict:
    """JSON schema of a `{"value": [...]}` body."""
    return {"type": "object", "properties": {"value": {"type": "array", "items": kind}}}


def value_list(kind) -> list:
    """The items of a `{"value": [...]}` body ([] when absent); wrongly typed: invalid body."""
    value = json_object().get("value")
    if not fits(value, [kind]):
        raise invalid_body()
    return [item for item in value or () if item is not None]  # a null item is no item


def add_model_mapping_routes(bp: Blueprint) -> None:
    route = "/ampcode/model-mappings"

    @bp.put(route, endpoint="put_model_mappings")
    @describe("Replace ampcode.model-mappings", body=value_body_of({"type": "object"}), ok=StatusOK)
    def put_mappings():
        mappings = value_list(MAPPING)  # stored as given: no trimming, no validation
        edit(_field("model-mappings", mappings, []))
        return ok()

    @bp.patch(route, endpoint="patch_model_mappings")
    @describe("Add or replace ampcode.model-mappings by `from`", body=value_body_of({"type": "object"}), ok=StatusOK)
    def patch_mappings():
        updates = value_list(MAPPING)

        def change(amp):
            mappings = _mappings(amp)
            for update in updates:
                wanted = text(update.get("from")).strip()
                at = next((i for i, m in enumerate(mappings) if text(m.get("from")).strip() == wanted), None)
                if at is None:
                    mappings.append(update)
                else:
                    mappings[at] = update
            set_path(amp, ("model-mappings",), mappings, [])
        edit(change)
        return ok()

    @bp.delete(route, endpoint="delete_model_mappings")
    @describe("Remove ampcode.model-mappings by `from` (all without a list)", body=value_body_of({"type": "string"}), ok=StatusOK)
    def delete_mappings():
        # upstream: a missing or unreadable body, or an empty list, clears every mapping
        try:
            body = read_json()
        except ApiError as exc:
            if exc.status != 400:  # a body over the size limit is still refused
                raise
            body = None
        value = body.get("value") if isinstance(body, dict) else None
        names = {text(v).strip() for v in value} if isinstance(value, list) and fits(value, [str]) else set()

        def change(amp):
            kept = [m for m in _mappings(amp) if text(m.get("from")).strip() not in names] if names else []
            set_path(amp, ("model-mappings",), kept, [])
        edit(change)
        return ok()


def add_upstream_key_routes(bp: Blueprint) -> None:
    route = "/ampcode/upstream-api-keys"

    @bp.put(route, endpoint="put_upstream_api_keys")
    @describe("Replace ampcode.upstream-api-keys", body=value_body_of({"type": "object"}), ok=StatusOK)
    def put_keys():
        entries = normalize_upstream_keys(value_list(UPSTREAM_KEY))
        edit(_field("upstream-api-keys", entries, []))
        return ok()

    @bp.patch(route, endpoint="patch_upstream_api_keys")
    @describe("Add or replace ampcode.upstream-api-keys by upstream key", body=value_body_of({"type": "object"}), ok=StatusOK)
    def patch_keys():
        updates = normalize_upstream_keys(value_list(UPSTREAM_KEY))

        def change(amp):
            entries = normalize_upstream_keys(amp.get("upstream-api-keys"))
            for update in updates:
                at = next((i for i, e in enumerate(entries)
                           if e["upstream-api-key"] == update["upstream-api-key"]), None)
                if at is None:
                    entries.append(update)
                else:
                    entries[at] = update
            set_path(amp, ("upstream-api-keys",), entries, [])
        edit(change)
        return ok()

    @bp.delete(route, endpoint="delete_upstream_api_keys")
    @describe("Remove ampcode.upstream-api-keys by upstream key (all for [])", body=value_body_of({"type": "string"}), ok=StatusOK)
    def delete_keys():
        body = json_object()
        value = body.get("value")
        if value is None:
            raise ApiError(400, "missing value")
        if not is_kind(value, list) or not fits(value, [str]):
            raise invalid_body()
        names = {text(v).strip() for v in value} - {""}
        if value and not names:
            raise ApiError(400, "empty value")

        def change(amp):
            entries = normalize_upstream_keys(amp.get("upstream-api-keys"))
            kept = [e for e in entries if e["upstream-api-key"] not in names] if names else []
            set_path(amp, ("upstream-api-keys",), kept, [])
        edit(change)
        return ok()


# -- hooks -------------------------------------------------------------------------------

def validate(value) -> None:
    if not fits(value, FIELDS, strict=False):
        raise ValueError("expected a mapping with correctly typed fields")


@hookimpl(specname="register_config_sections")
def ampcode_sections():
    return [ConfigSection(key=KEY, view=lambda value, data: view(data), validate=validate,
                          order=60, provider="amp")]


@hookimpl(specname="register_blueprints")
def ampcode_routes():
    bp = Blueprint("ampcode", __name__)

    @bp.get("/ampcode", endpoint="get_ampcode")
    @describe("Read the ampcode block", ok={"type": "object", "properties": {KEY: {}}})
    def get_block():
        return jsonify({KEY: current()})

    for setting in SCALARS:
        add_block_scalar(bp, setting)

    @bp.get("/ampcode/model-mappings", endpoint="get_model_mappings")
    @describe("Read ampcode.model-mappings", ok={"type": "object", "properties": {"model-mappings": {}}})
    def get_mappings():
        return jsonify({"model-mappings": current()["model-mappings"]})

    @bp.get("/ampcode/upstream-api-keys", endpoint="get_upstream_api_keys")
    @describe("Read ampcode.upstream-api-keys", ok={"type": "object", "properties": {"upstream-api-keys": {}}})
    def get_keys():
        return jsonify({"upstream-api-keys": current()["upstream-api-keys"]})

    add_model_mapping_routes(bp)
    add_upstream_key_routes(bp)
    return [bp]
