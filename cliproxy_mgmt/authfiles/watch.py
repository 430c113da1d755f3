"""Change notification for auth-dir: Linux inotify through ctypes (no dependency).

With it a warm GET /auth-files asks the kernel what changed (one non-blocking read) instead
of stat()ing 5,000 files; only the names reported are stat()ed again. Where inotify is not
available (another OS, the watch limit reached) `DirWatch.start` returns None and the
listing stats every file, which is still correct, only slower.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import struct
import sys
import weakref

log = logging.getLogger(__name__)

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x002, 0x004, 0x008
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x040, 0x080, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800
IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x2000, 0x4000, 0x8000
IN_ONLYDIR = 0x01000000
MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
# After these, the watch says nothing reliable any more: rescan (and watch again).
LOST = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_Q_OVERFLOW | IN_IGNORED

_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of NUL-padded name


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc if hasattr(libc, "inotify_init1") else None
    except OSError:
        return None


_LIBC = _libc()


class DirWatch:
    """One inotify watch on one folder (not thread-safe: the listing cache holds its lock)."""

    def __init__(self, fd: int):
        self._fd = fd
        self.lost = False
        self._closer = weakref.finalize(self, os.close, fd)  # an app dropped unclosed frees its fd

    @classmethod
    def start(cls, path: str) -> "DirWatch | None":
        """Watch `path`; None where that is impossible (the caller then stats every file)."""
        if _LIBC is None:
            return None
        fd = _LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            log.info("inotify unavailable (%s): auth-dir listings stat every file",
                     os.strerror(ctypes.get_errno()))
            return None
        if _LIBC.inotify_add_watch(fd, os.fsencode(path), MASK) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            if err not in (0, errno.ENOENT):  # no folder is normal until the first file is saved
                log.info("cannot watch %s (%s): auth-dir listings stat every file", path, os.strerror(err))
            return None
        return cls(fd)

    def changes(self) -> set[str] | None:
        """The names changed since the last call; None when anything may have changed."""
        names: set[str] = set()
        while True:
            try:
                data = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                break
            offset = 0
            while offset + _EVENT.size <= len(data):
                _, mask, _, length = _EVENT.unpack_from(data, offset)
                start = offset + _EVENT.size
                offset = start + length
                if mask & LOST:
                    self.lost = True
                elif length:
                    names.add(os.fsdecode(data[start:offset].rstrip(b"\0")))
        return None if self.lost else names

    def close(self) -> None:
        self._closer()
