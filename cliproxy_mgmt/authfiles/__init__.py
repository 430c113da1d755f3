"""The auth-dir store: the OAuth token files the proxy uses.

Routes are in `api.py` (blueprint `bp`). Other code uses:

* `auth_files(state=None)`: the app's `AuthFiles` (folder, listing cache, safe writes);
* `find_by_auth_index(source, index)`: an auth file's parsed JSON by its `auth_index`;
* `auth_index(name)`: the stable index of a file name.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager

from flask import current_app

from ..errors import ApiError, storage_unavailable
from ..storage.base import AuthFileChanged, Unavailable
from ..storage.files import remove_stale_entries
from .listing import ListingCache, auth_index, parse_auth_json
from .locks import NameLocks
from .store import AuthDir, dump_json, resolve_auth_dir

EXTRA_KEY = "authfiles"

__all__ = ["AuthFiles", "auth_files", "auth_index", "find_by_auth_index", "init_app"]

log = logging.getLogger(__name__)

UPDATE_ATTEMPTS = 5  # reads of one file a read-modify-write may need while others rewrite it


class AuthFiles:
    """One app's view of its auth-dir; `auth-dir` is read from the config at every call."""

    def __init__(self, state):
        self.state = state
        self.listing = ListingCache()
        self.locks = NameLocks()  # serialise the read-modify-writes of one file

    @property
    def types(self) -> dict:
        return self.state.registry.auth_file_types

    def folder(self, required: bool = True) -> AuthDir | None:
        """The configured auth-dir; 503 `auth directory not configured` when `required`."""
        path = resolve_auth_dir(self.state.store)
        if path is None:
            if required:
                raise ApiError(503, "auth directory not configured")
            return None
        return AuthDir(path, self.state.storage.auths)

    def write(self, name: str, content: bytes, *, expect: bytes | None = None, **check) -> str:
        """Write one file atomically (mode 0600) and return its path; `expect`: the bytes it
        must still hold (`AuthFileChanged` otherwise, nothing written)."""
        with self.locks.hold(name):
            try:
                path = self.folder().write(name, content, expect=expect, **check)
            except Unavailable as exc:
                raise storage_unavailable(exc) from None
            self.listing.forget(name)
            return path

    def save(self, name: str, data: dict, *, indent: bool = False) -> str:
        """Save a credential as upstream does: compact JSON (or 2-space indented) plus a newline."""
        return self.write(name, dump_json(data, b"{\n" if indent else None))

    def load(self, name: str) -> tuple[bytes, dict]:
        """The raw bytes and parsed object of one file; 404 `auth file not found`, 422 when
        the file is not a JSON object we can read."""
        raw = self._read(name)
        data = parse_auth_json(raw)
        if not isinstance(data, dict):
            raise _unusable(data)
        return raw, data

    def _read(self, name: str) -> bytes:
        try:
            return self.folder().read(name)
        except ApiError as exc:
            if exc.status == 404:
                raise ApiError(404, "auth file not found") from None
            raise

    def update(self, name: str, change) -> None:
        """Apply `change(data)` to the parsed file and write it back when anything changed.

        A writer that takes none of our locks (the Go proxy refreshing the token) may rewrite
        the file meanwhile: then it is read again and `change` applied to what it holds now,
        up to UPDATE_ATTEMPTS times, then 409. Such a writer rewrites in place, so a read may
        also catch it half-way: a file that is no JSON object is read again. It is 422 once
        two reads in a row find the same non-empty bytes (an empty file is what a rewrite
        leaves between its truncate and its write, however long the writer is held up);
        when the attempts run out, 409 for a file seen changing, else 422."""
        invalid, changing = None, False
        for attempt in range(UPDATE_ATTEMPTS):
            if attempt:
                time.sleep(0.005 * attempt)  # (let a rewrite under way finish)
            with self.locks.hold(name), self._exclusive(name):
                raw = self._read(name)
                data = parse_auth_json(raw)
                if not isinstance(data, dict):
                    changing |= invalid is not None and raw != invalid
                    if (raw and raw == invalid) or (attempt == UPDATE_ATTEMPTS - 1 and not changing):
                        raise _unusable(data)
                    invalid = raw
                    continue
                before = json.loads(json.dumps(data))
                change(data)
                if data == before:
                    return
                try:
                    self.write(name, dump_json(data, raw), expect=raw)
                    return
                except AuthFileChanged:
                    changing = True
                    continue
                except OSError as exc:
                    raise ApiError(500, f"failed to update auth: {exc.strerror or exc}") from None
        raise ApiError(409, "auth file changed while it was being updated; try again")

    @contextmanager
    def _exclusive(self, name: str):
        try:
            with self.folder().exclusive(name):
                yield
        except Unavailable as exc:
            raise storage_unavailable(exc) from None


def _unusable(reason: str) -> ApiError:
    # upstream's text; 422, not its 500: the file's content is at fault, not the server
    return ApiError(422, f"failed to update auth: {reason}")


def init_app(app) -> None:
    """At start: remove the temp files that interrupted saves (a crash, SIGKILL) left in
    auth-dir; each may hold a token."""
    path = resolve_auth_dir(app.extensions["cliproxy_mgmt"].store)
    removed = remove_stale_entries(path) if path else []
    if removed:
        log.info("removed %d temp file(s) left by interrupted saves in %s", len(removed), path)


def auth_files(state=None) -> AuthFiles:
    """The `AuthFiles` of `state` (default: the current app's), created on first use."""
    state = state or current_app.extensions["cliproxy_mgmt"]
    found = state.extras.get(EXTRA_KEY)
    if found is None:
        found = state.extras.setdefault(EXTRA_KEY, AuthFiles(state))
    return found


def find_by_auth_index(source, index: str) -> tuple[str, dict] | None:
    """Find the auth file whose `auth_index` is `index`; return (file name, parsed JSON) or None.

    `source` is the app state (`current_app.extensions["cliproxy_mgmt"]`), or its
    `ConfigStore`, or None for the current app. The file is read fresh on every call (token
    refreshes rewrite it), directly from auth-dir; None when auth-dir is not configured,
    no valid `*.json` name has that index, or the file is not a JSON object.
    The index is `auth_index(name)`: 16 hex chars of SHA-256 of `file:<name>`, the value
    GET /auth-files lists.
    """
    if source is None:
        source = current_app.extensions["cliproxy_mgmt"]
    config = getattr(source, "store", source)
    path = resolve_auth_dir(config)
    wanted = (index or "").strip()
    if path is None or not wanted:
        return None
    folder = AuthDir(path)
    try:
        name = next((name for name, _, _ in folder.scan() if auth_index(name) == wanted), None)
        data = parse_auth_json(folder.read(name)) if name else None
    except (OSError, ApiError):
        return None
    return (name, data) if isinstance(data, dict) else None
