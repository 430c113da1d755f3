"""The config store: config.yaml in memory, targeted edits, atomic writes, hot reload.

Readers use `store.data`: the plain (JSON-like) view of the file, never written to, swapped
whole on every change, so a GET reads memory and never the disk. Writers call
`store.edit(fn)`: under the one writer lock, `fn` mutates a deep copy of the data; the
store validates the copy, turns the difference into a text edit (`yamlio.splice`), writes
the file atomically and only then makes the copy visible. A failure anywhere leaves the
file and the memory as they were.

An external edit of the file (new inode, size or mtime, and new content) is loaded on the
next `refresh()` (called by every management request, at most every 0.1 s); an edit that
does not parse or validate is logged and the last good config stays in force.
"""

from __future__ import annotations

import io
import errno
import hashlib
import inspect
import logging
import os
import re
import threading
import time
from typing import Callable

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from ..bulk import no_gc
from ..fileio import replace_file
from . import fastload, yamlio
from .draft import Draft

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 0.1  # seconds between two stat() checks for external edits
STALE_TEMP_SECONDS = 60  # a save holds its temp file for milliseconds; older ones are a crash's


class ConfigError(ValueError):
    """The text is not a valid config (YAML syntax, root type, or a field's type)."""


class InvalidConfig(ConfigError):
    """The text parses, but the config cannot be used (e.g. a plaintext secret-key bcrypt can't hash)."""


class Unrepresentable(ConfigError):
    """The change holds values YAML cannot write so that they read back (the request's fault)."""


class SaveError(OSError):
    """The config file could not be written; nothing was changed."""


def parse(text: str) -> dict:
    """Parse config text into plain data; an empty file is an empty mapping.

    libyaml's C parser reads it when installed (`fastload`); ruamel's safe loader reads
    what that leaves (no libyaml, a `%YAML` directive) or refuses (so errors are ruamel's)."""
    try:
        with no_gc():  # hundreds of thousands of nodes: see bulk.py
            plain = fastload.load_plain(text) if fastload.load_plain else None
    except fastload.Error:
        plain = None
    if isinstance(plain, dict):
        return plain
    try:
        loaded = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise ConfigError(str(exc)) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError("the config root must be a mapping")
    return yamlio.to_plain(loaded)


def _signature(path: str):
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def write_atomic(path: str, text: str) -> None:
    """Write `text` to `path` (through a symlink to its target) so readers see old or new, never half.

    The file keeps its mode. Where rename is refused (a single-file bind mount gives EBUSY
    or EXDEV) the file is rewritten in place instead.
    """
    target = os.path.realpath(path)
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o600
    replace_file(target, text.encode("utf-8"), mode=mode, prefix="." + os.path.basename(target) + ".",
                 suffix=".tmp", rename_refused=lambda exc: exc.errno in (errno.EBUSY, errno.EXDEV),
                 fallback=_write_in_place)


def remove_stale_temp_files(path: str, older_than: float = STALE_TEMP_SECONDS) -> list[str]:
    """Delete the temp files that interrupted saves (a crash, SIGKILL) left next to `path`.

    Only `write_atomic`'s own names (`.<name>.XXXXXXXX.tmp`), and only files older than
    `older_than` seconds, so a save in flight elsewhere is never touched. Returns the names.
    """
    target = os.path.realpath(path)
    folder, name = os.path.split(target)
    ours = re.compile(re.escape("." + name + ".") + r"[A-Za-z0-9_]{8}\.tmp")
    removed = []
    now = time.time()
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return removed
    for entry in entries:
        if not ours.fullmatch(entry.name):
            continue
        try:
            if (not entry.is_file(follow_symlinks=False)
                    or now - entry.stat(follow_symlinks=False).st_mtime < older_than):
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(entry.name)
    return removed


def _write_in_place(target: str, data: bytes) -> None:
    """Rewrite `target` where it is (rename refused): write the new text, then truncate.

    Over a longer old file the new text is padded with newlines to the old length, so a
    crash between the write and the truncate leaves the new config and blank lines, never
    the old file's tail. (A crash inside the write can still mix the two: only a rename is
    atomic, which is why this is the fallback.)
    """
    with open(target, "r+b", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        rest = memoryview(data + b"\n" * max(size - len(data), 0))
        while rest:
            rest = rest[f.write(rest):]
        f.truncate(len(data))
        os.fsync(f.fileno())


class _Pending:
    """One writer's change, waiting to be committed (alone or with others)."""

    __slots__ = ("change", "result", "error", "done")

    def __init__(self, change):
        self.change = change
        self.result = self.error = None
        self.done = False


class ConfigStore:
    """config.yaml in memory; see the module docstring for the contract."""

    def __init__(self, path: str, *, validate: Callable[[dict], None] = lambda data: None):
        self.path = os.path.abspath(path)
        self._validate = validate
        try:
            self._validates_keys = "changed" in inspect.signature(validate).parameters
        except (TypeError, ValueError):
            self._validates_keys = False
        self._lock = threading.RLock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []  # writers waiting for the lock (see edit)
        self._listeners: list[Callable[["ConfigStore"], None]] = []
        self._change_listeners: list[Callable[["ConfigStore"], None]] = []
        self._derived: dict = {}
        self._next_check = 0.0
        self.version = 0
        self.last_error: str | None = None
        text = self._read()
        data = parse(text)
        validate(data)
        self._install(text, data)
        removed = remove_stale_temp_files(self.path)
        if removed:
            log.info("removed %d temp file(s) left by interrupted saves of %s", len(removed), self.path)

    # -- reading ----------------------------------------------------------------
    @property
    def data(self) -> dict:
        """The plain view of the file. Treat it as read-only: it is shared by every reader."""
        return self._data

    @property
    def text(self) -> str:
        return self._text

    def get(self, *path, default=None):
        """The value at a key path of the file, or `default` when any part is missing."""
        node = self._data
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def derived(self, name: str, build: Callable[[dict], object]):
        """`build(data)`, computed once per config version (for views served on every GET)."""
        cached = self._derived.get(name)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        value = build(self._data)
        self._derived[name] = (self.version, value)
        return value

    def on_change(self, listener: Callable[["ConfigStore"], None]) -> None:
        """Call `listener(store)` after every change of the data in force: an edit, a reload, a PUT.

        It runs under the writer lock, before the change's caller gets its answer.
        """
        self._change_listeners.append(listener)

    def on_load(self, listener: Callable[["ConfigStore"], None]) -> None:
        """Call `listener(store)` now and after every load of new text (reload, PUT config.yaml)."""
        self._listeners.append(listener)
        listener(self)

    # -- writing ----------------------------------------------------------------
    def edit(self, change: Callable[[dict], object]):
        """Apply `change(draft)` to a copy of the data and persist it; return what change returned.

        Raises whatever `change` raises (nothing is written), ConfigError when the result is
        invalid, SaveError when the file cannot be written; in every such case the file and
        the memory are unchanged.

        Writers that arrive while another one writes are committed together by the next
        one to get the lock (each change applied, validated and undone on its own error,
        then one render and one file write for all): a burst of writers waits for about
        two writes, not for one write per writer ahead of it.
        """
        pending = _Pending(change)
        with self._queue_lock:
            self._queue.append(pending)
        with self._lock:
            if not pending.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                if pending not in batch:
                    batch.insert(0, pending)
                if len(batch) == 1 or not self._commit_together(batch):
                    for waiting in batch:
                        if not waiting.done:
                            self._commit_one(waiting)
        if pending.error is not None:
            raise pending.error
        return pending.result

    def _commit_one(self, pending: "_Pending") -> None:
        try:
            pending.result = self._apply(pending.change)
        except Exception as exc:  # handed to the writer's own thread
            pending.error = exc
        pending.done = True

    def _apply(self, change):
        self.refresh(force=True)
        # A copy-on-read draft: the write costs what `change` touches, not the config.
        draft = Draft(self._data)
        result = change(draft)
        draft, changed = draft.result(self._data)
        if not changed:
            return result
        self._check_writable()
        self._validate_keys(draft, changed)
        text = self._render(draft, changed)
        self._write(text)
        self._install(text, draft)
        return result

    def _commit_together(self, batch: list) -> bool:
        """Commit several writers' changes with one write; False when they must go one by
        one (the combined change could not be rendered: whose change it was is unknown)."""
        self.refresh(force=True)
        draft = Draft(self._data)
        accepted = []
        for pending in batch:
            point = draft.checkpoint()
            try:
                result = pending.change(draft)
                new, changed = draft.result(self._data)
                if changed:
                    self._check_writable()
                    self._validate_keys(new, changed)
            except Exception as exc:
                draft.restore(point)
                pending.error, pending.done = exc, True
                continue
            pending.result = result
            accepted.append(pending)
        new, changed = draft.result(self._data)
        if changed:
            try:
                text = self._render(new, changed)
            except ConfigError:
                return False
            try:
                self._write(text)
            except SaveError as exc:
                for pending in accepted:
                    pending.error = exc
                    pending.done = True
                return True
            self._install(text, new)
        for pending in accepted:
            pending.done = True
        return True

    def _check_writable(self) -> None:
        if self.last_error is not None:
            # The file holds someone's edit that does not load. Writing our copy over it
            # would throw that edit away; upstream refuses too (it re-reads before saving).
            raise SaveError(f"{self.path} holds an edit that does not load, so it was not "
                            f"overwritten: {self.last_error}")

    def replace_text(self, text: str) -> None:
        """Write `text` as the new file (PUT /config.yaml): parse and validate first."""
        data = parse(text)
        self._validate(data)
        with self._lock:
            self._write(text)
            self.last_error = None  # a deliberate replacement of a broken file is the fix
            self._install(text, data)
            self._notify()

    def _validate_keys(self, data: dict, changed: list) -> None:
        """Validate what changed (the rest was valid when it was loaded), when the validator
        can be told (`validate(data, changed=keys)`); else the whole data."""
        if self._validates_keys:
            self._validate(data, changed=changed)
        else:
            self._validate(data)

    def _render(self, draft: dict, changed: list | None = None) -> str:
        yaml = yamlio.make_yaml(self._indent)
        try:
            return yamlio.splice(yaml, self._text, self._data, draft, keys=changed)
        except ValueError:
            # A layout the line-based splice does not understand: edit the whole document.
            doc = yamlio.apply_diff(yaml.load(self._text) or CommentedMap(), draft)
            out = io.StringIO()
            yaml.dump(doc, out)
            text = out.getvalue()
            if not yamlio.reads_back(text, draft):  # never write a file that does not load
                raise Unrepresentable("the change cannot be written as YAML that reads back; "
                                      "nothing was written") from None
            return text

    def _write(self, text: str) -> None:
        try:
            write_atomic(self.path, text)
        except OSError as exc:
            # Name the config, not the temp file beside it that the failing call may report.
            raise SaveError(exc.errno, exc.strerror or str(exc), self.path) from None

    # -- external edits -----------------------------------------------------------
    def refresh(self, force: bool = False) -> bool:
        """Load the file again if someone else changed it; return True when new data is in force."""
        now = time.monotonic()
        if not force and now < self._next_check:
            return False
        self._next_check = now + REFRESH_INTERVAL
        try:
            sig = _signature(self.path)
        except OSError:
            return False
        if sig == self._sig:
            return False
        with self._lock:
            if sig == self._sig:
                return False
            try:
                text = self._read()
            except OSError:
                return False
            if not text.strip():
                self._sig = sig  # an editor's empty intermediate: nothing to do
                return False
            if hashlib.sha256(text.encode()).digest() == self._content_hash():
                self._sig = sig  # same content as in force (a broken edit may have been undone)
                self.last_error = None
                return False
            try:
                data = parse(text)
                self._validate(data)
            except ConfigError as exc:
                if self.last_error != str(exc):
                    log.error("config reload failed, keeping the last good config: %s", exc)
                self.last_error = str(exc)
                self._sig = sig  # don't re-read the same broken file on every request
                return False
            self.last_error = None
            self._install(text, data)
            log.info("config reloaded from %s", self.path)
            self._notify()
            return True

    # -- internals ------------------------------------------------------------------
    def _read(self) -> str:
        with open(self.path, "rb") as f:
            return f.read().decode("utf-8")

    def _install(self, text: str, data: dict) -> None:
        self._text = text
        self._data = data
        self._hash = None  # computed when a reload needs it, not on every write
        self._indent = yamlio.guess_indent(text)
        try:
            self._sig = _signature(self.path)
        except OSError:
            self._sig = None
        self.version += 1
        for listener in self._change_listeners:
            listener(self)

    def _content_hash(self) -> bytes:
        if self._hash is None:
            self._hash = hashlib.sha256(self._text.encode()).digest()
        return self._hash

    def _notify(self) -> None:
        for listener in self._listeners:
            listener(self)
