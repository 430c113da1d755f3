"""PATCH /auth-files/fields: set any field of a token file (upstream's metadata editor).

The body is `{"name": "<file>", <field>: <value>, ...}`. A field is a path: `a.b` writes
into nested objects; the name and each part of the path are trimmed (` weight` is `weight`). Known kebab-case roots are stored in snake_case (`disable-cooling` ->
`disable_cooling`), and the other spelling is removed from the file so the two never
disagree; when both spellings are sent the snake_case one wins.

Special fields (upstream's rules, with this server's seed-era answers kept for the three
fields it always had): `prefix`, `proxy_url` (strings; "" removes), `priority` (an integer;
0 removes), `note` (a string, trimmed; "" removes), `weight` (an integer up to 1000000,
<= 0 stored as 0, null removes), `request_retry` (an integer; null or negative removes),
`websockets` (a bool, or "true"/"false"), `disabled` (a bool), `headers` (an object of
strings merged into the file's headers; "" removes one). Any other field takes any JSON
value. A JSON null is "not sent" except for `weight` and `request_retry`, where it removes
the field (we never write null into a token file).
"""

from __future__ import annotations

from ..conventions import MAX_WEIGHT, is_kind, read_body
from ..errors import ApiError
from ..safeload import MAX_JSON_DEPTH, load_json
from .names import trimmed

# Upstream's canonical spellings of the kebab-case roots it knows.
CANONICAL = {
    "api-key": "api_key", "base-url": "base_url", "disable-cooling": "disable_cooling",
    "excluded-models": "excluded_models", "fingerprint-profile": "fingerprint_profile",
    "model-aliases": "model_aliases", "proxy-url": "proxy_url", "request-retry": "request_retry",
    "request-scoped-errors": "request_scoped_errors", "tool-prefix-disabled": "tool_prefix_disabled",
}
KEBAB = {snake: kebab for kebab, snake in CANONICAL.items()}
TYPED = {"prefix": str, "proxy_url": str, "priority": int, "note": str, "disabled": bool}
NULL_REMOVES = ("weight", "request_retry")


def named_object() -> tuple[dict, str | None]:
    """The request's JSON object and its `name` (a str or None); 400 `invalid request body`
    for anything else (the PATCH routes of auth files all start so)."""
    try:
        body = load_json(read_body())
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid request body")
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise ApiError(400, "invalid request body")
    return body, name


def parse_body() -> tuple[str, dict]:
    """(trimmed name, {canonical path tuple: value}) of the request; 400s with upstream's texts.

    A field name is trimmed, and so is each part of a dotted path (` weight` is `weight`, with
    its checks). Two names for one field are refused, unless one spells the root in
    snake_case and the other in kebab-case: then the snake_case one wins (upstream's rules)."""
    body, name = named_object()
    name = trimmed(name or "")
    if not name:
        raise ApiError(400, "name is required")
    chosen: dict = {}  # canonical path -> (key as sent, value, root spelled canonically)
    for key, value in body.items():
        if key == "name":
            continue
        parts = tuple(trimmed(part) for part in trimmed(key).split("."))
        path = (CANONICAL.get(parts[0], parts[0]),) + parts[1:]
        canonical = parts[0] == path[0]
        if path in chosen:
            other, _, other_canonical = chosen[path]
            if canonical == other_canonical:
                raise ApiError(400, f"auth file fields {_go_quoted(other)} and {_go_quoted(key)} "
                                    "refer to the same field")
            if not canonical:
                continue  # the snake_case spelling wins
        chosen[path] = (key, value, canonical)
    fields: dict = {}
    for path, (_, value, _) in chosen.items():
        if not path[0] and len(path) == 1:
            raise ApiError(400, "field name is required")
        if not all(path):
            raise ApiError(400, f"invalid field path: {'.'.join(path)}")
        if value is None and path[0] not in NULL_REMOVES:
            continue  # JSON null counts as absent
        _check(path, value)
        fields[path] = value
    return name, fields


_NAMED_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_quoted(text: str) -> str:
    """`text` quoted as Go's %q writes it (upstream's error texts quote field names so)."""
    out = []
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif char in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[char])
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _check(path: tuple, value) -> None:
    root = path[0]
    # The file would nest len(path) objects deep, then the value: deeper than any JSON we
    # read back (the server itself could neither list nor edit the file again).
    if len(path) + _depth(value) > MAX_JSON_DEPTH:
        raise ApiError(400, f"invalid field {'.'.join(path)}")
    if root in ("weight", "request_retry") and len(path) > 1:
        raise ApiError(400, f"{root} does not support nested fields")
    if len(path) > 1:
        return
    if root == "weight" and value is not None:
        if not is_kind(value, int):
            raise ApiError(400, "weight must be an integer")
        if value > MAX_WEIGHT:
            raise ApiError(400, f"weight must not exceed {MAX_WEIGHT}")
    elif root == "request_retry" and value is not None and not is_kind(value, int):
        raise ApiError(400, "request_retry must be an integer or null")
    elif root == "websockets" and not (isinstance(value, bool) or
                                       (isinstance(value, str) and value.strip().lower() in ("true", "false"))):
        raise ApiError(400, "invalid request body")
    elif root in TYPED and not is_kind(value, TYPED[root]):
        raise ApiError(400, "invalid request body")


def _depth(value) -> int:
    """How deep `value` nests arrays and objects (0 for a scalar); a body holds at most
    MAX_JSON_DEPTH levels, so this recursion is bounded."""
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def apply(data: dict, fields: dict) -> None:
    """Write `fields` into the parsed token file `data`."""
    for path, value in fields.items():
        root = path[0]
        kebab = KEBAB.get(root)
        if kebab is not None:
            data.pop(kebab, None)
        if len(path) > 1:
            _set_nested(data, path, value)
        elif root == "headers" and isinstance(value, dict):
            _merge_headers(data, value)
        else:
            _set(data, root, value)


def _set(data: dict, key: str, value) -> None:
    if key == "weight":
        if value is None:
            data.pop(key, None)
        else:
            data[key] = max(value, 0)
    elif key == "request_retry":
        if value is None or value < 0:
            data.pop(key, None)
        else:
            data[key] = value
    elif key in ("prefix", "proxy_url"):
        # stored as sent (upstream sets them untrimmed); "" removes the key ("not set")
        if value == "":
            data.pop(key, None)
        else:
            data[key] = value
    elif key == "priority":
        if value == 0:
            data.pop(key, None)
        else:
            data[key] = value
    elif key == "note":
        if value.strip():
            data[key] = value.strip()
        else:
            data.pop(key, None)
    elif key == "websockets":
        data[key] = value if isinstance(value, bool) else value.strip().lower() == "true"
    else:
        data[key] = value


def _merge_headers(data: dict, headers: dict) -> None:
    current = data.get("headers")
    merged = dict(current) if isinstance(current, dict) else {}
    for name, value in headers.items():
        name = str(name).strip()
        if not name:
            continue
        if isinstance(value, str) and value.strip():
            merged[name] = value.strip()
        elif value in ("", None):
            merged.pop(name, None)
        else:
            merged[name] = value
    if merged:
        data["headers"] = merged
    else:
        data.pop("headers", None)


def _set_nested(data: dict, path: tuple, value) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value
