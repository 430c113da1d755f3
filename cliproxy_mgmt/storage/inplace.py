"""Rewriting config.yaml where it is (the same inode), with a journal for crashes.

Why in place: the Go proxy watches config.yaml itself (fsnotify on the file, not its folder),
and fsnotify drops that watch when the watched inode is renamed or deleted. A save that
renames a new file over the config is seen once by the proxy, and then never again until
it restarts. So every save rewrites the file's own inode, as the Go server's saves do.

Why a journal: a rewrite in place is not atomic. Before the first byte is overwritten,
the bytes the file holds are copied to `.<name>.journal` beside it (fdatasync), marked
`pending`, with the size and hash of the new text; once the new text is on disk the mark
becomes `settled`. If the process or the machine dies in between, `recover` (run when the
server starts) finds the pending journal, and when the file is neither the old nor the new
text (torn), puts the old bytes back: the file is always the old or the new version once a
server has started on it. A torn journal (cut while it was written) fails its checksum and
is ignored: the file was not touched yet.

The journal is a long-lived file rewritten in place too (no blocks allocated and freed per
save), mode 0600, and locked (flock) while a save or a recovery uses it, so a recovery never
undoes the save of a live process.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time

from ..fileio import fsync_folder, keep_owner, open_regular, reserve

log = logging.getLogger(__name__)

_PENDING, _SETTLED = b"pending", b"settled"  # same length: the mark is rewritten in place
_MAGIC = b" cliproxy-mgmt journal "


def journal_path(target: str) -> str:
    folder, name = os.path.split(target)
    return os.path.join(folder, "." + name + ".journal")


def overwrite(f, data: bytes, old_size: int) -> bool:
    """Rewrite the open file `f` (unbuffered "r+b", at any position) with `data`; the caller
    fsyncs. Reserve the space first (`fileio.reserve`), so that a full disk fails before
    this starts.

    Over a longer old file the new text is padded with newlines to the old length before the
    truncate, so a crash between the write and the truncate leaves the new text and blank
    lines, never the old file's tail. Returns False, and keeps the file's length, when
    someone else appended to the file while it was written (the file then ends with their
    bytes after the new text and the padding; the caller reads it back as an outside edit).
    """
    fd = f.fileno()
    padded = max(old_size, len(data))
    rest = memoryview(data + b"\n" * (padded - len(data)))
    offset = 0
    while rest:
        written = os.pwrite(fd, rest, offset)
        rest, offset = rest[written:], offset + written
    st = os.fstat(fd)
    appended = st.st_size > padded
    if not appended:
        f.truncate(len(data))
    # The kernel's mtime moves in clock ticks (milliseconds): two saves of the same size in
    # one tick would leave (inode, size, mtime) as it was, and a reader that checks it (an
    # editor about to save over the file, our own hot reload) would miss the second.
    os.utime(fd, ns=(st.st_atime_ns, time.time_ns()))
    return not appended


class SaveJournal:
    """The old bytes of `target`, kept beside it while it is rewritten in place.

    `SaveJournal(target, like)` opens (or creates, owned like the stat `like`) and locks the
    journal; `keep(old, new)` stores `old` as pending, durably; `close(settle=True)` marks it
    settled (durably) and unlocks. `close(settle=False)` leaves it pending, for a file that
    may be torn: the next start puts `old` back.
    """

    def __init__(self, target: str, like: os.stat_result):
        path = journal_path(target)
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            self._fd = os.open(path, flags)
        except FileNotFoundError:
            self._fd = os.open(path, flags | os.O_CREAT, 0o600)
            try:
                keep_owner(self._fd, like)
                fsync_folder(os.path.dirname(path))  # the journal must outlive a crash
            except BaseException:
                os.close(self._fd)
                raise
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self._fd)
            raise
        self._kept = False

    def keep(self, old: bytes, new: bytes) -> None:
        """Store `old` as pending, durably, with the size and hash of the `new` bytes about
        to replace it (so that a recovery can tell a finished rewrite from a torn one)."""
        header = b"%s%s%s %s\n" % (_PENDING, _MAGIC, _signature(old), _signature(new))
        os.pwritev(self._fd, [header, old], 0)
        os.ftruncate(self._fd, len(header) + len(old))
        os.fdatasync(self._fd)
        self._kept = True

    def close(self, settle: bool = True) -> None:
        try:
            if self._kept and settle:
                os.pwrite(self._fd, _SETTLED, 0)
                os.fdatasync(self._fd)
        finally:
            os.close(self._fd)


def _signature(data: bytes) -> bytes:
    return b"%d %s" % (len(data), hashlib.sha256(data).hexdigest().encode())


def _pending(fd: int) -> tuple[bytes, int, bytes] | None:
    """(old bytes, new size, new signature) of a pending, whole journal; None when it is
    settled, torn or not ours."""
    raw = b""
    while chunk := os.read(fd, 1 << 20):
        raw += chunk
    header, sep, old = raw.partition(b"\n")
    if not sep or not header.startswith(_PENDING + _MAGIC):
        return None
    fields = header[len(_PENDING + _MAGIC):].split(b" ")
    if len(fields) != 4 or not (fields[0].isdigit() and fields[2].isdigit()):
        return None
    if b" ".join(fields[:2]) != _signature(old):
        return None
    return old, int(fields[2]), b" ".join(fields[2:])


def _finished(now: bytes, new_size: int, new_signature: bytes) -> bool:
    """`now` is the new text, or the new text and the padding of a rewrite cut off before
    its truncate (`overwrite`)."""
    return (len(now) >= new_size and not now[new_size:].strip(b"\n")
            and _signature(now[:new_size]) == new_signature)


def recover(target: str) -> bool:
    """Put back the old bytes of a rewrite that a crash cut off half-way (see the module
    docstring). True when `target` was restored. A file that holds the old or the whole new
    text is left as it is: a reader may already have seen it."""
    try:
        fd = os.open(journal_path(target), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a live save of another process finishes first
        pending = _pending(fd)
        if pending is None:
            return False
        old, new_size, new_signature = pending
        f, st = open_regular(target, "r+b", follow_symlinks=True, buffering=0)
        with f:
            now = f.read()
            restored = now != old and not _finished(now, new_size, new_signature)
            if restored:
                reserve(f.fileno(), len(old))
                overwrite(f, old, len(now))
                os.fsync(f.fileno())
        os.pwrite(fd, _SETTLED, 0)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    if restored:
        log.warning("%s: a save was cut off half-way (crash or kill); the file was put back as it "
                    "was before it", target)
    return restored
