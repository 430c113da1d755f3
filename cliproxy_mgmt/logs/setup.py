"""The console log of `cliproxy-mgmt serve` (and of `waitress-serve wsgi:app`): stderr, secrets masked."""

from __future__ import annotations

import logging
import sys

from .redact import RedactingFormatter

CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _ConsoleHandler(logging.StreamHandler):
    """The handler `configure_console` installs (found again by its type, never twice)."""


def configure_console(level: str | int = "info") -> None:
    """Log to stderr at `level` and above, through the redacting formatter."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _ConsoleHandler)), None)
    if handler is None:
        handler = _ConsoleHandler(sys.stderr)
        handler.setFormatter(RedactingFormatter(CONSOLE_FORMAT))
        root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
