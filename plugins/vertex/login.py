"""`POST /vertex/import`: a Google service-account JSON saved as a vertex credential
, and the vertex token files' type."""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import jsonify, request

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.authfiles import auth_files
from cliproxy_mgmt.authfiles.names import is_auth_file_name, trimmed
from cliproxy_mgmt.config_api import upload_limit
from cliproxy_mgmt.errors import ApiError
from cliproxy_mgmt.oauth import Login
from cliproxy_mgmt.openapi import describe
from cliproxy_mgmt.records import AuthFileType
from cliproxy_mgmt.safeload import load_json

DEFAULT_LOCATION = "us-central1"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.S)


def normalize_private_key(value) -> str:
    """The service account's key as a PKCS#1 `RSA PRIVATE KEY` PEM; ValueError when unusable.

    Keys pasted through terminals and editors arrive with CRLF, ANSI colour codes or
    broken line wrapping: those are repaired, then the key must parse as RSA (PKCS#1 or PKCS#8).
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError("private_key is empty")
    text = _ANSI.sub("", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if not _PEM.search(text):
            raise ValueError("private_key is not a PEM key") from None
        try:  # rebuilt from the markers and the base64 body
            key = serialization.load_der_private_key(_pem_body(text), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ValueError(f"private_key cannot be parsed: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("private_key is not an RSA key")
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def _pem_body(text: str) -> bytes:
    """The DER bytes between a PEM's markers, whatever the whitespace inside."""
    body = re.sub(r"\s+", "", _PEM.search(text).group(2))
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("private_key body is not base64") from None


def file_name(project_id: str) -> str:
    """Upstream's file name for a project: separators and colons as `_`, spaces as `-`."""
    return "vertex-" + re.sub(r"[/\\:]", "_", project_id).replace(" ", "-") + ".json"


@describe("Import a Google service account as a vertex credential", body_type="multipart/form-data", body={
    "type": "object", "properties": {"file": {"type": "string", "format": "binary"}, "location": {"type": "string"}},
    "required": ["file"]}, query=[("location", "string", "the Vertex region (default us-central1)")],
    ok={"type": "object"})
def import_service_account():
    files = auth_files()
    files.folder()  # 503 when auth-dir is not configured
    limit = upload_limit()
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "request body too large")
    request.max_content_length = limit
    upload = request.files.get("file") if request.mimetype == "multipart/form-data" else None
    if upload is None:
        raise ApiError(400, "file required")
    raw = upload.stream.read(limit + 1)
    if len(raw) > limit:
        raise ApiError(413, "request body too large")
    try:
        account = load_json(raw.decode("utf-8", errors="ignore"))
        if not isinstance(account, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise ApiError(400, "invalid json", message=str(exc)) from None
    try:
        account["private_key"] = normalize_private_key(account.get("private_key"))
    except ValueError as exc:
        raise ApiError(400, "invalid service account", message=str(exc)) from None
    project = trimmed(str(account.get("project_id") or ""))
    if not project:
        raise ApiError(400, "project_id missing")
    name = file_name(project)
    if not is_auth_file_name(name):  # `..`, a control character, over 255 bytes: upstream's name, not ours
        raise ApiError(400, "invalid service account", message=f"project_id cannot name an auth file: {name}")
    location = (request.form.get("location") or request.args.get("location") or "").strip() or DEFAULT_LOCATION
    email = str(account.get("client_email") or "")
    try:
        path = files.save(name, {"service_account": account, "project_id": project,
                                 "email": email, "location": location, "type": "vertex"}, indent=True)
    except ApiError as exc:
        if exc.status < 500:
            raise  # e.g. a symlink where the file would go: refused as on every auth-file route
        raise ApiError(500, "save_failed", message=exc.error) from None
    except OSError as exc:
        raise ApiError(500, "save_failed", message=str(exc)) from None
    return jsonify({"auth-file": path, "email": email, "location": location, "project_id": project,
                    "status": "ok"})


class VertexImport(Login):
    provider = "vertex"
    name = "vertex"

    def routes(self):
        return [("/vertex/import", ["POST"], import_service_account)]


@hookimpl
def register_oauth_starters():
    return [VertexImport()]


@hookimpl
def register_auth_file_types():
    return [AuthFileType(type="vertex", provider="vertex")]
