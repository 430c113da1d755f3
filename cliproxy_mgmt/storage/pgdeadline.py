"""A deadline on every answer the PostgreSQL server owes us.

A database that stops answering without closing its connections (a frozen host or VM, a
process stopped by a signal, a stalled network path) is not noticed by TCP keepalives,
since its kernel still acknowledges, nor by server-side timeouts. A worker waiting for its
answer would wait for ever, and once every worker waits, the whole server stops answering.

`BoundedConnection` (the connection class of the pool and the listener) hands each wait for
the server to one `Watchdog` thread. A wait still unanswered after REPLY_TIMEOUT seconds gets
its socket shut down: libpq sees the connection end, and the call raises `NoAnswer`, an
`OperationalError` like any lost connection (503 for a request, a reconnect for the
listener). A COMMIT cut off this way may still be applied when the server wakes up: the
other instances' and our own listener then see the change as usual.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from contextlib import contextmanager

import psycopg

# Seconds an answer may take. Longer than anything a working database makes us wait for
# (a row lock held elsewhere ends after postgres.LOCK_TIMEOUT_MS, 5 s).
REPLY_TIMEOUT = 15.0


class NoAnswer(psycopg.OperationalError):
    """The server did not answer within REPLY_TIMEOUT seconds: the connection was cut."""


class _Wait:
    __slots__ = ("fd", "cut")

    def __init__(self, fd: int):
        self.fd, self.cut = fd, False


class Watchdog:
    """One thread that cuts the connections whose waits outlast their deadline."""

    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list = []  # (deadline, sequence, wait)
        self._open: set = set()  # the waits not yet ended
        self._order = itertools.count()
        self._thread = None

    @contextmanager
    def bound(self, fd: int, seconds: float):
        """`with watchdog.bound(fd, s) as wait:` a wait on socket `fd`; `wait.cut` tells,
        afterwards, whether it was cut off."""
        wait = _Wait(fd)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pgstore-deadline", daemon=True)
                self._thread.start()
            self._open.add(wait)
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), wait))
            if self._heap[0][2] is wait:
                self._cond.notify()
        try:
            yield wait
        finally:
            with self._cond:
                self._open.discard(wait)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2] not in self._open:
                    heapq.heappop(self._heap)  # ended in time
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, wait = self._heap[0]
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                # Still waiting, so the socket is still that connection's (it is cut under
                # the lock that its end of the wait takes).
                wait.cut = True
                _shut_down(wait.fd)


def _shut_down(fd: int) -> None:
    """Shut the connection on `fd` down in both directions, leaving the fd to its owner."""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: the wait ends by itself


WATCHDOG = Watchdog()


class BoundedConnection(psycopg.Connection):
    """A psycopg connection whose every wait for the server ends after REPLY_TIMEOUT
    (`NoAnswer`)."""

    def wait(self, gen, *args, **kwargs):
        with WATCHDOG.bound(self.pgconn.socket, REPLY_TIMEOUT) as wait:
            try:
                return super().wait(gen, *args, **kwargs)
            except psycopg.OperationalError as exc:
                if wait.cut:
                    raise NoAnswer(f"database did not answer within {REPLY_TIMEOUT:g} s") from exc
                raise
