"""GET /logs paging: a cursor is a position in a log file, so a poll reads only what is new.

A cursor (opaque to clients: base64url of JSON) names a main-log file, a byte offset just
after a complete line, the file's identity (device and inode, so a rotation that renames
main.log is followed rather than lost) and a fingerprint (SHA-256 of the first and the last
4 KiB before the offset), plus the latest timestamp seen. A cursor that no longer fits
(file gone, truncated or replaced) cannot be used: the caller then answers a tail with
`cursor-reset`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os

from ..fileio import open_regular
from ..safeload import load_json
from .reader import line_time, main_log_files, open_log

FINGERPRINT_BYTES = 4 * 1024
BLOCK = 64 * 1024


def _fingerprint(f, offset: int) -> str:
    head = min(offset, FINGERPRINT_BYTES)
    f.seek(0)
    digest = hashlib.sha256(f.read(head))
    if offset > head:
        start = max(head, offset - FINGERPRINT_BYTES)
        f.seek(start)
        digest.update(f.read(offset - start))
    return digest.hexdigest()


def encode(path: str, offset: int, latest: int) -> str:
    """A cursor for `offset` bytes into `path`."""
    f, st = open_regular(path)
    with f:
        fingerprint = _fingerprint(f, offset)
    raw = json.dumps({"v": 1, "file": os.path.basename(path), "offset": offset,
                      "dev": st.st_dev, "ino": st.st_ino, "fingerprint": fingerprint,
                      "latestTimestamp": latest}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode(text: str) -> dict | None:
    """The fields of a cursor, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = load_json(raw)  # (a client's text: nesting limited)
    except (ValueError, binascii.Error):
        return None
    if not isinstance(data, dict) or data.get("v") != 1:
        return None
    kinds = {"file": str, "offset": int, "dev": int, "ino": int, "fingerprint": str,
             "latestTimestamp": int}
    if any(type(data.get(k)) is not kind for k, kind in kinds.items()) or data["offset"] < 0:
        return None
    return data


def end_cursor(folder: str, latest: int, files: list[str] | None = None) -> str:
    """A cursor at the end of the newest file ("" when there is none)."""
    files = main_log_files(folder) if files is None else files
    plain = [p for p in files if not p.endswith(".gz")]
    if not plain:
        return ""
    path = plain[-1]
    return encode(path, os.path.getsize(path), latest)


def _locate(files: list[str], cursor: dict) -> int | None:
    """The index in `files` of the file the cursor points into, if it still fits."""
    named = [i for i, p in enumerate(files) if os.path.basename(p) == cursor["file"]]
    others = [i for i in range(len(files)) if i not in named]
    for i in named + others:  # the named file first; else where a rotation moved it
        path = files[i]
        if path.endswith(".gz"):
            continue
        try:
            f, st = open_regular(path)
            with f:
                if (st.st_dev, st.st_ino) != (cursor["dev"], cursor["ino"]) or st.st_size < cursor["offset"]:
                    continue
                if _fingerprint(f, cursor["offset"]) == cursor["fingerprint"]:
                    return i
        except OSError:
            continue
    return None


def read_from(folder: str, text: str, limit: int | None) -> dict | None:
    """Up to `limit` complete lines after the cursor, into newer files; None: reset needed."""
    cursor = decode(text)
    if cursor is None:
        return None
    files = main_log_files(folder)
    start = _locate(files, cursor)
    if start is None:
        return None
    lines: list[bytes] = []
    latest = cursor["latestTimestamp"]
    position = (files[start], cursor["offset"])
    for i in range(start, len(files)):
        path = files[i]
        if path.endswith(".gz"):
            return None  # a newer file already compressed: the gap cannot be read in place
        newest = i == len(files) - 1
        offset = cursor["offset"] if i == start else 0
        position = (path, offset)
        f = open_log(path)
        if f is None:
            return None  # gone or replaced since the folder was listed: start again
        with f:
            f.seek(offset)
            rest = b""
            while limit is None or len(lines) < limit:
                block = f.read(BLOCK)
                if not block:
                    if rest and not newest:  # a finished file's last line needs no newline
                        lines.append(rest)
                        offset += len(rest)
                        position = (path, offset)
                    break
                parts = (rest + block).split(b"\n")
                rest = parts.pop()
                for part in parts:
                    lines.append(part[:-1] if part.endswith(b"\r") else part)
                    offset += len(part) + 1
                    position = (path, offset)
                    if limit is not None and len(lines) >= limit:
                        break
        if limit is not None and len(lines) >= limit:
            break
    for line in lines:
        latest = max(latest, line_time(line))
    return {"lines": [line.decode("utf-8", "replace") for line in lines],
            "line-count": len(lines), "latest-timestamp": latest,
            "next-cursor": encode(position[0], position[1], latest)}
