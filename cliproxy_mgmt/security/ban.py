"""The failure ban: 5 wrong keys in a row from one non-local address ban it for 30 minutes."""

from __future__ import annotations

import threading
import time

from .. import audit

MAX_FAILURES = 5
BAN_SECONDS = 30 * 60
IDLE_SECONDS = 2 * 60 * 60   # forget an address that has been quiet this long
MAX_ENTRIES = 100_000        # memory bound: beyond this the idle entries are purged early


def go_duration(seconds: float) -> str:
    """Format like Go's time.Duration rounded to seconds: 29m59s, 45s, 1h0m0s."""
    total = max(int(round(seconds)), 0)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


class BanList:
    """Failure counters and bans by client address, in memory."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, list] = {}  # address -> [failures, banned_until, last_seen]
        self._next_purge = clock() + IDLE_SECONDS

    def remaining(self, address: str) -> float:
        """Seconds left on the address's ban, or 0."""
        entry = self._entries.get(address)
        if not entry or not entry[1]:
            return 0.0
        left = entry[1] - self._clock()
        if left > 0:
            return left
        with self._lock:
            entry[0], entry[1] = 0, 0.0
        return 0.0

    def failure(self, address: str) -> None:
        now = self._clock()
        with self._lock:
            entry = self._entries.setdefault(address, [0, 0.0, now])
            entry[0] += 1
            entry[2] = now
            if entry[0] >= MAX_FAILURES:
                entry[0], entry[1] = 0, now + BAN_SECONDS
                audit.banned(address, MAX_FAILURES, BAN_SECONDS)
            if now >= self._next_purge or len(self._entries) > MAX_ENTRIES:
                self._purge(now)

    def success(self, address: str) -> None:
        if address in self._entries:
            with self._lock:
                self._entries.pop(address, None)

    def _purge(self, now: float) -> None:
        self._next_purge = now + IDLE_SECONDS
        for address, (_, banned_until, last_seen) in list(self._entries.items()):
            if banned_until <= now and now - last_seen > IDLE_SECONDS:
                del self._entries[address]
