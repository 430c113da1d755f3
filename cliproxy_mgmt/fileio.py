"""Replacing a file so that readers see the old or the new contents, never half of either;
opening a file that may have been replaced by something that is not one."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import stat
import sys
import tempfile
import time
from typing import Callable

STALE_TEMP_SECONDS = 60  # a save holds its temp file for milliseconds; older ones are a crash's


class NotRegularFile(OSError):
    """What stands at `path` is not a regular file (a directory, FIFO, socket, device, or a
    symlink where none is followed): OSError EINVAL "not a regular file", `path` its filename."""

    def __init__(self, path: str):
        super().__init__(errno.EINVAL, "not a regular file", path)


# "Only a regular file" as open(2) flags: O_NONBLOCK, so that opening a FIFO returns at once
# instead of waiting for a writer; O_NOFOLLOW where a symlink must fail (ELOOP). What was
# opened is then checked with fstat (S_ISREG), so an entry swapped between a check and the
# open is still never read unless it is a regular file.
_ACCESS = {"rb": os.O_RDONLY, "r+b": os.O_RDWR}
_NO_WAIT = os.O_NONBLOCK | os.O_CLOEXEC
_READ_NO_SYMLINK = os.O_RDONLY | os.O_NOFOLLOW | _NO_WAIT  # read_regular_stat's (its hot path)


def open_regular(path: str, mode: str = "rb", *, follow_symlinks: bool = False, **kwargs):
    """`(file, fstat)`: `path` opened as `open(path, mode, **kwargs)` would ("rb" or "r+b"),
    when it is a regular file; the one way a file that may have been replaced by something
    else is opened. Never blocks on what stands in its place (see the flags above); the file
    object then blocks as usual.

    `follow_symlinks=False` (the default): the entry itself must be a regular file; the
    open's own refusals, ELOOP (a symlink) and ENXIO (a socket), are NotRegularFile too.
    `follow_symlinks=True`: a symlink's target is opened, and the open's errors are raised
    as they are (ELOOP: a loop, ENXIO: a socket).
    Raises NotRegularFile when fstat finds another kind, else the OSError of the open.
    """
    flags = _ACCESS[mode] | _NO_WAIT | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if not follow_symlinks and exc.errno in (errno.ENXIO, errno.ELOOP):
            raise NotRegularFile(path) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path)
        os.set_blocking(fd, True)
        return open(fd, mode, **kwargs), st
    except BaseException:
        os.close(fd)
        raise


def identity(path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of what `path` leads to now (symlinks followed); None when nothing.
    Tells whether a path still leads to a file or folder already open or watched."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def read_regular_stat(path: str) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file at `path` (never a symlink), and its fstat: the open and
    check of `open_regular(path)` with plain reads instead of a file object, for a caller
    that reads thousands of small files (a cold auth-dir listing needs no other stat).

    Raises NotRegularFile when fstat finds another kind, else the OSError of the open as it
    is (ELOOP: a symlink; ENXIO: a socket), so that a caller can tell a symlink apart.
    """
    fd = os.open(path, _READ_NO_SYMLINK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path)
        # A file object costs more syscalls (isatty, lseek, another fstat) than the reads.
        # The size is only a hint: the file may change while it is read. One read that
        # returns exactly the size fstat gave is the whole file; otherwise read to the end.
        chunks = [os.read(fd, st.st_size + 1)]
        if len(chunks[0]) == st.st_size:
            return chunks[0], st
        while chunks[-1]:
            chunks.append(os.read(fd, max(st.st_size, 65536)))
        return b"".join(chunks), st
    finally:
        os.close(fd)


def replace_file(target: str, data: bytes, *, mode: int, prefix: str, suffix: str,
                 durable: bool = True, before_rename: Callable[[], None] | None = None) -> None:
    """Write `data` to a temp file beside `target` (fsync, `mode`), rename it over `target`, fsync the folder.

    `target` is the directory entry replaced (resolve symlinks first if you mean their
    target); the owner of the file it replaces is kept (`keep_owner`). A failure leaves
    `target` as it was and removes the temp file.
    `durable=False` skips both fsyncs, for a file rebuilt from elsewhere after a crash: readers
    still see the old or the new contents.
    `before_rename()`, when given, runs once the temp file is complete, right before the
    rename: it may raise to call the save off (a precondition checked as late as can be).
    """
    folder = os.path.dirname(target)
    try:
        replaced = os.lstat(target)
    except OSError:
        replaced = None
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            keep_owner(f.fileno(), replaced)
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        if before_rename is not None:
            before_rename()
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_folder(folder)


def remove_stale(folder: str, names, older_than: float = STALE_TEMP_SECONDS) -> list[str]:
    """Delete the temp files interrupted saves (a crash, SIGKILL) left in `folder`: regular
    files whose names `names` (a compiled pattern) matches whole, older than `older_than`
    seconds, so that a save in flight is never touched. Returns their names."""
    removed = []
    now = time.time()
    try:
        with os.scandir(folder) as it:
            entries = [entry for entry in it if names.fullmatch(entry.name)]
    except OSError:
        return removed
    for entry in entries:
        try:
            if (not entry.is_file(follow_symlinks=False)
                    or now - entry.stat(follow_symlinks=False).st_mtime < older_than):
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(entry.name)
    return removed


def keep_owner(fd: int, replaced) -> None:
    """Give the new file `fd` the owner and group of the file it replaces (`replaced`, its
    stat, or None), so that a server run as root does not take a token or config away from
    the proxy's user. Where this process may not (not root), the file stays its own.
    Call it before fchmod: a change of owner may clear set-id bits."""
    if replaced is None or (replaced.st_uid, replaced.st_gid) == (os.geteuid(), os.getegid()):
        return
    try:
        os.fchown(fd, replaced.st_uid, replaced.st_gid)
    except PermissionError:
        pass


def fsync_folder(folder: str) -> None:
    """Make a rename in `folder` durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _libc_function(name: str):
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return getattr(libc, name) if hasattr(libc, name) else None
    except OSError:
        return None


_LINUX = sys.platform.startswith("linux")
_FALLOCATE = _libc_function("fallocate") if _LINUX else None
if _FALLOCATE is not None:
    _FALLOCATE.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
_FALLOC_FL_KEEP_SIZE = 1


def reserve(fd: int, size: int) -> None:
    """Have the disk hold `size` bytes for the open file `fd` without changing it (Linux
    fallocate, KEEP_SIZE): a full disk then fails here (OSError ENOSPC), before a rewrite in
    place overwrites the first old byte. A system or filesystem that cannot reserve space
    is left to fail, if at all, in the write."""
    if _FALLOCATE is None or size <= 0:
        return
    if _FALLOCATE(fd, _FALLOC_FL_KEEP_SIZE, 0, size) == 0:
        return
    err = ctypes.get_errno()
    if err in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        return
    raise OSError(err, os.strerror(err))
