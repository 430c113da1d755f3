"""GET /auth-files: one entry per auth file, cached by (mtime, size, inode).

A warm listing re-reads no unchanged file: each file's entry is kept as ready JSON bytes
and the whole body is kept while nothing changed. Change notification (`watch.py`) says
which names to stat again, so listing 5,000 unchanged files touches none of them; without
it every file is stat()ed and compared (see benchmarks/bench_auth_files.py).
Entries follow reference-behaviour §8.3 and reference-delta §4; keys are sorted, as gin
writes maps.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import os
import stat
import threading
import time
from datetime import datetime

from ..bulk import no_gc
from ..records import top_level_email
from .names import is_auth_file_name
from .store import AuthDir
from .timefmt import rfc3339_nano
from .watch import DirWatch

log = logging.getLogger(__name__)

# Even with change notification, stat every file this often: inotify does not see edits
# made by another host of a network filesystem.
FULL_CHECK_INTERVAL = 10.0

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


_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _encode(entry: dict) -> bytes:
    return _ENCODER.encode(entry).encode("utf-8")


class ListingCache:
    """The per-app cache behind GET /auth-files (thread-safe).

    Each file's entry is kept with its (mtime, size, inode). Which files to look at again
    comes from the folder's change notification (`watch.py`); without one, or every
    FULL_CHECK_INTERVAL seconds anyway, every file is stat()ed and compared.
    """

    def __init__(self, *, watch: bool = True):
        self._lock = threading.Lock()
        self._use_watch = watch            # False: stat every file on every listing
        self._folder: str | None = None
        self._watch: DirWatch | None = None
        self._stats: dict[str, tuple] = {}     # name -> (path, stat) at the last look
        self._entries: dict[str, tuple] = {}   # name -> (signature, entry JSON bytes)
        self._dirty: set[str] = set()
        self._body: bytes | None = None
        self._order: list[tuple] = []          # (name.lower(), name) of the entries, sorted
        self._checked = 0.0                    # monotonic time of the last full stat pass

    def forget(self, name: str) -> None:
        """Read `name` again next time (after we wrote it: mtime granularity must not hide it)."""
        with self._lock:
            self._dirty.add(name)

    def body(self, folder: AuthDir, types: dict) -> bytes:
        """The JSON body `{"files": [...]}` for `folder`; raises OSError if it can't be read."""
        with self._lock:
            if self._folder != folder.path:
                self._reset(folder.path)
            full = False
            if self._use_watch and (self._watch is None or self._watch.lost):
                self._close_watch()
                self._watch = DirWatch.start(folder.path)  # before the full pass: nothing slips by
                full = True
            changed = self._watch.changes() if self._watch is not None else None
            now = time.monotonic()
            if full or changed is None or self._body is None or now - self._checked > FULL_CHECK_INTERVAL:
                stats = {name: (path, st) for name, path, st in folder.scan()}
                self._checked = now
            else:
                changed |= self._dirty
                if not changed:
                    return self._body
                for name in changed:
                    self._restat(folder.path, name, self._stats)
                reread, self._dirty = self._dirty, set()
                return self._update(changed, types, reread)
            reread, self._dirty = self._dirty, set()
            return self._rebuild(stats, types, reread)

    def _reset(self, path: str) -> None:
        self._close_watch()
        self._folder, self._stats, self._entries, self._body = path, {}, {}, None
        self._order = []

    def _close_watch(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    @staticmethod
    def _restat(folder: str, name: str, stats: dict) -> None:
        stats.pop(name, None)
        if not is_auth_file_name(name):
            return
        path = os.path.join(folder, name)
        try:
            st = os.lstat(path)
        except OSError:
            return
        if stat.S_ISREG(st.st_mode):
            stats[name] = (path, st)

    def _rebuild(self, stats: dict, types: dict, reread: set) -> bytes:
        entries, changed = {}, False
        with no_gc():  # a cold listing builds thousands of entries: see bulk.py
            for name, (path, st) in stats.items():
                signature = (st.st_mtime_ns, st.st_size, st.st_ino)
                cached = self._entries.get(name)
                if cached is not None and cached[0] == signature and name not in reread:
                    entries[name] = cached
                else:
                    entries[name] = (signature, _encode(self._read_entry(name, path, st, types)))
                    changed = True
        self._stats = stats
        if not changed and self._body is not None and len(entries) == len(self._entries):
            return self._body
        self._entries = entries
        self._order = sorted((n.lower(), n) for n in entries)
        self._body = self._join()
        return self._body

    def _update(self, names: set, types: dict, reread: set) -> bytes:
        """Apply the changed `names` (already re-stat()ed into `_stats`) in place: the cost
        of those files plus one join, and no second copy of the cache."""
        changed = False
        for name in names:
            cached = self._entries.get(name)
            found = self._stats.get(name)
            key = (name.lower(), name)
            if found is None:
                if cached is not None:
                    del self._entries[name]
                    del self._order[bisect.bisect_left(self._order, key)]
                    changed = True
                continue
            path, st = found
            signature = (st.st_mtime_ns, st.st_size, st.st_ino)
            if cached is not None and cached[0] == signature and name not in reread:
                continue  # told about it, but it looks the same: not read again
            self._entries[name] = (signature, _encode(self._read_entry(name, path, st, types)))
            if cached is None:
                bisect.insort(self._order, key)
            changed = True
        if changed or self._body is None:
            self._body = self._join()
        return self._body

    def _join(self) -> bytes:
        entries = self._entries
        return b'{"files":[' + b",".join(entries[n][1] for _, n in self._order) + b"]}"

    @staticmethod
    def _read_entry(name: str, path: str, st, types: dict) -> dict:
        try:
            data = parse_auth_json(_read(path, st.st_size))
        except OSError as exc:
            data = f"failed to read file: {exc.strerror}"
        return build_entry(name, path, st, data, types)


def _read(path: str, size: int) -> bytes:
    """The whole file, read with plain system calls (no buffered file object per file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        chunks = []
        while chunk := os.read(fd, max(size + 1, 4096)):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
