"""The auth-dir on disk: where it is, and reading, writing and removing its files safely.

Every name goes through `names.check_name`; a path that is a symlink or anything but a
regular file (a directory, FIFO, socket, device) is refused, and writes
replace the directory entry itself (temp file + rename), so a symlink placed in auth-dir
can never redirect a write outside it. Every read of an entry goes through `read_regular_stat`
(or `read_regular`, its bytes alone), which never blocks (a FIFO) and never follows a symlink.
"""

from __future__ import annotations

import errno
import json
import os
import stat

from .. import audit
from ..errors import ApiError
from ..fileio import NotRegularFile, read_regular_stat
from ..storage.base import AuthBackend, Unavailable
from ..storage.files import FileAuths, replace_entry
from .names import check_name, is_auth_file_name

FILE_MODE = 0o600
DIR_MODE = 0o700


def resolve_auth_dir(config) -> str | None:
    """`auth-dir` of a ConfigStore as an absolute path: `~` expanded, a relative path taken
    from the config file's folder. None when the key is unset or empty. A storage backend
    that keeps the files itself (PostgreSQL) puts its local mirror in force instead."""
    override = getattr(config, "auth_dir_override", None)
    if override:
        return override
    value = config.get("auth-dir", default="")
    if not isinstance(value, str) or not value.strip():
        return None
    path = os.path.expanduser(value.strip())
    if not os.path.isabs(path):
        path = os.path.join(os.path.dirname(config.path), path)
    return os.path.normpath(path)


def read_regular(path: str) -> bytes:
    """The bytes of the regular file at `path`: the one way an auth-dir entry is opened.
    See `fileio.read_regular_stat`."""
    return read_regular_stat(path)[0]


def _not_regular() -> ApiError:
    return ApiError(400, "invalid name", message="not a regular file")


def write_atomic(path: str, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace `path` (the directory entry, never a symlink's target) with `data`.

    Temp file in the same folder, fsync, rename, fsync the folder: readers see the old or
    the new file, never half of one. (The config file is written through symlinks on
    purpose, which is exactly what auth files must not do.)
    """
    replace_entry(path, data, mode)


def _not_a_directory() -> ApiError:
    return ApiError(503, "auth directory unavailable", message="auth-dir is not a directory")


def dump_json(data: dict, like: bytes | None = None) -> bytes:
    """`data` as a token file: compact JSON and a newline (what upstream writes), or
    2-space indented when `like`, the file's previous bytes, was indented."""
    indented = like is not None and like.lstrip()[:2] in (b"{\n", b"{\r")
    if indented:
        text = json.dumps(data, indent=2, ensure_ascii=False)
    else:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8") + b"\n"


class AuthDir:
    """One auth-dir folder; `backend` stores writes and removals (default: the folder itself)."""

    def __init__(self, path: str, backend: AuthBackend | None = None):
        self.path = path
        self.backend = backend or FileAuths()

    def path_of(self, name: str, **check) -> str:
        """The path of a valid name; 400 `invalid name` when that path is a symlink or
        exists as anything but a regular file."""
        path = os.path.join(self.path, check_name(name, **check))
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return path
        except NotADirectoryError:
            raise _not_a_directory() from None
        if stat.S_ISLNK(mode):
            raise ApiError(400, "invalid name")
        if not stat.S_ISREG(mode):
            raise _not_regular()
        return path

    def read(self, name: str) -> bytes:
        """The bytes of a file; 404 `file not found`."""
        path = self.path_of(name)
        try:
            return read_regular(path)
        except FileNotFoundError:
            raise ApiError(404, "file not found") from None
        except NotADirectoryError:
            raise _not_a_directory() from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ApiError(400, "invalid name") from None
            if isinstance(exc, NotRegularFile) or exc.errno == errno.ENXIO:  # ENXIO: a socket
                raise _not_regular() from None
            raise ApiError(500, f"failed to read file: {exc.strerror}") from None

    def write(self, name: str, data: bytes, *, expect: bytes | None = None, **check) -> str:
        """Write a file atomically (mode 0600), creating auth-dir if needed; return its path.
        `expect`: the bytes it must still hold (`AuthBackend.save_unchanged`)."""
        path = self.path_of(name, **check)
        try:
            os.makedirs(self.path, mode=DIR_MODE, exist_ok=True)
        except OSError as exc:  # e.g. a dangling symlink or a file where the folder should be
            raise ApiError(503, "auth directory unavailable",
                           message=f"cannot create auth-dir: {exc.strerror or exc}") from None
        if expect is None:
            self.backend.save(self.path, os.path.basename(path), data)
        else:
            self.backend.save_unchanged(self.path, os.path.basename(path), data, expect)
        audit.auth_file("written", os.path.basename(path))
        return path

    def exclusive(self, name: str):
        """`with folder.exclusive(name):` one read-modify-write of a file, serialised across
        instances where the backend is shared."""
        return self.backend.exclusive(self.path, os.path.basename(self.path_of(name)))

    def remove(self, name: str) -> None:
        path = self.path_of(name)
        try:
            self.backend.remove(self.path, os.path.basename(path))
        except Unavailable:
            raise
        except FileNotFoundError:
            raise ApiError(404, "file not found") from None
        except IsADirectoryError:  # became a directory after path_of looked
            raise _not_regular() from None
        except OSError as exc:
            raise ApiError(500, f"failed to remove file: {exc.strerror}") from None
        audit.auth_file("deleted", name)

    def scan(self, *, stat_files: bool = True):
        """(name, path, stat) of every auth file: regular files, valid names, no symlinks.

        With `stat_files=False` the stat is None and the kind comes from the directory
        listing itself (no syscall per file): for a caller that opens each file anyway, with
        `read_regular_stat`, which checks again what it opened.
        A missing folder has no files; an auth-dir that is not a folder is 503 (ApiError);
        any other failure raises OSError."""
        try:
            it = os.scandir(self.path)
        except FileNotFoundError:
            return
        except NotADirectoryError:
            raise _not_a_directory() from None
        with it:
            for entry in it:
                if not is_auth_file_name(entry.name):
                    continue  # (a symlink is no regular file below: neither is_file nor S_ISREG)
                if not stat_files:
                    try:
                        regular = entry.is_file(follow_symlinks=False)
                    except OSError:
                        continue
                    if regular:
                        yield entry.name, entry.path, None
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while we looked
                if stat.S_ISREG(st.st_mode):
                    yield entry.name, entry.path, st
