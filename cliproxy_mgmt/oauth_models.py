"""OAuth model rules and the static model catalogue: a built-in plugin of the core.

* `/oauth-excluded-models`: `{provider: [model pattern]}`;
* `/oauth-model-alias`: `{channel: [{name, alias, fork}]}`;
* `GET /model-definitions/<channel>`: each channel's static models, which the provider
  plugins supply through the `register_model_definitions` hook.

The two maps belong to no provider (any channel name is stored), so they live here, in
the core, registered through the same hooks as every provider. Deleted entries stay
deleted: the whole normalised map is written back, so a removed key leaves the file
(upstream left removed aliases behind).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from . import hookimpl
from .conventions import (
    fits,
    json_object,
    normalize_excluded_models,
    ok,
    read_json,
    set_path,
    store,
    text,
)
from .errors import ApiError, invalid_body
from .openapi import describe
from .records import ConfigSection
from .schemas import StatusOK

EXCLUDED = "oauth-excluded-models"
ALIAS = "oauth-model-alias"

EXCLUDED_KIND = {str: [str]}
ALIAS_ENTRY = {"name": str, "alias": str, "fork": bool}
ALIAS_KIND = {str: [ALIAS_ENTRY]}


# -- normalising -------------------------------------------------------------------------

def channel_name(value) -> str:
    return text(value).strip().lower()


def normalize_excluded(value) -> dict:
    """Provider keys trimmed and lower-cased, each list through the excluded-models rules;
    empty keys and empty lists are dropped."""
    result = {}
    for provider, models in value.items() if isinstance(value, dict) else ():
        provider, models = channel_name(provider), normalize_excluded_models(models)
        if provider and models:
            result[provider] = models
    return result


def sanitize_aliases(entries) -> list:
    """Entries need a name and an alias (trimmed) that differ ignoring case; an alias counts
    once per channel ignoring case (first wins); `fork` is kept only when true."""
    result, seen = [], set()
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        name, alias = text(entry.get("name")).strip(), text(entry.get("alias")).strip()
        if not name or not alias or name.lower() == alias.lower() or alias.lower() in seen:
            continue
        seen.add(alias.lower())
        entry = {**entry, "name": name, "alias": alias}
        if entry.get("fork") is not True:
            entry.pop("fork", None)
        result.append(entry)
    return result


def normalize_aliases(value) -> dict:
    result = {}
    for channel, entries in value.items() if isinstance(value, dict) else ():
        channel, entries = channel_name(channel), sanitize_aliases(entries)
        if channel and entries:
            result[channel] = entries
    return result


def _shown(mapping: dict) -> dict:
    # upstream encodes a Go map: keys in alphabetical order
    return dict(sorted(mapping.items()))


# -- the two maps ------------------------------------------------------------------------

def map_body(kind) -> dict:
    """A PUT body: a raw map, or `{"items": map}`; null clears."""
    body = read_json()
    if isinstance(body, dict) and fits(body, kind):
        return body
    if isinstance(body, dict) and isinstance(body.get("items"), dict) and fits(body["items"], kind):
        return body["items"]
    if body is None:
        return {}
    raise invalid_body()


def _save(draft: dict, key: str, mapping: dict) -> None:
    # an emptied map stays as `key: {}` where the key was (upstream); an absent key is not added
    set_path(draft, (key,), mapping, {})


def _map_routes(bp: Blueprint, key: str, normalize, kind, *, name_field: str, fallback: str | None,
                list_field: str, invalid: str, missing: str, not_found: str, clean_list) -> None:
    """GET/PUT/PATCH/DELETE of one `{name: [...]}` map; the two maps differ only in names."""
    route = f"/{key}"
    endpoint = key.replace("-", "_")

    def current(data) -> dict:
        return normalize(data.get(key))

    @bp.get(route, endpoint=f"get_{endpoint}")
    @describe(f"Read {key}", ok={"type": "object", "properties": {key: {"type": "object"}}})
    def get_map():
        return jsonify({key: _shown(store().derived(f"map:{key}", current))})

    @bp.put(route, endpoint=f"put_{endpoint}")
    @describe(f"Replace {key}", body={"type": "object"}, ok=StatusOK)
    def put_map():
        mapping = normalize(map_body(kind))
        store().edit(lambda d: _save(d, key, mapping))
        return ok()

    @bp.patch(route, endpoint=f"patch_{endpoint}")
    @describe(f"Set or remove one {name_field} of {key}", ok=StatusOK, body={"type": "object", "properties": {
        name_field: {"type": "string"}, list_field: {"type": "array"}}})
    def patch_map():
        body = json_object()
        names = [body.get(name_field)] + ([body.get(fallback)] if fallback else [])
        if not all(isinstance(n, str) or n is None for n in names) or not fits(body.get(list_field), kind[str]):
            raise invalid_body()
        if fallback is None and body.get(name_field) is None:
            raise invalid_body()
        name = next((channel_name(n) for n in names if channel_name(n)), "")
        if not name:
            raise ApiError(400, invalid)
        entries = clean_list(body.get(list_field))

        def change(d):
            mapping = current(d)
            if entries:
                mapping[name] = entries
            elif name in mapping:
                del mapping[name]
            else:
                raise ApiError(404, not_found)
            _save(d, key, mapping)
        store().edit(change)
        return ok()

    @bp.delete(route, endpoint=f"delete_{endpoint}")
    @describe(f"Remove one {name_field} of {key}", ok=StatusOK,
              query=[(n, "string", f"the {n}") for n in (name_field, fallback) if n])
    def delete_map():
        given = [request.args.get(name_field)] + ([request.args.get(fallback)] if fallback else [])
        name = next((channel_name(n) for n in given if channel_name(n)), "")
        if not name:
            raise ApiError(400, missing)

        def change(d):
            mapping = current(d)
            if name not in mapping:
                raise ApiError(404, not_found)
            del mapping[name]
            _save(d, key, mapping)
        store().edit(change)
        return ok()


# -- the static model catalogue ------------------------------------------------------------

def channel_models(channel: str) -> list | None:
    """The static models of `channel` (any case) in the current app, or None for an unknown one."""
    return current_app.extensions["cliproxy_mgmt"].registry.model_definitions.get(channel_name(channel))


@describe("The static model catalogue of a channel", ok={"type": "object", "properties": {
    "channel": {"type": "string"}, "models": {"type": "array", "items": {"type": "object"}}}})
def _model_definitions(channel: str):
    given = channel.strip()
    if not given:
        raise ApiError(400, "channel is required")
    models = channel_models(given)
    if models is None:
        raise ApiError(400, "unknown channel", channel=given)
    return jsonify({"channel": given.lower(), "models": models})


# -- hooks -------------------------------------------------------------------------------

def _section_view(normalize):
    def view(value, data):
        mapping = normalize(value)
        return _shown(mapping) if mapping else None  # omitted from GET /config when empty
    return view


def _validator(kind):
    def validate(value):
        if not fits(value, kind, strict=False):
            raise ValueError("expected a map of lists")
    return validate


@hookimpl
def register_config_sections():
    return [
        ConfigSection(key=EXCLUDED, view=_section_view(normalize_excluded),
                      validate=_validator(EXCLUDED_KIND), order=70),
        ConfigSection(key=ALIAS, view=_section_view(normalize_aliases),
                      validate=_validator(ALIAS_KIND), order=80),
    ]


@hookimpl
def register_blueprints():
    bp = Blueprint("oauth_models", __name__)
    _map_routes(bp, EXCLUDED, normalize_excluded, EXCLUDED_KIND, name_field="provider", fallback=None,
                list_field="models", invalid="invalid provider", missing="missing provider",
                not_found="provider not found", clean_list=normalize_excluded_models)
    _map_routes(bp, ALIAS, normalize_aliases, ALIAS_KIND, name_field="channel", fallback="provider",
                list_field="aliases", invalid="invalid channel", missing="missing channel",
                not_found="channel not found", clean_list=sanitize_aliases)
    bp.add_url_rule("/model-definitions/<channel>", "model_definitions", _model_definitions,
                    methods=["GET"])
    return [bp]
