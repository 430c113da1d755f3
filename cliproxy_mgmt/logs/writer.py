"""The server's own log in the log folder (`logging-to-file`), and keeping that folder small.

While `logging-to-file` is true, the root logger writes to `<log dir>/main.log` in
upstream's line format; the console handlers are muted (unless main.log cannot be written:
then the console keeps the log and one error line says why). main.log is rotated at 10 MB into
`main-<UTC time>.log` (lumberjack's names, which GET /logs reads). The folder is kept within
`logs-max-total-size-mb` (oldest files first, never main.log) and to the newest
`error-logs-max-files` request error logs; this runs at start-up, after every rotation, after
every config change and at most once a minute while requests arrive. No thread is started.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import tempfile
import threading
import time
import weakref

from .paths import MAIN_LOG, is_error_log, log_dir, regular_files
from .redact import RedactingFormatter

ROTATE_BYTES = 10 * 1024 * 1024  # lumberjack's size in upstream
MAINTENANCE_INTERVAL = 60.0
log = logging.getLogger(__name__)
_LEVELS = {"DEBUG": "debug", "INFO": "info ", "WARNING": "warn ", "ERROR": "error",
           "CRITICAL": "error"}


class UpstreamFormatter(RedactingFormatter):
    """`[YYYY-MM-DD HH:MM:SS] [--------] [info ] [file.py:12] message`, secrets masked.

    The request-id column is always dashes: this server serves no AI API path.
    """

    def render(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        level = _LEVELS.get(record.levelname, record.levelname.lower()[:5].ljust(5))
        text = (f"[{stamp}] [--------] [{level}] [{record.filename}:{record.lineno}] "
                f"{record.getMessage()}")
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class MainLogHandler(logging.handlers.RotatingFileHandler):
    """main.log, rotated by size into lumberjack's `main-<time>.log` names (no backup limit)."""

    def __init__(self, folder: str, on_rotate=None, on_failure=None):
        self.folder = folder
        self.on_rotate = on_rotate
        self.on_failure = on_failure
        self.failed = False
        super().__init__(os.path.join(folder, MAIN_LOG), mode="a", maxBytes=ROTATE_BYTES,
                         encoding="utf-8", delay=True)

    def check_writable(self) -> None:
        """Raise the OSError that writing main.log would meet (read-only folder, main.log a
        folder), before the console is muted: a log that cannot be written must not leave
        the server silent. An existing main.log is opened now; a missing one is still
        created by the first line (the folder is probed with a nameless temp file)."""
        if os.path.lexists(self.baseFilename):
            self.stream = self._open()
        else:
            with tempfile.TemporaryFile(dir=self.folder):
                pass

    def handleError(self, record):
        """A write or rotation that fails (disk full, folder gone read-only) goes to
        `on_failure` once, instead of a traceback on stderr for every line."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError) or self.on_failure is None:
            super().handleError(record)
        elif not self.failed:
            self.failed = True
            self.on_failure(self, record, exc)

    def doRollover(self):
        if self.stream:
            self.stream.close()
            self.stream = None
        if os.path.exists(self.baseFilename):
            os.replace(self.baseFilename, self._backup_name())
        self.stream = self._open()
        if self.on_rotate:
            self.on_rotate()


    def _backup_name(self) -> str:
        """`main-<UTC time with ms>.log`, a millisecond later while that name is taken."""
        ms = time.time_ns() // 1_000_000
        while True:
            stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}"
            path = os.path.join(self.folder, f"main-{stamp}.log")
            if not os.path.exists(path):
                return path
            ms += 1


class _MuteConsole(logging.Filter):
    """Drops every record: attached to the console handlers while the log goes to a file."""

    def filter(self, record):
        return False


def _console_handlers() -> list[logging.Handler]:
    consoles = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    return [h for h in logging.getLogger().handlers
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
            and getattr(h, "stream", None) in consoles]


def _detach(handler: logging.Handler, mute: logging.Filter) -> None:
    root = logging.getLogger()
    root.removeHandler(handler)
    handler.close()
    for h in root.handlers:
        h.removeFilter(mute)


def enforce_limits(folder: str, max_total_mb: int, max_error_logs: int) -> None:
    """Delete the oldest log files beyond the two limits (0 disables a limit)."""
    try:
        files = regular_files(folder)
    except OSError:
        return  # no folder yet: nothing to keep small
    if max_error_logs > 0:
        errors = sorted((e for e in files if is_error_log(e.name)),
                        key=lambda e: e.stat().st_mtime, reverse=True)
        for entry in errors[max_error_logs:]:
            _remove(entry.path)
        files = [e for e in files if os.path.exists(e.path)]
    if max_total_mb > 0:
        logs = [e for e in files if e.name.endswith((".log", ".log.gz"))]
        total = sum(e.stat().st_size for e in logs)
        for entry in sorted(logs, key=lambda e: e.stat().st_mtime):
            if total <= max_total_mb * 1024 * 1024:
                break
            if entry.name != MAIN_LOG and _remove(entry.path):
                total -= entry.stat().st_size


def _remove(path: str) -> bool:
    """Delete a log file; False (and a warning) when it stays: the folder is only kept small,
    so a file that cannot go (read-only disk, immutable file) must not fail anything else."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("log folder upkeep: cannot remove %s: %s", path, exc.strerror or exc)
        return False
    return True


def _int_setting(config, key: str, default: int) -> int:
    value = config.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


class FileLogging:
    """One app's file logging and log-folder upkeep, following its config."""

    def __init__(self, config):
        self.config = config
        self._lock = threading.Lock()
        self._handler: MainLogHandler | None = None
        self._mute = _MuteConsole()
        self._next_upkeep = 0.0
        self._finalizer = None

    def follow(self, config=None) -> None:
        """Apply the config's log settings (at start-up and after every config change)."""
        with self._lock:
            self._apply()
            self._next_upkeep = 0.0

    def tick(self) -> None:
        """Keep the folder within its limits, at most every MAINTENANCE_INTERVAL seconds
        (the proxy writes request logs there too, so growth is not only ours)."""
        if time.monotonic() < self._next_upkeep:
            return
        with self._lock:
            self._next_upkeep = time.monotonic() + MAINTENANCE_INTERVAL
            self.upkeep()

    def upkeep(self) -> None:
        """Apply the two limits now. Never raises: a failure is housekeeping's, logged, and must
        not change the answer to the request (or the start-up, or the log line) it follows."""
        max_files = _int_setting(self.config, "error-logs-max-files", 10)
        try:
            enforce_limits(log_dir(self.config), _int_setting(self.config, "logs-max-total-size-mb", 0),
                           10 if max_files < 0 else max_files)
        except OSError as exc:
            log.warning("log folder upkeep failed: %s", exc)

    def _apply(self) -> None:
        wanted = log_dir(self.config) if self.config.get("logging-to-file") is True else None
        current = self._handler.folder if self._handler and not self._handler.failed else None
        if wanted == current:
            return
        self.close()
        if wanted is None:
            return
        try:
            os.makedirs(wanted, exist_ok=True)
        except OSError as exc:
            log.error("logging-to-file: cannot create %s: %s", wanted, exc)
            return
        handler = MainLogHandler(wanted, on_rotate=self.upkeep, on_failure=self._file_failed)
        try:
            handler.check_writable()
        except OSError as exc:
            handler.close()
            log.error("logging-to-file: cannot write %s: %s; logging to the console",
                      handler.baseFilename, exc.strerror or exc)
            return
        handler.setFormatter(UpstreamFormatter())
        for console in _console_handlers():
            console.addFilter(self._mute)
        logging.getLogger().addHandler(handler)
        self._handler = handler
        # Detached when the app goes away without close() (apps made by tests).
        self._finalizer = weakref.finalize(self, _detach, handler, self._mute)

    def _file_failed(self, handler: MainLogHandler, record: logging.LogRecord, exc: OSError) -> None:
        """main.log stopped taking lines: back to the console, with one line saying why.

        Runs inside the handler's emit (its lock held, maybe under self._lock), so it only
        flips filters; the handler is detached by the next config change, which tries the
        file again."""
        handler.addFilter(self._mute)
        root = logging.getLogger()
        handlers = list(root.handlers)
        before = handlers.index(handler) if handler in handlers else len(handlers)
        for h in handlers:
            if h is not handler:
                h.removeFilter(self._mute)
        consoles = _console_handlers()
        for h in handlers[:before]:
            if h in consoles:
                h.handle(record)  # it was dropped there while the console was muted
        try:
            if handler.stream is not None:
                handler.stream.close()  # a full disk fails the flush here too
        except OSError:
            pass
        handler.stream = None
        log.error("logging-to-file: cannot write %s: %s; logging to the console",
                  handler.baseFilename, exc.strerror or exc)

    def close(self) -> None:
        """Stop writing to the file (the console handlers speak again)."""
        if self._finalizer is not None:
            self._finalizer()
        self._handler = self._finalizer = None
