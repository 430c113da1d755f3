"""A deadline on the silence of the PostgreSQL server while it owes us an answer.

A database that stops answering without closing its connections (a frozen host or VM, a
process stopped by a signal, a stalled network path) is not noticed by TCP keepalives,
since its kernel still acknowledges, nor by server-side timeouts. A worker waiting for its
answer would wait for ever, and once every worker waits, the whole server stops answering.

`BoundedConnection` (the connection class of the pool and the listener) hands each wait for
the server to one `Watchdog` thread. A wait during which the server sends nothing for
REPLY_TIMEOUT seconds gets its socket shut down: libpq sees the connection end, and the
call raises `NoAnswer`, an `OperationalError` like any lost connection (503 for a request, a
reconnect for the listener). Every byte that arrives starts the silence anew, so a large
answer over a slow link is never cut. A COMMIT cut off this way may still be applied when
the server wakes up: the other instances' and our own listener then see the change as usual.
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

# Seconds the server may stay silent while it owes an answer. Longer than any silence of a
# working database (a row lock held elsewhere ends after postgres.LOCK_TIMEOUT_MS, 5 s).
REPLY_TIMEOUT = 15.0


class NoAnswer(psycopg.OperationalError):
    """The server sent nothing for REPLY_TIMEOUT seconds: the connection was cut."""


class _Wait:
    """One wait for the server: its socket (fd and inode) and when it is due."""

    __slots__ = ("fd", "ino", "due", "cut")

    def __init__(self, fd: int, ino: int, due: float):
        self.fd, self.ino, self.due, self.cut = fd, ino, due, False


class Watchdog:
    """One thread that cuts the connections whose waits stay silent past their deadline."""

    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list = []  # (due when pushed, sequence, wait); a wait's `due` may be later
        self._open: set = set()  # the waits not yet ended
        self._order = itertools.count()
        self._thread = None

    @contextmanager
    def bound(self, fd: int, ino: int, seconds: float):
        """`with watchdog.bound(fd, ino, s) as wait:` a wait on socket `fd` (inode `ino`), cut
        after `s` seconds unless `wait.due` is moved on (by a caller that saw the server send
        something); `wait.cut` tells, afterwards, whether it was cut off."""
        wait = _Wait(fd, ino, time.monotonic() + seconds)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pgstore-deadline", daemon=True)
                self._thread.start()
            self._open.add(wait)
            heapq.heappush(self._heap, (wait.due, next(self._order), wait))
            if self._heap[0][2] is wait:
                self._cond.notify()
        try:
            yield wait
        finally:
            with self._cond:
                self._open.discard(wait)
                # Ended waits leave the heap only as the earliest deadline passes: under many
                # short queries, drop them now and then, so it stays the size of the open ones.
                if len(self._heap) > 64 + 4 * len(self._open):
                    self._heap = [entry for entry in self._heap if entry[2] in self._open]
                    heapq.heapify(self._heap)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2] not in self._open:
                    heapq.heappop(self._heap)  # ended in time
                if not self._heap:
                    self._cond.wait()
                    continue
                pushed, _, wait = self._heap[0]
                due = wait.due
                if due > pushed:  # the server spoke since: wait for the later deadline
                    heapq.heapreplace(self._heap, (due, next(self._order), wait))
                    continue
                left = due - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                # Cut under the lock that the end of the wait takes: the socket is still
                # that connection's, unless libpq closed it a moment ago (the inode says).
                wait.cut = True
                _shut_down(wait.fd, wait.ino)


def _shut_down(fd: int, ino: int) -> None:
    """Shut the socket on `fd` down in both directions if it is still the one with inode
    `ino`, leaving the fd to its owner."""
    try:
        dup = os.dup(fd)
    except OSError:
        return  # closed already: the wait ends by itself
    try:
        if os.fstat(dup).st_ino == ino:
            sock = socket.socket(fileno=dup)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.detach()  # (the dup is closed below, once)
    except OSError:
        pass
    finally:
        os.close(dup)


WATCHDOG = Watchdog()


def _heard(gen, wait: _Wait, seconds: float):
    """`gen`, a psycopg wait generator, that moves `wait`'s deadline on each time the socket
    was ready (the server sent something, or took what we send)."""
    try:
        state = next(gen)
        while True:
            ready = yield state
            if ready:
                wait.due = time.monotonic() + seconds
            state = gen.send(ready)
    except StopIteration as done:
        return done.value


class BoundedConnection(psycopg.Connection):
    """A psycopg connection whose waits for the server end after REPLY_TIMEOUT seconds of
    silence (`NoAnswer`)."""

    _socket = (-1, 0)  # (fd, inode) of the connection's socket, looked up once per socket

    def wait(self, gen, *args, **kwargs):
        seconds = REPLY_TIMEOUT
        fd = self.pgconn.socket
        if fd != self._socket[0]:
            self._socket = (fd, os.fstat(fd).st_ino)
        with WATCHDOG.bound(*self._socket, seconds) as wait:
            try:
                return super().wait(_heard(gen, wait, seconds), *args, **kwargs)
            except psycopg.OperationalError as exc:
                if wait.cut:
                    raise NoAnswer(f"database did not answer within {seconds:g} s") from exc
                raise
