"""Reading the main log from its end, so that an answer costs what it returns.

GET /logs?after=<t> and ?limit=<n> want the newest lines; reading every rotated file from
the start to find them costs the whole history. Here the files are read backwards in
blocks, newest file first, and reading stops at the first line older than `after` (less a
little slack for lines written out of order) or once `limit` lines are found.

`line-count` of an `after` read is, as upstream's, the number of lines in all the files: it
comes from per-file counts kept between requests (a rotated file never changes; main.log
only grows, so only its new bytes are counted).
"""

from __future__ import annotations

import os
import threading

from ..fileio import NotRegularFile, open_regular
from .reader import gzip_data, line_time, main_log_files, open_log

BLOCK = 64 * 1024
# Lines up to this many seconds older than `after` are still looked at (and skipped), in
# case lines were written slightly out of order.
SLACK = 10


def _strip(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def reverse_lines(path: str):
    """The lines of a file, last first (without their line ends)."""
    f = open_log(path)
    if f is None:
        return
    if path.endswith(".gz"):
        with f:
            lines = gzip_data(path, f).split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        for line in reversed(lines):
            yield _strip(line)
        return
    with f:
        end = f.seek(0, os.SEEK_END)
        if end == 0:
            return
        f.seek(end - 1)
        if f.read(1) == b"\n":
            end -= 1  # the last line's end, not an empty line after it
        pos, rest = end, b""
        while pos > 0:
            size = min(BLOCK, pos)
            pos -= size
            f.seek(pos)
            parts = (f.read(size) + rest).split(b"\n")
            rest = parts[0]
            for line in reversed(parts[1:]):
                yield _strip(line)
        yield _strip(rest)


def _decoded(lines_newest_first: list) -> list[str]:
    return [line.decode("utf-8", "replace") for line in reversed(lines_newest_first)]


def tail(folder: str, limit: int) -> dict:
    """The last `limit` lines over all the files (newest file last); `line-count` is how many."""
    kept: list = []
    latest = 0
    for path in reversed(main_log_files(folder)):
        for line in reverse_lines(path):
            if not latest:
                latest = line_time(line)
            kept.append(line)
            if len(kept) >= limit:
                break
        if len(kept) >= limit:
            break
    lines = _decoded(kept)
    return {"lines": lines, "line-count": len(lines), "latest-timestamp": latest}


def newer_than(folder: str, after: int, limit: int | None) -> dict:
    """The lines newer than `after` (> 0), the last `limit` of them, read from the end.

    As in a full scan, a line without a timestamp follows the timestamped line before it.
    """
    files = main_log_files(folder)
    kept: list = []      # newest first
    pending: list = []   # lines without a timestamp, waiting for the line they continue
    latest = 0
    done = False
    for path in reversed(files):
        for line in reverse_lines(path):
            stamp = line_time(line)
            if not stamp:
                pending.append(line)
                continue
            latest = max(latest, stamp)
            if stamp > after:
                kept.extend(pending)
                kept.append(line)
            elif stamp <= after - SLACK:
                done = True
            pending = []
            if done or (limit is not None and len(kept) >= limit):
                done = True
                break
        if done:
            break
    if limit is not None:
        kept = kept[:limit]  # newest first: the last `limit` lines
    return {"lines": _decoded(kept), "line-count": line_counts.total(files),
            "latest-timestamp": max(latest, after)}


NO_LINES = (0, 0, 0, 0, 0, b"")


class LineCounts:
    """Lines per log file, kept between requests and updated by what was appended."""

    def __init__(self):
        self._lock = threading.Lock()
        self._known: dict = {}  # path -> (dev, ino, size, mtime_ns, newlines, last byte)

    def total(self, paths: list[str]) -> int:
        with self._lock:
            known, self._known = self._known, {}
            total = 0
            for path in paths:
                entry = self._count(path, known.get(path))
                self._known[path] = entry
                total += entry[4] + (1 if entry[2] and entry[5] != b"\n" else 0)
            return total

    @staticmethod
    def _count(path: str, entry):
        try:
            f, st = open_regular(path)
        except (FileNotFoundError, NotRegularFile):
            return NO_LINES  # gone, or not a log file any more
        with f:
            return LineCounts._count_open(path, f, st, entry)

    @staticmethod
    def _count_open(path: str, f, st, entry):
        ident = (st.st_dev, st.st_ino)
        if path.endswith(".gz"):
            if entry and entry[:4] == (*ident, st.st_size, st.st_mtime_ns):
                return entry
            data = gzip_data(path, f)
            return (*ident, st.st_size, st.st_mtime_ns, data.count(b"\n"), data[-1:])
        start, newlines, last = 0, 0, b""
        if entry and entry[:2] == ident and entry[2] <= st.st_size:
            if entry[2:4] == (st.st_size, st.st_mtime_ns):
                return entry
            start, newlines, last = entry[2], entry[4], entry[5]  # only the appended bytes
        f.seek(start)
        size = start
        while block := f.read(1 << 20):
            newlines += block.count(b"\n")
            last = block[-1:]
            size += len(block)
        return (*ident, size, st.st_mtime_ns, newlines, last)


line_counts = LineCounts()
