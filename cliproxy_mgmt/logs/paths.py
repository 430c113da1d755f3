"""Where the log folder is and what its files are."""

from __future__ import annotations

import calendar
import os
import re
import time

from ..authfiles.store import resolve_auth_dir

MAIN_LOG = "main.log"
MAX_INT64 = (1 << 63) - 1

_NUMBERED = re.compile(r"^main\.log\.(\d+)$")
# lumberjack's backups: main-<UTC time>.log, the time as 2006-01-02T15-04-05.000
_STAMPED = re.compile(r"^main-(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2})(?:\.(\d+))?\.log(?:\.gz)?$")


def log_dir(config) -> str:
    """The log folder, resolved as upstream's log writer does.

    `$WRITABLE_PATH/logs` (or `$writable_path`); else `./logs` when it exists and is
    writable; else `<auth-dir>/logs`; else `./logs`.
    """
    writable = (os.environ.get("WRITABLE_PATH") or os.environ.get("writable_path") or "").strip()
    if writable:
        return os.path.abspath(os.path.join(writable, "logs"))
    local = os.path.abspath("logs")
    if os.path.isdir(local) and os.access(local, os.W_OK):
        return local
    auth_dir = resolve_auth_dir(config)
    return os.path.join(auth_dir, "logs") if auth_dir else local


def rotation_order(name: str) -> int | None:
    """Upstream's order of the main log's files (higher is older); None for other files.

    `main.log` is 0, `main.log.<N>` is N, `main-<time>.log[.gz]` is MaxInt64 - its unix time
    (in milliseconds here, so that files rotated within one second keep their order).
    """
    if name == MAIN_LOG:
        return 0
    m = _NUMBERED.match(name)
    if m:
        return int(m.group(1))
    m = _STAMPED.match(name)
    if m:
        try:
            stamp = time.strptime(m.group(1), "%Y-%m-%dT%H-%M-%S")
        except ValueError:
            return None
        millis = int(((m.group(2) or "") + "000")[:3])
        return MAX_INT64 - (calendar.timegm(stamp) * 1000 + millis)
    return None


def is_error_log(name: str) -> bool:
    return name.startswith("error-") and name.endswith(".log")


def regular_files(folder: str) -> list[os.DirEntry]:
    """The regular files directly in `folder` (symlinks and folders are not logs)."""
    with os.scandir(folder) as entries:
        return [e for e in entries if e.is_file(follow_symlinks=False)]

