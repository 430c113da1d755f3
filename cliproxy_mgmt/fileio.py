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
    target). A failure leaves `target` as it was and removes the temp file.
    `durable=False` skips both fsyncs, for a file rebuilt from elsewhere after a crash: readers
    still see the old or the new contents.
    """
    folder = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
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


def fsync_folder(folder: str) -> None:
    """Make a rename in `folder` durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _renameat2():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.renameat2 if hasattr(libc, "renameat2") else None
    except OSError:
        return None


_RENAMEAT2 = _renameat2() if sys.platform.startswith("linux") else None
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


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
