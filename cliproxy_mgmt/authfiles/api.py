"""The /auth-files routes (size limits and safe names: docs/decisions.md)."""

from __future__ import annotations

import logging
from urllib.parse import quote

from flask import Blueprint, Response, current_app, jsonify, request

from ..config_api import bytes_response, file_response, upload_limit
from ..conventions import is_kind, ok, read_body
from ..errors import ApiError, storage_unavailable
from ..openapi import describe
from ..safeload import load_json
from ..schemas import StatusOK
from ..storage.base import Unavailable
from ..usage.credential_stats import auth_file_usage
from . import auth_files, auth_index
from . import fields as editable_fields
from .listing import parse_auth_json
from .names import trimmed

bp = Blueprint("authfiles", __name__)
log = logging.getLogger(__name__)

_ALL = ("true", "1", "*")
_NAME = ("name", "string", "the auth file's name, e.g. acme-user@example.com.json")
_OBJECT = {"type": "object"}


def _object(**properties) -> dict:
    return {"type": "object", "properties": properties}


_NAMES = {"type": "array", "items": {"type": "string"}}
_FAILED = {"type": "array", "items": _object(name={"type": "string"}, error={"type": "string"})}
_UPLOADED = _object(status={"type": "string"}, uploaded={"type": "integer"}, files=_NAMES, failed=_FAILED)
_DELETED = _object(status={"type": "string"}, deleted={"type": "integer"}, files=_NAMES, failed=_FAILED)


@bp.get("/auth-files")
@describe("List the auth files", ok=_object(files={"type": "array", "items": _OBJECT}), query=[
    ("name", "string", "only the file with this name"), ("auth_index", "string", "only the file with this index")])
def list_auth_files():
    files = auth_files()
    folder = files.folder(required=False)
    if folder is None:
        return jsonify({"files": []})
    try:
        listing = files.listing.body(folder, files.types, usage=auth_file_usage(files.state))
    except OSError as exc:
        raise ApiError(500, f"failed to read auth dir: {exc.strerror or exc}") from None
    name, index = (trimmed(request.args.get(key, "")) for key in ("name", "auth_index"))
    if name or index:  # upstream's filters
        return bytes_response(files.listing.matching(name, index), "application/json")
    return file_response(listing.reader(), listing.length, "application/json")


@bp.get("/auth-files/download")
@describe("Download an auth file", query=[_NAME], ok=_OBJECT)
def download_auth_file():
    name = trimmed(request.args.get("name", ""))
    content = auth_files().folder().read(name)
    resp = Response(content, content_type="application/json")
    resp.headers["Content-Disposition"] = attachment(name)
    return resp


def attachment(name: str) -> str:
    """Content-Disposition for a download named `name` (RFC 6266): `filename="..."` as upstream
    writes it, and for a name that is not plain printable ASCII an ASCII fallback plus the
    exact name as `filename*=UTF-8''...` (RFC 5987; a header value must be latin-1)."""
    fallback = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in name)
    header = f'attachment; filename="{fallback}"'
    if fallback != name:
        header += "; filename*=UTF-8''" + quote(name, safe="", errors="surrogatepass")
    return header


@bp.post("/auth-files")
@describe("Upload auth files: the JSON body with ?name=, or multipart parts (one file each; "
          "several files get one answer per file, 207 when some failed)", query=[_NAME],
          body=_OBJECT, ok=_UPLOADED, also={207: _UPLOADED})
def upload_auth_file():
    files = auth_files()
    limit = upload_limit()
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "request body too large")
    request.max_content_length = limit  # also bounds a chunked multipart body
    if request.mimetype == "multipart/form-data":
        uploads = _uploaded_files()
        if len(uploads) > 1:
            return _upload_many(files, uploads, limit)
        if not uploads:
            raise ApiError(400, "no files uploaded")
        name, content = _read_upload(uploads[0], limit)
        _store_upload(files, name, content, {"suffix_error": "file must be .json"})
        return ok()
    name = trimmed(request.args.get("name", ""))
    files.folder().path_of(name)
    content = read_body(limit)
    if len(content) > limit:
        raise ApiError(413, "request body too large")
    _store_upload(files, name, content, {})
    return ok()


def _uploaded_files() -> list:
    """Every file part, field names sorted, then the files in order (upstream's order)."""
    return [upload for field in sorted(request.files) for upload in request.files.getlist(field)]


def _last_part(filename: str) -> str:
    # A browser sends a bare file name; keep only its last part, as upstream does.
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def _upload_name(upload) -> str:
    """The name a failed upload is shown by: the sent name's last part, untrimmed (upstream's)."""
    return _last_part(upload.filename or "")


def _read_upload(upload, limit: int) -> tuple[str, bytes]:
    name = _last_part(trimmed(upload.filename or ""))  # upstream trims, then takes the last part
    auth_files().folder().path_of(name, suffix_error="file must be .json")
    content = upload.stream.read(limit + 1)
    if len(content) > limit:
        raise ApiError(413, "request body too large")
    return name, content


def _store_upload(files, name: str, content: bytes, check: dict) -> None:
    problem = parse_auth_json(content)
    if not isinstance(problem, dict):
        raise ApiError(400, problem)  # upstream writes first and answers 500; we refuse
    try:
        files.write(name, content, **check)
    except OSError as exc:
        raise ApiError(500, f"failed to save file: {exc.strerror or exc}") from None


def _upload_many(files, uploads: list, limit: int):
    """Store each file on its own: 200 when all were stored, else 207 naming each failure."""
    def store(upload) -> str:
        name, content = _read_upload(upload, limit)
        _store_upload(files, name, content, {"suffix_error": "file must be .json"})
        return name

    return _each(uploads, store, _upload_name, "uploaded")


def _each(items: list, act, shown, count_key: str):
    """`act(item)` on every item on its own: 200 when all succeeded, else 207 naming each
    failure (upstream's multi-file answers). A failure of the storage itself is one item's
    failure too, with the error its one-item request answers: the items done before it are
    done, and the answer must say so."""
    done, failed = [], []
    failures = _Failures(count_key, len(items))
    for item in items:
        try:
            done.append(act(item))
        except Exception as exc:  # noqa: BLE001 - each item answers for itself; the others go on
            failed.append({"name": shown(item), "error": failures.answer(exc).error})
    failures.log()
    body = {"status": "partial" if failed else "ok", count_key: len(done), "files": done}
    if failed:
        body["failed"] = failed
    return jsonify(body), 207 if failed else 200


class _Failures:
    """The failures of a request that acts on many items, each answered as its one-item
    request would answer it. A failure of the storage rather than of the item (the storage
    unavailable, the auth-dir gone, an unexpected error) is logged once per request, not once
    per item: thousands of lines when the database is down."""

    def __init__(self, action: str, total: int):
        self.action, self.total = action, total
        self.storage: ApiError | None = None  # the first failure of the storage
        self.count = 0  # failures of the storage
        self.traced = False  # the traceback of an unexpected error is logged once

    def answer(self, exc: Exception) -> ApiError:
        if isinstance(exc, ApiError):
            error = exc
        elif isinstance(exc, Unavailable):
            error = storage_unavailable(exc)
        else:
            if not self.traced:
                log.error("unhandled error", exc_info=exc)
                self.traced = True
            error = ApiError(500, "internal server error")
        if not isinstance(exc, ApiError) or exc.status == 503:  # 503: the auth-dir is gone
            self.count += 1
            self.storage = self.storage or error
        return error

    def log(self) -> None:
        if self.storage is not None:
            log.error("%d of %d auth files not %s: %s", self.count, self.total, self.action, self.storage.error)


@bp.delete("/auth-files")
@describe("Delete auth files: ?name= (repeatable), a JSON body [names] or {\"names\": [...]}, "
          "or all of them with ?all=true (several names get one answer per name, 207 when some failed; "
          "when the storage fails part-way, ?all=true answers its error with `deleted`)",
          body={"type": "object", "properties": {
              "name": {"type": "string"}, "names": {"type": "array", "items": {"type": "string"}}}},
          ok=_DELETED, also={207: _DELETED}, query=[_NAME, ("all", "string", "true, 1 or *: delete every auth file")])
def delete_auth_files():
    files = auth_files()
    if request.args.get("all", "") in _ALL:  # exactly these, as upstream: "TRUE" deletes nothing
        return _delete_all(files)
    query_names = request.args.getlist("name")
    names = _unique(query_names)
    if len(query_names) == 1 and names:  # the seed-era single delete, answers unchanged
        name = names[0]
        with files.locks.hold(name):
            files.folder().remove(name)
            files.listing.forget(name)
        return ok()
    names = names or _body_names()  # upstream reads the body when no name is left
    if not names:
        raise ApiError(400, "invalid name")
    if len(names) == 1:
        _delete_one(files, names[0])
        return ok()
    def delete(name: str) -> str:
        _delete_one(files, name)
        return name

    return _each(names, delete, lambda name: name, "deleted")


def _unique(names) -> list:
    """Trimmed, empty ones and repeats dropped, in order."""
    return list(dict.fromkeys(trimmed(n) for n in names if isinstance(n, str) and trimmed(n)))


def _body_names() -> list:
    """The names of a JSON body: `["a.json", ...]` or `{"name": "a.json", "names": [...]}`."""
    raw = read_body()
    if not raw.strip():
        return []
    try:
        body = load_json(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid request body") from None
    if body is None:  # JSON null: no names, as upstream's decoder reads it
        return []
    if isinstance(body, list):
        names = body
    elif isinstance(body, dict):
        listed = body.get("names")
        if listed is None:
            listed = []
        elif not isinstance(listed, list):  # upstream decodes into []string: 5 or {} is refused
            raise ApiError(400, "invalid request body")
        names = [body.get("name")] + listed
    else:
        raise ApiError(400, "invalid request body")
    if not all(n is None or isinstance(n, str) for n in names):
        raise ApiError(400, "invalid request body")
    return _unique(names)


def _delete_one(files, name: str) -> None:
    """Delete one named file (the new UI's batch answers: `auth file not found`)."""
    with files.locks.hold(name):
        try:
            files.folder().remove(name)
        except ApiError as exc:
            if exc.status == 404:
                raise ApiError(404, "auth file not found") from None
            raise
        files.listing.forget(name)


def _delete_all(files):
    """Remove every auth file. A file that cannot be removed is skipped, as upstream does. When
    the storage fails (503 `storage unavailable: ...`, or an unexpected error) the other files
    are still tried, and the answer is its first failure with `deleted`: how many were removed
    all the same."""
    folder = files.folder()
    deleted = 0
    try:
        found = list(folder.scan())
    except OSError as exc:
        raise ApiError(500, f"failed to read auth dir: {exc.strerror or exc}") from None
    failures = _Failures("deleted", len(found))
    for name, _, _ in found:
        try:
            with files.locks.hold(name):
                folder.remove(name)
        except Exception as exc:  # noqa: BLE001 - the other files are still tried
            failures.answer(exc)
            continue
        files.listing.forget(name)
        deleted += 1
    failures.log()
    if failures.storage is not None:
        raise ApiError(failures.storage.status, failures.storage.error, deleted=deleted)
    return jsonify({"status": "ok", "deleted": deleted})


def _patch_body(fields: dict) -> tuple[str, dict]:
    """The JSON object of a PATCH, typed as `fields` says; (trimmed name, present fields)."""
    body, name = editable_fields.named_object()
    present = {}
    for field, kind in fields.items():
        value = body.get(field)
        if value is None:
            continue  # JSON null counts as absent
        if not is_kind(value, kind):
            raise ApiError(400, "invalid request body")
        present[field] = value
    name = trimmed(name or "")
    if not name:
        raise ApiError(400, "name is required")
    return name, present


@bp.patch("/auth-files/status")
@describe("Disable or enable an auth file", body=_object(name={"type": "string"}, disabled={"type": "boolean"},
                                                        auth_index={"type": "string"}),
          ok=_object(status={"type": "string"}, disabled={"type": "boolean"}))
def patch_auth_file_status():
    name, present = _patch_body({"disabled": bool, "auth_index": str})
    if "disabled" not in present:
        raise ApiError(400, "disabled is required")
    index = trimmed(present.get("auth_index", ""))
    if index and index != auth_index(name):  # upstream: name and index must both match
        raise ApiError(404, "auth file not found")
    disabled = present["disabled"]
    auth_files().update(name, lambda data: data.__setitem__("disabled", disabled))
    return jsonify({"status": "ok", "disabled": disabled})


@bp.patch("/auth-files/fields")
@describe("Set fields of an auth file: prefix, proxy_url, priority, weight, note, headers, "
          "websockets, disabled, expired, or any other (a.b for nested objects)", ok=StatusOK, body=_object(
    name={"type": "string"}, prefix={"type": "string"}, proxy_url={"type": "string"},
    priority={"type": "integer"}, weight={"type": "integer", "nullable": True}, note={"type": "string"},
    headers={"type": "object"}, websockets={"type": "boolean"}, disabled={"type": "boolean"},
    expired={"type": "string"}, request_retry={"type": "integer", "nullable": True}))
def patch_auth_file_fields():
    name, present = editable_fields.parse_body()
    files = auth_files()
    if not present:
        files.load(name)  # 404 for an unknown file comes first, as upstream
        raise ApiError(400, "no fields to update")
    files.update(name, lambda data: editable_fields.apply(data, present))
    return ok()


@bp.get("/auth-files/models")
@describe("The models an auth file's provider serves", query=[_NAME],
          ok=_object(models={"type": "array", "items": _OBJECT}))
def auth_file_models():
    name = trimmed(request.args.get("name", ""))
    if not name:
        raise ApiError(400, "name is required")
    return jsonify({"models": _models_of(name)})


def _models_of(name: str) -> list:
    """The models a file's provider serves (static definitions; we run no model registry)."""
    from .models import models_for_file

    return models_for_file(current_app.extensions["cliproxy_mgmt"], auth_files(), name)
