"""The /auth-files routes (reference-behaviour §8.3-8.7, reference-delta §1-2, decisions 6-7)."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, jsonify, request

from ..config_api import bytes_response, upload_limit
from ..conventions import is_kind, ok, read_body
from ..errors import ApiError
from ..openapi import describe
from ..schemas import StatusOK
from . import auth_files
from .listing import parse_auth_json

bp = Blueprint("authfiles", __name__)

_ALL = ("true", "1", "*")
_NAME = ("name", "string", "the auth file's name, e.g. acme-user@example.com.json")
_OBJECT = {"type": "object"}


def _object(**properties) -> dict:
    return {"type": "object", "properties": properties}


@bp.get("/auth-files")
@describe("List the auth files", ok=_object(files={"type": "array", "items": _OBJECT}))
def list_auth_files():
    files = auth_files()
    folder = files.folder(required=False)
    if folder is None:
        return jsonify({"files": []})
    try:
        body = files.listing.body(folder, files.types)
    except OSError as exc:
        raise ApiError(500, f"failed to read auth dir: {exc.strerror or exc}") from None
    return bytes_response(body, "application/json")


@bp.get("/auth-files/download")
@describe("Download an auth file", query=[_NAME], ok=_OBJECT)
def download_auth_file():
    name = request.args.get("name", "")
    content = auth_files().folder().read(name)
    resp = Response(content, content_type="application/json")
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp


@bp.post("/auth-files")
@describe("Upload an auth file: the JSON body with ?name=, or a multipart `file`", query=[_NAME],
          body=_OBJECT, ok=StatusOK)
def upload_auth_file():
    files = auth_files()
    limit = upload_limit()
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "request body too large")
    request.max_content_length = limit  # also bounds a chunked multipart body
    upload = request.files.get("file") if request.mimetype == "multipart/form-data" else None
    if upload is not None:
        # A browser sends a bare file name; keep only its last part, as upstream does.
        name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
        check = {"suffix_error": "file must be .json"}
        files.folder().path_of(name, **check)
        content = upload.stream.read(limit + 1)
    else:
        name = request.args.get("name", "")
        check = {}
        files.folder().path_of(name)
        content = read_body(limit)
    if len(content) > limit:
        raise ApiError(413, "request body too large")
    problem = parse_auth_json(content)
    if not isinstance(problem, dict):
        raise ApiError(400, problem)  # upstream writes first and answers 500; we refuse
    try:
        files.write(name, content, **check)
    except OSError as exc:
        raise ApiError(500, f"failed to save file: {exc.strerror or exc}") from None
    return ok()


@bp.delete("/auth-files")
@describe("Delete an auth file, or all of them with ?all=true", ok=StatusOK, query=[
    _NAME, ("all", "string", "true, 1 or *: delete every auth file")])
def delete_auth_files():
    files = auth_files()
    if request.args.get("all", "").strip().lower() in _ALL:
        folder = files.folder()
        deleted = 0
        with files.lock:
            try:
                found = list(folder.scan())
            except OSError as exc:
                raise ApiError(500, f"failed to read auth dir: {exc.strerror or exc}") from None
            for name, _, _ in found:
                try:
                    folder.remove(name)
                except ApiError:
                    continue  # upstream skips files it cannot remove
                files.listing.forget(name)
                deleted += 1
        return jsonify({"status": "ok", "deleted": deleted})
    with files.lock:
        name = request.args.get("name", "")
        files.folder().remove(name)
        files.listing.forget(name)
    return ok()


def _patch_body(fields: dict) -> tuple[str, dict]:
    """The JSON object of a PATCH, typed as `fields` says; (trimmed name, present fields)."""
    try:
        body = json.loads(read_body())
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid request body")
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise ApiError(400, "invalid request body")
    present = {}
    for field, kind in fields.items():
        value = body.get(field)
        if value is None:
            continue  # JSON null counts as absent
        if not is_kind(value, kind):
            raise ApiError(400, "invalid request body")
        present[field] = value
    name = (name or "").strip()
    if not name:
        raise ApiError(400, "name is required")
    return name, present


@bp.patch("/auth-files/status")
@describe("Disable or enable an auth file", body=_object(name={"type": "string"}, disabled={"type": "boolean"}),
          ok=_object(status={"type": "string"}, disabled={"type": "boolean"}))
def patch_auth_file_status():
    name, present = _patch_body({"disabled": bool})
    if "disabled" not in present:
        raise ApiError(400, "disabled is required")
    disabled = present["disabled"]
    auth_files().update(name, lambda data: data.__setitem__("disabled", disabled))
    return jsonify({"status": "ok", "disabled": disabled})


@bp.patch("/auth-files/fields")
@describe("Set an auth file's prefix, proxy_url or priority", ok=StatusOK, body=_object(
    name={"type": "string"}, prefix={"type": "string"}, proxy_url={"type": "string"}, priority={"type": "integer"}))
def patch_auth_file_fields():
    name, present = _patch_body({"prefix": str, "proxy_url": str, "priority": int})
    files = auth_files()
    if not present:
        files.load(name)  # 404 for an unknown file comes first, as upstream
        raise ApiError(400, "no fields to update")

    def change(data: dict) -> None:
        # Values are stored as sent (upstream sets them untrimmed); "" and priority 0 remove
        # the key, which the proxy reads as "not set" (decision: persisted, reference-delta §2).
        for field, value in present.items():
            if value in ("", 0):
                data.pop(field, None)
            else:
                data[field] = value

    files.update(name, change)
    return ok()


@bp.get("/auth-files/models")
@describe("The models an auth file's provider serves", query=[_NAME],
          ok=_object(models={"type": "array", "items": _OBJECT}))
def auth_file_models():
    name = request.args.get("name", "").strip()
    if not name:
        raise ApiError(400, "name is required")
    return jsonify({"models": _models_of(name)})


def _models_of(name: str) -> list:
    """The models a file's provider serves (static definitions; we run no model registry)."""
    from .models import models_for_file

    return models_for_file(current_app.extensions["cliproxy_mgmt"], auth_files(), name)
