"""Usage statistics in an SQLite file: totals forever, per-request details up to a cap.

The backend interface the endpoints use is small (`add`, `counts`, `stream`,
`credential_usage`, `close`), so a shared backend (PostgreSQL, Redis) can replace this one
without touching them.

Retention: the totals (overall, per api and model, per day and hour) count every request
ever recorded or imported. Per-request details are kept up to `max_details` rows; beyond
that the oldest (by request time) are deleted, their counts staying in the totals.
De-duplication of imports compares against the details still kept, so a detail imported
again after it was pruned is counted again.

The file removed or replaced while the server runs: reads answer Unavailable (they open the
path), and so do writes, rather than go on into the unlinked file, where everything counted
would be lost at the next start; nothing is made again in its place. A restart opens what is
at the path then, or starts a new file.

Cost follows the answer, not the history: every aggregate (totals, per api and model, per
day and hour, per credential) is a running count updated as requests are recorded, and each
detail is kept with its JSON text formatted once, when it is recorded. A snapshot is those
texts joined and sent in large chunks, from the database, never built whole in memory.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
import tempfile
import threading
import urllib.parse
import weakref
from typing import Callable, Iterable, Iterator

from ..fileio import identity
from ..storage.base import Unavailable

from .credentials import (BUCKETS, CredentialCounts, CredentialUsage, aggregate_key, bucket_of,
                          current_bucket)
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
    total_tokens INTEGER NOT NULL,
    body TEXT
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
CREATE TABLE IF NOT EXISTS credentials (
    key TEXT PRIMARY KEY, success INTEGER NOT NULL, failed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS credential_buckets (
    key TEXT NOT NULL, bucket INTEGER NOT NULL,
    success INTEGER NOT NULL, failed INTEGER NOT NULL,
    PRIMARY KEY (key, bucket));
"""
# PRAGMA user_version: 1 = details carry their JSON `body`, per-credential counts are kept.
_VERSION = 1
CHUNK = 256 * 1024  # characters per chunk of a streamed snapshot

_INSERT_DETAIL = """INSERT OR IGNORE INTO details (fingerprint, api, model, ts_ns, tz_offset, source,
    auth_index, failed, input_tokens, output_tokens, reasoning_tokens, cached_tokens, total_tokens,
    body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
# Token sums saturate at the int64 maximum (Go's counters would wrap; SQLite would turn
# the sum into a float): an overflowing sum is a REAL, which MIN() replaces by the maximum.
_SAT = "MIN({}, 9223372036854775807)"
_ADD_MODEL = f"""INSERT INTO models VALUES (?, ?, ?, ?) ON CONFLICT (api, model)
    DO UPDATE SET requests = requests + excluded.requests,
    tokens = {_SAT.format("tokens + excluded.tokens")}"""
_ADD_BUCKET = f"""INSERT INTO buckets VALUES (?, ?, ?, ?) ON CONFLICT (kind, key)
    DO UPDATE SET requests = requests + excluded.requests,
    tokens = {_SAT.format("tokens + excluded.tokens")}"""
_ADD_CREDENTIAL = """INSERT INTO credentials VALUES (?, ?, ?) ON CONFLICT (key)
    DO UPDATE SET success = success + excluded.success, failed = failed + excluded.failed"""
_ADD_CREDENTIAL_BUCKET = """INSERT INTO credential_buckets VALUES (?, ?, ?, ?)
    ON CONFLICT (key, bucket)
    DO UPDATE SET success = success + excluded.success, failed = failed + excluded.failed"""
_ADD_TOTAL = ("UPDATE totals SET success = success + ?, failure = failure + ?, "
              f"tokens = {_SAT.format('tokens + ?')}")
INT64_MAX = (1 << 63) - 1


def _connect(path: str, *, existing: bool = False) -> sqlite3.Connection:
    """A connection to `path`; with `existing`, one that fails instead of making a new file."""
    target = f"file:{urllib.parse.quote(path)}?mode=rw" if existing else path
    conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False, timeout=10,
                           uri=existing)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def _unavailable(exc: sqlite3.Error) -> Unavailable:
    return Unavailable(errno.EIO, f"usage statistics: {exc}")


class FileGone(Unavailable):
    """The store's file was removed or replaced while the server runs: nothing is written."""


def _s(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def detail_body(stamp: Stamp, source: str, index: str, failed, inp: int, out: int, rsn: int,
                cached: int, total: int) -> str:
    """A detail as upstream's JSON object: formatted once, when the detail is stored."""
    return (f'{{"timestamp":"{stamp.text()}","source":{_s(source)},"auth_index":{_s(index)},'
            f'"tokens":{{"input_tokens":{inp},"output_tokens":{out},"reasoning_tokens":{rsn},'
            f'"cached_tokens":{cached},"total_tokens":{total}}},'
            f'"failed":{"true" if failed else "false"}}}')


class _Chunks:
    """Joins many small texts into chunks of about CHUNK characters (few frames on the wire)."""

    def __init__(self):
        self.parts: list[str] = []
        self.size = 0

    def add(self, text: str) -> str | None:
        self.parts.append(text)
        self.size += len(text)
        return self.take() if self.size >= CHUNK else None

    def take(self) -> str:
        out = "".join(self.parts)
        self.parts, self.size = [], 0
        return out


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
        # The file this store has open, to notice when `path` no longer leads to it.
        self._identity = identity(self.path)
        self._gone = False
        self._count = self._conn.execute("SELECT count(*) FROM details").fetchone()[0]
        self._credentials = CredentialCounts()
        self._credentials.load(
            self._conn.execute("SELECT key, success, failed FROM credentials"),
            self._conn.execute("SELECT key, bucket, success, failed FROM credential_buckets"))
        # Closed by close(), or when the store is dropped (apps made by tests).
        self._finalizer = weakref.finalize(self, _release, self._conn, self.path, self._temporary)

    @classmethod
    def _open(cls, path: str) -> sqlite3.Connection:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        conn = _connect(path)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable across a crash of the process
            conn.execute("BEGIN IMMEDIATE")
            try:
                columns = [row[1] for row in conn.execute("PRAGMA table_info(details)")]
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                if columns and conn.execute("PRAGMA user_version").fetchone()[0] < _VERSION:
                    cls._upgrade(conn, columns)
                conn.execute(f"PRAGMA user_version = {_VERSION}")
                conn.execute("DELETE FROM credential_buckets WHERE bucket < ?",
                             (current_bucket() - BUCKETS + 1,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    @staticmethod
    def _upgrade(conn: sqlite3.Connection, columns: list) -> None:
        """A file written before details kept their JSON text and credentials their counts:
        format each kept detail once, and count the credentials from the details still kept
        (requests pruned before the upgrade are in the totals but not in these counts)."""
        if "body" not in columns:
            conn.execute("ALTER TABLE details ADD COLUMN body TEXT")
        rows = conn.execute(
            "SELECT id, ts_ns, tz_offset, source, auth_index, failed, input_tokens, output_tokens, "
            "reasoning_tokens, cached_tokens, total_tokens FROM details WHERE body IS NULL").fetchall()
        conn.executemany("UPDATE details SET body = ? WHERE id = ?", (
            (detail_body(Stamp(ns, offset), *rest), id_) for id_, ns, offset, *rest in rows))
        totals: dict = {}
        buckets: dict = {}
        for source, index, failed, ns in conn.execute(
                "SELECT source, auth_index, failed, ts_ns FROM details"):
            _count_credential(totals, buckets, index, source, failed, ns)
        _store_credentials(conn, totals, buckets)

    # -- writing ------------------------------------------------------------------------
    def add(self, details: Iterable[Detail]) -> tuple[int, int]:
        """Add details not already kept; return (added, skipped duplicates).

        One transaction: the details one by one (duplicates are skipped by fingerprint), then
        every aggregate by the sum of what this call added.
        """
        added = skipped = 0
        models: dict = {}
        buckets: dict = {}
        totals = [0, 0, 0]
        credential_totals: dict = {}
        credential_buckets: dict = {}
        with self._lock:
            self._check_file()
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for d in details:
                    t = d.tokens
                    cur = conn.execute(_INSERT_DETAIL, (
                        d.fingerprint(), d.api, d.model, d.stamp.ns, d.stamp.offset, d.source,
                        d.auth_index, int(d.failed), t.input, t.output, t.reasoning, t.cached,
                        t.total, detail_body(d.stamp, d.source, d.auth_index, d.failed, t.input,
                                             t.output, t.reasoning, t.cached, t.total)))
                    if cur.rowcount == 0:
                        skipped += 1
                        continue
                    added += 1
                    tokens = max(t.total, 0)
                    _bump(models, (d.api, d.model), tokens)
                    _bump(buckets, ("day", d.stamp.day()), tokens)
                    _bump(buckets, ("hour", d.stamp.hour()), tokens)
                    totals[1 if d.failed else 0] += 1
                    totals[2] = min(totals[2] + tokens, INT64_MAX)
                    _count_credential(credential_totals, credential_buckets, d.auth_index,
                                      d.source, d.failed, d.stamp.ns)
                conn.executemany(_ADD_MODEL, ((*k, *v) for k, v in models.items()))
                conn.executemany(_ADD_BUCKET, ((*k, *v) for k, v in buckets.items()))
                conn.execute(_ADD_TOTAL, totals)
                _store_credentials(conn, credential_totals, credential_buckets)
                excess = self._count + added - self.max_details
                if excess > 0:
                    conn.execute("DELETE FROM details WHERE id IN (SELECT id FROM details "
                                 "ORDER BY ts_ns, id LIMIT ?)", (excess,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # (SQLite may have rolled back already: a full disk)
                    conn.execute("ROLLBACK")
                raise
            self._count = min(self._count + added, self.max_details)
            self._credentials.apply(credential_totals, credential_buckets)
        return added, skipped

    def _check_file(self) -> None:
        """Raise FileGone unless `path` still leads to the open file (one stat per write
        transaction); the first time, log one warning line."""
        if not self._gone:
            if identity(self.path) == self._identity:
                return
            self._gone = True
            log.warning("usage statistics: %s was removed or replaced while the server runs; "
                        "requests are not counted until the server restarts (it then opens the "
                        "file found at that path, or starts a new one)", self.path)
        raise FileGone(errno.ENOENT, "usage statistics: the database file was removed or "
                                     "replaced while the server runs")

    # -- reading ------------------------------------------------------------------------
    def counts(self) -> tuple[int, int]:
        """(total requests, failed requests)."""
        with self._lock:
            success, failure = self._conn.execute("SELECT success, failure FROM totals").fetchone()
        return success + failure, failure

    def credential_usage(self) -> CredentialUsage:
        """Per-credential counts for one answer: `.lookup(auth_index, source)` gives upstream's
        `{"success", "failed", "recent_requests"}` (GET /api-key-usage, GET /auth-files)."""
        return CredentialUsage(self._credentials)

    def stream(self, head: Callable[[int], str], tail: str) -> Iterator[str]:
        """JSON text: `head(failed requests)`, the snapshot object, then `tail`, in chunks of
        about CHUNK characters.

        Read from one consistent view of the database, on a connection of its own, so
        writers are never blocked while a large snapshot is sent. A file that is gone or
        unreadable (removed or damaged while the server runs) raises Unavailable at the first
        chunk; it is not made again empty.
        """
        try:
            conn = _connect(self.path, existing=True)
        except sqlite3.Error as exc:
            raise _unavailable(exc) from None
        try:
            try:
                conn.execute("BEGIN")
                success, failure, tokens = conn.execute(
                    "SELECT success, failure, tokens FROM totals").fetchone()
            except sqlite3.Error as exc:
                raise _unavailable(exc) from None
            yield head(failure)
            out = _Chunks()
            out.add(f'{{"total_requests":{success + failure},"success_count":{success},'
                    f'"failure_count":{failure},"total_tokens":{tokens},"apis":{{')
            for text in self._apis(conn):
                chunk = out.add(text)
                if chunk:
                    yield chunk
            for name, kind, column in (("requests_by_day", "day", "requests"),
                                       ("requests_by_hour", "hour", "requests"),
                                       ("tokens_by_day", "day", "tokens"),
                                       ("tokens_by_hour", "hour", "tokens")):
                rows = conn.execute(f"SELECT key, {column} FROM buckets WHERE kind = ? "
                                    "ORDER BY key", (kind,))
                out.add(f'}},"{name}":{{' + ",".join(f"{_s(k)}:{n}" for k, n in rows))
            out.add("}}" + tail)
            yield out.take()
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
                rows = conn.execute("SELECT body FROM details WHERE api = ? AND model = ? "
                                    "ORDER BY id", (api, model))
                separator = ""
                while batch := rows.fetchmany(4096):
                    yield separator + ",".join(body for body, in batch)
                    separator = ","
                yield "]}"
            yield "}}"

    def close(self) -> None:
        with self._lock:
            self._finalizer()


def _bump(sums: dict, key, tokens: int) -> None:
    entry = sums.get(key)
    if entry is None:
        sums[key] = [1, tokens]
    else:
        entry[0] += 1
        entry[1] = min(entry[1] + tokens, INT64_MAX)  # saturates, as the SQL sums do


def _count_credential(totals: dict, buckets: dict, index: str, source: str, failed, ns: int) -> None:
    key = aggregate_key(index, source)
    if key is None:
        return
    column = 1 if failed else 0
    totals.setdefault(key, [0, 0])[column] += 1
    bucket = bucket_of(ns)
    if bucket > current_bucket() - BUCKETS:  # older ones are never shown
        buckets.setdefault((key, bucket), [0, 0])[column] += 1


def _store_credentials(conn: sqlite3.Connection, totals: dict, buckets: dict) -> None:
    conn.executemany(_ADD_CREDENTIAL, ((k, s, f) for k, (s, f) in totals.items()))
    conn.executemany(_ADD_CREDENTIAL_BUCKET, ((k, b, s, f) for (k, b), (s, f) in buckets.items()))


def _release(conn: sqlite3.Connection, path: str, temporary: bool) -> None:
    conn.close()
    if temporary:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(path + suffix)
            except FileNotFoundError:
                pass
