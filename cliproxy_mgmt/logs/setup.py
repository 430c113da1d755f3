"""The console log of `cliproxy-mgmt serve` (and of `waitress-serve wsgi:app`): stderr, secrets masked."""

from __future__ import annotations

import logging
import os
import sys

from .redact import RedactingFormatter

CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_LEVEL_ENV = "CLIPROXY_MGMT_LOG_LEVEL"
LEVELS = ("debug", "info", "warning", "error")


def env_level() -> str:
    """$CLIPROXY_MGMT_LOG_LEVEL when it names a level, else "info"."""
    level = (os.environ.get(LOG_LEVEL_ENV) or "info").strip().lower()
    return level if level in LEVELS else "info"


class _ConsoleHandler(logging.StreamHandler):
    """The handler `configure_console` installs (found again by its type, never twice)."""


def configure_console(level: str | int | None = None) -> None:
    """Log to stderr at `level` (default: `env_level()`) and above, through the redacting formatter."""
    level = level or env_level()
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _ConsoleHandler)), None)
    if handler is None:
        handler = _ConsoleHandler(sys.stderr)
        handler.setFormatter(RedactingFormatter(CONSOLE_FORMAT))
        root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
