"""GET /config, GET and PUT /config.yaml."""

from __future__ import annotations

import io
import json

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.wsgi import wrap_file

from .config.store import ConfigError, InvalidConfig
from .config.view import build_config_view
from .conventions import read_body, store
from .errors import ApiError
from .openapi import describe
from .plugin_state import gate
from .schemas import ConfigReplaced

bp = Blueprint("config_api", __name__)

DEFAULT_UPLOAD_LIMIT = 10 << 20

# Keys only the operator may change, in the file on the server: `panel-file` names a file
# served without a key (web_ui), so a key holder must not point it at another file.
SERVER_ONLY_KEYS = (("remote-management", "panel-file"),)


def _value(data, path):
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def check_server_only_keys(new: dict, current: dict) -> None:
    """422 when `new` (a valid new config) changes a SERVER_ONLY_KEYS value of `current`."""
    for path in SERVER_ONLY_KEYS:
        if (_value(new, path) or None) != (_value(current, path) or None):
            raise ApiError(422, "invalid_config", message=f"{'.'.join(path)} can only be changed "
                           "in config.yaml on the server, not through the API")


def upload_limit(config=None) -> int:
    """`remote-management.max-upload-bytes`: the largest file body (config.yaml, auth files)."""
    value = (config or store()).get("remote-management", "max-upload-bytes", default=None)
    return value if isinstance(value, int) and value > 0 else DEFAULT_UPLOAD_LIMIT


def bytes_response(body: bytes, content_type: str) -> Response:
    """A response of ready bytes, handed to the server as a file (waitress then sends it
    without copying it through its output buffers: a large body costs little more than a
    small one)."""
    return file_response(io.BytesIO(body), len(body), content_type)


def file_response(file, length: int, content_type: str) -> Response:
    """A response read from `file` (read, seek, tell) of `length` bytes, as bytes_response."""
    resp = Response(wrap_file(request.environ, file, buffer_size=max(length, 1)),
                    content_type=content_type, direct_passthrough=True)
    resp.content_length = length
    return resp


@bp.get("/config")
@describe("The effective config as JSON (server and secret settings hidden)", ok={"type": "object"})
def get_config():
    state = current_app.extensions["cliproxy_mgmt"]
    sections, live = state.registry.config_sections, gate(state).live_sections
    body = store().derived("config-json", lambda data: json.dumps(
        build_config_view(data, live(sections, data)), separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return bytes_response(body, "application/json")


@bp.get("/config.yaml")
@describe("config.yaml as it is on disk", ok_type="application/yaml")
def get_config_yaml():
    config = store()
    body = config.derived("config-yaml", lambda data: config.text.encode("utf-8"))
    resp = bytes_response(body, "application/yaml; charset=utf-8")
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
        store().replace_text(text, check=check_server_only_keys)
    except InvalidConfig as exc:
        raise ApiError(422, "invalid_config", message=str(exc)) from None
    except ConfigError as exc:
        raise ApiError(400, "invalid_yaml", message=str(exc)) from None
    return jsonify({"ok": True, "changed": ["config"]})
