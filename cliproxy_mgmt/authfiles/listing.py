"""GET /auth-files: one entry per auth file, cached by (mtime, size, inode).

A warm listing re-reads no unchanged file: each file's entry is kept as ready JSON bytes,
and the body is kept as the list of those entries and their count fragments (`Listing`):
a change replaces a few parts, and the server sends the parts as it reads them, so a body
of tens of megabytes is neither rebuilt nor copied whole for one changed file. Change
notification (`watch.py`) says which names to stat again, so listing 5,000 unchanged files
touches none of them; without it every file is stat()ed and compared (see
benchmarks/bench_auth_files.py). A cold listing stat()s no file: the directory listing gives
each entry's kind, and the fstat of the read, which checks what was opened, gives its
signature (benchmarks/bench_scale.py listing). Entries have upstream's fields; keys are
sorted, as gin writes maps, but for the usage counts (`failed`, `recent_requests`,
`success`), which close each entry: most files share one fragment of counts.
"""

from __future__ import annotations

import bisect
import errno
import hashlib
import io
import json
import logging
import os
import stat
import threading
import time
from datetime import datetime
from itertools import accumulate

from ..bulk import no_gc
from ..fileio import NotRegularFile, identity, read_regular_stat
from ..records import top_level_email
from ..safeload import InvalidJSON, load_json
from ..usage.timestamps import unix_ns
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
    """The stable `auth_index` of a file: 16 hex chars of SHA-256 of `file:<name>`."""
    return hashlib.sha256(f"file:{name}".encode("utf-8")).hexdigest()[:16]


def parse_time(value) -> datetime | None:
    """A `last_refresh` value: RFC 3339, `YYYY-MM-DD HH:MM:SS` or unix seconds; None for
    anything else, a time outside what datetime holds included (a file may say anything)."""
    if isinstance(value, str):
        return _parse_time_text(value.strip())
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        try:
            return datetime.fromtimestamp(value).astimezone()
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _parse_time_text(text: str) -> datetime | None:
    try:
        try:
            found = datetime.fromisoformat(text)
        except ValueError:  # (before 3.11 fromisoformat reads no `Z`)
            found = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        # An offset makes it one instant already; without one it is local time.
        return found if found.utcoffset() is not None else found.astimezone()
    except (OverflowError, ValueError):  # not such a time, or out of datetime's range
        return None


def parse_auth_json(raw: bytes):
    """The parsed file when it is a JSON object; else a short reason (str)."""
    try:
        data = load_json(raw)
    except InvalidJSON as exc:
        return f"invalid auth file: {exc}"
    return data if isinstance(data, dict) else "invalid auth file: not a JSON object"


def entry_json(name: str, path: str, st, data, types: dict, index: str) -> bytes:
    """The listing entry of one file as JSON bytes: keys sorted (as gin writes a map), compact,
    not ASCII-escaped. `data` is the parsed object or the reason it is unusable; `index` the
    file's `auth_index`.

    Written through one template, without building the dict (a cold listing writes
    thousands); an entry the template can't write is the `_entry` dict, encoded."""
    facts = _facts(name, data, types)
    extras = facts[-1]
    if extras and not _CORE_KEYS.isdisjoint(extras):  # a plugin's describe() overrode one
        return _ENCODER.encode(_entry(name, path, st, index, facts)).encode("utf-8")
    return _template(name, path, st.st_size, rfc3339_nano(st.st_mtime_ns), index, *facts).encode("utf-8")


def _entry(name: str, path: str, st, index: str, facts: tuple) -> dict:
    shown, label, status, message, disabled, email, refreshed, extras = facts
    entry = {"id": name, "auth_index": index, "name": name, "path": path, "source": "file",
             "size": st.st_size, "modtime": rfc3339_nano(st.st_mtime_ns), "runtime_only": False,
             "unavailable": False, "status_message": message, "disabled": disabled, "type": shown,
             "provider": shown, "status": status, "label": label}
    entry.update(_account(email, refreshed))
    entry.update(extras)
    return entry


def _account(email: str, refreshed: str) -> dict:
    """The keys an entry has when its file names an account and a refresh time."""
    shown = {"account": email, "account_type": "oauth", "email": email} if email else {}
    if refreshed:
        shown["last_refresh"] = refreshed
    return shown


def _facts(name: str, data, types: dict) -> tuple:
    """(type, label, status, status_message, disabled, email, last_refresh text, other keys) of
    one file's entry; the email and the time are "" when the file has none."""
    if not isinstance(data, dict):
        return "unknown", "unknown", "error", data, False, "", "", {}
    raw_type = data.get("type")
    raw_type = raw_type.strip().lower() if isinstance(raw_type, str) else ""
    kind = types.get(raw_type)
    shown = kind.shown if kind else (raw_type or "unknown")
    disabled = data.get("disabled") is True
    try:
        email = (kind.email if kind else top_level_email)(data)
    except Exception:  # a plugin's bug must not break the listing
        log.exception("auth-file type %r: email() failed on %s", raw_type, name)
        email = ""
    if not isinstance(email, str):  # (a plugin may hand back the file's value as it stands)
        email = ""
    when = last_refresh(data)
    refreshed = rfc3339_nano(unix_ns(when)) if when else ""
    extras = {} if _EDITED_KEYS.isdisjoint(data) else edited_fields(data)
    if kind and kind.describe:
        try:
            extras.update(kind.describe(data, email) or {})
        except Exception:
            log.exception("auth-file type %r: describe() failed on %s", raw_type, name)
    return shown, email or shown, "disabled" if disabled else "active", "", disabled, email, refreshed, extras


def last_refresh(data: dict) -> datetime | None:
    """The first of the `_REFRESH_KEYS` that holds a time."""
    for key in _REFRESH_KEYS:
        value = data.get(key)
        if value is not None:
            found = parse_time(value)
            if found:
                return found
    return None


# Every key edited_fields reads: a file with none of them (most) needs no call.
_EDITED_KEYS = frozenset((
    "prefix", "proxy_url", "disable_cooling", "disable-cooling", "using_api", "using-api",
    "excluded_models", "excluded-models", "headers", "priority", "weight", "request_retry",
    "note", "websockets", "project_id"))


def edited_fields(data: dict) -> dict:
    """The fields PATCH /auth-files/fields sets, as the listing shows them: upstream's new keys
    (`priority`, `weight`, `note`, `websockets`, `request_retry`, `project_id`), and the other
    fields the web UI edits, which upstream shows only in the downloaded file."""
    shown = {}
    for key in ("prefix", "proxy_url"):
        value = data.get(key)
        if isinstance(value, str) and value:
            shown[key] = value
    for key in ("disable_cooling", "using_api"):
        value = data.get(key, data.get(key.replace("_", "-")))
        if isinstance(value, bool):
            shown[key] = value
    excluded = data.get("excluded_models", data.get("excluded-models"))
    if isinstance(excluded, list) and excluded:
        shown["excluded_models"] = excluded
    headers = data.get("headers")
    if isinstance(headers, dict) and headers:
        shown["headers"] = headers
    for key in ("priority", "weight", "request_retry"):
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            shown[key] = value
    note = data.get("note")
    if isinstance(note, str) and note.strip():
        shown["note"] = note.strip()
    websockets = data.get("websockets")
    if isinstance(websockets, str) and websockets.strip().lower() in ("true", "false"):
        websockets = websockets.strip().lower() == "true"
    if isinstance(websockets, bool):
        shown["websockets"] = websockets
    project = data.get("project_id")
    if isinstance(project, str) and project.strip():
        shown["project_id"] = project.strip()
    return shown


_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))

# The keys every entry has (`_entry`), sorted. `_template` writes them in one f-string and
# merges the entry's other keys in at their sorted places: the same bytes as `_ENCODER` on
# `_entry`'s dict, in a fraction of its time.
_CORE = ("auth_index", "disabled", "id", "label", "modtime", "name", "path", "provider",
         "runtime_only", "size", "source", "status", "status_message", "type", "unavailable")
_CORE_KEYS = frozenset(_CORE)
_NO_EXTRAS = ("",) * (len(_CORE) + 1)
_string = json.encoder.encode_basestring  # how _ENCODER writes a str (ensure_ascii=False)
_FLAG = {True: "true", False: "false"}

_LAYOUTS: dict = {}  # an entry's other keys, in _facts' order -> where _template writes them


def _layout(keys: tuple) -> tuple:
    """(gap among _CORE, text before the value, text after it, key) for each of `keys`, sorted."""
    layout = []
    for key in sorted(keys):
        slot = bisect.bisect(_CORE, key)
        if slot < len(_CORE):
            layout.append((slot, _string(key) + ":", ",", key))
        else:
            layout.append((slot, "," + _string(key) + ":", "", key))
    if len(_LAYOUTS) < 1000:  # entries come in a few shapes: one per set of fields a file has
        _LAYOUTS[keys] = layout = tuple(layout)
    return layout


def _template(name: str, path: str, size: int, modtime: str, index: str, shown: str, label: str,
              status: str, message: str, disabled: bool, email: str, refreshed: str, extras: dict) -> str:
    # g[i]: the keys that sort before _CORE[i] (the last: after them all) and are not core keys.
    if extras:  # merged with the account's keys, which they may override
        g = list(_NO_EXTRAS)
        extras = {**_account(email, refreshed), **extras}
        keys = tuple(extras)
        for slot, before, after, key in _LAYOUTS.get(keys) or _layout(keys):
            value = extras[key]
            g[slot] += f"{before}{_string(value) if type(value) is str else _ENCODER.encode(value)}{after}"
    elif email or refreshed:  # (most entries) the account's keys go where they sort among _CORE:
        # `account` and `account_type` before `auth_index`, `email` before `id`, `last_refresh`
        # before `modtime`.
        account = _string(email)
        g = (f'"account":{account},"account_type":"oauth",' if email else "", "",
             f'"email":{account},' if email else "", "",
             f'"last_refresh":"{refreshed}",' if refreshed else "") + _NO_EXTRAS[5:]
    else:
        g = _NO_EXTRAS
    s = _string
    named, kind = s(name), s(shown)
    # `index` (hex), `modtime` and `refreshed` (digits and `-:.TZ+`) and `status` (a word) need
    # no escaping.
    return (f'{{{g[0]}"auth_index":"{index}",{g[1]}"disabled":{_FLAG[disabled]},{g[2]}"id":{named},'
            f'{g[3]}"label":{s(label)},{g[4]}"modtime":"{modtime}",{g[5]}"name":{named},'
            f'{g[6]}"path":{s(path)},{g[7]}"provider":{kind},{g[8]}"runtime_only":false,'
            f'{g[9]}"size":{size},{g[10]}"source":"file",{g[11]}"status":"{status}",'
            f'{g[12]}"status_message":{s(message)},{g[13]}"type":{kind},{g[14]}"unavailable":false'
            f'{g[15]}}}')


_PREFIX, _SUFFIX, _COMMA = b'{"files":[', b"]}", b","


class Listing:
    """One state of the body `{"files":[...]}`, as its parts: the prefix, then for each entry
    its separator (none before the first), its JSON without the closing brace, and its tail
    (the counts and the brace), then the suffix. Never changed once made (readers may be
    sending it); `bytes(listing)` is the body."""

    __slots__ = ("parts", "length", "_ends")

    def __init__(self, parts: list):
        self.parts = parts
        self._ends = list(accumulate(map(len, parts)))  # where each part ends in the body
        self.length = self._ends[-1]

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)

    def reader(self) -> "ListingReader":
        """A file over the body (read, seek, tell), for the server to send it from."""
        return ListingReader(self.parts, self._ends)


class ListingReader(io.RawIOBase):
    """A read-only file over a Listing's parts, for the server to send the body from.

    It joins the parts a block (about BLOCK bytes) at a time and hands out a block whole
    where it can: a read returns at most the rest of the current block (a raw file may read
    short), so sending a body of megabytes copies each byte once, into memory that the next
    block uses again, instead of into one copy of the whole body."""

    BLOCK = 1 << 18

    def __init__(self, parts: list, ends: list):
        super().__init__()
        self._parts, self._ends, self._pos = parts, ends, 0
        self._block, self._block_start = b"", 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = (0, self._pos, self._ends[-1])[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        total = self._ends[-1]
        if size is None or size < 0:  # the rest, whole
            chunks = []
            while self._pos < total:
                chunks.append(self.read(self.BLOCK))
            return b"".join(chunks)
        pos = min(self._pos, total)
        if pos == total or size == 0:
            return b""
        offset = pos - self._block_start
        if not 0 <= offset < len(self._block):
            self._load(pos)
            offset = pos - self._block_start
        block = self._block
        taken = min(size, len(block) - offset)
        self._pos = pos + taken
        return block if taken == len(block) else block[offset:offset + taken]

    def _load(self, pos: int) -> None:
        """Make the block the parts from the one holding `pos` on, about BLOCK bytes of them."""
        first = bisect.bisect_right(self._ends, pos)
        last = bisect.bisect_left(self._ends, pos + self.BLOCK, lo=first)
        self._block = b""  # (freed before the next one is made: the same memory again)
        self._block = b"".join(self._parts[first:last + 1])
        self._block_start = self._ends[first] - len(self._parts[first])


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
        self._watched = None                   # identity() of the folder the watch is on
        self._entries: dict[str, tuple] = {}   # name -> (signature, entry JSON but its `}`, auth_index)
        self._dirty: set[str] = set()
        self._listing: Listing | None = None
        self._order: list[str] = []            # the entries' names, sorted by _sort_key
        self._checked = 0.0                    # monotonic time of the last full stat pass
        self._usage = None                     # the counts the body was built with
        self._usage_key = None

    def forget(self, name: str) -> None:
        """Read `name` again next time (after we wrote it: mtime granularity must not hide it)."""
        with self._lock:
            self._dirty.add(name)

    def body(self, folder: AuthDir, types: dict, usage=None) -> Listing:
        """The body `{"files": [...]}` for `folder` (`bytes()` of it, or its `reader()`);
        raises OSError if it can't be read.

        `usage` (`usage.credential_stats.UsageFragments`) adds each file's `success`,
        `failed` and `recent_requests`; the body is reused while its `key` stays the same."""
        with self._lock:
            respin = usage is not None and self._usage_key != usage.key
            if respin:
                self._usage = usage
            try:
                body = self._fresh_body(folder, types, respin)
            except BaseException:
                # A pass failed part way, maybe with the watch's news used up: look at every
                # file next time.
                self._checked = float("-inf")
                raise
            if respin:
                self._usage_key = usage.key
            return body

    def _fresh_body(self, folder: AuthDir, types: dict, respin: bool) -> Listing:
        if self._folder != folder.path:
            self._reset(folder.path)
        full = False
        if self._use_watch:
            # The path may now lead to another folder (a symlink or a parent moved): the
            # watch is on the folder it was started on. (Looked at before the start: a move
            # in between costs one more restart, never a stale watch.)
            seen = identity(folder.path)
            if self._watch is None or self._watch.lost or seen != self._watched:
                self._close_watch()
                self._watch = DirWatch.start(folder.path)  # before the full pass: nothing slips by
                self._watched = seen
                full = True
        changed = self._watch.changes() if self._watch is not None else None
        now = time.monotonic()
        if full or changed is None or self._listing is None or now - self._checked > FULL_CHECK_INTERVAL:
            # A cold cache reads every file: its fstat then stands for the scan's stat.
            body = self._rebuild(folder.scan(stat_files=bool(self._entries)), types, respin)
            self._checked = now
        else:
            changed |= self._dirty
            if not changed:
                if respin:
                    self._listing = self._assemble()
                return self._listing
            body = self._update({name: _restat(folder.path, name) for name in changed}, types, respin)
        self._dirty = set()  # (only once they were read again)
        return body

    def _reset(self, path: str) -> None:
        self._close_watch()
        self._folder, self._entries, self._listing = path, {}, None
        self._order = []

    def _close_watch(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def _rebuild(self, files, types: dict, respin: bool = False) -> Listing:
        """The cache of `files`, a scan's (name, path, stat or None); the stats are dropped as
        they are used (thousands of stat results are megabytes: fresh memory, page faults)."""
        entries, changed = {}, False
        with no_gc():  # a cold listing builds thousands of entries: see bulk.py
            for name, path, st in files:
                cached = self._entries.get(name)
                if st is not None and cached is not None and cached[0] == _signature(st) \
                        and name not in self._dirty:
                    entries[name] = cached
                    continue
                item = _read(name, path, types)  # (None: gone, or no longer a regular file)
                if item is not None:
                    entries[name] = item
                    changed = True
        if not changed and not respin and self._listing is not None and len(entries) == len(self._entries):
            return self._listing
        self._entries = entries
        self._order = sorted(entries, key=_sort_key)
        self._listing = self._assemble()
        return self._listing

    def _update(self, fresh: dict, types: dict, respin: bool = False) -> Listing:
        """Apply the changed files, `fresh` mapping each name to `_restat`'s answer: the cost
        of those files, and a new Listing that differs from the last in their parts (a copy of
        the list of parts, not of the body)."""
        edits = self._apply(fresh, types)
        if respin or self._listing is None:
            self._listing = self._assemble()
        elif edits:
            self._listing = Listing(self._patched(self._listing.parts, edits))
        return self._listing

    def _apply(self, fresh: dict, types: dict) -> list:
        """Update the entries and their order for the files in `fresh`; the edits made, in
        the order made: (place among the entries then, cache item or None when removed,
        whether the entry is new)."""
        edits = []
        for name, found in fresh.items():
            cached = self._entries.get(name)
            if found is not None and cached is not None and cached[0] == _signature(found[1]) \
                    and name not in self._dirty:
                continue  # told about it, but it looks the same: not read again
            item = None if found is None else _read(name, found[0], types)
            if item is None and cached is None:
                continue
            at = bisect.bisect_left(self._order, _sort_key(name), key=_sort_key)
            if item is None:
                del self._entries[name], self._order[at]
            else:
                self._entries[name] = item
                if cached is None:
                    self._order.insert(at, name)
            edits.append((at, item, cached is None))
        return edits

    def _patched(self, parts: list, edits: list) -> list:
        """A copy of `parts` with `_apply`'s edits made to it, one after the other."""
        parts = list(parts)
        for at, item, new in edits:
            start = 1 + 3 * at  # the entry's separator, JSON and tail
            span = slice(start, start if new else start + 3)
            parts[span] = () if item is None else (_COMMA, item[1], self._tail(item[2], {}))
            _separate(parts)
        return parts

    def matching(self, name: str, index: str) -> bytes:
        """The body of `body()`'s last answer cut down to the files with that name and/or that
        auth_index (upstream's filters): the cached entries, not a parse of the whole body."""
        with self._lock:
            return bytes(self._assemble([n for n in self._order if (not name or n == name)
                                         and (not index or self._entries[n][2] == index)]))

    def _assemble(self, names=None) -> Listing:
        # Each entry's JSON object without its closing brace, then its tail: the counts and
        # the brace. The counts of most files are one shared fragment, so their tail is made
        # once; no entry is copied.
        entries, tails = self._entries, {}
        parts = [_PREFIX]
        for n in self._order if names is None else names:
            _, data, index = entries[n]
            parts += (_COMMA, data, self._tail(index, tails))
        parts.append(_SUFFIX)
        _separate(parts)
        return Listing(parts)

    def _tail(self, index: str, tails: dict) -> bytes:
        """`}`, or `,<counts>}` with usage counts; `tails` keeps those made for this body."""
        usage = self._usage
        if usage is None:
            return b"}"
        counts = usage.fragment(index)
        tail = tails.get(counts)
        if tail is None:
            tail = tails[counts] = b",%s}" % counts
        return tail


def _sort_key(name: str) -> tuple:
    """The listing's order: by name without case, then by name (the keys are made while
    sorting, not kept: they would be a tenth of the cache's memory)."""
    return name.lower(), name


def _separate(parts: list) -> None:
    """No separator before the first entry, a comma before the second: after an entry was
    put in or taken out at the front of `parts`."""
    if len(parts) > 2:
        parts[1] = b""
    if len(parts) > 5:
        parts[4] = _COMMA


def _signature(st) -> tuple:
    """What says a file changed: its (mtime, size, inode)."""
    return st.st_mtime_ns, st.st_size, st.st_ino


def _regular_lstat(path: str):
    """The lstat of `path` when it is a regular file (not a symlink); else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def _restat(folder: str, name: str):
    """(path, stat) of the auth file `name`; None when there is none by that name now."""
    if not is_auth_file_name(name):
        return None
    path = os.path.join(folder, name)
    st = _regular_lstat(path)
    return None if st is None else (path, st)


def _read(name: str, path: str, types: dict):
    """The cache item (signature, entry JSON without its closing brace, auth_index) of the
    file at `path`, with the signature of what was read (its fstat); None when a scan would
    not list it now: gone, a symlink or not a regular file. A file that can't be read is
    listed with the reason. (Plain bytes parts: joining them is a copy, no buffer lookups.)"""
    try:
        raw, st = read_regular_stat(path)
        data = parse_auth_json(raw)
    except (FileNotFoundError, NotRegularFile):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        st = _regular_lstat(path)  # e.g. no permission to read
        if st is None:
            return None
        data = f"failed to read file: {exc.strerror}"
    index = auth_index(name)
    return _signature(st), entry_json(name, path, st, data, types, index)[:-1], index
