"""Upstream's request-body conventions, shared by every route.

* scalar settings: `{"value": <x>}`, 400 `invalid body` for a wrong type or a missing value;
* lists: a raw JSON array, or `{"items": [...]}` with at least one item;
* string lists: PATCH `{"index", "value"}` or `{"old", "new"}`, DELETE `?index=` / `?value=`;
* object lists: PATCH `{"index"|<match>, "value": {partial}}`, DELETE by key field or `?index=`.

Every mutating route answers 200 `{"status": "ok"}` after the config store has saved.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from itertools import compress, count, repeat
from typing import Callable

from flask import Blueprint, current_app, jsonify, request

from .config import yamlio
from .config.draft import Draft
from .errors import ApiError, invalid_body
from .fastlists import DICT, STR, all_exactly, identical_span
from .openapi import describe
from .schemas import VALUE_SCHEMAS, ObjectListPatch, StatusOK, StringListPatch, array_or_items
from .records import ConfigSection
from .safeload import INT64_MAX, INT64_MIN, InvalidJSON, load_json

DEFAULT_JSON_LIMIT = 1 << 20  # bytes; `remote-management.max-json-body-bytes` overrides it

# JSON-schema type names of the value kinds (for route descriptions).
JSON_TYPES = {bool: "boolean", int: "integer", str: "string", list: "array", dict: "object"}
_GO_INT = re.compile(r"^\s*([+-]?[0-9]+)")  # (Go's %d takes ASCII digits only)
_ATOI = re.compile(r"[+-]?[0-9]+")


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
    """The body parsed as JSON (whatever the Content-Type says); 400 `invalid body` otherwise.

    `safeload.load_json` reads it: nesting, NaN, a BOM, lone UTF-16 surrogates (`"\\ud800"`:
    no file can hold them) and the like are refused too.
    """
    try:
        return load_json(read_body())
    except InvalidJSON:
        raise invalid_body() from None


def is_kind(value, kind: type) -> bool:
    """JSON type check: bool is not an int, 1.0 is not an int, an int fits Go's int64."""
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX
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
    return _list_of(read_json(), item_ok)


def _list_of(body, item_ok: Callable[[object], bool]) -> list:
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


# Go's unicode.IsSpace: what strings.TrimSpace takes off. (Python's strip() also takes
# \x1c-\x1f, control characters, which Go leaves in place.)
_GO_SPACE = ("\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
             + "\u2028\u2029\u202f\u205f\u3000")


def go_trim_space(text: str) -> str:
    """Go's strings.TrimSpace, for query values and names upstream trims."""
    return text.strip(_GO_SPACE)


def go_atoi(text: str) -> int | None:
    """Go's strconv.Atoi on a 64-bit machine: ASCII digits with an optional sign, within
    int64 (no spaces, `_` or other scripts' digits, which Python's int() takes); else None."""
    if not _ATOI.fullmatch(text):
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


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


def fits(value, kind, *, strict: bool = True) -> bool:
    """Does `value` have the type `kind`, as Go's decoder would accept it into a struct field?

    Kinds: `str`, `int`, `bool`; `[kind]`, a list of them; `{str: kind}`, a map of them;
    `{"field": kind, ...}`, an object whose listed fields have those kinds (other fields are
    allowed). null fits every kind. `strict=False` reads a YAML-loaded value as yaml.v3
    does, where any scalar fits a string.
    """
    if value is None:
        return True
    if isinstance(kind, list):
        return isinstance(value, list) and all(fits(v, kind[0], strict=strict) for v in value)
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            return False
        if str in kind:
            return all(fits(v, kind[str], strict=strict) for v in value.values())
        return all(fits(value[k], sub, strict=strict) for k, sub in kind.items() if k in value)
    if kind is str and not strict:
        return not isinstance(value, (dict, list))
    return is_kind(value, kind)


def text(value) -> str:
    """A string field as Go reads it from YAML: null is "", another scalar is its text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


# -- the shared normalisers of credential entries ----------------------

def normalize_prefix(value) -> str:
    """Trimmed, without leading/trailing `/`; a prefix that still holds a `/` is dropped ("")."""
    prefix = text(value).strip().strip("/")
    return "" if "/" in prefix else prefix


def normalize_headers(value) -> dict | None:
    """Keys and values trimmed, pairs with an empty side dropped; None when nothing is left."""
    if not isinstance(value, dict):
        return None
    headers = {}
    for key, val in value.items():
        key, val = text(key).strip(), text(val).strip()
        if key and val:
            headers[key] = val
    return headers or None


def normalize_excluded_models(value) -> list | None:
    """Trimmed, lower-cased, empties dropped, de-duplicated in first-seen order; None when empty."""
    models = (text(v).strip().lower() for v in value) if isinstance(value, list) else ()
    return list(dict.fromkeys(m for m in models if m)) or None


def normalize_models(value, *, both: bool = False) -> list:
    """Model aliases `{name, alias}` trimmed; one with neither is dropped (`both`: lacking either)."""
    models = []
    for model in value if isinstance(value, list) else ():
        if not isinstance(model, dict):
            continue
        name, alias = text(model.get("name")).strip(), text(model.get("alias")).strip()
        if (name and alias) if both else (name or alias):
            model = dict(model)
            for key, val in (("name", name), ("alias", alias)):
                if key in model or val:
                    model[key] = val
            models.append(model)
    return models


def first_of_each(items: list, identity: Callable) -> list:
    """One item per `identity(item)`: the first wins. (When none repeats, the usual case,
    and `identity` is C code such as `operator.itemgetter`, the list is checked in C.)"""
    idents = list(map(identity, items))
    if len(set(idents)) == len(idents):
        return list(items)
    seen, unique = set(), []
    for item, ident in zip(items, idents):
        if ident not in seen:
            seen.add(ident)
            unique.append(item)
    return unique


def put_field(item: dict, name: str, value) -> None:
    """Set `item[name]`, or remove it when `value` is empty (what Go's omitempty writes)."""
    if value in (None, "", [], {}):
        item.pop(name, None)
    else:
        item[name] = value


def normalize_shared_fields(item: dict) -> dict:
    """Normalise an entry's `prefix`, `headers` and `excluded-models`, removing them when empty."""
    put_field(item, "prefix", normalize_prefix(item.get("prefix")))
    put_field(item, "headers", normalize_headers(item.get("headers")))
    put_field(item, "excluded-models", normalize_excluded_models(item.get("excluded-models")))
    return item


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


def _object_of(properties: dict) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties)}


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

    describe(f"Read {get_key}", ok=_object_of({get_key: {"type": JSON_TYPES[setting.kind]}}))(get_view)
    describe(f"Set {get_key}", body=VALUE_SCHEMAS[setting.kind], ok=StatusOK)(put_view)
    bp.add_url_rule(setting.route, f"get_{name}", get_view, methods=["GET"])
    bp.add_url_rule(setting.route, f"put_{name}", put_view, methods=["PUT", "PATCH"])
    if setting.deletable:
        @describe(f"Reset {get_key} to {setting.default!r}", ok=StatusOK)
        def delete_view():
            store().edit(lambda d: set_path(d, setting.path, setting.default, setting.default))
            return ok()
        bp.add_url_rule(setting.route, f"delete_{name}", delete_view, methods=["DELETE"])


# -- string lists ----------------------------------------------------------------------------

def add_string_list(bp: Blueprint, route: str, key: str, *,
                    read: Callable[[dict], list] | None = None,
                    write: Callable[[dict, list], None] | None = None) -> None:
    """Register GET/PUT/PATCH/DELETE for a list of strings.

    By default the list is the top-level `key`; `read(data)` and `write(draft, items)` let a
    string list be a view of something else (e.g. the keys of an object list).
    """
    name = route.strip("/").replace("-", "_")

    def current(data) -> list:
        if read is not None:
            return read(data)
        value = data.get(key)
        if not isinstance(value, list):
            return []
        return list(value) if all_exactly(value, STR) else [v for v in value if isinstance(v, str)]

    def save(d, items) -> None:
        if write is not None:
            write(d, items)
        else:
            d[key] = items

    def get_view():
        return jsonify({key: current(store().data)})

    def put_view():
        items = list_body(lambda v: isinstance(v, str))
        store().edit(lambda d: save(d, items))
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
            save(d, items)
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
            save(d, items)
        store().edit(change)
        return ok()

    strings = {"type": "array", "items": {"type": "string"}}
    describe(f"List {key}", ok=_object_of({key: strings}))(get_view)
    describe(f"Replace {key}", body=array_or_items({"type": "string"}), ok=StatusOK)(put_view)
    describe(f"Change one of {key}", body=StringListPatch, ok=StatusOK)(patch_view)
    describe(f"Remove from {key}", ok=StatusOK, query=[
        ("index", "string", "position of the item"), ("value", "string", "remove every item equal to it")])(delete_view)
    bp.add_url_rule(route, f"get_{name}", get_view, methods=["GET"])
    bp.add_url_rule(route, f"put_{name}", put_view, methods=["PUT"])
    bp.add_url_rule(route, f"patch_{name}", patch_view, methods=["PATCH"])
    bp.add_url_rule(route, f"delete_{name}", delete_view, methods=["DELETE"])


# -- object lists ------------------------------------------------------------------------------

def dict_items(data: dict, key: str) -> list:
    """The mappings in the list at top-level `key` (anything else there is skipped)."""
    value = data.get(key)
    if not isinstance(value, list):
        return []
    if all_exactly(value, DICT):  # the usual case, checked in C
        return list(value)
    return [v for v in value if isinstance(v, dict)]


MAX_WEIGHT = 1_000_000


def own_weight(item: dict) -> list:
    """The routing weight of a key entry: its own `weight` field."""
    return [("weight", item.get("weight"))]


def weight_over_limit(weights) -> str | None:
    """The path of the first integer weight above MAX_WEIGHT among (path, value) pairs, or None."""
    for path, value in weights:
        if is_kind(value, int) and value > MAX_WEIGHT:
            return path
    return None


class _CleanedItems:
    """The last raw list `ObjectList.entries` cleaned, so that the next call cleans only the
    items that are not the very same objects (a write changes a few items of a long list).

    Only lists nobody changes in place pass here: the data in force, and lists of items
    already clean that a write stores. The objects compared are held here, so comparing them
    by identity is sound. (Steps over every item are done in C.)
    """

    def __init__(self):
        # (raw items, the cleaned form of each or None, the sanitised list given out):
        # replaced whole, so a thread reading the previous one stays right.
        self._last: tuple = ([], [], [])

    def entries(self, raw: list, normalize, sanitize) -> list:
        """sanitize(the cleaned items of `raw`), an item already clean being its own cleaned form."""
        last_raw, last_cleaned, last_given = self._last
        head, tail = identical_span(last_raw, raw)
        if head == len(raw) == len(last_raw):  # the very same items: the same answer
            return list(last_given)
        cleaned = (last_cleaned[:head] + [_normalized(item, normalize) for item in raw[head:len(raw) - tail]]
                   + last_cleaned[len(last_cleaned) - tail:])
        given = sanitize(_kept(cleaned))
        self._last = (list(raw), cleaned, given)
        return list(given)  # the caller's to change: `given` is compared with what comes back

    def normalize_new(self, items: list, normalize) -> list:
        """`items` normalised, but for the items `entries` last gave, at the places they
        still hold, which are clean already."""
        given = self._last[2]
        head, tail = identical_span(given, items)
        return (items[:head] + _kept([normalize(dict(item)) for item in items[head:len(items) - tail]])
                + items[len(items) - tail:])

    def remember(self, items: list) -> None:
        """`items`, all clean and sanitised, are what a write stores: the next list in force."""
        items = list(items)
        self._last = (items, items, items)


class _FirstOfEach:
    """`first_of_each` that remembers the last list it gave, free of repeats, and the
    identities of its items: a list that shares its head and tail with it, as the very same
    objects, costs the items in between (a write changes a few items of a long list).
    Identities are read from the items each time, so only lists of items nobody changes in
    place pass here, as through `_CleanedItems`; the objects compared are held here."""

    def __init__(self):
        self._last: tuple = ([], set())  # replaced whole: a reader of the last one stays right

    def __call__(self, items: list, identity: Callable) -> list:
        last, seen = self._last
        head, tail = identical_span(last, items)
        # `last` holds each identity once: taking out those of its middle leaves the head's
        # and the tail's (a new set: the remembered one is never changed).
        others = seen - set(map(identity, last[head:len(last) - tail]))
        new = list(map(identity, items[head:len(items) - tail]))
        if len(set(new)) == len(new) and others.isdisjoint(new):
            others.update(new)
            unique = list(items)
        else:  # a repeat: the first wins, wherever it stands
            unique = first_of_each(items, identity)
            others = set(map(identity, unique))
        self._last = (unique, others)
        return list(unique)


def _kept(items: list) -> list:
    """The items that are not None."""
    return list(compress(items, map(operator.is_not, items, repeat(None))))


def _normalized(item, normalize):
    """The cleaned form of `item` (None: dropped), `item` itself when cleaning leaves it as it was."""
    cleaned = normalize(dict(item))
    return item if cleaned is not None and yamlio.same(cleaned, item) else cleaned


@dataclass(frozen=True)
class ObjectList:
    """How one provider's list of credential objects behaves.

    `normalize(item)` returns the cleaned item (a new dict), or None to drop it; `unique_by(item)`
    is an item's identity, of which the list keeps the first item (de-duplication, checked
    for the items a write changes: use C code such as `operator.itemgetter` where you can);
    `sanitize(items)` runs over the whole list after that (any other rule of the list).
    They run wherever upstream runs its sanitiser: on the list as loaded, and after every
    change, which then stores the whole cleaned list. Fields of an item that the provider
    does not know are kept as they are.

    `fields` types the known fields (see `fits`): a request item or PATCH value with a
    wrongly typed field is `invalid body`, a loaded config with one is refused. `read(data)`
    returns the raw items (default: the dict items under `key`) and `legacy_keys` are
    top-level keys `read` folds in, dropped from the file when the list is written.

    `weights(item)` lists the routing weights an item holds as (path, value) pairs, by default
    its own `weight`; none may exceed MAX_WEIGHT (upstream's proxy refuses to load such a
    config), in a loaded config, a PUT or a PATCH value.

    A write costs the items it changes, not the list (see `entries`): `normalize` must give
    the same item again for an item it cleaned (`normalize(dict(clean)) == clean`), and the
    items `entries` returns are shared with the data in force: read them, copy one to change it.
    """

    route: str
    key: str                               # YAML key of the list
    fields: dict = field(default_factory=dict)
    key_field: str = "api-key"             # the field PATCH `match` and DELETE compare
    match_param: str = "match"             # PATCH body field naming the item
    delete_param: str = "api-key"          # DELETE query parameter naming the item
    delete_trim: bool = True               # trim that parameter before comparing
    delete_not_found: bool = False         # 404 "item not found" when it matches nothing
    ignore_empty_match: bool = True        # an empty match never selects an item
    patch_fields: tuple = ()               # fields PATCH may set
    normalize: Callable[[dict], dict | None] = dict
    unique_by: Callable[[dict], object] | None = None
    sanitize: Callable[[list], list] = list
    read: Callable[[dict], list] | None = None
    legacy_keys: tuple = ()
    missing_message: str = "missing api-key or index"
    # With a `base-url` query parameter (the v1.22 web UI sends it), DELETE selects the
    # entries with that key AND that base-url (both trimmed; "" matches entries without
    # one). `unique_match` (a plugin's choice): that selection must be exactly one entry;
    # PATCH's `match` is narrowed the same way and must not select several entries, with or
    # without `base-url` (400 `multiple items match; index is required`). Otherwise DELETE
    # removes every entry selected and answers 200 even for none, and PATCH takes the first.
    unique_match: bool = False
    nullable_fields: tuple = ()            # PATCH: null removes these (e.g. weight)
    show: Callable[[dict], dict] | None = None  # GET and GET /config: an entry as shown
    weights: Callable[[dict], list] = own_weight
    _cleaned: _CleanedItems = field(default_factory=_CleanedItems, init=False, repr=False, compare=False)
    _unique: _FirstOfEach = field(default_factory=_FirstOfEach, init=False, repr=False, compare=False)

    def shown(self, data: dict) -> list:
        """The cleaned list as GET shows it."""
        items = self.entries(data)
        return [self.show(dict(item)) for item in items] if self.show else items

    def clean(self, items: list) -> list:
        """Normalise each item, then sanitise the list (remembering nothing)."""
        return self._sanitized(_kept([self.normalize(dict(item)) for item in items]), remember=False)

    def _sanitized(self, items: list, *, remember: bool = True) -> list:
        """`sanitize(items)` once `unique_by` dropped the repeats (`remember`: with the memory
        of the last list, for lists whose items nobody changes in place)."""
        if self.unique_by is not None:
            items = self._unique(items, self.unique_by) if remember else first_of_each(items, self.unique_by)
        return self.sanitize(items)

    def entries(self, data: dict) -> list:
        """The cleaned list: what GET and GET /config show, and what changes start from.

        `data` is the data in force or a `Draft` of it. An item is cleaned once: the items
        that are the very objects cleaned last time are not cleaned again, an item already
        clean is given as its very object in force, and a write keeps the items it did not
        change as those objects (`store_entries`): a write costs the items it changes.
        """
        if isinstance(data, Draft):
            if any(data.owns(key) for key in (self.key, *self.legacy_keys)):
                return self.clean(self._raw(data))  # a change's own copy: nothing to remember
            data = data.peek()
        return self._cleaned.entries(self._raw(data), self.normalize, self._sanitized)

    def _raw(self, data: dict) -> list:
        return self.read(data) if self.read else dict_items(data, self.key)

    def store_entries(self, draft: Draft, items: list) -> None:
        """Write `items` into the draft a change was given, cleaned (items `entries` gave are
        clean already); an absent key stays absent for an empty list."""
        for legacy in self.legacy_keys:
            draft.pop(legacy, None)
        cleaned = self._sanitized(self._cleaned.normalize_new(items, self.normalize))
        self._cleaned.remember(cleaned)
        if cleaned or self.key in draft:
            draft.share(self.key, cleaned)

    def item_ok(self, item) -> bool:
        return isinstance(item, dict) and fits(item, self.fields)

    def validate(self, value, before=None) -> None:
        """The check of a loaded config value (`ConfigSection.validate`); of a written one
        given the value in force `before` (`validate_change`), whose items it holds as the
        very same objects were checked when they came in."""
        if value is None:
            return
        if not isinstance(value, list):
            raise ValueError("expected a list of objects with correctly typed fields")
        head, tail = identical_span(before, value) if isinstance(before, list) else (0, 0)
        for i in range(head, len(value) - tail):
            item = value[i]
            if not fits(item, self.fields, strict=False):
                raise ValueError("expected a list of objects with correctly typed fields")
            path = weight_over_limit(self.weights(item)) if isinstance(item, dict) else None
            if path:
                raise ValueError(f"{self.key}[{i}].{path}: weight must not exceed {MAX_WEIGHT}")

    def credentials(self, provider: str, data: dict) -> list:
        """(provider, base-url, api-key) of each entry with a non-empty `api-key`."""
        return [(provider, text(e.get("base-url")).strip(), text(e.get("api-key")).strip())
                for e in self.entries(data) if text(e.get("api-key")).strip()]

    def section(self, *, order: int, provider: str = "", credentials=None) -> ConfigSection:
        """The config section of the list: GET /config shows the cleaned list, `[]` when empty.

        Its API-key credentials are `credentials(data)`, by default the entries' `api-key`s
        filed under `provider`."""
        if credentials is None and provider:
            credentials = lambda data: self.credentials(provider, data)  # noqa: E731
        return ConfigSection(key=self.key, view=lambda value, data: self.shown(data),
                             validate=self.validate, validate_change=self.validate,
                             order=order, provider=provider,
                             legacy_keys=self.legacy_keys, credentials=credentials)


# One rule of `request-scoped-errors` (per key entry) and `oauth-request-scoped-errors`.
SCOPED_ERROR_RULE = {"status": int, "match": [str], "match-regexr": [str], "action": str}


def check_shared_values(item: dict, where: str = "") -> None:
    """Upstream's own answers for a wrong `weight` or `disable-cooling` (PUT prefixes `where`)."""
    weight = item.get("weight")
    if weight is not None:
        if not is_kind(weight, int):
            raise ApiError(400, f"{where}weight must be an integer")
        if weight > MAX_WEIGHT:
            raise ApiError(400, f"{where}weight must not exceed {MAX_WEIGHT}")
    cooling = item.get("disable-cooling")
    if cooling is not None and not isinstance(cooling, bool):
        raise ApiError(400, f"{where}disable-cooling must be a boolean or null")


def positions_where(items: list, field: str, wanted: str, *, strip: bool = False) -> list[int]:
    """The positions of the items whose `field`, read as `text` (and stripped with `strip`),
    is `wanted`. (A list may hold 10,000s of entries: this is done in C when every value is
    a string, as in a cleaned list.)"""
    values = list(map(dict.get, items, repeat(field)))
    if not all_exactly(values, STR):
        values = list(map(text, values))
    if strip:
        values = list(map(str.strip, values))
    return list(compress(count(), map(operator.eq, values, repeat(wanted))))


def without(items: list, positions) -> list:
    """`items` but those at `positions`."""
    keep = bytearray(b"\x01") * len(items)
    for position in positions:
        keep[position] = 0
    return list(compress(items, keep))


def _base_url_param(spec: ObjectList) -> str | None:
    """The trimmed `base-url` query parameter when it is present (even empty), for lists keyed
    by api-key; None otherwise (the seed-era selection by the key alone)."""
    if spec.key_field != "api-key" or "base-url" not in request.args:
        return None
    return request.args.get("base-url", "").strip()


def _at_base_url(items: list, hits: list, base_url: str | None) -> list:
    """The positions among `hits` whose item has that `base-url` (trimmed); all of them for None."""
    if base_url is None:
        return hits
    return [i for i in hits if text(items[i].get("base-url")).strip() == base_url]


def _delete_by_key_and_base_url(spec: ObjectList, draft: dict, items: list, key: str, base_url: str) -> None:
    hits = _at_base_url(items, positions_where(items, spec.key_field, key, strip=True), base_url)
    if spec.unique_match:
        if not hits:
            raise ApiError(404, "item not found")
        if len(hits) > 1:
            raise ApiError(400, "multiple items match; index is required")
    spec.store_entries(draft, without(items, hits))


def add_object_list(bp: Blueprint, spec: ObjectList) -> None:
    """Register GET/PUT/PATCH/DELETE for a list of credential objects."""
    name = spec.route.strip("/").replace("-", "_")

    def get_view():
        return jsonify({spec.key: store().derived(f"list:{spec.key}", spec.shown)})

    def put_view():
        items = _list_of(read_json(), spec.item_ok)
        for i, item in enumerate(items):
            path = weight_over_limit(spec.weights(item))
            if path:
                raise ApiError(400, f"{spec.key}[{i}].{path}: weight must not exceed {MAX_WEIGHT}")
        store().edit(lambda d: spec.store_entries(d, items))
        return ok()

    def patch_view():
        body = json_object()
        value = body.get("value")
        patched = {k: v for k, v in value.items() if k in spec.patch_fields} if isinstance(value, dict) else {}
        check_shared_values(patched)
        if not isinstance(value, dict) or not fits(value, spec.fields):
            raise invalid_body()
        index = optional_int(body, "index")
        match = optional_str(body, spec.match_param)
        base_url = _base_url_param(spec) if spec.unique_match else None

        def change(d):
            items = spec.entries(d)
            target = None
            if index is not None and 0 <= index < len(items):
                target = index
            elif match is not None and not (spec.ignore_empty_match and not match.strip()):
                wanted = match.strip()
                hits = _at_base_url(items, positions_where(items, spec.key_field, wanted), base_url)
                if spec.unique_match and len(hits) > 1:
                    raise ApiError(400, "multiple items match; index is required")
                target = hits[0] if hits else None
            if target is None:
                raise ApiError(404, "item not found")
            item = dict(items[target])
            for field_name, field_value in value.items():
                if field_name not in spec.patch_fields:
                    continue
                if field_value is None:  # "not given" (Go's pointer fields), or "clear" for some
                    if field_name in spec.nullable_fields:
                        item.pop(field_name, None)
                    continue
                item[field_name] = field_value.strip() if isinstance(field_value, str) else field_value
            # Weights nested in the value (its own `weight` was checked above); as upstream,
            # not when the change drops the entry.
            nested = weight_over_limit(spec.weights(patched))
            if nested and spec.normalize(dict(item)) is not None:
                raise ApiError(400, f"{nested}: weight must not exceed {MAX_WEIGHT}")
            items[target] = item
            spec.store_entries(d, items)
        store().edit(change)
        return ok()

    def delete_view():
        raw = request.args.get(spec.delete_param) or ""
        wanted = raw.strip() if spec.delete_trim else raw
        index = go_int(request.args.get("index"))
        base_url = _base_url_param(spec)

        def change(d):
            items = spec.entries(d)
            if wanted.strip() and base_url is not None:
                _delete_by_key_and_base_url(spec, d, items, wanted.strip(), base_url)
            elif wanted:
                hits = positions_where(items, spec.key_field, wanted)
                if not hits and spec.delete_not_found:
                    raise ApiError(404, "item not found")
                spec.store_entries(d, without(items, hits))
            elif index is not None and 0 <= index < len(items):
                del items[index]
                spec.store_entries(d, items)
            else:
                raise ApiError(400, spec.missing_message)
        store().edit(change)
        return ok()

    objects = {"type": "array", "items": {"type": "object"}}
    describe(f"List {spec.key}", ok=_object_of({spec.key: objects}))(get_view)
    describe(f"Replace {spec.key}", body=array_or_items({"type": "object"}), ok=StatusOK)(put_view)
    describe(f"Change one of {spec.key}", body=ObjectListPatch, ok=StatusOK)(patch_view)
    describe(f"Remove from {spec.key}", ok=StatusOK, query=[
        (spec.delete_param, "string", f"remove the items with this {spec.key_field}"),
        ("index", "string", "position of the item")])(delete_view)
    bp.add_url_rule(spec.route, f"get_{name}", get_view, methods=["GET"])
    bp.add_url_rule(spec.route, f"put_{name}", put_view, methods=["PUT"])
    bp.add_url_rule(spec.route, f"patch_{name}", patch_view, methods=["PATCH"])
    bp.add_url_rule(spec.route, f"delete_{name}", delete_view, methods=["DELETE"])
