"""Upstream's request-body conventions, shared by every route (reference-behaviour §3).

* scalar settings: `{"value": <x>}`, 400 `invalid body` for a wrong type or a missing value;
* lists: a raw JSON array, or `{"items": [...]}` with at least one item;
* string lists: PATCH `{"index", "value"}` or `{"old", "new"}`, DELETE `?index=` / `?value=`;
* object lists: PATCH `{"index"|<match>, "value": {partial}}`, DELETE by key field or `?index=`.

Every mutating route answers 200 `{"status": "ok"}` after the config store has saved.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Callable

from flask import Blueprint, current_app, jsonify, request

from .config import yamlio
from .errors import ApiError, invalid_body

DEFAULT_JSON_LIMIT = 1 << 20  # bytes; `remote-management.max-json-body-bytes` overrides it

_GO_INT = re.compile(r"^\s*([+-]?\d+)")


def store():
    """The app's config store."""
    return current_app.extensions["cliproxy_mgmt"].store


def ok():
    return jsonify({"status": "ok"})


def read_body(limit: int | None = None) -> bytes:
    """The raw request body, refused with 413 beyond `limit` bytes (read without buffering more)."""
    if limit is None:
        limit = int(store().get("remote-management", "max-json-body-bytes",
                                default=DEFAULT_JSON_LIMIT) or DEFAULT_JSON_LIMIT)
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "request body too large")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "request body too large")
    return data


def read_json():
    """The body parsed as JSON (whatever the Content-Type says); 400 `invalid body` otherwise."""
    try:
        return json.loads(read_body())
    except (ValueError, UnicodeDecodeError):
        raise invalid_body() from None


def is_kind(value, kind: type) -> bool:
    """JSON type check: bool is not an int, 1.0 is not an int."""
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if kind is list:
        return isinstance(value, list)
    if kind is dict:
        return isinstance(value, dict)
    return isinstance(value, kind)


def json_object():
    """The body as a JSON object; 400 `invalid body` for anything else."""
    body = read_json()
    if not isinstance(body, dict):
        raise invalid_body()
    return body


def value_body(kind: type):
    """`{"value": <kind>}` -> the value; a missing or null value is `invalid body`."""
    value = json_object().get("value")
    if value is None or not is_kind(value, kind):
        raise invalid_body()
    return value


def list_body(item_ok: Callable[[object], bool]) -> list:
    """A raw array (`null` clears) or `{"items": [...]}` with at least one item."""
    body = read_json()
    if body is None:
        return []
    if isinstance(body, dict):
        body = body.get("items")
        if not body:
            raise invalid_body()
    if not isinstance(body, list) or not all(item_ok(item) for item in body):
        raise invalid_body()
    return body


def go_int(text: str | None) -> int | None:
    """Parse like Go's Sscanf("%d"): leading spaces and a sign allowed, trailing junk ignored."""
    if text is None:
        return None
    m = _GO_INT.match(text)
    return int(m.group(1)) if m else None


def optional_int(body: dict, name: str):
    """An optional integer field of a body: None when absent or null, `invalid body` when not an int."""
    value = body.get(name)
    if value is not None and not is_kind(value, int):
        raise invalid_body()
    return value


def optional_str(body: dict, name: str):
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid_body()
    return value


# -- writing at a key path -----------------------------------------------------------

def set_path(data: dict, path: tuple, value, default=None) -> None:
    """Set `value` at `path`; a missing key holding its default is not added (file stays minimal)."""
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            if yamlio.same(value, default) and part not in node:
                return
            child = {}
            node[part] = child
        node = child
    if path[-1] not in node and yamlio.same(value, default):
        return
    node[path[-1]] = value


def get_path(data: dict, path: tuple, default=None):
    node = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


# -- scalar settings -------------------------------------------------------------------

@dataclass(frozen=True)
class Scalar:
    """A `{"value"}` setting at a YAML key path.

    `read` turns the stored value into what GET shows (defaults, clamping); `write` turns a
    valid request value into what is stored, or raises ApiError.
    """

    route: str
    path: tuple
    kind: type
    default: object
    get_key: str = ""
    read: Callable[[object], object] | None = None
    write: Callable[[object], object] | None = None
    deletable: bool = False

    def current(self, data: dict):
        value = get_path(data, self.path, None)
        if value is None or not is_kind(value, self.kind):
            value = self.default
        return self.read(value) if self.read else value


def add_scalar(bp: Blueprint, setting: Scalar) -> None:
    """Register GET, PUT, PATCH (and DELETE when `deletable`) for one scalar setting."""
    name = setting.route.strip("/").replace("/", "_").replace("-", "_")
    get_key = setting.get_key or setting.path[-1]

    def get_view():
        return jsonify({get_key: setting.current(store().data)})

    def put_view():
        value = value_body(setting.kind)
        if setting.write:
            value = setting.write(value)
        store().edit(lambda d: set_path(d, setting.path, value, setting.default))
        return ok()

    bp.add_url_rule(setting.route, f"get_{name}", get_view, methods=["GET"])
    bp.add_url_rule(setting.route, f"put_{name}", put_view, methods=["PUT", "PATCH"])
    if setting.deletable:
        def delete_view():
            store().edit(lambda d: set_path(d, setting.path, setting.default, setting.default))
            return ok()
        bp.add_url_rule(setting.route, f"delete_{name}", delete_view, methods=["DELETE"])


# -- string lists ----------------------------------------------------------------------------

def add_string_list(bp: Blueprint, route: str, key: str) -> None:
    """Register GET/PUT/PATCH/DELETE for a top-level list of strings (reference §3.3)."""
    name = route.strip("/").replace("-", "_")

    def current(data) -> list:
        value = data.get(key)
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    def get_view():
        return jsonify({key: current(store().data)})

    def put_view():
        items = list_body(lambda v: isinstance(v, str))
        store().edit(lambda d: d.__setitem__(key, items))
        return ok()

    def patch_view():
        body = json_object()
        index, value = optional_int(body, "index"), optional_str(body, "value")
        old, new = optional_str(body, "old"), optional_str(body, "new")

        def change(d):
            items = current(d)
            if index is not None and value is not None and 0 <= index < len(items):
                items[index] = value
            elif old is not None and new is not None:
                if old in items:
                    items[items.index(old)] = new
                else:
                    items.append(new)  # upstream appends when `old` is not found
            else:
                raise ApiError(400, "missing fields")
            d[key] = items
        store().edit(change)
        return ok()

    def delete_view():
        index = go_int(request.args.get("index"))
        value = (request.args.get("value") or "").strip()

        def change(d):
            items = current(d)
            if index is not None and 0 <= index < len(items):
                del items[index]
            elif value:
                items = [v for v in items if v.strip() != value]
            else:
                raise ApiError(400, "missing index or value")
            d[key] = items
        store().edit(change)
        return ok()

    bp.add_url_rule(route, f"get_{name}", get_view, methods=["GET"])
    bp.add_url_rule(route, f"put_{name}", put_view, methods=["PUT"])
    bp.add_url_rule(route, f"patch_{name}", patch_view, methods=["PATCH"])
    bp.add_url_rule(route, f"delete_{name}", delete_view, methods=["DELETE"])


# -- object lists ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ObjectList:
    """How one provider's list of credential objects behaves (reference §3.4, §4.2).

    `normalize(item)` returns the cleaned item, or None to drop it; `sanitize(items)` runs
    over the whole list after every change (de-duplication, dropping). Fields of an item
    that the provider does not know are kept as they are (decision 9).
    """

    route: str
    key: str                               # YAML key of the list
    key_field: str = "api-key"             # the field PATCH `match` and DELETE compare
    match_param: str = "match"             # PATCH body field naming the item
    delete_param: str = "api-key"          # DELETE query parameter naming the item
    delete_trim: bool = True               # trim that parameter before comparing
    delete_not_found: bool = False         # 404 "item not found" when it matches nothing
    ignore_empty_match: bool = True        # an empty match never selects an item
    patch_fields: tuple = ()               # fields PATCH may set
    delete_when_empty: tuple = ()          # a PATCH setting one of these to "" deletes the item
    normalize: Callable[[dict], dict | None] = lambda item: item
    sanitize: Callable[[list], list] = lambda items: items
    item_type: type = dict
    missing_message: str = "missing api-key or index"

    def current(self, data: dict) -> list:
        value = data.get(self.key)
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []

    def view(self, data: dict) -> list:
        """The list as GET and GET /config show it."""
        return self.sanitize([i for i in (self.normalize(dict(v)) for v in self.current(data)) if i])


def add_object_list(bp: Blueprint, spec: ObjectList) -> None:
    """Register GET/PUT/PATCH/DELETE for a list of credential objects."""
    name = spec.route.strip("/").replace("-", "_")

    def get_view():
        return jsonify({spec.key: store().derived(f"list:{spec.key}", spec.view)})

    def put_view():
        items = list_body(lambda v: isinstance(v, dict))
        cleaned = spec.sanitize([i for i in (spec.normalize(dict(v)) for v in items) if i])
        store().edit(lambda d: d.__setitem__(spec.key, cleaned))
        return ok()

    def patch_view():
        body = json_object()
        value = body.get("value")
        if not isinstance(value, dict):
            raise invalid_body()
        index = optional_int(body, "index")
        match = optional_str(body, spec.match_param)

        def change(d):
            items = spec.current(d)
            target = None
            if index is not None and 0 <= index < len(items):
                target = index
            elif match is not None and not (spec.ignore_empty_match and not match.strip()):
                wanted = match.strip()
                target = next((i for i, item in enumerate(items)
                               if str(item.get(spec.key_field, "")).strip() == wanted), None)
            if target is None:
                raise ApiError(404, "item not found")
            item = dict(items[target])
            for field_name, field_value in value.items():
                if field_name in spec.patch_fields:
                    item[field_name] = field_value.strip() if isinstance(field_value, str) else field_value
            if any(item.get(f) == "" for f in spec.delete_when_empty):
                del items[target]
            else:
                normalized = spec.normalize(item)
                if normalized is None:
                    del items[target]
                else:
                    items[target] = normalized
            d[spec.key] = spec.sanitize(items)
        store().edit(change)
        return ok()

    def delete_view():
        raw = request.args.get(spec.delete_param)
        index = go_int(request.args.get("index"))

        def change(d):
            items = spec.current(d)
            if raw is not None:
                wanted = raw.strip() if spec.delete_trim else raw
                kept = [i for i in items if i.get(spec.key_field, "") != wanted]
                if len(kept) == len(items) and spec.delete_not_found:
                    raise ApiError(404, "item not found")
                d[spec.key] = kept
            elif index is not None and 0 <= index < len(items):
                del items[index]
                d[spec.key] = items
            else:
                raise ApiError(400, spec.missing_message)
        store().edit(change)
        return ok()

    bp.add_url_rule(spec.route, f"get_{name}", get_view, methods=["GET"])
    bp.add_url_rule(spec.route, f"put_{name}", put_view, methods=["PUT"])
    bp.add_url_rule(spec.route, f"patch_{name}", patch_view, methods=["PATCH"])
    bp.add_url_rule(spec.route, f"delete_{name}", delete_view, methods=["DELETE"])
