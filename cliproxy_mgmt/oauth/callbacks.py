"""OAuth states and callback files.

A browser callback (`POST /oauth-callback` or `GET /<provider>/callback`) is handed to the
login waiting for it as the file `<auth-dir>/.oauth-<provider>-<state>.oauth`, JSON
`{"code", "state", "error"}`, mode 0600: upstream's hand-over, so a callback survives
whichever thread or process receives it. An in-process event wakes the waiting login at
once instead of at its next 500 ms look.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass

from ..authfiles.store import DIR_MODE, read_regular, write_atomic
from ..safeload import InvalidJSON, load_json

MAX_STATE = 128
_STATE_CHARS = re.compile(r"^[A-Za-z0-9_.-]+$")


def valid_state(state: str) -> bool:
    """Upstream's `ValidateOAuthState`: 1-128 chars of `[A-Za-z0-9._-]`, no `..`."""
    state = state.strip()
    return 0 < len(state) <= MAX_STATE and ".." not in state and bool(_STATE_CHARS.match(state))


@dataclass(frozen=True)
class Callback:
    """What the provider sent back to the redirect URI."""

    code: str = ""
    state: str = ""
    error: str = ""


def callback_path(folder: str, provider: str, state: str) -> str:
    if not valid_state(state):
        raise ValueError("invalid state")
    return os.path.join(folder, f".oauth-{provider}-{state}.oauth")


def write_callback(folder: str, provider: str, callback: Callback) -> None:
    """Write the callback file atomically (raises OSError or ValueError)."""
    path = callback_path(folder, provider, callback.state)
    os.makedirs(folder, mode=DIR_MODE, exist_ok=True)
    body = {"code": callback.code, "state": callback.state, "error": callback.error}
    write_atomic(path, json.dumps(body, separators=(",", ":")).encode())


def take_callback(folder: str, provider: str, state: str) -> Callback | None:
    """Read and delete the callback file, if it is there (OSError: something else is there)."""
    path = callback_path(folder, provider, state)
    try:
        raw = read_regular(path)  # never blocks on a FIFO, never follows a symlink
    except FileNotFoundError:
        return None
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    try:
        data = load_json(raw)
    except InvalidJSON:
        data = {}
    if not isinstance(data, dict):
        data = {}
    text = lambda key: data.get(key) if isinstance(data.get(key), str) else ""  # noqa: E731
    return Callback(code=text("code"), state=text("state"), error=text("error"))


class Wakeups:
    """state -> threading.Event, so a written callback wakes its login at once."""

    def __init__(self):
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}

    def event(self, state: str) -> threading.Event:
        with self._lock:
            return self._events.setdefault(state, threading.Event())

    def wake(self, state: str) -> None:
        with self._lock:
            event = self._events.get(state)
        if event is not None:
            event.set()

    def drop(self, state: str) -> None:
        with self._lock:
            self._events.pop(state, None)
