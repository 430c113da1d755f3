"""Rewriting config.yaml where it is (the same inode), with a journal for crashes.

Why in place: the Go proxy watches config.yaml itself (fsnotify on the file, not its folder),
and fsnotify drops that watch when the watched inode is renamed or deleted. A save that
renames a new file over the config is seen once by the proxy, and then never again until
it restarts. So every save rewrites the file's own inode, as the Go server's saves do.

Only the bytes that change are written (`Edit`): from the first byte where old and new text
differ, to the last one when both have the same length, else to the end (the tail moved).
A save's disk cost therefore follows its change, not the size of the config.

Why a journal: a rewrite in place is not atomic. Before the first byte is overwritten, the
old bytes of that range go to `.<name>.journal` beside the file (fdatasync), marked
`pending`, with the size and checksum of the new range; once the new bytes are on disk the
mark becomes `settled`. If the process or the machine dies in between, `recover` (run when
the server starts) finds the pending journal, and when the file is neither the old nor the
new text (torn), puts the old bytes back: the file is always the old or the new version
once a server has started on it. What the file held is kept beside it first
(`.<name>.before-recovery`): it may carry a hand edit made between the crash and the start.
A torn journal (cut while it was written) fails its checksum and is ignored: the file was
not touched yet.

The journal is a long-lived file rewritten in place too (no disk blocks allocated and freed
per save), mode 0600, and locked (flock) while a save or a recovery uses it, so that a
recovery never undoes the save of a live process.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import zlib
from dataclasses import dataclass

from ..fileio import fsync_folder, keep_owner, open_regular, replace_file, reserve

log = logging.getLogger(__name__)

_PENDING, _SETTLED = b"pending", b"settled"  # same length: the mark is rewritten in place
_MAGIC = b" cliproxy-mgmt journal "
_CHUNK = 1 << 16  # compared at once when looking for the first and last changed byte


def journal_path(target: str) -> str:
    folder, name = os.path.split(target)
    return os.path.join(folder, "." + name + ".journal")


def _common_prefix(a: bytes, b: bytes) -> int:
    """How many leading bytes `a` and `b` share (memcmp a chunk at a time, no copies)."""
    n, mb, lo = min(len(a), len(b)), memoryview(b), 0
    while lo < n:
        hi = min(lo + _CHUNK, n)
        if not a.startswith(mb[lo:hi], lo):
            while hi - lo > 1:  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
                mid = (lo + hi) // 2
                if a.startswith(mb[lo:mid], lo):
                    lo = mid
                else:
                    hi = mid
            return lo
        lo = hi
    return n


def _common_suffix(a: bytes, b: bytes, floor: int) -> int:
    """How many trailing bytes `a` and `b` (of one length) share, down to index `floor`."""
    n, mb, hi = len(a), memoryview(b), len(a)
    while hi > floor:
        lo = max(hi - _CHUNK, floor)
        if not a.startswith(mb[lo:hi], lo):
            while hi - lo > 1:  # a[hi:] == b[hi:] and a[lo:] != b[lo:]
                mid = (lo + hi) // 2
                if a.startswith(mb[mid:hi], mid):
                    hi = mid
                else:
                    lo = mid
            return n - hi
        hi = lo
    return n - floor


@dataclass(frozen=True)
class Edit:
    """The bytes that turn `old` into `new`: old[start:old_end] becomes new[start:new_end];
    everything else is the same in both. `tail`: the range runs to the end of both texts
    (their lengths differ), so the file is truncated after it."""

    start: int
    old_end: int
    new_end: int
    tail: bool

    @classmethod
    def between(cls, old: bytes, new: bytes) -> "Edit":
        start = _common_prefix(old, new)
        if len(old) != len(new):
            return cls(start, len(old), len(new), True)
        end = len(old) - _common_suffix(old, new, start)
        return cls(start, end, end, False)


def overwrite(f, new: bytes, old_size: int, edit: Edit) -> bool:
    """Make the open file `f` (unbuffered "r+b"), which holds the old text (`old_size`
    bytes), hold `new`, by writing the range `edit` names; the caller fsyncs. Reserve the
    space first (`fileio.reserve`), so that a full disk fails before this starts.

    A tail over a longer old file is padded with newlines to the old length before the
    truncate, so a crash between the write and the truncate leaves the new text and blank
    lines, never the old file's end. Returns False, and keeps the file's length, when
    someone else appended to the file while it was written (the file then ends with their
    bytes after the new text and the padding; the caller reads it back as an outside edit).
    """
    fd = f.fileno()
    if edit.tail:
        size = max(old_size, len(new))
        rest = memoryview(new[edit.start:] + b"\n" * (size - len(new)))
    else:
        size, rest = old_size, memoryview(new)[edit.start:edit.new_end]
    offset = edit.start
    while rest:
        written = os.pwrite(fd, rest, offset)
        rest, offset = rest[written:], offset + written
    st = os.fstat(fd)
    appended = st.st_size > size
    if edit.tail and not appended:
        f.truncate(len(new))
    # The kernel's mtime moves in clock ticks (milliseconds): two saves of the same size in
    # one tick would leave (inode, size, mtime) as it was, and a reader that checks it (an
    # editor about to save over the file, our own hot reload) would miss the second.
    os.utime(fd, ns=(st.st_atime_ns, time.time_ns()))
    return not appended


def _signature(data) -> bytes:
    return b"%d %08x" % (len(data), zlib.crc32(data))


def _open_journal(path: str, like: os.stat_result | None = None) -> int:
    """The journal's descriptor, read-write: only a regular file, never through a symlink,
    never waiting on a FIFO put in its place (`fileio.open_regular`). With `like` (a stat),
    a missing journal is created, mode 0600, owned like it; else FileNotFoundError."""
    try:
        f, _ = open_regular(path, "r+b", buffering=0)
    except FileNotFoundError:
        if like is None:
            raise
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            keep_owner(fd, like)
            fsync_folder(os.path.dirname(path))  # the journal must outlive a crash
        except BaseException:
            os.close(fd)
            raise
        return fd
    with f:
        return os.dup(f.fileno())


class SaveJournal:
    """The old bytes of a range of `target`, kept beside it while the range is rewritten.

    `SaveJournal(target, like)` opens (or creates, owned like the stat `like`) and locks the
    journal; `keep(old, new, edit)` stores the old range as pending, durably;
    `close(settle=True)` marks it settled (durably) and unlocks. `close(settle=False)` leaves
    it pending, for a file that may be torn: the next start puts the old range back.
    """

    def __init__(self, target: str, like: os.stat_result):
        self._fd = _open_journal(journal_path(target), like)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self._fd)
            raise
        self._kept = False

    def keep(self, old: bytes, new: bytes, edit: Edit) -> None:
        # What follows the header's range is left over from earlier saves: the header says
        # how much is ours, and the file is not truncated (no blocks freed per save).
        was, will = memoryview(old)[edit.start:edit.old_end], memoryview(new)[edit.start:edit.new_end]
        header = b"%s%s%d %d %d %s %s\n" % (_PENDING, _MAGIC, edit.start, len(old), len(new),
                                             _signature(was), _signature(will))
        os.pwritev(self._fd, [header, was], 0)
        os.fdatasync(self._fd)
        self._kept = True

    def close(self, settle: bool = True) -> None:
        try:
            if self._kept and settle:
                os.pwrite(self._fd, _SETTLED, 0)
                os.fdatasync(self._fd)
        finally:
            os.close(self._fd)


@dataclass(frozen=True)
class _Pending:
    start: int
    old_size: int
    new_size: int
    was: bytes  # the old bytes of the range
    will: bytes  # the new range's signature


_HEADER_MAX = 512  # a header is about 150 bytes; anything longer is not one of ours


def _pending(fd: int, limit: int) -> _Pending | None:
    """What a pending journal holds; None when it is torn (the file was not touched yet) or
    names a range of more than `limit` bytes. Reads the header, then only that range."""
    head = os.pread(fd, _HEADER_MAX, 0)
    header, sep, _ = head.partition(b"\n")
    if not sep or not header.startswith(_PENDING + _MAGIC):
        return None
    fields = header[len(_PENDING + _MAGIC):].split(b" ")
    if len(fields) != 7 or not all(field.isdigit() for field in fields[:4] + fields[5:6]):
        return None
    start, old_size, new_size, was_size = (int(field) for field in fields[:4])
    if was_size > limit or start + was_size > old_size:
        return None
    at = len(header) + 1
    chunks = []
    while was_size > 0 and (chunk := os.pread(fd, min(was_size, 1 << 24), at)):
        chunks.append(chunk)
        at, was_size = at + len(chunk), was_size - len(chunk)
    was = b"".join(chunks)
    if _signature(was) != b" ".join(fields[3:5]):
        return None
    return _Pending(start, old_size, new_size, was, b" ".join(fields[5:7]))


def _untouched(now: bytes, pending: _Pending) -> bool:
    return len(now) == pending.old_size and now.startswith(pending.was, pending.start)


def _finished(now: bytes, pending: _Pending) -> bool:
    """`now` is the new text (or the new text and the padding of a rewrite cut off before
    its truncate, see `overwrite`), as far as the journal can tell."""
    size = int(pending.will.split(b" ")[0])
    return (len(now) >= pending.new_size and not now[pending.new_size:].strip(b"\n")
            and _signature(memoryview(now)[pending.start:pending.start + size]) == pending.will)


def recover(target: str) -> bool:
    """Put back the old bytes of a rewrite that a crash cut off half-way (see the module
    docstring). True when `target` was restored. A file that holds the old or the whole new
    text is left as it is: a reader may already have seen it."""
    try:
        fd = _open_journal(journal_path(target))
    except FileNotFoundError:
        return False
    restored = False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a live save of another process finishes first
        if os.pread(fd, len(_PENDING + _MAGIC), 0) != _PENDING + _MAGIC:
            return False  # settled, or not ours: never written to
        f, st = open_regular(target, "r+b", follow_symlinks=True, buffering=0)
        with f:
            # A torn file is at least as long as the old text (the truncate comes last), so
            # a range longer than the file now is no torn save of it.
            pending = _pending(fd, st.st_size)
            now = f.read() if pending is not None else b""
            if pending is not None and not _untouched(now, pending) and not _finished(now, pending):
                # What the file holds now is kept: it may carry a hand edit made after the crash.
                folder, name = os.path.split(target)
                kept = os.path.join(folder, "." + name + ".before-recovery")
                replace_file(kept, now, mode=0o600, prefix="." + name + ".", suffix=".tmp")
                reserve(f.fileno(), pending.old_size)
                os.pwrite(f.fileno(), pending.was, pending.start)  # the rest is the old text's
                f.truncate(pending.old_size)
                os.fsync(f.fileno())
                restored = True
        os.pwrite(fd, _SETTLED, 0)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    if restored:
        log.warning("%s: a save was cut off half-way (crash or kill); the file was put back as it "
                    "was before it (what it held is kept in %s)", target, kept)
    return restored
