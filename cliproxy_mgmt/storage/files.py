"""The local-files backend (the default): config.yaml and auth-dir as they are on disk.

A config write is a compare-and-swap on the file's identity, so a hand edit is never
thrown away: the new text goes to a temp file beside the config (fsync, fstat: the version
we write is that of the temp file, known before anyone else can touch it); right before
the rename the file on disk must still be the version the edit was based on, and the swap
itself is an atomic exchange (renameat2 RENAME_EXCHANGE) after which the file we took out
is checked once more, after the folder's fsync: that also gives a writer that opened it just
before the swap time to write, which narrows the window but cannot close it (no rename-based
save can). An edit that landed in between is put back and the write
reports `Conflict`: the config store reloads it and re-applies its change on top.

The checks cost a stat and one read, not a hash of the whole file: before the swap, a file
whose token differs has changed; the file taken out (or, without the exchange, the file
before the rename) is compared byte for byte with the text of the base version, kept from
the last read or write (hashed only when the base version is another one). The new
version's own hash is computed while its bytes go to disk.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
import threading
from typing import Callable

from ..fileio import exchange, fsync_folder, keep_owner, open_regular, remove_stale, replace_file
from .base import AuthBackend, ConfigBackend, Conflict, NotText, Storage, Version, utf8_text


AUTH_FILE_MODE = 0o600


def _token(st: os.stat_result) -> tuple:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def file_version(path: str) -> tuple[bytes, Version]:
    """The bytes of `path` and their version (read again if the file changed while read)."""
    while True:
        f, st = open_regular(path, follow_symlinks=True)
        with f:
            before = _token(st)
            data = f.read()
            if _token(os.fstat(f.fileno())) == before:
                return data, Version(before, hashlib.sha256(data).digest())


def _check_token(path: str, base: Version | None) -> None:
    """The cheap part of the check: a file whose token is not `base`'s has changed."""
    if base is None:
        return
    try:
        token = _token(os.stat(path))
    except FileNotFoundError:
        raise Conflict(f"{path} was removed") from None
    if token != base.token:
        raise Conflict(f"{path} was changed by someone else")


PARALLEL_DIGEST_BYTES = 1 << 18  # below this a thread costs more than the hash it overlaps


class _Digest:
    """The SHA-256 of `data`, computed on another thread for large data (hashlib lets go
    of the GIL, as does the write and fsync it overlaps)."""

    def __init__(self, data: bytes):
        self._digest: bytes | None = None
        self._thread = None
        if len(data) < PARALLEL_DIGEST_BYTES:
            self._digest = hashlib.sha256(data).digest()
        else:
            self._thread = threading.Thread(target=self._run, args=(data,), daemon=True)
            self._thread.start()

    def _run(self, data: bytes) -> None:
        self._digest = hashlib.sha256(data).digest()

    def value(self) -> bytes:
        if self._thread is not None:
            self._thread.join()
        return self._digest


class FileConfig(ConfigBackend):
    """config.yaml on disk (through a symlink to its target), written with compare-and-swap.

    `in_place(target, data)` rewrites the file where it is when rename is refused (a
    single-file bind mount gives EBUSY or EXDEV).
    """

    def __init__(self, path: str, *, in_place: Callable[[str, bytes], None]):
        self.path = os.path.abspath(path)
        self._in_place = in_place
        self._known: tuple[Version, bytes] | None = None  # the last version read or written

    def token(self):
        return _token(os.stat(self.path))

    def read(self) -> tuple[str, Version]:
        data, version = file_version(self.path)
        self._known = (version, data)
        try:
            return utf8_text(data), version
        except NotText as exc:
            exc.version = version
            raise

    def write(self, text: str, base: Version | None, data: dict | None = None) -> Version:
        target = os.path.realpath(self.path)
        data = text.encode("utf-8")
        try:
            replaced = os.stat(target)
            mode = replaced.st_mode & 0o7777
        except FileNotFoundError:
            replaced, mode = None, 0o600
        folder, name = os.path.split(target)
        fd, tmp = tempfile.mkstemp(prefix="." + name + ".", suffix=".tmp", dir=folder)
        try:
            digest = _Digest(data)  # hashed while the data goes to disk
            with os.fdopen(fd, "wb") as f:
                keep_owner(f.fileno(), replaced)
                os.fchmod(f.fileno(), mode)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                written = Version(_token(os.fstat(f.fileno())), digest.value())
            _check_token(target, base)
            try:
                # With the exchange, the bytes are checked in the file it took out; without,
                # in the file before the rename.
                swapped = base is not None and exchange(tmp, target)
                if not swapped:
                    self._check(target, base)
                    os.replace(tmp, target)
            except OSError as exc:
                if exc.errno not in (errno.EBUSY, errno.EXDEV):
                    raise
                return self._write_in_place(target, data, base)
            if swapped:
                # The rename is made durable first, which also gives a writer that opened the
                # old file just before the exchange some time to finish (no guarantee).
                fsync_folder(folder)
                self._check_taken_out(tmp, target, base)
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if not swapped:
            fsync_folder(folder)
        self._known = (written, data)
        return written

    def _check(self, path: str, base: Version | None) -> None:
        """Raise `Conflict` unless the file at `path` is version `base` (None: no check)."""
        if base is None:
            return
        expected = self._known[1] if self._known is not None and self._known[0] == base else None
        try:
            f, st = open_regular(path, follow_symlinks=True)
            with f:
                token = _token(st)
                if token != base.token:
                    raise Conflict(f"{path} was changed by someone else")
                data = f.read()
                if _token(os.fstat(f.fileno())) != token:
                    raise Conflict(f"{path} was changed by someone else")
        except FileNotFoundError:
            raise Conflict(f"{path} was removed") from None
        if data != expected if expected is not None else hashlib.sha256(data).digest() != base.digest:
            raise Conflict(f"{path} was changed by someone else")

    def _check_taken_out(self, tmp: str, target: str, base: Version) -> None:
        """After the exchange `tmp` holds the file we replaced: if it is not `base`, an edit
        landed before the exchange: put it back and report the conflict."""
        try:
            self._check(tmp, base)
        except Conflict:
            exchange(tmp, target)
            fsync_folder(os.path.dirname(target))
            raise

    def _write_in_place(self, target: str, data: bytes, base: Version | None) -> Version:
        self._check(target, base)
        self._in_place(target, data)
        f, st = open_regular(target, follow_symlinks=True)
        f.close()
        written = Version(_token(st), hashlib.sha256(data).digest())
        self._known = (written, data)
        return written


_TEMP_ENTRY = re.compile(r"\.tmp-[a-z0-9_]{8}\.part")  # replace_entry's temp files (mkstemp)


def replace_entry(path: str, data: bytes, mode: int = AUTH_FILE_MODE, *, durable: bool = True) -> None:
    """Replace the directory entry `path` (never a symlink's target) with `data`, atomically
    (`durable=False`: not synced to disk, for a copy of what is stored elsewhere)."""
    replace_file(path, data, mode=mode, prefix=".tmp-", suffix=".part", durable=durable)


def remove_stale_entries(folder: str) -> list[str]:
    """The temp files interrupted `replace_entry` saves left in `folder`, removed
    (`fileio.remove_stale`); their names."""
    return remove_stale(folder, _TEMP_ENTRY)


class FileAuths(AuthBackend):
    """auth-dir on disk: atomic replace of the directory entry (never through a symlink)."""

    def save(self, folder: str, name: str, data: bytes) -> None:
        replace_entry(os.path.join(folder, name), data)

    def remove(self, folder: str, name: str) -> None:
        os.unlink(os.path.join(folder, name))


class FileStorage(Storage):
    """The default: no shared state, the config store's own file (`config` None)."""

    name = "files"
    config = None

    def __init__(self):
        self.auths = FileAuths()
