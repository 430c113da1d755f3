"""OAuth sessions: state -> (provider, status, expiry), as upstream keeps them.

A session is pending while its status is ""; a non-empty status is the error message
`GET /get-auth-status` reports. Sessions live 10 minutes; recording an error re-arms that.
Completing a session deletes it, so a finished login reads as `ok`. Expired sessions are
purged on every operation.

`SessionStore` is the interface a shared backend implements for several server processes
(the PostgreSQL storage backend has one); this one keeps the map in the memory of the one
process and hands callbacks over as files in auth-dir.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

from .callbacks import Callback, take_callback, write_callback

SESSION_TTL = 600.0  # seconds


@dataclass(frozen=True)
class Session:
    provider: str
    status: str = ""
    expires: float = 0.0

    @property
    def pending(self) -> bool:
        return self.status == ""


class SessionStore:
    """Thread-safe in-memory sessions; `clock` is monotonic seconds (tests can move time)."""

    def __init__(self, ttl: float = SESSION_TTL, clock=time.monotonic):
        self.ttl = ttl
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
        """Fail a session (it stays, so its status can be read, for another TTL)."""
        with self._lock:
            now = self.clock()
            self._purge(now)
            session = self._sessions.get(state)
            if session is not None:
                self._sessions[state] = replace(session, status=message or "Authentication failed",
                                                expires=now + self.ttl)

    def complete(self, state: str) -> None:
        with self._lock:
            self._purge(self.clock())
            self._sessions.pop(state, None)

    def hand_over(self, folder: str | None, provider: str, callback: Callback) -> None:
        """Give the waiting login its callback (raises OSError or ValueError)."""
        if folder is None:
            raise OSError("auth-dir is not configured")
        write_callback(folder, provider, callback)

    def take_callback(self, folder: str | None, provider: str, state: str) -> Callback | None:
        """The callback handed over for `state`, once (None while there is none)."""
        return take_callback(folder, provider, state) if folder else None

    def complete_provider(self, provider: str) -> None:
        """Delete every session of `provider` (their background flows stop at their next look)."""
        with self._lock:
            self._purge(self.clock())
            for state in [s for s, session in self._sessions.items() if session.provider == provider]:
                del self._sessions[state]
