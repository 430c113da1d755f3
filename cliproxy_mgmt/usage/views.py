"""GET /usage, GET /usage/export, POST /usage/import."""

from __future__ import annotations

import hashlib
import itertools
import time

from flask import Blueprint, Response, current_app, jsonify
from marshmallow import ValidationError

from ..config_api import upload_limit
from ..conventions import read_body, store
from ..errors import ApiError
from ..openapi import describe
from ..plugin_state import gate
from ..safeload import InvalidJSON, load_json
from .schema import ImportSchema, load_import
from .service import usage_service
from .timestamps import Stamp

bp = Blueprint("usage", __name__)

_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
SNAPSHOT = {"type": "object", "description": "upstream's usage snapshot", "properties": {
    **{name: {"type": "integer"} for name in
       ("total_requests", "success_count", "failure_count", "total_tokens")},
    "apis": {"type": "object", "description": "api -> {total_requests, total_tokens, models: "
             "model -> {total_requests, total_tokens, details: [...]}}"},
    **{name: _COUNTS for name in
       ("requests_by_day", "requests_by_hour", "tokens_by_day", "tokens_by_hour")}}}
_INT = {"type": "integer"}


def _streamed(head, tail: str) -> Response:
    chunks = usage_service().store().stream(head, tail)
    # The store is first read here, where a failure can still be answered as JSON (once the
    # response has started, the server could only cut it off).
    first = next(chunks)
    return Response(itertools.chain((first,), chunks), mimetype="application/json")


@bp.get("/usage")
@describe("Usage statistics", ok={"type": "object", "properties": {
    "failed_requests": _INT, "usage": SNAPSHOT}})
def get_usage():
    return _streamed(lambda failed: f'{{"failed_requests":{failed},"usage":', "}")


@bp.get("/usage/export")
@describe("Usage statistics in upstream's export format", ok={"type": "object", "properties": {
    "exported_at": {"type": "string", "format": "date-time"}, "usage": SNAPSHOT,
    "version": _INT}})
def export_usage():
    exported_at = Stamp(time.time_ns()).text()
    return _streamed(lambda _: f'{{"exported_at":"{exported_at}","usage":', ',"version":1}')


@bp.post("/usage/import")
@describe("Merge an export: details not already kept are added", body=ImportSchema,
          ok={"type": "object", "properties": {name: _INT for name in (
              "added", "failed_requests", "skipped", "total_requests")}})
def import_usage():
    try:
        body = read_body(upload_limit())  # an export is a file, not a small JSON body
    except OSError:
        raise ApiError(400, "failed to read request body") from None
    try:
        version, details = load_import(load_json(body))
    except (InvalidJSON, ValidationError):  # JSON syntax, UTF-8 or a type mismatch
        raise ApiError(400, "invalid json") from None
    if version not in (0, 1):
        raise ApiError(400, "unsupported version")
    return jsonify(usage_service().merge(details))


def api_key_index(api_key: str) -> str:
    """The `auth_index` of a config API-key credential: SHA-256 of `api_key:<key>`, 16 hex chars."""
    return hashlib.sha256(f"api_key:{api_key}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


_RECENT = {"type": "array", "items": {"type": "object", "properties": {
    "time": {"type": "string"}, "success": _INT, "failed": _INT}}}


@bp.get("/api-key-usage")
@describe("Requests per API-key credential of the config: provider -> \"<base-url>|<api-key>\" "
          "-> success, failed and 20 ten-minute buckets of recent requests", ok={
              "type": "object", "additionalProperties": {"type": "object", "additionalProperties": {
                  "type": "object", "properties": {"success": _INT, "failed": _INT,
                                                   "recent_requests": _RECENT}}}})
def api_key_usage():
    """Counted from the persisted usage store (so it survives a restart), by the credential's
    `auth_index` or, for requests reported without one, by its key as `source`. The cost is
    one lookup per configured key, whatever number of requests was recorded."""
    usage = usage_service().credential_usage()
    data = store().data
    state = current_app.extensions["cliproxy_mgmt"]
    out: dict = {}
    for section in gate(state).live_sections(state.registry.config_sections, data).values():
        if section.credentials is None:
            continue
        for provider, base_url, api_key in section.credentials(data):
            entries = out.setdefault(provider or "unknown", {})
            key = f"{base_url}|{api_key}"
            if key not in entries:  # a repeated entry shares its key's index, so its counts
                entries[key] = usage.lookup(api_key_index(api_key), api_key)
    return jsonify(out)
