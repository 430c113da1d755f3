"""The PostgreSQL backend: upstream's pgstore tables, shared live by several instances.

Turned on by PGSTORE_DSN (a libpq URL). The tables are upstream's, so a Go CLIProxyAPI started
with the same variables works on the same data:

* `config_store(id, content TEXT, created_at, updated_at)`: one row `id = 'config'`, the YAML
  text exactly as written (comments kept). When it is missing it is seeded byte for byte
  from the --config file; afterwards the row is the truth.
* `auth_store(id, content JSONB, created_at, updated_at)`: one row per auth file, `id` its
  path relative to the auth folder with forward slashes (subfolders are kept and mirrored).

PGSTORE_SCHEMA (created if missing) prefixes the tables; PGSTORE_LOCAL_PATH (default: the
working directory) holds the local mirror `pgstore/config/config.yaml` and `pgstore/auths/`,
which becomes the auth-dir in force: the listing, downloads and a Go proxy on the same host
read these files. A file put into the mirror by hand is stored as its row (as a Go proxy
stores what appears in its auth-dir); a file the server did not write is never removed.

Live: triggers of our own (`cliproxy_mgmt_notify`) NOTIFY channel `cliproxy_mgmt_changes` on
every row change, whoever made it (another instance, a Go proxy, psql). A listener thread per
instance follows them within milliseconds, updates memory and the mirror, and tells the
config store; a slow poll (POLL_SECONDS) catches anything a lost connection missed.

A write stores the config's parsed data (as JSON, in `cliproxy_mgmt_config_parsed`) with the
text, so the other instances load it instead of parsing the YAML again (a large config takes
seconds to parse); a row whose text does not match that data (a Go proxy's save) is parsed.

Writes are serialised across instances: a config write locks the row (`SELECT ... FOR
UPDATE`) and stores the text only if the row is still the version the edit started from
(else `Conflict`: the config store re-applies the edit on the newer text). While the database
is unreachable reads answer from memory and the mirror, writes raise `Unavailable`
(503, nothing changed) and the listener reconnects by itself. A database that stops
answering without closing the connection counts as unreachable after
`pgdeadline.REPLY_TIMEOUT` seconds.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import threading
import time
from contextlib import contextmanager, nullcontext
from typing import Callable

from ..authfiles.names import is_auth_file_name
from ..fileio import open_regular, read_regular_stat, replace_file
from .base import (AuthBackend, ConfigBackend, Conflict, Storage, StorageError, Unavailable, Version,
                   env_value)
from .files import replace_entry

try:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    from psycopg_pool import ConnectionPool, PoolTimeout

    from . import pgshared, pgusage
    from .pgdeadline import BoundedConnection

    # Errors of one statement on a working connection (not a reason to stop trying the pool).
    _NOT_A_CONNECTION_LOSS = (psycopg.errors.TransactionRollback, psycopg.errors.LockNotAvailable,
                              psycopg.errors.QueryCanceled)
    # The database will not hold this content (bad JSON, or an escape of a character a
    # SQL_ASCII database has no conversion for).
    _CONTENT_REFUSED = (psycopg.DataError, psycopg.errors.FeatureNotSupported)
except ImportError:  # the `postgres` extra is not installed
    psycopg = None

log = logging.getLogger(__name__)

CHANNEL = "cliproxy_mgmt_changes"
CONFIG_ID = "config"
POLL_SECONDS = 5.0          # the safety net's period
RECONNECT_SECONDS = 0.5     # the listener's pause between two connection attempts
CONNECT_TIMEOUT = 5         # seconds, for every connection attempt
POOL_WAIT = 3.0             # seconds a request waits for a pooled connection before 503
LOCK_TIMEOUT_MS = 5000      # how long a write waits for a row another client keeps locked
# libpq settings added to the DSN's own (which win): text comes back as UTF-8 whatever the
# database's encoding (a SQL_ASCII one hands back bytes), and TCP keepalives drop a
# connection to a host that vanished in about a minute instead of waiting for ever.
_SESSION = {"connect_timeout": str(CONNECT_TIMEOUT), "client_encoding": "UTF8", "keepalives": "1",
            "keepalives_idle": "30", "keepalives_interval": "10", "keepalives_count": "3"}
# PostgreSQL cuts longer names to this many bytes (NAMEDATALEN - 1).
MAX_NAME_BYTES = 63
# An auth row's id is mirrored as a path: at most this deep and this long (PATH_MAX is 4096
# for the whole path, the mirror folder included).
MAX_AUTH_FOLDERS, MAX_AUTH_ID_BYTES = 16, 2048
# A NOTIFY payload must stay under 8000 bytes: longer ids are not named in ours.
MAX_NOTIFIED_ID_BYTES = 1000
MIRROR_MODE = 0o600
DIR_MODE = 0o700
_UNSEEN = object()  # the version of an auth row this instance has not mirrored


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _env(environ: dict, name: str) -> str:
    return env_value(environ, name).strip()


def session_conninfo(dsn: str) -> str:
    """`dsn` with `_SESSION`'s settings where it sets none of its own."""
    params = conninfo_to_dict(dsn)
    return make_conninfo(dsn, **{k: v for k, v in _SESSION.items() if k not in params})


def _limit_lock_waits(conn) -> None:
    """The set-up of a new connection (the pool's and the listener's): a lock held elsewhere
    (a psql session, a stuck client, a `VACUUM FULL`) ends a statement after LOCK_TIMEOUT_MS
    (503 for a write) instead of holding a worker, or looking like a silent database."""
    conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
    conn.commit()


def open_postgres(config_path: str, environ: dict) -> "PostgresStorage":
    """The backend for PGSTORE_DSN; StorageError (one line) when it cannot start."""
    if psycopg is None:
        raise StorageError("PGSTORE_DSN is set but psycopg is not installed: "
                           "pip install 'cliproxy-mgmt[postgres]'")
    root = _env(environ, "PGSTORE_LOCAL_PATH") or _env(environ, "WRITABLE_PATH") or os.getcwd()
    schema = _env(environ, "PGSTORE_SCHEMA")
    if len(schema.encode("utf-8")) > MAX_NAME_BYTES:  # cut, it could name another schema's tables
        raise StorageError(f"PGSTORE_SCHEMA is longer than PostgreSQL's {MAX_NAME_BYTES} bytes for a name")
    return PostgresStorage(_env(environ, "PGSTORE_DSN"), schema=schema,
                           root=os.path.join(os.path.abspath(root), "pgstore"), seed_path=config_path)


def _exact_json(value) -> str | None:
    """`value` as JSON when JSON gives exactly it back (no dates, no non-string keys, no NaN)."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return text if json.loads(text) == value else None


class _Snapshot:
    """The config's data as JSON (what `cliproxy_mgmt_config_parsed` holds), encoded key by
    key: a write swaps in new objects only for the top-level values it changes, so a value
    that is the very object encoded last time is not encoded (nor checked) again."""

    def __init__(self):
        self._parts: dict = {}  # top-level key -> (its value, the value's JSON)

    def text(self, data: dict | None) -> str | None:
        """`data` as JSON when JSON gives exactly it back; else None."""
        if data is None:
            return None
        parts = {}
        for key, value in data.items():
            if not isinstance(key, str):
                return None
            cached = self._parts.get(key)
            encoded = cached[1] if cached is not None and cached[0] is value else _exact_json(value)
            if encoded is None:
                return None
            parts[key] = (value, encoded)
        self._parts = parts
        return "{" + ", ".join(f"{json.dumps(key, ensure_ascii=False)}: {encoded}"
                               for key, (_, encoded) in parts.items()) + "}"


def _first_line(exc: Exception) -> str:
    """A database error in one line (libpq's messages run over several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unavailable(exc: Exception) -> Unavailable:
    return Unavailable(errno.EIO, f"database unreachable: {_first_line(exc)}")


class PostgresStorage(Storage):
    """Config, auth files, bans, OAuth sessions and usage statistics in one PostgreSQL database."""

    name = "postgres"

    def __init__(self, dsn: str, *, schema: str, root: str, seed_path: str):
        self.schema = schema
        self.root = root
        self.config_path = os.path.join(root, "config", "config.yaml")
        self.auth_dir = os.path.join(root, "auths")
        self.record_path = os.path.join(root, "mirrored-auths.json")  # see `_load_record`
        self._callbacks: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()           # guards the cached config and the auth versions
        self._adoption = threading.Lock()  # the poll's `_adopt` vs a request's remove of that file
        # A row put in force or mirrored, and the version recorded for it, as one step: the
        # listener's, or a request's after its write committed (`PostgresConfig._installed`,
        # `PostgresAuths._saved`). Never held while waiting for a pooled connection. (The
        # poll's pass over every auth row goes without: a row it puts back older than what a
        # write mirrored has a notification still to come, which the listener follows.)
        self._mirroring = threading.Lock()
        # id -> updated_at last mirrored (None: mirrored by an earlier run, see `_load_record`)
        self._auth_versions: dict[str, object] = dict.fromkeys(self._load_record())
        self._recorded = frozenset(self._auth_versions)  # the ids the record file holds
        self._refused: dict[str, tuple] = {}  # id -> identity of a file `_adopt` left alone
        self._unwritable: set[str] = set()  # ids whose mirror file could not be written last time
        self._generation = 0  # counts our own config writes (see `_config_changed`)
        self._parsed: tuple[bytes, str] | None = None  # (digest, JSON) of the last text read with its data
        self._default_schema = "public"  # the listener's current_schema(), for unqualified tables
        self.online = True  # False from a lost connection until the listener reaches the database again
        self._held_up = False  # the listener's last statement gave up behind a lock (said once)
        try:
            self.dsn = session_conninfo(dsn)
            with BoundedConnection.connect(self.dsn, autocommit=True) as conn:
                self._ensure_schema(conn)
                text, version = self._seed_config(conn, seed_path)
                self._sync_auths(conn)
        except psycopg.Error as exc:
            raise StorageError(f"cannot use the PostgreSQL store (PGSTORE_DSN): {_first_line(exc)}") from None
        self._text, self._version = text, version
        self._write_mirror_config(text)
        self.pool = ConnectionPool(self.dsn, min_size=1, max_size=8, open=True, timeout=POOL_WAIT,
                                   connection_class=BoundedConnection, configure=_limit_lock_waits,
                                   name="cliproxy-mgmt",
                                   check=ConnectionPool.check_connection)
        self.config = PostgresConfig(self)
        self.auths = PostgresAuths(self)
        self.bans = pgshared.PgBanList(self)
        self.sessions = pgshared.PgSessionStore(self)
        self.usage = lambda max_details: pgusage.PgUsageStore(self, max_details=max_details)
        self._listener = threading.Thread(target=self._listen, name="pgstore-listener", daemon=True)
        self._listener.start()

    # -- names ------------------------------------------------------------------------
    def table(self, name: str):
        """A table (or function) name, prefixed by PGSTORE_SCHEMA when set."""
        if self.schema:
            return sql.Identifier(self.schema, name)
        return sql.Identifier(name)

    # -- start-up ---------------------------------------------------------------------
    def _ensure_schema(self, conn) -> None:
        """Create what is missing (upstream's tables as upstream does, our trigger); never alter."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('cliproxy_mgmt_schema'))")
            if self.schema:
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            conn.execute(sql.SQL("""CREATE TABLE IF NOT EXISTS {} (
                id TEXT PRIMARY KEY, content TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
                updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW())""").format(self.table("config_store")))
            conn.execute(sql.SQL("""CREATE TABLE IF NOT EXISTS {} (
                id TEXT PRIMARY KEY, content JSONB NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
                updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW())""").format(self.table("auth_store")))
            # A NOTIFY payload must stay under 8000 bytes, or the writer's statement fails
            # (any writer's, a Go proxy's too): a longer id is sent as null (`_follow`).
            conn.execute(sql.SQL("""CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$
                DECLARE
                    changed TEXT := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
                BEGIN
                    PERFORM pg_notify({}, json_build_object(
                        'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME,
                        'id', CASE WHEN octet_length(changed) <= {} THEN changed END)::text);
                    RETURN NULL;
                END $$""").format(self.table("cliproxy_mgmt_notify"), sql.Literal(CHANNEL),
                                  sql.Literal(MAX_NOTIFIED_ID_BYTES)))
            for name in ("config_store", "auth_store"):
                found = conn.execute(
                    "SELECT 1 FROM pg_trigger WHERE tgname = 'cliproxy_mgmt_notify' AND tgrelid = %s::regclass",
                    (self.table(name).as_string(conn),)).fetchone()
                if not found:
                    conn.execute(sql.SQL("""CREATE TRIGGER cliproxy_mgmt_notify
                        AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW EXECUTE FUNCTION {}()""")
                                 .format(self.table(name), self.table("cliproxy_mgmt_notify")))
            conn.execute(sql.SQL("""CREATE TABLE IF NOT EXISTS {} (
                id TEXT PRIMARY KEY, digest BYTEA NOT NULL, data TEXT NOT NULL)""")
                         .format(self.table("cliproxy_mgmt_config_parsed")))
            pgshared.create_tables(conn, self.table)
            pgusage.create_tables(conn, self.table)

    def _seed_config(self, conn, seed_path: str) -> tuple[str, Version]:
        row = self._config_row(conn)
        if row is None:
            try:
                with open_regular(seed_path, follow_symlinks=True)[0] as f:
                    seed = f.read().decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise StorageError(f"the database holds no config yet and {seed_path} cannot seed it: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from None
            conn.execute(sql.SQL("""INSERT INTO {} (id, content, created_at, updated_at)
                VALUES (%s, %s, NOW(), NOW()) ON CONFLICT (id) DO NOTHING""").format(self.table("config_store")),
                (CONFIG_ID, seed))
            log.info("seeded the database config from %s", seed_path)
            row = self._config_row(conn)
        return row

    def _config_row(self, conn, lock: bool = False) -> tuple[str, Version] | None:
        """The config row (locked for this transaction when `lock`); remembers the parsed data
        stored with it, if it belongs to this very text."""
        query = sql.SQL("""SELECT c.content, c.updated_at, p.digest, p.data FROM {} c
            LEFT JOIN {} p ON p.id = c.id WHERE c.id = %s""" + (" FOR UPDATE OF c" if lock else ""))
        row = conn.execute(query.format(self.table("config_store"), self.table("cliproxy_mgmt_config_parsed")),
                           (CONFIG_ID,)).fetchone()
        if row is None:
            return None
        digest = _digest(row[0])
        if row[2] is not None and bytes(row[2]) == digest:
            with self._lock:
                self._parsed = (digest, row[3])
        return row[0], Version((row[1], digest), digest)

    # -- the mirror ------------------------------------------------------------------------
    def _write_mirror_config(self, text: str) -> None:
        # Not synced to disk: the row is the durable copy, and every start writes the
        # mirror again from it (readers still see the old or the new text, never half).
        os.makedirs(os.path.dirname(self.config_path), mode=DIR_MODE, exist_ok=True)
        try:
            replace_file(self.config_path, text.encode("utf-8"), mode=MIRROR_MODE,
                         prefix=".config.yaml.", suffix=".tmp", durable=False)
        except OSError as exc:
            log.error("cannot write the config mirror %s: %s", self.config_path, exc)

    def auth_path(self, rel_id: str) -> str | None:
        """The mirror path of an auth row; None for an id that would leave the folder, or
        one no file system could hold (a row may name anything; the folders are made)."""
        clean = self._relative_path(rel_id)
        return None if clean is None else os.path.join(self.auth_dir, clean)

    @staticmethod
    def _relative_path(rel_id: str) -> str | None:
        """`auth_path` relative to the mirror folder."""
        clean = os.path.normpath(rel_id.replace("\\", "/"))  # ("" gives ".")
        if clean.startswith(("..", "/")) or clean == ".":
            return None
        if clean.count("/") > MAX_AUTH_FOLDERS or len(clean.encode("utf-8", "surrogatepass")) > MAX_AUTH_ID_BYTES:
            return None
        return clean

    def _mirror_auth(self, rel_id: str, content: str | None) -> None:
        """Make the mirror file of `rel_id` hold `content` (None: remove it); a file whose JSON
        already equals the row is left as it is (its bytes may be indented differently)."""
        path = self.auth_path(rel_id)
        if path is None:
            log.warning("auth row %r is outside the auth folder or too deep or long a path; not mirrored",
                        rel_id[:200])
            return
        try:
            if content is None:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                return
            try:  # (only a regular file: a FIFO put there must not stop the listener)
                if json.loads(read_regular_stat(path)[0]) == json.loads(content):
                    return
            except (OSError, ValueError):
                pass
            os.makedirs(os.path.dirname(path), mode=DIR_MODE, exist_ok=True)
            # Not synced, as the config mirror: the row is the durable copy (a bulk change
            # in SQL mirrors thousands of files).
            replace_entry(path, content.encode("utf-8"), durable=False)
            self._unwritable.discard(rel_id)
        except OSError as exc:
            log.error("cannot mirror auth file %s: %s", path, exc)
            self._unwritable.add(rel_id)

    def _sync_auths(self, conn, everything: bool = False) -> None:
        """Bring the mirror in line with the table: mirror the rows that changed since we
        last looked (`everything`: all rows, compared by content) or whose file is missing
        (only their content is fetched), remove the files of the rows we mirrored that are
        gone, and adopt the files no row stands for that we never mirrored (`_adopt`). One
        walk of the folder; a file is read only to adopt it. A file we did not write is never
        removed."""
        table = self.table("auth_store")
        versions = dict(conn.execute(sql.SQL("SELECT id, updated_at FROM {}").format(table)).fetchall())
        with self._lock:
            known = dict(self._auth_versions)
        for rel_id in set(known) - set(versions):
            self._mirror_auth(rel_id, None)
        found = self._mirror_files()
        row_paths = set()
        changed = []
        for rel_id, updated in versions.items():
            path = self._relative_path(rel_id)
            row_paths.add(path)
            if everything or known.get(rel_id) != updated or (
                    path is not None and path not in found and rel_id not in self._unwritable):
                # (also brings back a file deleted by hand; one that could not be written is
                # tried again when its row changes, not at every poll)
                changed.append(rel_id)
        if changed:
            rows = conn.execute(sql.SQL("SELECT id, content::text, updated_at FROM {} WHERE id = ANY(%s)")
                                .format(table), (changed,)).fetchall()
            for rel_id, content, _ in rows:
                self._mirror_auth(rel_id, content)
            versions.update((rel_id, updated) for rel_id, _, updated in rows)
        for path in found - row_paths:
            # (only a name that is its own id: `auth_path` maps it back to this very file)
            if not is_auth_file_name(os.path.basename(path)) or self._relative_path(path) != path:
                continue
            with self._adoption:  # (see `PostgresAuths.remove`)
                with self._lock:  # known now: saved or removed by a request since our SELECT
                    if path in self._auth_versions:
                        continue
                updated = None if self._still_refused(path) else self._adopt(conn, path)
            if updated is not None:
                versions[path] = updated
        with self._lock:
            self._auth_versions = versions
        self._save_record(versions)

    def _mirror_files(self) -> set[str]:
        """The paths, relative to the mirror folder, of what stands in it and its subfolders,
        but folders and hidden names (our temp files); symlinked folders are not followed."""
        os.makedirs(self.auth_dir, mode=DIR_MODE, exist_ok=True)
        found, folders = set(), [""]
        while folders:
            folder = folders.pop()
            prefix = folder + "/" if folder else ""
            try:
                with os.scandir(os.path.join(self.auth_dir, folder)) as entries:
                    for entry in entries:
                        if entry.name.startswith("."):
                            continue
                        rel = prefix + entry.name
                        if entry.is_dir(follow_symlinks=False):
                            folders.append(rel)
                        else:
                            found.add(rel)
            except OSError:
                pass
        return found

    def _adopt(self, conn, rel_id: str):
        """Store the mirror file `rel_id`, which no row stands for and which this instance
        never mirrored (an operator put it there), as its row, as a Go proxy stores a file
        that appears in its auth-dir: `INSERT ... ON CONFLICT DO NOTHING` (a row stored
        meanwhile wins). Its updated_at; None when nothing was stored. A file that is not
        a regular file holding a JSON object the database takes is left as it is (logged
        once)."""
        path = self.auth_path(rel_id)
        try:
            data, _ = read_regular_stat(path)
            text = data.decode("utf-8")
            if not isinstance(json.loads(text), dict):
                raise ValueError("not a JSON object")
            with conn.transaction():  # (a savepoint inside exclusive()'s transaction)
                row = conn.execute(sql.SQL("""INSERT INTO {} (id, content, created_at, updated_at)
                    VALUES (%s, %s::jsonb, NOW(), NOW()) ON CONFLICT (id) DO NOTHING RETURNING updated_at""")
                                   .format(self.table("auth_store")), (rel_id, text)).fetchone()
        except FileNotFoundError:
            return None
        except (OSError, ValueError, *_CONTENT_REFUSED) as exc:
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                return None
            if self._refused.get(rel_id) != (st.st_ino, st.st_mtime_ns, st.st_size):
                self._refused[rel_id] = (st.st_ino, st.st_mtime_ns, st.st_size)
                log.warning("auth file %s has no row and cannot be stored (%s); left as it is",
                            path, _first_line(exc))
            return None
        self._refused.pop(rel_id, None)
        if row is not None:
            log.info("auth file %s had no row: stored it in the database", path)
        return row[0] if row else None

    def _still_refused(self, rel_id: str) -> bool:
        """Whether `_adopt` already left this very file alone (the poll does not read it again)."""
        seen = self._refused.get(rel_id)
        if seen is None:
            return False
        try:
            st = os.stat(self.auth_path(rel_id), follow_symlinks=False)
        except OSError:
            return False
        return (st.st_ino, st.st_mtime_ns, st.st_size) == seen

    def _load_record(self) -> list[str]:
        """The ids whose files an earlier run of this instance mirrored (`record_path`): at
        start-up, such a file whose row is gone was deleted elsewhere meanwhile and goes;
        another file without a row was put there by hand and is adopted."""
        try:
            with open(self.record_path, encoding="utf-8") as f:
                ids = json.load(f)
        except (OSError, ValueError):
            return []  # none (yet): then no file is taken for ours, none is removed
        return [rel_id for rel_id in ids if isinstance(rel_id, str)] if isinstance(ids, list) else []

    def _record_mirrored(self) -> None:
        with self._lock:
            ids = frozenset(self._auth_versions)
        self._save_record(ids)

    def _save_record(self, ids) -> None:
        """Write `ids` (those mirrored now) to `record_path` if they changed. The listener
        calls it after each batch of changes it followed and each poll."""
        ids = frozenset(ids)
        if ids == self._recorded:
            return
        try:
            replace_file(self.record_path, json.dumps(sorted(ids)).encode("utf-8"), mode=MIRROR_MODE,
                         prefix=".mirrored-auths.", suffix=".tmp", durable=False)
            self._recorded = ids
        except OSError as exc:
            log.error("cannot write %s: %s", self.record_path, exc)

    # -- following changes -------------------------------------------------------------------
    def on_change(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def _config_changed(self, text: str, version: Version, generation: int | None = None, *,
                        unless_replaced: Version | None = None) -> bool:
        """Put a row read from the database in force; False when it is left out because a
        write of ours came in between (the row may be older than it: read it again).

        `generation` is `self._generation` from before that read. `unless_replaced` is the
        version in force when the read began: if another was put in force meanwhile, that
        one stays (see `_mirror_current`)."""
        with self._mirroring:  # (the version in force and the mirror file change together)
            with self._lock:
                if generation is not None and generation != self._generation:
                    return False
                if unless_replaced is not None and self._version is not unless_replaced:
                    return True
                if version.digest == self._version.digest:
                    self._version = version
                    return True
                self._text, self._version = text, version
            self._write_mirror_config(text)
        for callback in self._callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the listener thread
                log.exception("config change listener failed")
        return True

    def _follow_config(self, conn) -> None:
        """Put the config row in force as the listener reads it; read again while a write of
        ours comes in between (its notification may have come in this very batch)."""
        while True:
            generation = self._generation
            row = self._config_row(conn)
            if row is None or self._config_changed(*row, generation):
                return

    def _config_current(self) -> None:
        """Put the config row in force as it is now, read after a write of ours that found
        another version put in force since it began (as `_mirror_current` for an auth row)."""
        with self._lock:
            known = self._version
        try:
            with self.transaction() as conn:
                row = self._config_row(conn)
        except Unavailable:
            return  # the listener reads it again once the database is back
        if row is not None:
            self._config_changed(*row, unless_replaced=known)

    def _follow(self, conn, payloads) -> None:
        """Apply a batch of notifications: the config row read once, the auth rows named read
        in one query (a bulk change in SQL sends one notification per row)."""
        config, auth_ids, unnamed = False, [], False
        for payload in payloads:
            try:
                change = json.loads(payload)
            except ValueError:
                continue
            if not isinstance(change, dict) or change.get("schema") != (self.schema or self._default_schema):
                continue  # the same tables in another schema of this database
            if change.get("table") == "config_store" and change.get("id") == CONFIG_ID:
                config = True
            elif change.get("table") == "auth_store":
                if isinstance(change.get("id"), str):
                    auth_ids.append(change["id"])
                else:
                    unnamed = True  # an id too long for a notification: compare them all
        if config:
            self._follow_config(conn)
        if unnamed:  # rows added or deleted, then those the trigger does not name
            self._sync_auths(conn)
            for rel_id, content, updated in conn.execute(
                    sql.SQL("SELECT id, content::text, updated_at FROM {} WHERE octet_length(id) > %s")
                    .format(self.table("auth_store")), (MAX_NOTIFIED_ID_BYTES,)).fetchall():
                self._follow_auth(rel_id, (content, updated))
        if auth_ids:
            rows = {rel_id: (content, updated) for rel_id, content, updated in conn.execute(
                sql.SQL("SELECT id, content::text, updated_at FROM {} WHERE id = ANY(%s)")
                .format(self.table("auth_store")), (auth_ids,))}
            for rel_id in dict.fromkeys(auth_ids):
                self._follow_auth(rel_id, rows.get(rel_id))

    def _follow_auth(self, rel_id: str, row: tuple | None) -> None:
        """Mirror the auth row `rel_id` a notification named: (content, updated_at), or None
        when it is gone."""
        with self._mirroring:
            self._mirror_row(rel_id, row)

    def _mirror_current(self, rel_id: str, known) -> None:
        """Mirror the auth row `rel_id` as it is now, read after a save of ours; `known` is
        the version mirrored then. If the listener mirrors the row meanwhile, what it wrote
        stays: either it read the row after us, or a commit came between its read and ours,
        and that commit's notification is still to come. (No lock is held while waiting for a
        pooled connection.)"""
        try:
            with self.transaction() as conn:
                row = conn.execute(sql.SQL("SELECT content::text, updated_at FROM {} WHERE id = %s")
                                   .format(self.table("auth_store")), (rel_id,)).fetchone()
        except Unavailable:
            return  # the listener reads it again once the database is back
        with self._mirroring:
            with self._lock:
                if self._auth_versions.get(rel_id, _UNSEEN) != known:
                    return
            self._mirror_row(rel_id, row)

    def _mirror_row(self, rel_id: str, row: tuple | None) -> None:
        """`_follow_auth` for a caller that holds `_mirroring`."""
        with self._lock:
            if row is None and rel_id not in self._auth_versions:
                return  # never mirrored here: a file at that name is not ours to remove
        # Compared by content, not updated_at: an SQL edit that keeps updated_at arrives
        # too, and our own writes find their file equal (not written again).
        self._mirror_auth(rel_id, row[0] if row else None)
        with self._lock:
            if row is None:
                self._auth_versions.pop(rel_id, None)
            else:
                self._auth_versions[rel_id] = row[1]

    def _poll(self, conn, everything: bool = False) -> None:
        """What changed that no notification told: rows with another updated_at (and, with
        `everything`, all rows, compared by content)."""
        self._follow_config(conn)
        self._sync_auths(conn, everything)

    def _listen(self) -> None:
        lost = False  # said once per outage, not at every attempt to reconnect
        while not self._stop.is_set():
            try:
                with BoundedConnection.connect(self.dsn, autocommit=True) as conn:
                    self._default_schema = conn.execute("SELECT current_schema()").fetchone()[0]
                    _limit_lock_waits(conn)
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                    # Whatever changed while we were not listening; after an outage by
                    # content too: a change that kept updated_at sent a notification nobody got.
                    everything = self._poll_unless_locked(conn, everything=lost)
                    self.online = True
                    if lost:
                        log.info("database reachable again")
                        lost = False
                    next_poll = time.monotonic() + POLL_SECONDS
                    while not self._stop.is_set():
                        if not self.online:
                            self.online = self._probe()
                        wait = max(next_poll - time.monotonic(), 0.0)
                        # The generator holds the connection: collect, then query.
                        batch = list(conn.notifies(timeout=min(wait, 1.0), stop_after=1))
                        if batch:
                            batch += conn.notifies(timeout=0.0)  # whatever else has arrived
                        ids = dict.fromkeys(n.payload for n in batch)
                        if ids and not self._unless_locked(lambda: self._follow(conn, ids)):
                            everything = True  # what they named is found by content at the next poll
                        if batch:  # (a stop by a signal does not wait for close())
                            self._record_mirrored()
                        if time.monotonic() >= next_poll:
                            everything = self._poll_unless_locked(conn, everything)
                            next_poll = time.monotonic() + POLL_SECONDS
            except psycopg.Error as exc:
                self.online = False
                if not self._stop.is_set() and not lost:
                    log.warning("database connection lost (%s); reconnecting every %g s",
                                _first_line(exc), RECONNECT_SECONDS)
                lost = True
            except Exception:  # noqa: BLE001 - keep following changes whatever happened
                log.exception("pgstore listener failed; restarting it")
            self._stop.wait(RECONNECT_SECONDS)

    def _unless_locked(self, step: Callable[[], None]) -> bool:
        """Run the listener's `step()`; False when a lock held elsewhere (a `VACUUM FULL`, a
        table locked in psql) made a statement give up after LOCK_TIMEOUT_MS: the database is
        there, so the connection stays and the next poll tries again."""
        try:
            step()
        except _NOT_A_CONNECTION_LOSS as exc:
            if not self._held_up:
                log.warning("pgstore: changes wait behind a lock held elsewhere (%s); trying again "
                            "every %g s", _first_line(exc), POLL_SECONDS)
            self._held_up = True
            return False
        return True

    def _poll_unless_locked(self, conn, everything: bool) -> bool:
        """`_poll` through `_unless_locked`; a poll that gets through ends a hold-up. Returns
        whether the next poll must still compare `everything` by content (it did not get
        through)."""
        if not self._unless_locked(lambda: self._poll(conn, everything=everything)):
            return everything
        if self._held_up:
            log.info("pgstore: no longer held up by a lock")
            self._held_up = False
        return False

    def _probe(self) -> bool:
        """Whether the pool reaches the database again (after a request found it did not)."""
        try:
            with self.pool.connection(timeout=1.0) as conn:
                conn.execute("SELECT 1")
            return True
        except (psycopg.Error, PoolTimeout):
            return False

    # -- writing -----------------------------------------------------------------------------
    @contextmanager
    def transaction(self):
        """A pooled connection in a transaction; `Unavailable` when the database is unreachable.

        Once a request found it unreachable, later ones fail at once (no wait for the pool)
        until the listener has reached it again.
        """
        if not self.online:
            raise Unavailable(errno.EIO, "database unreachable (reconnecting)")
        try:
            with self.pool.connection(timeout=POOL_WAIT) as conn, conn.transaction():
                yield conn
        except PoolTimeout:
            # Every pooled connection is in use (long downloads), or none can be made now.
            # The listener, on a connection of its own, is the one to tell a lost database.
            raise Unavailable(errno.EBUSY, f"database busy: no connection free within {POOL_WAIT:g} s") from None
        except _NOT_A_CONNECTION_LOSS as exc:  # e.g. the lock timeout: the database is there
            raise Unavailable(errno.EBUSY, f"database busy: {_first_line(exc)}") from None
        except psycopg.OperationalError as exc:
            self.online = False
            raise _unavailable(exc) from None

    def close(self) -> None:
        self._stop.set()
        self._record_mirrored()
        self.pool.close()


class PostgresConfig(ConfigBackend):
    """The `config` row; reads answer from memory (kept current by the listener)."""

    outside_change = "another instance or a direct change to the database row"

    def __init__(self, storage: PostgresStorage):
        self.storage = storage
        self.path = storage.config_path
        self.auth_dir = storage.auth_dir
        self._held = threading.local()  # the connection of the `exclusive()` block of this thread
        self._snapshot = _Snapshot()  # used by writes only, which the config store serialises

    def token(self):
        return self.storage._version.token

    def read(self) -> tuple[str, Version]:
        with self.storage._lock:
            return self.storage._text, self.storage._version

    @contextmanager
    def exclusive(self):
        """Lock the row for one edit across instances: the current row is put in force first,
        and `write` inside the block stores into the same transaction (committed at its end).
        One write per block: it compares with the row read here (the config store writes once)."""
        s = self.storage
        with s.transaction() as conn:
            row = s._config_row(conn, lock=True)
            if row is not None:
                s._config_changed(*row)
            # The row stays locked: a `write` inside the block compares with it, unread again.
            self._held.conn, self._held.row, self._held.pending = conn, row, None
            try:
                yield
            finally:
                self._held.conn = self._held.row = None
        if self._held.pending is not None:  # committed: now it is the version in force
            self._installed(*self._held.pending)
            self._held.pending = None

    def parsed(self, version: Version) -> dict | None:
        with self.storage._lock:
            found = self.storage._parsed
        if found is None or found[0] != version.digest:
            return None
        try:
            data = json.loads(found[1])
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def write(self, text: str, base: Version | None, data: dict | None = None) -> Version:
        s = self.storage
        held = getattr(self._held, "conn", None)
        with s._lock:
            seen = s._version  # (before the commit: see `_installed`)
        if held is not None:
            version = self._store(held, text, base, data, self._held.row)
            self._held.pending = (text, version, seen)
            return version
        with s.transaction() as conn:
            version = self._store(conn, text, base, data, s._config_row(conn, lock=True))
        self._installed(text, version, seen)
        return version

    def _store(self, conn, text: str, base: Version | None, data: dict | None, current) -> Version:
        """Store `text` (and its data) in the transaction of `conn`, whose locked config row
        is `current` (None: there is none yet)."""
        s = self.storage
        if current is not None and base is not None and current[1].digest != base.digest:
            raise Conflict("the config in the database was changed by someone else")
        updated = conn.execute(sql.SQL("""INSERT INTO {} (id, content, created_at, updated_at)
            VALUES (%s, %s, NOW(), NOW())
            ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, updated_at = NOW()
            RETURNING updated_at""").format(s.table("config_store")), (CONFIG_ID, text)).fetchone()[0]
        digest = _digest(text)
        snapshot = self._snapshot.text(data)
        if snapshot is not None:  # the other instances load this instead of parsing the YAML
            conn.execute(sql.SQL("""INSERT INTO {} (id, digest, data) VALUES (%s, %s, %s)
                ON CONFLICT (id) DO UPDATE SET digest = EXCLUDED.digest, data = EXCLUDED.data""")
                         .format(s.table("cliproxy_mgmt_config_parsed")), (CONFIG_ID, digest, snapshot))
        return Version((updated, digest), digest)

    def _installed(self, text: str, version: Version, seen: Version) -> None:
        """Put our write, committed as `version`, in force, unless another version was put
        in force since `seen`, the one in force before the commit: the listener may have put
        a later write from elsewhere in force already, which ours must not replace (for up
        to a poll). The row is read again then."""
        s = self.storage
        with s._mirroring:
            with s._lock:
                current = s._version
                if current is seen:
                    s._text, s._version = text, version
                    s._generation += 1
            if current is seen:
                s._write_mirror_config(text)
                return
        if current.token != version.token:  # (equal: the listener put this very write in force)
            s._config_current()


class PostgresAuths(AuthBackend):
    """Auth files as `auth_store` rows, mirrored into the local auth folder."""

    def __init__(self, storage: PostgresStorage):
        self.storage = storage
        self._held = threading.local()  # the transaction of this thread's `exclusive()` block

    @contextmanager
    def exclusive(self, folder: str, name: str):
        """Lock the file's row for one read-modify-write across instances; the mirror file
        shows the row first, and a `save` inside commits with the block. A file without a
        row that this instance never mirrored (put there by hand) is adopted (stored as its
        row, committed with the block), never removed."""
        s = self.storage
        rel_id = self._rel_id(folder, name)
        query = sql.SQL("SELECT content::text, updated_at FROM {} WHERE id = %s FOR UPDATE").format(
            s.table("auth_store"))
        with s.transaction() as conn:
            row = conn.execute(query, (rel_id,)).fetchone()
            with s._lock:
                mirrored = rel_id in s._auth_versions
            if row is None and not mirrored and s._adopt(conn, rel_id) is not None:
                row = conn.execute(query, (rel_id,)).fetchone()
            if row is not None or mirrored:  # (no row, mirrored: deleted elsewhere)
                s._mirror_auth(rel_id, row[0] if row else None)
            self._held.conn, self._held.pending = conn, None
            try:
                yield
            finally:
                self._held.conn = None
        if self._held.pending is not None:  # committed
            self._saved(*self._held.pending)
            self._held.pending = None

    def _rel_id(self, folder: str, name: str) -> str:
        rel = os.path.relpath(os.path.join(folder, name), self.storage.auth_dir)
        if rel.startswith(".."):
            raise OSError(errno.EINVAL, "outside the PostgreSQL store's auth folder", folder)
        return rel.replace(os.sep, "/")

    def save_unchanged(self, folder: str, name: str, data: bytes, expect: bytes) -> None:
        # Nothing to check: a read-modify-write runs in `exclusive`, which locks the row every
        # writer of this store goes through, and read the mirror of that row.
        self.save(folder, name, data)

    def save(self, folder: str, name: str, data: bytes) -> None:
        s = self.storage
        rel_id = self._rel_id(folder, name)
        query = sql.SQL("""INSERT INTO {} (id, content, created_at, updated_at)
            VALUES (%s, %s::jsonb, NOW(), NOW())
            ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, updated_at = NOW()
            RETURNING updated_at""").format(s.table("auth_store"))
        held = getattr(self._held, "conn", None)
        with s._lock:
            seen = s._auth_versions.get(rel_id, _UNSEEN)  # (before the commit: see `_saved`)
        try:
            text = data.decode("utf-8")
            if held is not None:
                updated = held.execute(query, (rel_id, text)).fetchone()[0]
                self._held.pending = (rel_id, folder, name, data, updated, seen)
                return
            with s.transaction() as conn:
                updated = conn.execute(query, (rel_id, text)).fetchone()[0]
        except (*_CONTENT_REFUSED, UnicodeDecodeError) as exc:
            raise OSError(errno.EINVAL, f"the database refused the file: {_first_line(exc)}") from None
        self._saved(rel_id, folder, name, data, updated, seen)

    def _saved(self, rel_id: str, folder: str, name: str, data: bytes, updated, seen) -> None:
        """Mirror a save that committed as version `updated`. The mirror keeps our bytes,
        unless the listener mirrored this row since `seen`, the version known before the
        commit: another instance may have saved the file after us, and the listener put that
        later row in the mirror already. Our bytes would then be written over it (for good, if
        its version was recorded after ours); the row is read again instead."""
        s = self.storage
        with s._mirroring:
            with s._lock:
                known = s._auth_versions.get(rel_id, _UNSEEN)
            if known == seen:
                replace_entry(os.path.join(folder, name), data)
                with s._lock:  # (only once written: else the poll mirrors the row again)
                    s._auth_versions[rel_id] = updated
                return
        if known != updated:  # (equal: the listener mirrored this very save)
            s._mirror_current(rel_id, known)

    def remove(self, folder: str, name: str) -> None:
        s = self.storage
        rel_id = self._rel_id(folder, name)
        with s._lock:
            mirrored = rel_id in s._auth_versions
        # A file put there by hand may be being adopted by the poll: wait for it to finish,
        # else the row it stores would outlive this delete.
        with nullcontext() if mirrored else s._adoption:
            with s.transaction() as conn:
                deleted = conn.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(s.table("auth_store")),
                                       (rel_id,)).rowcount
            try:
                os.unlink(os.path.join(folder, name))
            except FileNotFoundError:
                if not deleted:
                    raise
            finally:  # (after the unlink: else the poll could take the file for one to adopt)
                with s._lock:
                    s._auth_versions.pop(rel_id, None)

