"""OAuth sessions: state -> (provider, status, completed, expiry), as upstream keeps them.

A session is pending while its status is "" and it is not completed; a non-empty status is
the error message `GET /get-auth-status` reports. Sessions live 30 minutes (long enough for
a device-code login); recording an error re-arms that. A completed session is kept for one
more minute, flagged, so a client polling its state reads `ok` rather than "unknown". A
cancelled session is deleted: its background flow sees it is no longer pending and stops
without saving. Expired sessions are purged on every operation.

`SessionStore` is the interface a shared backend implements for several server processes
(the PostgreSQL storage backend has one); this one keeps the map in the memory of the one
process and hands callbacks over as files in auth-dir.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

from .callbacks import Callback, take_callback, write_callback

SESSION_TTL = 1800.0     # seconds a pending or failed session lives
COMPLETED_TTL = 60.0     # seconds a completed session is still reported as ok


@dataclass(frozen=True)
class Session:
    provider: str
    status: str = ""
    expires: float = 0.0
    completed: bool = False

    @property
    def pending(self) -> bool:
        return self.status == "" and not self.completed


class SessionStore:
    """Thread-safe in-memory sessions; `clock` is monotonic seconds (tests can move time)."""

    def __init__(self, ttl: float = SESSION_TTL, clock=time.monotonic, completed_ttl: float = COMPLETED_TTL):
        self.ttl = ttl
        self.completed_ttl = min(completed_ttl, ttl)
        self.clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def _purge(self, now: float) -> None:
        for state in [s for s, session in self._sessions.items() if session.expires <= now]:
            del self._sessions[state]

    def register(self, state: str, provider: str) -> None:
        with self._lock:
            now = self.clock()
            self._purge(now)
            self._sessions[state] = Session(provider, "", now + self.ttl)

    def get(self, state: str) -> Session | None:
        with self._lock:
            self._purge(self.clock())
            return self._sessions.get(state)

    def is_pending(self, state: str, provider: str | None = None) -> bool:
        session = self.get(state)
        return bool(session and session.pending and (provider is None or session.provider == provider))

    def set_error(self, state: str, message: str) -> None:
        """Fail a session (it stays, so its status can be read, for another TTL); a completed
        session keeps reading ok."""
        with self._lock:
            now = self.clock()
            self._purge(now)
            session = self._sessions.get(state)
            if session is not None and not session.completed:
                self._sessions[state] = replace(session, status=message or "Authentication failed",
                                                expires=now + self.ttl)

    def _finish(self, state: str, now: float) -> None:
        self._sessions[state] = replace(self._sessions[state], status="", completed=True,
                                        expires=now + self.completed_ttl)

    def complete(self, state: str) -> None:
        with self._lock:
            now = self.clock()
            self._purge(now)
            session = self._sessions.get(state)
            if session is not None and not session.completed:
                self._finish(state, now)

    def hand_over(self, folder: str | None, provider: str, callback: Callback) -> None:
        """Give the waiting login its callback (raises OSError or ValueError)."""
        if folder is None:
            raise OSError("auth-dir is not configured")
        write_callback(folder, provider, callback)

    def take_callback(self, folder: str | None, provider: str, state: str) -> Callback | None:
        """The callback handed over for `state`, once (None while there is none)."""
        return take_callback(folder, provider, state) if folder else None

    def complete_provider(self, provider: str) -> None:
        """Complete every session of `provider` (their background flows stop at their next look)."""
        with self._lock:
            now = self.clock()
            self._purge(now)
            for state in [s for s, session in self._sessions.items()
                          if session.provider == provider and not session.completed]:
                self._finish(state, now)

    def cancel(self, state: str) -> bool:
        """Delete a pending session; False when it is unknown, completed or failed."""
        with self._lock:
            self._purge(self.clock())
            session = self._sessions.get(state)
            if session is None or not session.pending:
                return False
            del self._sessions[state]
            return True
