"""GET /usage, GET /usage/export, POST /usage/import."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify
from marshmallow import ValidationError

from ..config_api import upload_limit
from ..conventions import read_body
from ..errors import ApiError
from ..openapi import describe
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
    return Response(usage_service().store().stream(head, tail), mimetype="application/json")


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
