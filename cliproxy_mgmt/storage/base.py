"""The storage interface under the config store and the auth-dir store.

Everything above it (routes, targeted YAML edits, validation, hot reload, the listing cache)
is one code path; a backend only moves text and bytes:

* `ConfigBackend`: the config text with a `Version` (what was read or written), a cheap
  `token()` to notice that someone else changed it, and a compare-and-swap `write`;
* `AuthBackend`: saving and removing the auth files of a folder;
* `Storage`: one backend's config and auth parts, plus the shared state (bans, OAuth
  sessions) it can hold for several server processes.

The local files (`files.py`) are the default; PostgreSQL (`postgres.py`) is chosen by
PGSTORE_DSN; plugins add others through the `register_storage_backends` hook (`select.py`).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Hashable

from ..fileio import read_regular_stat


class Conflict(Exception):
    """The stored config is no longer the version a write was based on: reload and re-apply."""


class NotText(ValueError):
    """The stored config's bytes are not UTF-8 text (a hand edit in another encoding).

    `version` is what was read, so that the same bytes need not be read again."""

    def __init__(self, message: str, version: "Version | None" = None):
        super().__init__(message)
        self.version = version


def utf8_text(data: bytes) -> str:
    """`data` decoded as UTF-8; NotText naming the first bad byte and its line otherwise."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise NotText(f"not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line} "
                      "cannot be decoded") from None


class AuthFileChanged(Exception):
    """An auth file no longer holds the bytes a read-modify-write started from (the Go
    proxy's token refresh rewrites it without a lock we could share): nothing was written;
    read it again and re-apply."""


class Unavailable(OSError):
    """The backend cannot take writes now (e.g. the database is unreachable); nothing was changed."""


@dataclass(frozen=True)
class Version:
    """What a config read or write saw: `token` (cheap to compare: a file's inode, size and
    mtime_ns; a row's updated_at) and `digest` (SHA-256 of the stored bytes: `bytes`, or an
    object equal to them that computes them when first compared, see `files.LazyDigest`)."""

    token: Hashable
    digest: bytes


class ConfigBackend:
    """Where the config text lives. `path` is the file on this host that holds it (for a
    database backend, its local mirror), which relative paths in the config are resolved from.
    `auth_dir`, when set, is the folder in force instead of the config's auth-dir (the
    backend keeps the auth files itself and mirrors them there)."""

    path: str
    auth_dir: str | None = None
    # Who made a change this server finds in storage but did not write, for the audit log.
    outside_change = "a hand edit of the file"

    def token(self) -> Hashable:
        """The current version's token, cheaply (raises OSError when it cannot be known)."""
        raise NotImplementedError

    def read(self) -> tuple[str, Version]:
        """The current text and its version (OSError when unreadable, NotText when the
        bytes are not UTF-8)."""
        raise NotImplementedError

    @contextmanager
    def exclusive(self):
        """Hold off other writers (other instances) for one edit: `read`, then `write` inside.

        A database backend locks the row and commits the `write` at the end of the block (a
        failed commit raises `Unavailable`); the default has no such lock and relies on the
        compare-and-swap of `write` alone.
        """
        yield

    def parsed(self, version: Version) -> dict | None:
        """The plain data of the text of `version` when the backend has it (another instance
        stored it with the text), so that a large config need not be parsed again; else None."""
        return None

    def write(self, text: str, base: Version | None, data: dict | None = None) -> Version:
        """Store `text` if the stored version is still `base` (None: unconditionally).
        `data` is the plain data of `text` (what `parsed` may give back).

        Returns the version written. Raises `Conflict` when someone else changed the config
        since `base` (nothing written: reload, re-apply, retry), `Unavailable` or another
        OSError when it cannot be written (nothing written either).
        """
        raise NotImplementedError


class AuthBackend:
    """Saving and removing auth files; reading and listing is done on the local folder
    (for a database backend, its mirror), so listing stays a folder scan."""

    @contextmanager
    def exclusive(self, folder: str, name: str):
        """Hold off other instances' writes of file `name` for one read-modify-write (a
        `save` inside the block belongs to it). The local files need no such lock."""
        yield

    def save(self, folder: str, name: str, data: bytes) -> None:
        """Store file `name` of `folder` (a checked, plain name) atomically."""
        raise NotImplementedError

    def save_unchanged(self, folder: str, name: str, data: bytes, expect: bytes) -> None:
        """`save`, for a read-modify-write that read `expect`: raise `AuthFileChanged`,
        storing nothing, when the file no longer holds those bytes. This default compares the
        local file, then saves; a backend checks closer to its store where it can, or takes
        the check as done where `exclusive` holds off every other writer."""
        check_unchanged(folder, name, expect)
        self.save(folder, name, data)

    def remove(self, folder: str, name: str) -> None:
        """Remove file `name` of `folder`; FileNotFoundError when there is none."""
        raise NotImplementedError


def check_unchanged(folder: str, name: str, expect: bytes) -> None:
    """Raise AuthFileChanged unless the local file `name` of `folder` holds `expect`."""
    try:
        now, _ = read_regular_stat(os.path.join(folder, name))
    except OSError:  # gone, or no longer a regular file: the next read says what it is
        raise AuthFileChanged(name) from None
    if now != expect:
        raise AuthFileChanged(name)


class Storage:
    """A backend's parts. `config` None is the config store's own file; `bans` and `sessions`
    are None where the in-memory defaults serve; `usage`, when set, is a factory
    `usage(max_details)` of the usage store that replaces the SQLite file."""

    name = "files"
    config: ConfigBackend | None
    auths: AuthBackend
    bans = None
    sessions = None
    usage = None

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (from any thread) when a change may have been stored elsewhere.
        Backends that are only polled never call it."""

    def close(self) -> None:
        """Stop background work (listener threads, connections)."""


@dataclass(frozen=True)
class BackendFactory:
    """A storage backend a plugin offers (hook `register_storage_backends`).

    `selected(environ)` says whether the environment asks for it (e.g. PGSTORE_DSN is set);
    `open(config_path, environ)` builds its `Storage` (raise `StorageError` with one clear line
    when it cannot start). `CLIPROXY_MGMT_STORAGE=<name>` selects one by name.
    """

    name: str
    selected: Callable[[dict], bool]
    open: Callable[[str, dict], Storage]


class StorageError(RuntimeError):
    """A storage backend cannot start (an operator mistake or an unreachable database)."""


def env_value(environ: dict, name: str) -> str:
    """`name` from the environment, or its lower-case spelling (upstream accepts both)."""
    return environ.get(name) or environ.get(name.lower()) or ""
