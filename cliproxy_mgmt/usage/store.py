"""Usage statistics in an SQLite file: totals forever, per-request details up to a cap.

The backend interface the endpoints use is small (`add`, `counts`, `stream`, `close`), so a
shared backend (PostgreSQL, Redis) can replace this one without touching them.

Retention: the totals (overall, per api and model, per day and hour) count every request
ever recorded or imported. Per-request details are kept up to `max_details` rows; beyond
that the oldest (by request time) are deleted, their counts staying in the totals.
De-duplication of imports compares against the details still kept, so a detail imported
again after it was pruned is counted again.

Memory stays bounded whatever was recorded: snapshots are streamed from the database as
JSON text, never built in memory.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
import threading
import weakref
from typing import Callable, Iterable, Iterator

from .model import Detail
from .timestamps import Stamp

log = logging.getLogger(__name__)

DEFAULT_MAX_DETAILS = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS details (
    id INTEGER PRIMARY KEY,
    fingerprint BLOB NOT NULL UNIQUE,
    api TEXT NOT NULL,
    model TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    tz_offset INTEGER NOT NULL,
    source TEXT NOT NULL,
    auth_index TEXT NOT NULL,
    failed INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    total_tokens INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS details_by_time ON details (ts_ns, id);
CREATE INDEX IF NOT EXISTS details_by_model ON details (api, model, id);
CREATE TABLE IF NOT EXISTS models (
    api TEXT NOT NULL, model TEXT NOT NULL,
    requests INTEGER NOT NULL, tokens INTEGER NOT NULL,
    PRIMARY KEY (api, model));
CREATE TABLE IF NOT EXISTS buckets (
    kind TEXT NOT NULL, key TEXT NOT NULL,
    requests INTEGER NOT NULL, tokens INTEGER NOT NULL,
    PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    success INTEGER NOT NULL, failure INTEGER NOT NULL, tokens INTEGER NOT NULL);
INSERT OR IGNORE INTO totals VALUES (1, 0, 0, 0);
"""

_INSERT_DETAIL = """INSERT OR IGNORE INTO details (fingerprint, api, model, ts_ns, tz_offset, source,
    auth_index, failed, input_tokens, output_tokens, reasoning_tokens, cached_tokens, total_tokens)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
# Token sums saturate at the int64 maximum (Go's counters would wrap; SQLite would turn
# the sum into a float): an overflowing sum is a REAL, which MIN() replaces by the maximum.
_SAT = "MIN({}, 9223372036854775807)"
_ADD_MODEL = f"""INSERT INTO models VALUES (?, ?, 1, ?) ON CONFLICT (api, model)
    DO UPDATE SET requests = requests + 1, tokens = {_SAT.format("tokens + excluded.tokens")}"""
_ADD_BUCKET = f"""INSERT INTO buckets VALUES (?, ?, 1, ?) ON CONFLICT (kind, key)
    DO UPDATE SET requests = requests + 1, tokens = {_SAT.format("tokens + excluded.tokens")}"""
_ADD_TOTAL = ("UPDATE totals SET success = success + ?, failure = failure + ?, "
              f"tokens = {_SAT.format('tokens + ?')}")
INT64_MAX = (1 << 63) - 1


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def _s(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class SqliteUsageStore:
    """Usage statistics in one SQLite file (WAL mode); safe for waitress's threads."""

    def __init__(self, path: str, *, max_details: int = DEFAULT_MAX_DETAILS):
        self.requested_path = path  # where it was asked to live; `path` is where it does
        self.max_details = max_details
        self._lock = threading.Lock()
        self._temporary = False
        try:
            self._conn = self._open(path)
            self.path = path
        except (sqlite3.Error, OSError) as exc:
            # Keep serving (and counting) rather than refuse to start; say loudly that it won't last.
            fd, temp = tempfile.mkstemp(prefix="cliproxy-usage-", suffix=".sqlite3")
            os.close(fd)
            log.error("usage statistics: cannot use %s (%s); keeping them in %s until the "
                      "server stops", path, exc, temp)
            self._conn = self._open(temp)
            self.path = temp
            self._temporary = True
        self._count = self._conn.execute("SELECT count(*) FROM details").fetchone()[0]
        # Closed by close(), or when the store is dropped (apps made by tests).
        self._finalizer = weakref.finalize(self, _release, self._conn, self.path, self._temporary)

    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        conn = _connect(path)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable across a crash of the process
            conn.executescript(_SCHEMA)
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    # -- writing ------------------------------------------------------------------------
    def add(self, details: Iterable[Detail]) -> tuple[int, int]:
        """Add details not already kept; return (added, skipped duplicates)."""
        added = skipped = 0
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for d in details:
                    t = d.tokens
                    cur = conn.execute(_INSERT_DETAIL, (
                        d.fingerprint(), d.api, d.model, d.stamp.ns, d.stamp.offset, d.source,
                        d.auth_index, int(d.failed), t.input, t.output, t.reasoning, t.cached,
                        t.total))
                    if cur.rowcount == 0:
                        skipped += 1
                        continue
                    added += 1
                    tokens = max(t.total, 0)
                    conn.execute(_ADD_MODEL, (d.api, d.model, tokens))
                    conn.execute(_ADD_BUCKET, ("day", d.stamp.day(), tokens))
                    conn.execute(_ADD_BUCKET, ("hour", d.stamp.hour(), tokens))
                    conn.execute(_ADD_TOTAL, (int(not d.failed), int(d.failed), tokens))
                excess = self._count + added - self.max_details
                if excess > 0:
                    conn.execute("DELETE FROM details WHERE id IN (SELECT id FROM details "
                                 "ORDER BY ts_ns, id LIMIT ?)", (excess,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._count = min(self._count + added, self.max_details)
        return added, skipped

    # -- reading ------------------------------------------------------------------------
    def counts(self) -> tuple[int, int]:
        """(total requests, failed requests)."""
        with self._lock:
            success, failure = self._conn.execute("SELECT success, failure FROM totals").fetchone()
        return success + failure, failure

    def stream(self, head: Callable[[int], str], tail: str) -> Iterator[str]:
        """JSON text: `head(failed requests)`, the snapshot object, then `tail`.

        Read from one consistent view of the database, on a connection of its own, so
        writers are never blocked while a large snapshot is sent.
        """
        conn = _connect(self.path)
        try:
            conn.execute("BEGIN")
            success, failure, tokens = conn.execute(
                "SELECT success, failure, tokens FROM totals").fetchone()
            yield head(failure)
            yield (f'{{"total_requests":{success + failure},"success_count":{success},'
                   f'"failure_count":{failure},"total_tokens":{tokens},"apis":{{')
            yield from self._apis(conn)
            for name, kind, column in (("requests_by_day", "day", "requests"),
                                       ("requests_by_hour", "hour", "requests"),
                                       ("tokens_by_day", "day", "tokens"),
                                       ("tokens_by_hour", "hour", "tokens")):
                rows = conn.execute(f"SELECT key, {column} FROM buckets WHERE kind = ? "
                                    "ORDER BY key", (kind,))
                yield f'}},"{name}":{{' + ",".join(f"{_s(k)}:{n}" for k, n in rows)
            yield "}}" + tail
        finally:
            conn.close()

    @staticmethod
    def _apis(conn: sqlite3.Connection) -> Iterator[str]:
        models: dict[str, list] = {}
        for api, model, requests, tokens in conn.execute(
                "SELECT api, model, requests, tokens FROM models ORDER BY api, model"):
            models.setdefault(api, []).append((model, requests, tokens))
        for i, (api, entries) in enumerate(models.items()):
            api_tokens = min(sum(e[2] for e in entries), INT64_MAX)
            yield (("," if i else "") + f'{_s(api)}:{{"total_requests":{sum(e[1] for e in entries)},'
                   f'"total_tokens":{api_tokens},"models":{{')
            for j, (model, requests, tokens) in enumerate(entries):
                yield (("," if j else "") + f'{_s(model)}:{{"total_requests":{requests},'
                       f'"total_tokens":{tokens},"details":[')
                rows = conn.execute(
                    "SELECT ts_ns, tz_offset, source, auth_index, failed, input_tokens, "
                    "output_tokens, reasoning_tokens, cached_tokens, total_tokens FROM details "
                    "WHERE api = ? AND model = ? ORDER BY id", (api, model))
                for k, (ns, offset, source, index, failed, inp, out, rsn, cached, total) in enumerate(rows):
                    yield (("," if k else "") + f'{{"timestamp":"{Stamp(ns, offset).text()}",'
                           f'"source":{_s(source)},"auth_index":{_s(index)},"tokens":{{'
                           f'"input_tokens":{inp},"output_tokens":{out},"reasoning_tokens":{rsn},'
                           f'"cached_tokens":{cached},"total_tokens":{total}}},'
                           f'"failed":{"true" if failed else "false"}}}')
                yield "]}"
            yield "}}"

    def close(self) -> None:
        with self._lock:
            self._finalizer()


def _release(conn: sqlite3.Connection, path: str, temporary: bool) -> None:
    conn.close()
    if temporary:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(path + suffix)
            except FileNotFoundError:
                pass
