"""The local-files backend (the default): config.yaml and auth-dir as they are on disk.

A config save rewrites the file where it is (`inplace`: the Go proxy's file watch must
survive it), with a journal that puts the old bytes back if a crash cuts the rewrite off.

A save is a compare-and-swap on the file, so a hand edit is never thrown away: the file is
opened, and it must still be the version the edit was based on (its inode and size, then
the bytes, compared with the text of the base version kept from the last read or write, or
hashed when the base is another version; not the mtime, which reserving space may set).
Right before the first byte is overwritten, the open file's token (inode, size, mtime) is
checked against the one taken when its bytes were read; right after the new bytes are in it,
its link count tells whether an editor renamed its own file over it meanwhile (our bytes
then went to the file taken away, and the editor's text predates them). Either way the save
reports `Conflict`: the config store reloads the edit and re-applies its change on top. A
rename after our write is an edit that came after it, and is read back as one. An append
landing while the new bytes are written is kept after them (`inplace.overwrite`) and read
back as an outside edit. No save can close every window (an in-place write by someone else
between the last check and ours), but each is microseconds long.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re

from ..fileio import identity, open_regular, remove_stale, replace_file, reserve
from . import inplace
from .base import (AuthBackend, ConfigBackend, Conflict, NotText, Storage, Version, check_unchanged,
                   utf8_text)


AUTH_FILE_MODE = 0o600

log = logging.getLogger(__name__)


def _token(st: os.stat_result) -> tuple:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _same_file(token: tuple, base: Version) -> bool:
    """Whether `token` has the inode and size of `base` (whose token may be None: unknown)."""
    return base.token is not None and token[:2] == base.token[:2]


def file_version(path: str) -> tuple[bytes, Version]:
    """The bytes of `path` and their version (read again if the file changed while read)."""
    while True:
        f, st = open_regular(path, follow_symlinks=True)
        with f:
            before = _token(st)
            data = f.read()
            if _token(os.fstat(f.fileno())) == before:
                return data, Version(before, hashlib.sha256(data).digest())


class LazyDigest:
    """The SHA-256 of `data`, computed the first time it is compared. A save's version needs
    its digest only when a reload compares it with what it read, and hashing megabytes on
    every save would cost more than writing the change. Equal to the digest's bytes."""

    __slots__ = ("_data", "_value")

    def __init__(self, data: bytes):
        self._data, self._value = data, None

    def value(self) -> bytes:
        if self._value is None:
            self._value, self._data = hashlib.sha256(self._data).digest(), None
        return self._value

    def __eq__(self, other):
        if isinstance(other, LazyDigest):
            other = other.value()
        return self.value() == other if isinstance(other, bytes) else NotImplemented

    def __hash__(self):
        return hash(self.value())

    def __repr__(self):
        return f"LazyDigest({self.value().hex()[:12]}...)"


class FileConfig(ConfigBackend):
    """config.yaml on disk (through a symlink to its target), rewritten in place with
    compare-and-swap (module docstring). A save that a crash cut off is undone when the
    backend is made, that is when a server starts on the file."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self._known: tuple[Version, bytes] | None = None  # the last version read or written
        self._sums: inplace.Checksums | None = None  # those of self._known's bytes, once needed
        try:
            inplace.recover(os.path.realpath(self.path))
        except OSError as exc:
            log.warning("%s: could not check for a save cut off by a crash: %s", self.path, exc)

    def token(self):
        return _token(os.stat(self.path))

    def read(self) -> tuple[str, Version]:
        data, version = file_version(self.path)
        self._known, self._sums = (version, data), None
        try:
            return utf8_text(data), version
        except NotText as exc:
            exc.version = version
            raise

    def write(self, text: str, base: Version | None, data: dict | None = None) -> Version:
        target = os.path.realpath(self.path)
        new = text.encode("utf-8")
        try:
            f, st = open_regular(target, "r+b", follow_symlinks=True, buffering=0)
        except FileNotFoundError:
            if base is not None:
                raise Conflict(f"{target} was removed") from None
            return self._create(target, new)
        with f:
            # Space first: a full disk fails before anything is written. (It may set the
            # mtime, so the check below goes by inode, size and content.)
            reserve(f.fileno(), len(new))
            old, checked = self._base_bytes(f, st, target, base)
            edit = inplace.Edit.between(old, new)
            # (the checksums of the base version, when it is the one we know, carry over:
            # only the changed part is summed)
            known = base is not None and self._sums is not None and self._known[0] == base
            old_sums = self._sums if known else inplace.Checksums.of(old)
            new_sums = old_sums.after(edit.start, new)
            token, alone = self._rewrite(f, st, target, old, new, edit, checked, (old_sums, new_sums))
        # After an append that landed during the save, no token (None matches no file's)
        # makes the store read the file back: our text with the appended bytes after it.
        written = Version(token if alone else None, LazyDigest(new))
        self._known, self._sums = (written, new), new_sums
        return written

    def _rewrite(self, f, st: os.stat_result, target: str, old: bytes, new: bytes,
                 edit: inplace.Edit, checked: tuple, sums: tuple) -> tuple[tuple, bool]:
        """Turn the open config `f` (its first fstat `st`, its bytes `old`, their token
        `checked`) into `new` where it is, by `edit`, under the journal (module docstring;
        `sums`: the checksums of old and new). Returns the file's token after the save, and
        False when someone appended to it meanwhile (`inplace.overwrite`)."""
        journal = inplace.SaveJournal(target, st)
        whole = True  # the file holds a whole version (else the journal stays pending)
        try:
            journal.keep(old, new, edit, *sums)
            if _token(os.fstat(f.fileno())) != checked:
                raise Conflict(f"{target} was changed by someone else")
            whole = False
            try:
                alone = inplace.overwrite(f, new, len(old), edit)
                unlinked = os.fstat(f.fileno()).st_nlink < st.st_nlink
                if unlinked and identity(target) != (st.st_dev, st.st_ino):
                    # An editor renamed its file over ours before our bytes were in it: they
                    # went to the file it took away, and its text predates ours.
                    whole = True
                    raise Conflict(f"{target} was replaced by someone else")
                os.fsync(f.fileno())
            except OSError:
                # Put the old bytes back; if that fails too, the journal does it at the next start.
                inplace.overwrite(f, old, os.fstat(f.fileno()).st_size, edit.reversed())
                os.fsync(f.fileno())
                whole = True
                raise
            whole = True
            return _token(os.fstat(f.fileno())), alone
        finally:
            journal.close(settle=whole)

    def _create(self, target: str, data: bytes) -> Version:
        """A config that does not exist yet (nobody watches it): written atomically."""
        name = os.path.basename(target)
        replace_file(target, data, mode=0o600, prefix="." + name + ".", suffix=".tmp")
        written = Version(_token(os.stat(target)), LazyDigest(data))
        self._known, self._sums = (written, data), None  # (any sums kept were a removed file's)
        return written

    def _base_bytes(self, f, st: os.stat_result, path: str, base: Version | None) -> tuple[bytes, tuple]:
        """The bytes of the open file `f` (its fstat `st`) and their token; `Conflict` unless
        they are version `base` (None: no check). The mtime is not compared (a reserve of
        space may have set it): inode and size first, then the bytes themselves."""
        if base is not None and not _same_file(_token(st), base):
            raise Conflict(f"{path} was changed by someone else")
        data = f.read()
        token = _token(os.fstat(f.fileno()))
        if base is None:
            return data, token
        if not _same_file(token, base):
            raise Conflict(f"{path} was changed by someone else")
        expected = self._known[1] if self._known is not None and self._known[0] == base else None
        if data != expected if expected is not None else hashlib.sha256(data).digest() != base.digest:
            raise Conflict(f"{path} was changed by someone else")
        return data, token


_TEMP_ENTRY = re.compile(r"\.tmp-[a-z0-9_]{8}\.part")  # replace_entry's temp files (mkstemp)


def replace_entry(path: str, data: bytes, mode: int = AUTH_FILE_MODE, *, durable: bool = True,
                  before_rename=None) -> None:
    """Replace the directory entry `path` (never a symlink's target) with `data`, atomically
    (`durable=False`: not synced to disk, for a copy of what is stored elsewhere;
    `before_rename`: see `fileio.replace_file`)."""
    replace_file(path, data, mode=mode, prefix=".tmp-", suffix=".part", durable=durable,
                 before_rename=before_rename)


def remove_stale_entries(folder: str) -> list[str]:
    """The temp files interrupted `replace_entry` saves left in `folder`, removed
    (`fileio.remove_stale`); their names."""
    return remove_stale(folder, _TEMP_ENTRY)


class FileAuths(AuthBackend):
    """auth-dir on disk: atomic replace of the directory entry (never through a symlink)."""

    def save(self, folder: str, name: str, data: bytes) -> None:
        replace_entry(os.path.join(folder, name), data)

    def save_unchanged(self, folder: str, name: str, data: bytes, expect: bytes) -> None:
        # The Go proxy rewrites a token file when it refreshes it, taking no lock. Compared
        # once the new file is ready, right before the rename: a refresh that came in while
        # we read, changed and synced is not overwritten (that would lose a rotated token).
        replace_entry(os.path.join(folder, name), data,
                      before_rename=lambda: check_unchanged(folder, name, expect))

    def remove(self, folder: str, name: str) -> None:
        os.unlink(os.path.join(folder, name))


class FileStorage(Storage):
    """The default: no shared state, the config store's own file (`config` None)."""

    name = "files"
    config = None

    def __init__(self):
        self.auths = FileAuths()
