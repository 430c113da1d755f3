"""The config store: config.yaml in memory, targeted edits, crash-safe writes, hot reload.

Readers use `store.data`: the plain (JSON-like) view of the file, never written to, swapped
whole on every change, so a GET reads memory and never the disk. Writers call
`store.edit(fn)`: under the one writer lock, `fn` mutates a deep copy of the data; the
store validates the copy, turns the difference into a text edit (`yamlio.splice`), writes
it through the storage backend (`cliproxy_mgmt.storage`: the file itself by default) and
only then makes the copy visible. A failure anywhere leaves the file and the memory as they
were.

The write is a compare-and-swap on the version the edit started from: when someone else
changed the config meanwhile (a hand edit, another server on the same database), the write
is refused, the store loads their text and applies the change again on top of it, so
neither edit is lost.

An external edit (new inode, size or mtime of the file, or a new row version, and new
content) is loaded on the next `refresh()` (called by every management request, at most
every 0.1 s, and by a backend that is told of changes); an edit that does not parse or
validate is logged and the last good config stays in force. So it does while the file cannot
be read (deleted, not a regular file): writes are then refused, saying why.
"""

from __future__ import annotations

import io
import hashlib
import inspect
import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from typing import Callable

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from .. import audit
from ..bulk import no_gc
from ..fileio import STALE_TEMP_SECONDS, remove_stale
from ..safeload import InvalidYAML, load_yaml
from ..storage.base import ConfigBackend, Conflict, NotText, Unavailable, Version
from ..storage.files import FileConfig
from . import fastload, yamlio
from .draft import Draft

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 0.1  # seconds between two stat() checks for external edits
EDIT_ATTEMPTS = 20  # an edit re-applied on someone else's newer text this often before giving up


class ConfigError(ValueError):
    """The text is not a valid config (YAML syntax, root type, or a field's type)."""


class InvalidConfig(ConfigError):
    """The text parses, but the config cannot be used (e.g. a plaintext secret-key bcrypt can't hash)."""


class Unrepresentable(ConfigError):
    """The change holds values YAML cannot write so that they read back (the request's fault)."""


class SaveError(OSError):
    """The config file could not be written; nothing was changed.

    `SaveError(message, filename=path)`: our own account, naming the file; str() is the
    message alone (errno and strerror are None). `SaveError(errno, strerror, path)`: a failed
    write, as OSError has it (named after the config, not the temp file beside it)."""

    def __init__(self, *args, filename: str | None = None):
        if filename is None:
            super().__init__(*args)
            self._message = None
        else:
            (message,) = args
            super().__init__(message)
            self.filename = filename
            self._message = message

    def __str__(self) -> str:
        # OSError's form would read "[Errno None] None: '<path>'" once `filename` is set.
        return self._message if self._message is not None else super().__str__()


class StoreUnavailable(SaveError):
    """The storage backend takes no writes now (e.g. its database is down); nothing was changed."""


def parse(text: str) -> dict:
    """Parse config text into plain data; an empty file is an empty mapping.

    libyaml's C parser reads it when installed (`fastload`); ruamel's safe loader reads
    what that leaves (no libyaml, a `%YAML` directive) or refuses (so errors are ruamel's)."""
    try:
        with no_gc():  # hundreds of thousands of nodes: see bulk.py
            plain = fastload.load_plain(text) if fastload.load_plain else None
    except fastload.Error:
        plain = None
    except InvalidYAML as exc:
        raise ConfigError(str(exc)) from None
    if isinstance(plain, dict):
        return plain
    try:
        loaded = load_yaml(text)
    except InvalidYAML as exc:
        raise ConfigError(str(exc)) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError("the config root must be a mapping")
    return yamlio.to_plain(loaded)


def remove_stale_temp_files(path: str, older_than: float = STALE_TEMP_SECONDS) -> list[str]:
    """Delete the temp files that interrupted saves (a crash, SIGKILL) left next to `path`:
    only the file backend's own names (`.<name>.XXXXXXXX.tmp`), see `fileio.remove_stale`."""
    folder, name = os.path.split(os.path.realpath(path))
    return remove_stale(folder, re.compile(re.escape("." + name + ".") + r"[A-Za-z0-9_]{8}\.tmp"), older_than)


class _Pending:
    """One writer's change, waiting to be committed (alone or with others)."""

    __slots__ = ("change", "result", "error", "done")

    def __init__(self, change):
        self.change = change
        self.result = self.error = None
        self.done = False


class ConfigStore:
    """config.yaml in memory; see the module docstring for the contract."""

    def __init__(self, path: str, *, validate: Callable[[dict], None] = lambda data: None,
                 backend: ConfigBackend | None = None):
        """`backend` stores the text (default: the file at `path`, written with compare-and-swap);
        `path` is then the file on this host that holds it."""
        self._backend = backend or FileConfig(path)
        self.path = self._backend.path
        self._validate = validate
        try:
            self._validate_takes = set(inspect.signature(validate).parameters) & {"changed", "before"}
        except (TypeError, ValueError):
            self._validate_takes = set()
        self._lock = threading.RLock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []  # writers waiting for the lock (see edit)
        self._listeners: list[Callable[["ConfigStore"], None]] = []
        self._change_listeners: list[Callable[["ConfigStore"], None]] = []
        self._derived: dict = {}
        self._next_check = 0.0
        self.version = 0
        self.last_error: str | None = None
        self._read_error: OSError | None = None  # why the stored config could not be read at the last look
        try:
            text, version = self._backend.read()
        except NotText as exc:
            raise ConfigError(f"{self.path}: {exc}") from None
        data = parse(text)
        validate(data)
        self._install(text, data, version)
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

    @property
    def auth_dir_override(self) -> str | None:
        """The folder the storage backend keeps the auth files in, replacing `auth-dir`."""
        return self._backend.auth_dir

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
        the memory are unchanged. When someone else changed the config meanwhile, their text
        is loaded and `change` runs again on it (so it may run more than once).

        Writers that arrive while another one writes are committed together by the next
        one to get the lock (each change applied, validated and undone on its own error,
        then one render and one write for all): a burst of writers waits for about two
        writes, not for one write per writer ahead of it.
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
                if len(batch) == 1 or not self._commit(batch):
                    for waiting in batch:
                        if not waiting.done:
                            self._commit([waiting])
        if pending.error is not None:
            raise pending.error
        return pending.result

    def _commit(self, batch: list) -> bool:
        """Apply the changes of `batch` to one draft and write it once: each change succeeds
        or fails on its own, and all are applied again on someone else's newer text when the
        write's compare-and-swap finds one. False (nothing written, nobody answered) when
        the changes of several writers together cannot be rendered: then they go one by one."""
        for _ in range(EDIT_ATTEMPTS):
            accepted, written = [], None
            try:
                with self._exclusive():
                    self.refresh(force=True)
                    self._check_readable()
                    # A copy-on-read draft: the write costs what the changes touch.
                    draft = Draft(self._data)
                    outcome = None  # the draft's result(), while no change after it failed
                    for pending in batch:
                        point = draft.checkpoint()
                        try:
                            pending.result = pending.change(draft)
                            outcome = new, changed = draft.result(self._data)
                            if changed:
                                self._check_writable()
                                self._validate_keys(new, changed)
                        except Exception as exc:  # handed to the writer's own thread
                            draft.restore(point)
                            pending.error, outcome = exc, None
                            continue
                        pending.error = None
                        accepted.append(pending)
                    new, changed = outcome or draft.result(self._data)
                    if changed:
                        try:
                            text = self._render(new, changed)
                        except ConfigError as exc:
                            if len(batch) > 1:
                                return False
                            raise exc
                        written = (text, new, self._write(text, self._seen, new))
                if written is not None:
                    self._put_in_force(*written)
            except Conflict:
                # Someone else's newer text: load it (even if its stat looks like ours) and
                # apply the changes again on top of it.
                self._seen = Version(None, b"")
                continue
            except Exception as exc:  # nothing was put in force: every accepted change failed
                for pending in accepted or batch:
                    pending.error = exc
            for pending in batch:
                pending.done = True
            return True
        error = SaveError(f"{self.path} kept changing while it was saved; nothing was written",
                          filename=self.path)
        for pending in batch:
            pending.error, pending.done = error, True
        return True

    def _check_readable(self) -> None:
        # A change is based on the stored text: when it cannot be read (deleted, a FIFO, no
        # permission), nothing is written, and retrying would not help.
        exc = self._read_error
        if exc is None:
            return
        if isinstance(exc, FileNotFoundError):
            raise SaveError(f"{self.path} is missing (deleted or moved away); nothing was written",
                            filename=self.path)
        raise SaveError(f"{self.path} cannot be read ({exc.strerror or exc}); nothing was written",
                        filename=self.path)

    def _check_writable(self) -> None:
        if self.last_error is not None:
            # The file holds someone's edit that does not load. Writing our copy over it
            # would throw that edit away; upstream refuses too (it re-reads before saving).
            raise SaveError(f"{self.path} holds an edit that does not load, so it was not "
                            f"overwritten: {self.last_error}", filename=self.path)

    def replace_text(self, text: str, check: Callable[[dict, dict], None] | None = None) -> None:
        """Write `text` as the new file (PUT /config.yaml): parse and validate first, then
        `check(new_data, current_data)`, which may raise to refuse it."""
        data = parse(text)
        self._validate(data)
        with self._lock:
            if check is not None:
                check(data, self._data)
            version = self._write(text, None, data)
            self.last_error = None  # a deliberate replacement of a broken file is the fix
            self._put_in_force(text, data, version, notify=True)

    def _validate_keys(self, data: dict, changed: list) -> None:
        """Validate what changed (the rest was valid when it was loaded), when the validator
        can be told (`validate(data, changed=keys)`), against the data in force when it
        takes that too (`before=`); else the whole data."""
        told = {"changed": changed, "before": self._data}
        self._validate(data, **{name: told[name] for name in self._validate_takes})

    def _render(self, draft: dict, changed: list | None = None) -> str:
        yaml = yamlio.make_yaml(self._indent)
        # With anchors, a local edit can orphan an alias (its anchor deleted) or change what
        # an alias elsewhere means: then the whole result is checked, and if need be the
        # aliases are spelled out.
        anchored = yamlio.has_anchors(self._text)
        try:
            text = yamlio.splice(yaml, self._text, self._data, draft, keys=changed)
            if not anchored or yamlio.reads_back(text, draft):
                return text
        except (ValueError, YAMLError):
            pass  # a layout the line-based splice does not understand, an alias out of reach
        # Edit the whole document; never write a file that does not load as `draft`.
        for expand in (False, True) if anchored else (False,):
            doc = yaml.load(self._text) or CommentedMap()
            if expand:
                doc = yamlio.expand_aliases(doc)
            out = io.StringIO()
            yaml.dump(yamlio.apply_diff(doc, draft), out)
            text = out.getvalue()
            if yamlio.reads_back(text, draft):
                return text
        raise Unrepresentable("the change cannot be written as YAML that reads back; "
                              "nothing was written")

    def _put_in_force(self, text: str, data: dict, version: Version, *, notify: bool = False) -> None:
        """Put `data` (just written as `text`, stored as `version`) in force; when applying
        it fails (a listener raises), write the old text back and put the old data back in
        force, then raise.

        An answer other than success must mean "nothing changed": a client that retries a
        failed write must not apply it twice.
        """
        old_text, old_data = self._text, self._data
        try:
            self._install(text, data, version)
            if notify:
                self._notify()
        except Exception:
            log.exception("applying the new config failed; restoring the previous one")
            try:
                restored = self._write(old_text, version, old_data)
            except Conflict:  # someone else's text replaced ours meanwhile: theirs stands
                restored = Version(None, b"")
            self._install(old_text, old_data, restored)
            if notify:
                self._notify()
            raise

    @contextmanager
    def _exclusive(self):
        try:
            with self._backend.exclusive():
                yield
        except Unavailable as exc:
            raise StoreUnavailable(exc.errno, exc.strerror or str(exc), self.path) from None

    def _write(self, text: str, base: Version | None, data: dict) -> Version:
        try:
            return self._backend.write(text, base, data)
        except Unavailable as exc:
            raise StoreUnavailable(exc.errno, exc.strerror or str(exc), self.path) from None
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
            token = self._backend.token()
        except OSError as exc:
            self._cannot_read(exc)
            return False
        if token == self._seen.token:
            self._read_error = None
            return False
        with self._lock:
            try:
                text, version = self._backend.read()
            except OSError as exc:
                self._cannot_read(exc)
                return False
            except NotText as exc:  # as an edit that does not parse
                self._read_error = None
                self._keep_last_good(str(exc), exc.version)
                return False
            self._read_error = None
            if version == self._seen:
                return False
            if not text.strip():
                self._seen = version  # an editor's empty intermediate: nothing to do
                return False
            if version.digest == self._content_hash():
                self._seen = version  # same content as in force (a broken edit may have been undone)
                self.last_error = None
                return False
            try:
                # another instance may have stored the data with the text: no parse needed
                data = self._backend.parsed(version) or parse(text)
                self._validate(data)
            except ConfigError as exc:
                self._keep_last_good(str(exc), version)
                return False
            old_text, old_data, old_seen = self._text, self._data, self._seen
            try:
                self._install(text, data, version, outside=self._backend.outside_change)
                self._notify()
            except Exception as exc:  # the edit cannot be applied: the last good config stays
                log.exception("config reload failed, keeping the last good config")
                self._install(old_text, old_data, old_seen)
                self._notify()
                self.last_error = f"applying it failed: {exc}"
                self._seen = version  # don't re-read the same broken file on every request
                return False
            self.last_error = None
            log.info("config reloaded from %s", self.path)
            return True

    def _cannot_read(self, exc: OSError) -> None:
        """The stored config cannot be read now: the data in force stays, writes are refused
        (`_check_readable`); logged once."""
        if str(exc) != str(self._read_error):
            log.warning("cannot read %s, keeping the config in force: %s", self.path, exc.strerror or exc)
        self._read_error = exc

    def _keep_last_good(self, error: str, version: Version) -> None:
        """The stored `version` does not load (`error`): log it once, keep the data in force,
        and refuse writes over it until it is fixed or replaced (`_check_writable`)."""
        if self.last_error != error:
            log.error("config reload failed, keeping the last good config: %s", error)
        self.last_error = error
        self._seen = version  # don't re-read the same broken file on every request

    # -- internals ------------------------------------------------------------------
    def _install(self, text: str, data: dict, version: Version, *, outside: str | None = None) -> None:
        if self.version:  # every change after the first load passes here: the audit's one place
            audit.config_changed(self.path, self._data, data, outside=outside)
        self._text = text
        self._data = data
        self._hash = version.digest or None  # else computed when a reload needs it
        self._indent = yamlio.guess_indent(text)
        self._seen = version  # the stored version last looked at: what the next write replaces
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
