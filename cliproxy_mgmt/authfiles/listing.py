"""GET /auth-files: one entry per auth file, cached by (mtime, size, inode).

A warm listing stats every file and re-reads none that is unchanged: each file's entry is
kept as ready JSON bytes, and the whole body is kept while no file changed, so listing
5,000 unchanged files costs one `scandir` pass and a comparison (see benchmarks/).
Entries follow reference-behaviour §8.3 and reference-delta §4; keys are sorted, as gin
writes maps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from datetime import datetime

from ..records import top_level_email
from .store import AuthDir
from .timefmt import rfc3339_nano

log = logging.getLogger(__name__)

_REFRESH_KEYS = ("last_refresh", "lastRefresh", "last_refreshed_at", "lastRefreshedAt")


def auth_index(name: str) -> str:
    """The stable `auth_index` of a file: 16 hex chars of SHA-256 of `file:<name>` (§8.2)."""
    return hashlib.sha256(f"file:{name}".encode("utf-8")).hexdigest()[:16]


def parse_time(value) -> datetime | None:
    """A `last_refresh` value: RFC 3339, `YYYY-MM-DD HH:MM:SS` or unix seconds (§8.6)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value).astimezone()
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    for candidate in (text.replace("Z", "+00:00").replace("z", "+00:00"), text):
        try:
            return datetime.fromisoformat(candidate).astimezone()
        except ValueError:
            continue
    return None


def parse_auth_json(raw: bytes):
    """The parsed file when it is a JSON object; else a short reason (str)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"invalid auth file: {exc}"
    return data if isinstance(data, dict) else "invalid auth file: not a JSON object"


def build_entry(name: str, path: str, st, data, types: dict) -> dict:
    """The listing entry of one file; `data` is the parsed object or the reason it is unusable."""
    entry = {
        "id": name, "auth_index": auth_index(name), "name": name, "path": path,
        "source": "file", "size": st.st_size, "modtime": rfc3339_nano(st.st_mtime_ns),
        "runtime_only": False, "unavailable": False, "status_message": "", "disabled": False,
    }
    if not isinstance(data, dict):
        entry.update(type="unknown", provider="unknown", label="unknown",
                     status="error", status_message=data)
        return entry
    raw_type = data.get("type")
    raw_type = raw_type.strip().lower() if isinstance(raw_type, str) else ""
    kind = types.get(raw_type)
    shown = kind.shown if kind else (raw_type or "unknown")
    disabled = data.get("disabled") is True
    entry.update(type=shown, provider=shown, disabled=disabled,
                 status="disabled" if disabled else "active")
    try:
        email = (kind.email if kind else top_level_email)(data)
    except Exception:  # a plugin's bug must not break the listing
        log.exception("auth-file type %r: email() failed on %s", raw_type, name)
        email = ""
    entry["label"] = email or shown
    if email:
        entry.update(email=email, account_type="oauth", account=email)
    refreshed = next((t for t in map(parse_time, (data.get(k) for k in _REFRESH_KEYS)) if t), None)
    if refreshed:
        entry["last_refresh"] = rfc3339_nano(int(refreshed.timestamp() * 1e6) * 1000)
    if kind and kind.describe:
        try:
            entry.update(kind.describe(data, email) or {})
        except Exception:
            log.exception("auth-file type %r: describe() failed on %s", raw_type, name)
    return entry


def _encode(entry: dict) -> bytes:
    return json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ListingCache:
    """The per-app cache behind GET /auth-files (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._folder = None
        self._entries: dict[str, tuple] = {}   # name -> (signature, entry JSON bytes)
        self._signatures: dict[str, tuple] = {}
        self._body: bytes | None = None

    def forget(self, name: str) -> None:
        """Drop one file's entry (after we wrote it: mtime granularity must not hide the change)."""
        with self._lock:
            self._entries.pop(name, None)
            self._body = None

    def body(self, folder: AuthDir, types: dict) -> bytes:
        """The JSON body `{"files": [...]}` for `folder`; raises OSError if it can't be read."""
        with self._lock:
            if self._folder != folder.path:
                self._folder, self._entries, self._body = folder.path, {}, None
            found = {name: (path, st) for name, path, st in folder.scan()}
            signatures = {name: (st.st_mtime_ns, st.st_size, st.st_ino) for name, (_, st) in found.items()}
            if self._body is not None and signatures == self._signatures:
                return self._body
            entries = {}
            for name, (path, st) in found.items():
                cached = self._entries.get(name)
                if cached is not None and cached[0] == signatures[name]:
                    entries[name] = cached
                else:
                    entries[name] = (signatures[name], _encode(self._read_entry(name, path, st, types)))
            self._entries, self._signatures = entries, signatures
            ordered = sorted(entries, key=lambda n: (n.lower(), n))
            self._body = b'{"files":[' + b",".join(entries[n][1] for n in ordered) + b"]}"
            return self._body

    @staticmethod
    def _read_entry(name: str, path: str, st, types: dict) -> dict:
        try:
            with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
                data = parse_auth_json(f.read())
        except OSError as exc:
            data = f"failed to read file: {exc.strerror}"
        return build_entry(name, path, st, data, types)
