"""`GET /v0/management` itself: a small index, guarded like every management route.

Without a valid key it answers what any management route answers (404 while management is
off, 401 without a key, ...); with one it says the API is there and where its description is.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from . import __version__
from .openapi import describe

bp = Blueprint("index", __name__)


@bp.get("", strict_slashes=False)
@describe("The Management API's index: status, version and where the OpenAPI description is",
          ok={"type": "object", "properties": {"status": {"type": "string"},
                                               "version": {"type": "string"},
                                               "openapi": {"type": "string"}}})
def index():
    return jsonify({"status": "ok", "service": "cliproxy-mgmt", "version": __version__,
                    "openapi": request.script_root + "/v0/management/openapi.json"})
