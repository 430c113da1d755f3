"""`POST /reset-quota`: clear a credential's quota and cooldown state (upstream's route).

This server runs no requests, so it holds no quota or cooldown state of its own: the route
checks the credential exists (by its `auth_index`, as GET /auth-files lists it) and answers
upstream's success shape with no model reset. Scripts written for upstream keep working.
"""

from __future__ import annotations


from flask import Blueprint, jsonify

from .authfiles import find_by_auth_index
from .conventions import read_body
from .errors import ApiError
from .openapi import describe
from .safeload import load_json

bp = Blueprint("quota", __name__)


@bp.post("/reset-quota")
@describe("Clear a credential's quota/cooldown state", body={
    "type": "object", "properties": {"auth_index": {"type": "string"}}, "required": ["auth_index"]},
    ok={"type": "object", "properties": {"status": {"type": "string"}, "auth_index": {"type": "string"},
                                         "models": {"type": "array", "items": {"type": "string"}}}})
def reset_quota():
    try:
        body = load_json(read_body())
    except (ValueError, UnicodeDecodeError):
        body = None
    index = body.get("auth_index") if isinstance(body, dict) else None
    if not isinstance(body, dict) or (index is not None and not isinstance(index, str)):
        raise ApiError(400, "invalid request body")
    index = (index or "").strip()
    if not index:
        raise ApiError(400, "auth_index is required")
    if find_by_auth_index(None, index) is None:
        raise ApiError(404, "auth not found")
    return jsonify({"status": "ok", "auth_index": index, "models": []})
