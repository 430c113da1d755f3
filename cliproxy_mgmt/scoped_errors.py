"""`/oauth-request-scoped-errors`: per OAuth channel, how the proxy treats upstream errors.

Config key `oauth-request-scoped-errors`: a map channel -> list of rules
`{"status": <int>, "match": [substrings], "match-regexr": [regexes], "action": ...}`; the
same rule list can sit on a key entry as `request-scoped-errors`. Upstream's routes: GET
(the sanitised map, `{}` when empty), PUT (the whole map, or `{"items": {...}}`), PATCH
`{"channel"|"provider": <name>, "rules": [...]}` (no rules removes the channel), DELETE
`?channel=` (or `?provider=`). Channel names are trimmed and lower-cased. A rule counts only
with a positive `status`, a `match` or `match-regexr` and an `action`; the others are dropped,
so a PATCH whose rules are all dropped removes the channel (404 when it is not there). Any
non-empty action is kept, trimmed and lower-cased, as upstream keeps it: its proxy acts on
`stop`, `stop-and-cooldown`, `continue` and `continue-and-cooldown` and skips a rule with
another action. Only a field of the wrong JSON type is a 400 `invalid body`.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from .conventions import SCOPED_ERROR_RULE, fits, is_kind, json_object, ok, read_json, store, text
from .errors import ApiError, invalid_body
from .openapi import describe
from .schemas import StatusOK

bp = Blueprint("scoped_errors", __name__)

KEY = "oauth-request-scoped-errors"
_RULES = {"type": "array", "items": {"type": "object"}}
_MAP = {"type": "object", "additionalProperties": _RULES}


def clean_rule(rule) -> dict | None:
    """The rule as upstream keeps it: its four fields only, in upstream's order, the lists
    trimmed (empties dropped) and the action trimmed and lower-cased; None unless it has a
    positive status, a pattern (`match` or `match-regexr`) and an action: upstream drops any
    other rule."""
    if not isinstance(rule, dict):
        return None
    status = rule.get("status")
    action = text(rule.get("action")).strip().lower()
    cleaned = {"status": status}
    for name in ("match", "match-regexr"):
        values = [text(v).strip() for v in rule.get(name) or () if text(v).strip()]
        if values:
            cleaned[name] = values
    if not (is_kind(status, int) and status > 0) or not action or len(cleaned) == 1:
        return None
    cleaned["action"] = action
    return cleaned


def clean_map(value) -> dict:
    """The sanitised map: channels lower-cased, rules cleaned, channels without rules dropped."""
    cleaned = {}
    for channel, rules in (value.items() if isinstance(value, dict) else ()):
        channel = text(channel).strip().lower()
        kept = [r for r in map(clean_rule, rules) if r is not None] if isinstance(rules, list) else []
        if channel and kept:
            cleaned[channel] = kept
    return cleaned


def _rules_ok(rules) -> bool:
    return fits(rules, [SCOPED_ERROR_RULE])


def validate(value) -> None:
    """The check of a loaded config value."""
    if value is not None and not (isinstance(value, dict) and all(fits(v, [SCOPED_ERROR_RULE], strict=False)
                                                                  for v in value.values())):
        raise ValueError("expected a map of channel -> list of rules")


def _save(d: dict, value: dict) -> None:
    if value:
        d[KEY] = value
    else:
        d.pop(KEY, None)


@bp.get("/oauth-request-scoped-errors")
@describe("Error rules per OAuth channel", ok={"type": "object", "properties": {KEY: _MAP}})
def get_scoped_errors():
    return jsonify({KEY: clean_map(store().get(KEY))})


@bp.put("/oauth-request-scoped-errors")
@describe("Replace the error rules of every channel", body=_MAP, ok=StatusOK)
def put_scoped_errors():
    body = read_json()
    if isinstance(body, dict) and set(body) == {"items"}:
        body = body["items"]
    if body is None:
        body = {}
    if not isinstance(body, dict) or not all(_rules_ok(rules) for rules in body.values()):
        raise invalid_body()
    value = clean_map(body)
    store().edit(lambda d: _save(d, value))
    return ok()


@bp.patch("/oauth-request-scoped-errors")
@describe("Set (or, without rules, remove) the error rules of one channel", ok=StatusOK, body={
    "type": "object", "properties": {"channel": {"type": "string"}, "provider": {"type": "string"},
                                     "rules": _RULES}})
def patch_scoped_errors():
    body = json_object()
    channel = body.get("channel") if body.get("channel") is not None else body.get("provider")
    rules = body.get("rules")
    if (channel is not None and not isinstance(channel, str)) or not _rules_ok(rules):
        raise invalid_body()
    channel = (channel or "").strip().lower()
    if not channel:
        raise ApiError(400, "invalid channel")
    kept = clean_map({channel: rules or []}).get(channel, [])

    def change(d):
        current = clean_map(d.get(KEY))
        if not kept:
            if channel not in current:
                raise ApiError(404, "channel not found")
            del current[channel]
        else:
            current[channel] = kept
        _save(d, current)
    store().edit(change)
    return ok()


@bp.delete("/oauth-request-scoped-errors")
@describe("Remove the error rules of one channel", ok=StatusOK, query=[
    ("channel", "string", "the OAuth channel"), ("provider", "string", "same as channel")])
def delete_scoped_errors():
    channel = (request.args.get("channel", "").strip() or request.args.get("provider", "").strip()).lower()
    if not channel:
        raise ApiError(400, "missing channel")

    def change(d):
        current = clean_map(d.get(KEY))
        if channel not in current:
            raise ApiError(404, "channel not found")
        del current[channel]
        _save(d, current)
    store().edit(change)
    return ok()
