"""GET/DELETE /logs, /request-error-logs, /request-log-by-id."""

from __future__ import annotations

import errno
import os
import zlib
from urllib.parse import quote

from flask import Blueprint, jsonify, request, send_file

from ..conventions import go_atoi, go_trim_space, store
from ..errors import ApiError
from ..fileio import NotRegularFile, open_regular
from ..openapi import describe
from .paths import MAIN_LOG, is_error_log, log_dir, regular_files
from . import backwards, cursor
from .reader import main_log_files, read_logs

bp = Blueprint("logs", __name__)

_DOWNLOAD = {"ok_type": "text/plain"}


def _logging_dir() -> str:
    if store().get("logging-to-file") is not True:
        raise ApiError(400, "logging to file disabled")
    return log_dir(store())


def _limit() -> int | None:
    text = go_trim_space(request.args.get("limit", ""))
    if text == "":
        return None
    value = go_atoi(text)
    if value is None:
        raise ApiError(400, "invalid limit: must be a positive integer")
    if value <= 0:
        raise ApiError(400, "invalid limit: must be greater than zero")
    return value


def _after() -> int:
    text = go_trim_space(request.args.get("after", ""))
    return max(go_atoi(text) or 0, 0)


@bp.get("/logs")
@describe("Lines of the server's log (needs logging-to-file). With `limit` or `cursor` the "
          "answer is paged: `next-cursor` continues after its last line", query=(
    ("after", "integer", "only lines after this unix time"),
    ("limit", "integer", "only the last N lines (with a cursor: the first N new lines)"),
    ("cursor", "string", "continue after an earlier answer's next-cursor")),
          ok={"type": "object", "properties": {
              "lines": {"type": "array", "items": {"type": "string"}},
              "line-count": {"type": "integer"}, "latest-timestamp": {"type": "integer"},
              "next-cursor": {"type": "string"}, "cursor-reset": {"type": "boolean"}}})
def get_logs():
    folder = _logging_dir()
    limit, after = _limit(), _after()
    raw_cursor = request.args.get("cursor", "").strip()
    paged = limit is not None or bool(raw_cursor)
    if not os.path.isdir(folder):
        latest = after
        if raw_cursor and (known := cursor.decode(raw_cursor)):
            latest = max(latest, known["latestTimestamp"])
        body = {"lines": [], "line-count": 0, "latest-timestamp": latest}
        if paged:
            body["next-cursor"] = ""
        if raw_cursor:
            body["cursor-reset"] = True
        return jsonify(body)
    try:
        return jsonify(_read(folder, after, limit, raw_cursor, paged))
    except OSError as exc:
        raise ApiError(500, f"failed to read log file {exc.filename}: {exc.strerror}") from None


def _read(folder: str, after: int, limit: int | None, raw_cursor: str, paged: bool) -> dict:
    """Whichever read the query asks for; each costs about what it returns (but a plain
    GET /logs, which returns everything)."""
    if raw_cursor:
        body = cursor.read_from(folder, raw_cursor, limit)
        if body is not None:
            return body
        known = cursor.decode(raw_cursor)
        body = backwards.tail(folder, limit) if limit else read_logs(folder, 0, None)
        body["latest-timestamp"] = max(body["latest-timestamp"],
                                       known["latestTimestamp"] if known else 0)
        body["line-count"] = len(body["lines"])
        body["cursor-reset"] = True
    elif after == 0 and limit is not None:
        body = backwards.tail(folder, limit)
    elif after == 0:
        body = read_logs(folder, 0, None)
    else:
        body = backwards.newer_than(folder, after, limit)
    if paged and "next-cursor" not in body:
        body["next-cursor"] = cursor.end_cursor(folder, body["latest-timestamp"])
    return body


@bp.delete("/logs")
@describe("Empty main.log and delete its rotated files", ok={"type": "object", "properties": {
    "success": {"type": "boolean"}, "message": {"type": "string"},
    "removed": {"type": "integer"}}})
def delete_logs():
    folder = _logging_dir()
    if not os.path.isdir(folder):
        raise ApiError(404, "log directory not found")
    try:
        files = main_log_files(folder)
    except OSError as exc:
        raise ApiError(500, f"failed to list log directory: {exc}") from None
    removed = 0
    for path in files:
        name = os.path.basename(path)
        try:
            if name == MAIN_LOG:
                os.truncate(path, 0)
            else:
                os.remove(path)
                removed += 1
        except OSError as exc:
            text = "failed to truncate log file" if name == MAIN_LOG else f"failed to remove {name}"
            raise ApiError(500, f"{text}: {exc}") from None
    return jsonify({"success": True, "message": "Logs cleared successfully", "removed": removed})


@bp.get("/request-error-logs")
@describe("The request error logs (error-*.log), newest first", ok={
    "type": "object", "properties": {"files": {"type": "array", "items": {
        "type": "object", "properties": {"name": {"type": "string"}, "size": {"type": "integer"},
                                         "modified": {"type": "integer"}}}}}})
def list_request_error_logs():
    if store().get("request-log") is True:
        return jsonify({"files": []})  # full request logs are on: no separate error logs
    folder = log_dir(store())
    if not os.path.isdir(folder):
        return jsonify({"files": []})
    try:
        found = [(e.name, e.stat()) for e in regular_files(folder) if is_error_log(e.name)]
    except OSError as exc:
        raise ApiError(500, f"failed to list request error logs: {exc}") from None
    found.sort(key=lambda item: item[1].st_mtime, reverse=True)
    return jsonify({"files": [{"name": name, "size": st.st_size, "modified": int(st.st_mtime)}
                              for name, st in found]})


def _attachment(folder: str, name: str, not_found: str = "log file not found"):
    """Serve `name` from the log folder as a download (Range and If-Modified-Since work).

    Only a regular file is sent: a FIFO, socket or device named like a log is `not_found`,
    as a missing file is (opened without waiting, see `open_regular`)."""
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(folder, name))
    if os.path.dirname(path) != root:
        raise ApiError(400, "invalid log file path")
    if os.path.isdir(path):
        raise ApiError(400, "invalid log file")
    try:
        f, st = open_regular(path)
    except (FileNotFoundError, NotRegularFile):
        raise ApiError(404, not_found) from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:  # no file can have that name
            raise ApiError(404, not_found) from None
        raise ApiError(500, f"failed to read log file: {exc.strerror or exc}") from None  # (no path)
    try:
        # The file object, not the path: what was checked is what is sent. send_file cannot
        # size a file object, so the length (for Range) and the ETag come from the fstat.
        response = send_file(f, mimetype="text/plain", conditional=False, last_modified=st.st_mtime,
                             etag=f"{st.st_mtime}-{st.st_size}-{zlib.adler32(os.fsencode(path))}")
        response.content_length = st.st_size
        response = response.make_conditional(request.environ, accept_ranges=True,
                                             complete_length=st.st_size)
    except BaseException:
        f.close()
        raise
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{name}"' if name.isascii()
        else f"attachment; filename*=UTF-8''{quote(name, safe='')}")
    return response


@bp.get("/request-error-logs/<path:name>")
@describe("Download one request error log", **_DOWNLOAD)
def download_request_error_log(name: str):
    name = name.strip()
    if not name or "/" in name or "\\" in name or "\0" in name:
        raise ApiError(400, "invalid log file name")
    if not is_error_log(name):
        raise ApiError(404, "log file not found")
    return _attachment(log_dir(store()), name)


@bp.get("/request-log-by-id/<path:request_id>")
@describe("Download the request log of a request id", **_DOWNLOAD)
def request_log_by_id(request_id: str):
    request_id = request_id.strip() or request.args.get("id", "").strip()
    if not request_id:
        raise ApiError(400, "missing request ID")
    if "/" in request_id or "\\" in request_id or "\0" in request_id:
        raise ApiError(400, "invalid request ID")
    folder = log_dir(store())
    if not os.path.isdir(folder):
        raise ApiError(404, "log directory not found")
    suffix = f"-{request_id}.log"
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.is_file())  # no FIFOs, sockets
    except OSError as exc:
        raise ApiError(500, f"failed to list log directory: {exc}") from None
    name = next((n for n in names if n.endswith(suffix)), None)
    not_found = "log file not found for the given request ID"
    if name is None:
        raise ApiError(404, not_found)
    return _attachment(folder, name, not_found)
