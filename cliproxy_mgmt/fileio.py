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

STALE_TEMP_SECONDS = 60  # a save holds its temp file for milliseconds; older ones are a crash's


def open_regular(path: str, mode: str = "rb", **kwargs):
    """`open(path, mode)` for a regular file (symlinks followed), never blocking on what stands
    in its place: O_NONBLOCK makes opening a FIFO return at once instead of waiting for a
    writer, and what was opened is checked with fstat. Another kind is OSError EINVAL
    "not a regular file"; `kwargs` go to `open` (e.g. buffering)."""
    flags = {"rb": os.O_RDONLY, "r+b": os.O_RDWR}[mode]
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return open(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def replace_file(target: str, data: bytes, *, mode: int, prefix: str, suffix: str,
                 durable: bool = True) -> None:
    """Write `data` to a temp file beside `target` (fsync, `mode`), rename it over `target`, fsync the folder.

    `target` is the directory entry replaced (resolve symlinks first if you mean their
    target); the owner of the file it replaces is kept (`keep_owner`). A failure leaves
    `target` as it was and removes the temp file.
    `durable=False` skips both fsyncs, for a file rebuilt from elsewhere after a crash: readers
    still see the old or the new contents.
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
_RENAMEAT2 = _libc_function("renameat2") if _LINUX else None
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2
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


def exchange(a: str, b: str) -> bool:
    """Swap the directory entries `a` and `b` atomically (Linux renameat2 RENAME_EXCHANGE).

    False where the system or the filesystem cannot (the caller then renames); other
    failures raise OSError, as rename would (EBUSY or EXDEV for a bind-mounted file).
    """
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOENT):
        return False
    raise OSError(err, os.strerror(err), b)
