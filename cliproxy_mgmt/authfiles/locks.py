"""One lock per auth file name, for read-modify-writes of one server process.

A write of one file must not wait for another file's: with a shared database, a file's row
may be locked elsewhere for seconds (`PostgresAuths.exclusive` waits up to the lock
timeout), and a single lock for all files made every other write wait behind it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager


class NameLocks:
    """Re-entrant locks by name, made on first use and dropped once nobody holds or waits
    for them (the names of deleted files do not pile up)."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks: dict[str, list] = {}  # name -> [RLock, threads holding or waiting]

    @contextmanager
    def hold(self, name: str):
        with self._guard:
            entry = self._locks.setdefault(name, [threading.RLock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if not entry[1]:
                    del self._locks[name]
