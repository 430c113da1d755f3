"""Reading the main log for GET /logs."""

from __future__ import annotations

import gzip
import io
import logging
import os
import re
import threading
import time
import zlib
from collections import deque
from datetime import datetime

from ..fileio import NotRegularFile, open_regular
from .paths import regular_files, rotation_order

log = logging.getLogger(__name__)
GZIP_BLOCK = 64 * 1024
_broken_seen: set = set()  # (path, size, mtime) of archives already warned about
_broken_lock = threading.Lock()

_STAMP = re.compile(rb"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})")


def line_time(line: bytes) -> int:
    """Unix seconds of a line starting with `[YYYY-MM-DD HH:MM:SS` (server local time), else 0."""
    m = _STAMP.match(line[1:] if line.startswith(b"[") else line)
    if not m:
        return 0
    try:
        return int(time.mktime(datetime(*map(int, m.groups())).timetuple()))
    except (ValueError, OverflowError):
        return 0


def main_log_files(folder: str) -> list[str]:
    """Paths of main.log and its rotated files, oldest first, main.log last."""
    ranked = [(order, e.path) for e in regular_files(folder)
              if (order := rotation_order(e.name)) is not None]
    return [path for _, path in sorted(ranked, key=lambda r: (-r[0], r[1]))]


def open_log(path: str):
    """A listed log file opened for reading (`open_regular`), or None when it has gone or was
    swapped for something else (a FIFO, a socket) since the folder was listed."""
    try:
        return open_regular(path)[0]
    except (FileNotFoundError, NotRegularFile):
        return None


def gzip_data(path: str, f) -> bytes:
    """The decompressed bytes of the rotated archive open as `f`, up to where it breaks.

    A truncated archive, a `.gz` that is not gzip or corrupt data is logged (once per version
    of the file) and read as far as it goes: one broken archive must not hide the rest of the
    log from GET /logs.
    """
    chunks = []
    try:
        with gzip.GzipFile(fileobj=f, mode="rb") as z:
            while block := z.read1(GZIP_BLOCK):  # read1: what decompressed before a break is kept
                chunks.append(block)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        st = os.fstat(f.fileno())
        key = (path, st.st_size, st.st_mtime_ns)
        with _broken_lock:
            first = key not in _broken_seen
            _broken_seen.add(key)
        if first:
            log.warning("broken log archive %s (read up to the break): %s", path, exc)
    return b"".join(chunks)


def _lines(path: str):
    f = open_log(path)
    if f is None:
        return
    with f:
        stream = io.BytesIO(gzip_data(path, f)) if path.endswith(".gz") else f
        for raw in stream:
            line = raw[:-1] if raw.endswith(b"\n") else raw
            yield line[:-1] if line.endswith(b"\r") else line


def read_logs(folder: str, after: int, limit: int | None) -> dict:
    """The lines of the main log newer than `after` (0: all), the last `limit` of them.

    A line without a timestamp (a continuation such as a traceback) follows the decision
    for the timestamped line before it. Every line scanned counts in `line-count`.
    """
    kept: deque = deque(maxlen=limit)
    count = latest = 0
    previous_kept = False
    for path in main_log_files(folder):
        for line in _lines(path):
            count += 1
            stamp = line_time(line)
            if stamp:
                latest = max(latest, stamp)
                previous_kept = after == 0 or stamp > after
                keep = previous_kept
            else:
                keep = after == 0 or previous_kept
            if keep:
                kept.append(line.decode("utf-8", "replace"))
    return {"lines": list(kept), "line-count": count, "latest-timestamp": max(latest, after)}

