"""GET /config, GET and PUT /config.yaml (reference-behaviour §5.1-5.2)."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, jsonify

from .config.store import ConfigError, InvalidConfig
from .config.view import build_config_view
from .conventions import read_body, store
from .errors import ApiError
from .openapi import describe
from .plugin_state import gate
from .schemas import ConfigReplaced

bp = Blueprint("config_api", __name__)

DEFAULT_UPLOAD_LIMIT = 10 << 20


def upload_limit(config=None) -> int:
    """`remote-management.max-upload-bytes`: the largest file body (config.yaml, auth files)."""
    value = (config or store()).get("remote-management", "max-upload-bytes", default=None)
    return value if isinstance(value, int) and value > 0 else DEFAULT_UPLOAD_LIMIT


@bp.get("/config")
@describe("The effective config as JSON (server and secret settings hidden)", ok={"type": "object"})
def get_config():
    state = current_app.extensions["cliproxy_mgmt"]
    sections, live = state.registry.config_sections, gate(state).live_sections
    body = store().derived("config-json", lambda data: json.dumps(
        build_config_view(data, live(sections, data)), separators=(",", ":"), ensure_ascii=False))
    return Response(body, mimetype="application/json")


@bp.get("/config.yaml")
@describe("config.yaml as it is on disk", ok_type="application/yaml")
def get_config_yaml():
    resp = Response(store().text.encode("utf-8"), content_type="application/yaml; charset=utf-8")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.put("/config.yaml")
@describe("Replace config.yaml", body_type="application/yaml", ok=ConfigReplaced)
def put_config_yaml():
    try:
        text = read_body(upload_limit()).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_yaml", message="config.yaml must be UTF-8 text") from None
    if not text.strip():
        raise ApiError(400, "invalid_yaml", message="empty config: refusing to replace config.yaml")
    try:
        store().replace_text(text)
    except InvalidConfig as exc:
        raise ApiError(422, "invalid_config", message=str(exc)) from None
    except ConfigError as exc:
        raise ApiError(400, "invalid_yaml", message=str(exc)) from None
    return jsonify({"ok": True, "changed": ["config"]})
