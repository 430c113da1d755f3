"""What several instances share beyond files, in our own tables of the pgstore database.

* `cliproxy_mgmt_bans`: the failure ban (5 wrong keys in a row from one address ban it for
  30 minutes) counted across instances, so a client cannot spread its guesses over them;
* `cliproxy_mgmt_oauth_sessions`: OAuth login sessions and their callbacks, so a login
  started on one instance completes through another's callback.

(Usage statistics are in `pgusage.py`.)

Times are the database's (`now()`), so the instances' clocks never disagree.
"""

from __future__ import annotations

import json
import logging

from psycopg import sql

from ..oauth.callbacks import Callback, take_callback
from ..oauth.sessions import COMPLETED_TTL, SESSION_TTL, Session
from ..security.ban import BAN_SECONDS, IDLE_SECONDS, MAX_FAILURES, BanList
from .base import Unavailable

log = logging.getLogger(__name__)

# `{t}` names a table in PGSTORE_SCHEMA when set.
TABLES = [
    """CREATE TABLE IF NOT EXISTS {bans} (
        address TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0,
        banned_until TIMESTAMPTZ, last_seen TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS {sessions} (
        state TEXT PRIMARY KEY, provider TEXT NOT NULL, status TEXT NOT NULL DEFAULT '',
        expires_at TIMESTAMPTZ NOT NULL, callback JSONB,
        completed BOOLEAN NOT NULL DEFAULT false)""",
]


def create_tables(conn, table) -> None:
    for statement in TABLES:
        conn.execute(sql.SQL(statement).format(bans=table("cliproxy_mgmt_bans"),
                                               sessions=table("cliproxy_mgmt_oauth_sessions")))


class PgBanList:
    """`security.ban.BanList` in the database. While the database is unreachable the ban is
    counted in memory instead (a request is never refused for that)."""

    def __init__(self, storage):
        self._storage = storage
        self._table = storage.table("cliproxy_mgmt_bans")
        self._fallback = BanList()
        self._purged = 0

    def remaining(self, address: str) -> float:
        try:
            with self._storage.transaction() as conn:
                row = conn.execute(sql.SQL("""SELECT EXTRACT(EPOCH FROM banned_until - now())::float8
                    FROM {} WHERE address = %s AND banned_until > now()""").format(self._table),
                    (address,)).fetchone()
        except Unavailable:
            return self._fallback.remaining(address)
        return max(row[0], 0.0) if row else 0.0

    def failure(self, address: str) -> None:
        try:
            with self._storage.transaction() as conn:
                conn.execute(sql.SQL("""INSERT INTO {t} AS b (address, failures, last_seen) VALUES (%s, 1, now())
                    ON CONFLICT (address) DO UPDATE SET failures = b.failures + 1, last_seen = now()""")
                             .format(t=self._table), (address,))
                conn.execute(sql.SQL("""UPDATE {} SET failures = 0, banned_until = now() + make_interval(secs => %s)
                    WHERE address = %s AND failures >= %s""").format(self._table),
                             (BAN_SECONDS, address, MAX_FAILURES))
                self._purged += 1
                if self._purged % 1000 == 0:  # forget quiet addresses now and then
                    conn.execute(sql.SQL("""DELETE FROM {} WHERE last_seen < now() - make_interval(secs => %s)
                        AND (banned_until IS NULL OR banned_until < now())""").format(self._table), (IDLE_SECONDS,))
        except Unavailable:
            self._fallback.failure(address)

    def success(self, address: str) -> None:
        self._fallback.success(address)
        try:
            with self._storage.transaction() as conn:
                conn.execute(sql.SQL("DELETE FROM {} WHERE address = %s").format(self._table), (address,))
        except Unavailable:
            pass


class PgSessionStore:
    """`oauth.sessions.SessionStore` in the database, with the callback hand-over in the row."""

    def __init__(self, storage, ttl: float = SESSION_TTL, completed_ttl: float = COMPLETED_TTL):
        self._storage = storage
        self._table = storage.table("cliproxy_mgmt_oauth_sessions")
        self.ttl = ttl
        self.completed_ttl = min(completed_ttl, ttl)

    def _run(self, query: str, args=(), fetch: bool = False):
        with self._storage.transaction() as conn:
            cur = conn.execute(sql.SQL(query).format(t=self._table), args)
            return cur.fetchone() if fetch else None

    def register(self, state: str, provider: str) -> None:
        with self._storage.transaction() as conn:
            conn.execute(sql.SQL("DELETE FROM {} WHERE expires_at <= now()").format(self._table))
            conn.execute(sql.SQL("""INSERT INTO {t} (state, provider, status, expires_at, callback, completed)
                VALUES (%s, %s, '', now() + make_interval(secs => %s), NULL, false)
                ON CONFLICT (state) DO UPDATE SET provider = EXCLUDED.provider, status = '',
                    expires_at = EXCLUDED.expires_at, callback = NULL, completed = false""").format(t=self._table),
                         (state, provider, self.ttl))

    def get(self, state: str) -> Session | None:
        row = self._run("""SELECT provider, status, completed FROM {t} WHERE state = %s AND expires_at > now()""",
                        (state,), fetch=True)
        return Session(row[0], row[1], completed=row[2]) if row else None

    def is_pending(self, state: str, provider: str | None = None) -> bool:
        session = self.get(state)
        return bool(session and session.pending and (provider is None or session.provider == provider))

    def set_error(self, state: str, message: str) -> None:
        self._run("""UPDATE {t} SET status = %s, expires_at = now() + make_interval(secs => %s)
            WHERE state = %s AND expires_at > now() AND NOT completed""",
                  (message or "Authentication failed", self.ttl, state))

    def complete(self, state: str) -> None:
        self._run("""UPDATE {t} SET status = '', completed = true, callback = NULL,
            expires_at = now() + make_interval(secs => %s)
            WHERE state = %s AND expires_at > now() AND NOT completed""", (self.completed_ttl, state))

    def complete_provider(self, provider: str) -> None:
        self._run("""UPDATE {t} SET status = '', completed = true, callback = NULL,
            expires_at = now() + make_interval(secs => %s)
            WHERE provider = %s AND expires_at > now() AND NOT completed""", (self.completed_ttl, provider))

    def cancel(self, state: str) -> bool:
        """Delete a pending session; False when it is unknown, completed or failed."""
        row = self._run("""DELETE FROM {t} WHERE state = %s AND expires_at > now() AND status = ''
            AND NOT completed RETURNING state""", (state,), fetch=True)
        return row is not None

    def hand_over(self, folder: str | None, provider: str, callback: Callback) -> None:
        """Store the callback in the session's row: the instance running the login takes it."""
        body = {"code": callback.code, "state": callback.state, "error": callback.error}
        self._run("UPDATE {t} SET callback = %s::jsonb WHERE state = %s AND provider = %s",
                  (json.dumps(body), callback.state, provider))

    def take_callback(self, folder: str | None, provider: str, state: str) -> Callback | None:
        with self._storage.transaction() as conn:
            row = conn.execute(sql.SQL("""SELECT callback FROM {} WHERE state = %s AND provider = %s
                AND callback IS NOT NULL FOR UPDATE""").format(self._table), (state, provider)).fetchone()
            if row is not None:
                conn.execute(sql.SQL("UPDATE {} SET callback = NULL WHERE state = %s").format(self._table), (state,))
        if row is None:  # a callback file written by upstream's server on this host
            return take_callback(folder, provider, state) if folder else None
        data = row[0] if isinstance(row[0], dict) else {}
        text = lambda key: data.get(key) if isinstance(data.get(key), str) else ""  # noqa: E731
        return Callback(code=text("code"), state=text("state"), error=text("error"))
