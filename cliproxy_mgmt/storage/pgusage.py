"""Usage statistics in the pgstore database, shared by every instance.

The same interface and retention as `usage.store.SqliteUsageStore` (`add`, `counts`,
`credential_usage`, `stream`, `close`): totals forever, per-request details up to
`max_details` rows, imports de-duplicated by fingerprint, snapshots streamed as JSON text from
one consistent view, running per-credential counts. Tables of our own:
`cliproxy_mgmt_usage_details`, `_models`, `_buckets`, `_totals`, `_credentials`,
`_credential_buckets`. Token sums saturate at the int64 maximum, as in the SQLite store.
"""

from __future__ import annotations

import json
from typing import Callable, Iterable, Iterator

from psycopg import sql

from ..usage.credentials import BUCKETS, CredentialCounts, CredentialUsage, current_bucket
from ..usage.model import Detail
from ..usage.store import DEFAULT_MAX_DETAILS, _count_credential
from ..usage.timestamps import Stamp

TABLES = [
    """CREATE TABLE IF NOT EXISTS {details} (
        id BIGSERIAL PRIMARY KEY, fingerprint BYTEA NOT NULL UNIQUE, api TEXT NOT NULL,
        model TEXT NOT NULL, ts_ns BIGINT NOT NULL, tz_offset INTEGER NOT NULL, source TEXT NOT NULL,
        auth_index TEXT NOT NULL, failed BOOLEAN NOT NULL, input_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL, cached_tokens BIGINT NOT NULL,
        total_tokens BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS cliproxy_mgmt_usage_details_by_time ON {details} (ts_ns, id)",
    "CREATE INDEX IF NOT EXISTS cliproxy_mgmt_usage_details_by_model ON {details} (api, model, id)",
    """CREATE TABLE IF NOT EXISTS {models} (api TEXT NOT NULL, model TEXT NOT NULL,
        requests BIGINT NOT NULL, tokens BIGINT NOT NULL, PRIMARY KEY (api, model))""",
    """CREATE TABLE IF NOT EXISTS {buckets} (kind TEXT NOT NULL, key TEXT NOT NULL,
        requests BIGINT NOT NULL, tokens BIGINT NOT NULL, PRIMARY KEY (kind, key))""",
    """CREATE TABLE IF NOT EXISTS {totals} (id INTEGER PRIMARY KEY CHECK (id = 1),
        success BIGINT NOT NULL, failure BIGINT NOT NULL, tokens BIGINT NOT NULL)""",
    "INSERT INTO {totals} VALUES (1, 0, 0, 0) ON CONFLICT DO NOTHING",
    """CREATE TABLE IF NOT EXISTS {credentials} (key TEXT PRIMARY KEY,
        success BIGINT NOT NULL, failed BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS {credential_buckets} (key TEXT NOT NULL, bucket BIGINT NOT NULL,
        success BIGINT NOT NULL, failed BIGINT NOT NULL, PRIMARY KEY (key, bucket))""",
]
# `a + b` of two BIGINTs, stopping at the int64 maximum instead of failing
_SAT = "LEAST({}::numeric + {}, 9223372036854775807)::bigint"


def _names(table) -> dict:
    return {key: table(f"cliproxy_mgmt_usage_{key}")
            for key in ("details", "models", "buckets", "totals", "credentials", "credential_buckets")}


def create_tables(conn, table) -> None:
    names = _names(table)
    for statement in TABLES:
        conn.execute(sql.SQL(statement).format(**names))


def _s(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class PgUsageStore:
    """Usage statistics in PostgreSQL; `storage` is the `PostgresStorage` (its pool and names)."""

    requested_path = "postgresql"  # not a file: `usage-statistics-file` does not apply

    def __init__(self, storage, *, max_details: int = DEFAULT_MAX_DETAILS):
        self._storage = storage
        self.max_details = max_details
        self._t = _names(storage.table)

    def _sql(self, text: str):
        return sql.SQL(text).format(**self._t)

    def add(self, details: Iterable[Detail]) -> tuple[int, int]:
        """Add details not already kept; return (added, skipped duplicates)."""
        added = skipped = 0
        credential_totals: dict = {}
        credential_buckets: dict = {}
        add_model = self._sql(f"""INSERT INTO {{models}} AS m VALUES (%s, %s, 1, %s) ON CONFLICT (api, model)
            DO UPDATE SET requests = m.requests + 1, tokens = {_SAT.format("m.tokens", "EXCLUDED.tokens")}""")
        add_bucket = self._sql(f"""INSERT INTO {{buckets}} AS b VALUES (%s, %s, 1, %s)
            ON CONFLICT (kind, key) DO UPDATE SET requests = b.requests + 1,
            tokens = {_SAT.format("b.tokens", "EXCLUDED.tokens")}""")
        add_total = self._sql(f"""UPDATE {{totals}} SET success = success + %s, failure = failure + %s,
            tokens = {_SAT.format("tokens", "%s")}""")
        with self._storage.transaction() as conn:
            for d in details:
                t = d.tokens
                row = conn.execute(self._sql("""INSERT INTO {details} (fingerprint, api, model, ts_ns,
                    tz_offset, source, auth_index, failed, input_tokens, output_tokens, reasoning_tokens,
                    cached_tokens, total_tokens) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    ON CONFLICT (fingerprint) DO NOTHING RETURNING id"""), (
                    d.fingerprint(), d.api, d.model, d.stamp.ns, d.stamp.offset, d.source, d.auth_index,
                    bool(d.failed), t.input, t.output, t.reasoning, t.cached, t.total)).fetchone()
                if row is None:
                    skipped += 1
                    continue
                added += 1
                tokens = max(t.total, 0)
                conn.execute(add_model, (d.api, d.model, tokens))
                for kind, key in (("day", d.stamp.day()), ("hour", d.stamp.hour())):
                    conn.execute(add_bucket, (kind, key, tokens))
                conn.execute(add_total, (int(not d.failed), int(d.failed), tokens))
                _count_credential(credential_totals, credential_buckets, d.auth_index, d.source,
                                  d.failed, d.stamp.ns)
            for key, (success, failed) in credential_totals.items():
                conn.execute(self._sql("""INSERT INTO {credentials} AS c VALUES (%s, %s, %s)
                    ON CONFLICT (key) DO UPDATE SET success = c.success + EXCLUDED.success,
                    failed = c.failed + EXCLUDED.failed"""), (key, success, failed))
            for (key, bucket), (success, failed) in credential_buckets.items():
                conn.execute(self._sql("""INSERT INTO {credential_buckets} AS c VALUES (%s, %s, %s, %s)
                    ON CONFLICT (key, bucket) DO UPDATE SET success = c.success + EXCLUDED.success,
                    failed = c.failed + EXCLUDED.failed"""), (key, bucket, success, failed))
            if added:
                conn.execute(self._sql("""DELETE FROM {details} WHERE id IN (SELECT id FROM {details}
                    ORDER BY ts_ns, id LIMIT GREATEST((SELECT count(*) FROM {details}) - %s, 0))"""),
                             (self.max_details,))
        return added, skipped

    def counts(self) -> tuple[int, int]:
        """(total requests, failed requests)."""
        with self._storage.transaction() as conn:
            success, failure = conn.execute(self._sql("SELECT success, failure FROM {totals}")).fetchone()
        return success + failure, failure

    def credential_usage(self) -> CredentialUsage:
        """Per-credential counts (shared by every instance): one read of the credential rows
        and their recent buckets, whatever the number of requests ever recorded."""
        counts = CredentialCounts()
        oldest = current_bucket() - BUCKETS + 1
        with self._storage.transaction() as conn:
            counts.load(conn.execute(self._sql("SELECT key, success, failed FROM {credentials}")).fetchall(),
                        conn.execute(self._sql("""SELECT key, bucket, success, failed FROM {credential_buckets}
                            WHERE bucket >= %s"""), (oldest,)).fetchall())
        return CredentialUsage(counts)

    def stream(self, head: Callable[[int], str], tail: str) -> Iterator[str]:
        """JSON text: `head(failed requests)`, the snapshot object, then `tail` (one view)."""
        with self._storage.transaction() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            success, failure, tokens = conn.execute(self._sql("SELECT success, failure, tokens FROM {totals}")).fetchone()
            yield head(failure)
            yield (f'{{"total_requests":{success + failure},"success_count":{success},'
                   f'"failure_count":{failure},"total_tokens":{tokens},"apis":{{')
            yield from self._apis(conn)
            for name, kind, column in (("requests_by_day", "day", "requests"),
                                       ("requests_by_hour", "hour", "requests"),
                                       ("tokens_by_day", "day", "tokens"),
                                       ("tokens_by_hour", "hour", "tokens")):
                rows = conn.execute(sql.SQL("SELECT key, {} FROM {} WHERE kind = %s ORDER BY key COLLATE \"C\"")
                                    .format(sql.Identifier(column), self._t["buckets"]), (kind,))
                yield f'}},"{name}":{{' + ",".join(f"{_s(k)}:{n}" for k, n in rows)
            yield "}}" + tail

    def _apis(self, conn) -> Iterator[str]:
        models: dict[str, list] = {}
        for api, model, requests, tokens in conn.execute(self._sql(
                'SELECT api, model, requests, tokens FROM {models} ORDER BY api COLLATE "C", model COLLATE "C"')):
            models.setdefault(api, []).append((model, requests, tokens))
        for i, (api, entries) in enumerate(models.items()):
            yield (("," if i else "") + f'{_s(api)}:{{"total_requests":{sum(e[1] for e in entries)},'
                   f'"total_tokens":{sum(e[2] for e in entries)},"models":{{')
            for j, (model, requests, tokens) in enumerate(entries):
                yield (("," if j else "") + f'{_s(model)}:{{"total_requests":{requests},'
                       f'"total_tokens":{tokens},"details":[')
                rows = conn.execute(self._sql(
                    """SELECT ts_ns, tz_offset, source, auth_index, failed, input_tokens, output_tokens,
                    reasoning_tokens, cached_tokens, total_tokens FROM {details}
                    WHERE api = %s AND model = %s ORDER BY id"""), (api, model))
                for k, (ns, offset, source, index, failed, inp, out, rsn, cached, total) in enumerate(rows):
                    yield (("," if k else "") + f'{{"timestamp":"{Stamp(ns, offset).text()}",'
                           f'"source":{_s(source)},"auth_index":{_s(index)},"tokens":{{'
                           f'"input_tokens":{inp},"output_tokens":{out},"reasoning_tokens":{rsn},'
                           f'"cached_tokens":{cached},"total_tokens":{total}}},'
                           f'"failed":{"true" if failed else "false"}}}')
                yield "]}"
            yield "}}"

    def close(self) -> None:
        """Nothing of its own to close: the storage owns the connections."""
