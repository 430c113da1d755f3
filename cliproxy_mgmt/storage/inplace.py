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
`pending`, with the sizes and checksums (crc32) of the whole old and new texts; once the new
bytes are on disk the mark becomes `settled`. If the process or the machine dies in between,
`recover` (run when the server starts) finds the pending journal. A file that provably is
the old text with part of the range rewritten (put the old range back, and the checksum is
the old text's) gets its old bytes back: the file is the old or the new version once a
server has started on it. A file changed since the crash (by hand, a backup copied over it)
is left alone. A torn journal (cut while it was written) fails its checksum and is ignored:
the file was not touched yet. The checksums cost only the bytes from the change on
(`Checksums` keeps one every 64 KiB).

The journal is a long-lived file rewritten in place too (no disk blocks allocated and freed
per save), mode 0600, and locked (flock) while a save or a recovery uses it, so that a
recovery never undoes the save of a live process (a lock held elsewhere for 5 s is an error).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
import zlib
from dataclasses import dataclass

from ..fileio import fsync_folder, keep_owner, open_regular, reserve

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

    def reversed(self) -> "Edit":
        """The edit that turns `new` back into `old`."""
        return Edit(self.start, self.new_end, self.old_end, self.tail)


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


_CRC_STEP = 1 << 16  # a checksum is kept at every multiple of this many bytes


class Checksums:
    """The crc32 of a text (`total`), and of each of its prefixes that ends at a multiple of
    _CRC_STEP: the checksum of the text after a change is then computed from the change on,
    not over the whole text."""

    __slots__ = ("points", "total")

    def __init__(self, points: list, total: int):
        self.points, self.total = points, total

    @classmethod
    def of(cls, data: bytes, points=(0,)) -> "Checksums":
        """Those of `data`; `points`: those it is known to share with another text."""
        points, view = list(points), memoryview(data)
        at = (len(points) - 1) * _CRC_STEP
        while at + _CRC_STEP <= len(data):
            points.append(zlib.crc32(view[at:at + _CRC_STEP], points[-1]))
            at += _CRC_STEP
        return cls(points, zlib.crc32(view[at:], points[-1]))

    def after(self, start: int, new: bytes) -> "Checksums":
        """Those of `new`, which has this text's first `start` bytes."""
        return Checksums.of(new, self.points[:start // _CRC_STEP + 1])


def _signature(data) -> bytes:
    return b"%d %08x" % (len(data), zlib.crc32(data))


_OPEN_TRIES = 50  # x 0.1 s: how long a save or a start waits for a journal locked elsewhere


def _open_journal(path: str, like: os.stat_result | None = None) -> int:
    """The journal's descriptor, read-write and locked (flock): only a regular file with one
    link, never through a symlink, never waiting on a FIFO put in its place
    (`fileio.open_regular`), mode 0600. With `like` (a stat), a missing journal is created,
    owned like it; else FileNotFoundError. Errors name the journal."""
    try:
        fd = _named(path, _open_existing, path)
    except FileNotFoundError:
        if like is None:
            raise
        fd = _named(path, _create_journal, path, like)
    try:
        _named(path, _lock_journal, fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _named(path: str, step, *args):
    """`step(*args)`, its OSError naming the journal `path`."""
    try:
        return step(*args)
    except OSError as exc:
        raise OSError(exc.errno, f"save journal {path}: {exc.strerror or exc}") from None


def _open_existing(path: str) -> int:
    f, st = open_regular(path, "r+b", buffering=0)
    with f:
        if st.st_nlink != 1:  # a hard link would have us write into another file
            raise OSError(errno.EMLINK, "has other hard links")
        return os.dup(f.fileno())


def _create_journal(path: str, like: os.stat_result) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        keep_owner(fd, like)
        fsync_folder(os.path.dirname(path))  # the journal must outlive a crash
    except BaseException:
        os.close(fd)
        raise
    return fd


def _lock_journal(fd: int) -> None:
    os.fchmod(fd, 0o600)  # it holds pieces of the config, secrets included
    for _ in range(_OPEN_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(0.1)  # another save (of another process) in progress
    raise OSError(errno.EWOULDBLOCK, "locked by another process")


class SaveJournal:
    """The old bytes of a range of `target`, kept beside it while the range is rewritten.

    `SaveJournal(target, like)` opens (or creates, owned like the stat `like`) and locks the
    journal; `keep(old, new, edit, sums)` stores the old range as pending, durably, with the
    checksums of the whole old and new texts; `close(settle=True)` marks it settled (durably)
    and unlocks. `close(settle=False)` leaves it pending, for a file that may be torn: the
    next start puts the old range back.
    """

    def __init__(self, target: str, like: os.stat_result):
        self._fd = _open_journal(journal_path(target), like)
        self._kept = False

    def keep(self, old: bytes, new: bytes, edit: Edit, old_sums: Checksums, new_sums: Checksums) -> None:
        # What follows the header's range is left over from earlier saves: the header says
        # how much is ours, and the file is not truncated (no blocks freed per save).
        was = memoryview(old)[edit.start:edit.old_end]
        header = b"%s%s%d %d %08x %d %08x %s\n" % (
            _PENDING, _MAGIC, edit.start, len(old), old_sums.total, len(new), new_sums.total,
            _signature(was))
        size = len(header) + len(was)
        reserve(self._fd, size)  # a full disk fails here, not half-way through the range
        if os.pwritev(self._fd, [header, was], 0) != size:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
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
    old_crc: int
    new_size: int
    new_crc: int
    was: bytes  # the old bytes of the range


_HEADER_MAX = 512  # a header is about 120 bytes; anything longer is not one of ours


def _pending(fd: int) -> _Pending | None:
    """What a pending journal holds; None when it is torn (the file was not touched yet) or
    not one of ours. Reads the header, then only the range it names, when the journal is
    long enough to hold it."""
    header, sep, _ = os.pread(fd, _HEADER_MAX, 0).partition(b"\n")
    if not sep or not header.startswith(_PENDING + _MAGIC):
        return None
    fields = header[len(_PENDING + _MAGIC):].split(b" ")
    if len(fields) != 7 or not all(fields[i].isdigit() for i in (0, 1, 3, 5)):
        return None
    try:
        start, old_size, old_crc, new_size, new_crc, was_size = (
            int(fields[0]), int(fields[1]), int(fields[2], 16), int(fields[3]), int(fields[4], 16), int(fields[5]))
    except ValueError:
        return None
    at = len(header) + 1
    if start + was_size > old_size or at + was_size > os.fstat(fd).st_size:
        return None
    was = os.pread(fd, was_size, at)
    if _signature(was) != b" ".join(fields[5:7]):
        return None
    return _Pending(start, old_size, old_crc, new_size, new_crc, was)


def recover(target: str) -> bool:
    """Put back the old text of a rewrite that a crash cut off (module docstring). True
    when `target` was restored. The file is restored only when it provably is the old text
    with part of the range rewritten (its checksum with the old range put back is the old
    text's); a file that holds the old or the whole new text is left as it is (a reader may
    have seen it), and so is one edited since the crash (by hand, a restored backup)."""
    try:
        fd = _open_journal(journal_path(target))
    except FileNotFoundError:
        return False
    restored = edited = False
    try:
        if os.pread(fd, len(_PENDING + _MAGIC), 0) != _PENDING + _MAGIC:
            return False  # settled, or not ours: never written to
        pending = _pending(fd)
        if pending is not None:
            f, _ = open_regular(target, "r+b", follow_symlinks=True, buffering=0)
            with f:
                restored, edited = _restore(f, f.read(), pending)
        os.pwrite(fd, _SETTLED, 0)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    if restored:
        log.warning("%s: a save was cut off half-way (crash or kill); the file was put back as it "
                    "was before it", target)
    elif edited:
        log.warning("%s: a save was cut off by a crash, and the file was changed since; it is "
                    "left as it is", target)
    return restored


def _restore(f, now: bytes, p: _Pending) -> tuple[bool, bool]:
    """(restored, edited since the crash) for the config `f` holding `now`."""
    if len(now) == p.old_size and zlib.crc32(now) == p.old_crc:
        return False, False  # untouched
    if (len(now) >= p.new_size and not now[p.new_size:].strip(b"\n")
            and zlib.crc32(memoryview(now)[:p.new_size]) == p.new_crc):
        if len(now) > p.new_size:
            f.truncate(p.new_size)  # the padding of a rewrite cut off before its truncate
            os.fsync(f.fileno())
        return False, False  # finished
    if p.start > len(now):
        return False, True
    # The new range replaced the old one at `start`; the rest is the old text's (shifted by
    # the difference when the length changed, which is only after the range: a tail).
    tail = p.start + len(p.was) == p.old_size
    rest = b"" if tail else now[p.start + len(p.was):]
    crc = zlib.crc32(rest, zlib.crc32(p.was, zlib.crc32(memoryview(now)[:p.start])))
    if p.start + len(p.was) + len(rest) != p.old_size or crc != p.old_crc:
        return False, True
    os.pwrite(f.fileno(), p.was, p.start)  # within the file's length: no new space needed
    f.truncate(p.old_size)
    os.fsync(f.fileno())
    return True, False
