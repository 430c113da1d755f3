"""The PostgreSQL backend when the database is slow, busy or odd: a held row lock, a pool
with no free connection, a SQL_ASCII database, a schema name PostgreSQL would cut.

Real PostgreSQL (tests/pg.py) and, where the HTTP answer matters, a real server process.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from pg import Cluster, pg_cluster, pg_dsn, psycopg  # noqa: F401 - fixtures
from realserver import RealServer, session
from test_pgstore import pg_server, servers  # noqa: F401 - fixture

from cliproxy_mgmt.storage import pgdeadline, postgres
from cliproxy_mgmt.storage.base import Unavailable
from cliproxy_mgmt.storage.postgres import LOCK_TIMEOUT_MS, PostgresStorage


def storage(tmp_path, dsn, name="a", seed="debug: false\n"):
    (tmp_path / f"{name}.yaml").write_text(seed, encoding="utf-8")
    return PostgresStorage(dsn, schema="", root=str(tmp_path / name / "pgstore"),
                           seed_path=str(tmp_path / f"{name}.yaml"))


def test_a_row_held_locked_elsewhere_ends_a_write_with_503_and_the_server_keeps_answering(
        tmp_path, pg_dsn, servers):
    """A psql session keeps the config row locked: a write gives up after the lock timeout
    (503, nothing changed) instead of holding a worker until the lock goes, and reads and the
    other workers go on answering meanwhile."""
    a = pg_server(tmp_path / "a", pg_dsn)
    servers.append(a)
    a.start()
    with psycopg.connect(pg_dsn) as holder, session() as s:
        holder.execute("SELECT 1 FROM config_store WHERE id = 'config' FOR UPDATE")
        answers = []
        writer = threading.Thread(target=lambda: answers.append(
            s.put(a.url("/request-retry"), json={"value": 9}, timeout=60)))
        started = time.monotonic()
        writer.start()
        time.sleep(0.5)
        assert s.get(a.url("/request-retry"), timeout=10).json() == {"request-retry": 3}
        writer.join(timeout=LOCK_TIMEOUT_MS / 1000 + 20)
        assert not writer.is_alive()
        assert time.monotonic() - started < LOCK_TIMEOUT_MS / 1000 + 20
        [r] = answers
        assert r.status_code == 503 and r.json()["error"].startswith("storage unavailable: database busy: "), r.text
        holder.rollback()
    with session() as s:
        assert s.get(a.url("/request-retry"), timeout=10).json() == {"request-retry": 3}
        assert s.put(a.url("/request-retry"), json={"value": 9}, timeout=30).status_code == 200  # not marked lost
        assert s.get(a.url("/request-retry"), timeout=10).json() == {"request-retry": 9}


def test_a_pool_with_no_free_connection_is_busy_not_lost(tmp_path, pg_dsn):
    """Every pooled connection held (slow downloads): a write is 503 "busy" after POOL_WAIT,
    and the next write, once a connection is free, goes through at once (the database was
    never lost)."""
    store = storage(tmp_path, pg_dsn)
    try:
        held = [store.pool.getconn() for _ in range(store.pool.max_size)]
        with pytest.raises(Unavailable) as caught:
            with store.transaction():
                pass
        assert caught.value.errno == errno.EBUSY and "database busy" in str(caught.value)
        assert store.online
        for conn in held:
            store.pool.putconn(conn)
        with store.transaction() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        store.close()


def test_a_sql_ascii_database_works(tmp_path, pg_cluster):
    """A database made without an encoding under the C locale is SQL_ASCII; its text must
    still come back as text (it came back as bytes: start-up failed)."""
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE \"{name}\" ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    seed = "debug: false  # café\n"
    store = storage(tmp_path, pg_cluster.dsn(name), seed=seed)
    try:
        assert store.config.read()[0] == seed
    finally:
        store.close()


def test_a_schema_name_postgresql_would_cut_is_one_line_at_start_up(tmp_path):
    srv = RealServer(tmp_path)
    env = dict(srv.env, PGSTORE_DSN="postgresql://postgres@127.0.0.1:1/none", PGSTORE_SCHEMA="s" * 64,
               PGSTORE_LOCAL_PATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "cliproxy_mgmt", "serve", "--config", str(srv.config_path)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "cliproxy-mgmt: cannot start: PGSTORE_SCHEMA is longer than PostgreSQL's 63 bytes for a name"]


def test_a_long_auth_id_does_not_make_other_writers_fail(tmp_path, pg_dsn):
    """Our trigger's notification names the row; an id too long for a NOTIFY payload (8000
    bytes) made every writer's INSERT fail, a Go proxy's too. It is now sent without the id."""
    store = storage(tmp_path, pg_dsn)
    try:
        with psycopg.connect(pg_dsn) as conn:
            conn.execute("INSERT INTO auth_store (id, content) VALUES (%s, %s)", ("x" * 8100, '{"type": "codex"}'))
        assert_still_mirrors(tmp_path, pg_dsn)
    finally:
        store.close()


def test_a_row_no_file_system_could_hold_is_left_out_of_the_mirror(tmp_path, pg_dsn):
    """A row 1,500 folders deep stopped the listener for good (the mirror's makedirs
    recursed too deep, and every restart met the same row): it is not mirrored."""
    store = storage(tmp_path, pg_dsn)
    try:
        with psycopg.connect(pg_dsn) as conn:
            conn.execute("INSERT INTO auth_store (id, content) VALUES (%s, %s)", ("d/" * 1500 + "y.json", "{}"))
        assert_still_mirrors(tmp_path, pg_dsn)
        assert not (tmp_path / "a" / "pgstore" / "auths" / "d").exists()
    finally:
        store.close()


def assert_still_mirrors(tmp_path, dsn):
    """A row written after that reaches instance `a`'s mirror (in subfolders, 1,513 bytes)."""
    rel_id = "/".join(["s" * 250] * 6) + "/x.json"
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO auth_store (id, content) VALUES (%s, %s)", (rel_id, '{"type": "codex"}'))
    mirrored = tmp_path / "a" / "pgstore" / "auths" / rel_id
    deadline = time.monotonic() + 10
    while not mirrored.is_file():
        assert time.monotonic() < deadline, "the listener no longer follows changes"
        time.sleep(0.05)
    assert mirrored.read_text() == '{"type": "codex"}'


def test_a_lost_database_is_logged_once_until_it_is_back(tmp_path, pg_cluster, pg_dsn, caplog):
    store = storage(tmp_path, pg_dsn)
    try:
        with caplog.at_level("INFO", logger="cliproxy_mgmt.storage.postgres"):
            pg_cluster.stop()
            try:
                time.sleep(3)  # six attempts to reconnect
            finally:
                pg_cluster.start()
            deadline = time.monotonic() + 30
            while not any("reachable again" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
                time.sleep(0.1)
        lost = [r for r in caplog.records if "connection lost" in r.getMessage()]
        assert len(lost) == 1, [r.getMessage() for r in caplog.records]
    finally:
        store.close()


def test_a_bulk_change_in_sql_does_not_hold_up_the_next_change(tmp_path, pg_dsn):
    """3,000 rows inserted by one statement send 3,000 notifications: they are read in one
    query, not one each, so a config change made right after still arrives within the
    promised second or so (it took about 4 s), and every row is mirrored."""
    store = storage(tmp_path, pg_dsn)
    try:
        with psycopg.connect(pg_dsn) as conn:
            conn.execute("""INSERT INTO auth_store (id, content) SELECT 'f' || g || '.json',
                jsonb_build_object('type', 'codex', 'n', g) FROM generate_series(1, 3000) g""")
            conn.commit()
            changed = time.monotonic()
            conn.execute("UPDATE config_store SET content = 'debug: true\n', updated_at = NOW()")
            conn.commit()
        while store.config.read()[0] != "debug: true\n":
            assert time.monotonic() - changed < 2.0, "the config change waited behind the bulk change"
            time.sleep(0.01)
        mirror = tmp_path / "a" / "pgstore" / "auths"
        deadline = time.monotonic() + 30
        while len(list(mirror.glob("f*.json"))) < 3000:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert (mirror / "f1234.json").read_text() == '{"n": 1234, "type": "codex"}'
    finally:
        store.close()


def sql_ascii_database(pg_cluster) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE \"{name}\" ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    return pg_cluster.dsn(name)


def test_a_sql_ascii_database_refuses_an_escaped_character_with_a_clear_answer(tmp_path, pg_cluster, servers):
    """JSONB in a SQL_ASCII database cannot hold `\\u00f6`: the upload is refused with the
    database's reason, as other content it refuses (it was "internal server error" with a
    traceback), nothing is stored, and a file with
    that content dropped into the mirror is left alone without stopping the listener."""
    dsn = sql_ascii_database(pg_cluster)
    a = pg_server(tmp_path / "a", dsn)
    servers.append(a)
    a.start()
    escaped = b'{"type":"codex","email":"j\\u00f6hn@x"}'
    with session() as s:
        r = s.post(a.url("/auth-files?name=e.json"), data=escaped, timeout=30)
        assert (r.status_code, r.json()) == (500, {"error": "failed to save file: the database refused the file: "
                                                            "conversion between UTF8 and SQL_ASCII is not supported"})
        assert s.get(a.url("/auth-files"), timeout=30).json()["files"] == []
        (a.root / "pgstore" / "auths" / "hand.json").write_bytes(escaped)
        time.sleep(6)  # a poll tries to store it
        assert s.post(a.url("/auth-files?name=plain.json"), json={"type": "codex"}, timeout=30).status_code == 200
        with psycopg.connect(dsn, client_encoding="utf8") as conn:
            assert [r[0] for r in conn.execute("SELECT id FROM auth_store ORDER BY id")] == ["plain.json"]
    assert "Traceback" not in a.log_path.read_text()


def test_a_long_id_changed_in_sql_without_a_new_updated_at_reaches_the_mirror(tmp_path, pg_dsn):
    """The notification of an id over 1,000 bytes does not name it: the rows it could be are
    compared by content, as named ones are."""
    store = storage(tmp_path, pg_dsn)
    try:
        rel_id = "/".join(["L" * 200] * 7) + "/x.json"
        mirrored = tmp_path / "a" / "pgstore" / "auths" / rel_id
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO auth_store (id, content) VALUES (%s, %s)", (rel_id, '{"type": "codex"}'))
            wait_until_file(mirrored, '{"type": "codex"}')
            conn.execute("UPDATE auth_store SET content = %s WHERE id = %s", ('{"type": "codex", "v": 1}', rel_id))
            wait_until_file(mirrored, '{"v": 1, "type": "codex"}', timeout=2)
    finally:
        store.close()


def wait_until_file(path, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not (path.is_file() and path.read_text() == text):
        assert time.monotonic() < deadline, path.read_text() if path.is_file() else "no file"
        time.sleep(0.02)


def test_a_change_that_kept_updated_at_while_the_listener_was_cut_off_arrives(tmp_path, pg_dsn):
    """The listener's connection is cut; meanwhile a row is changed in SQL without a new
    updated_at, so its notification reaches nobody and the poll (by updated_at) would not
    see it. After reconnecting, the listener compares every row by content."""
    store = storage(tmp_path, pg_dsn)
    try:
        mirrored = tmp_path / "a" / "pgstore" / "auths" / "kept.json"
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO auth_store (id, content) VALUES ('kept.json', '{\"type\": \"codex\"}')")
            wait_until_file(mirrored, '{"type": "codex"}')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            conn.execute("UPDATE auth_store SET content = '{\"type\": \"codex\", \"v\": 2}' WHERE id = 'kept.json'")
            wait_until_file(mirrored, '{"v": 2, "type": "codex"}', timeout=4)  # (the poll: every 5 s)
    finally:
        store.close()


def test_a_file_whose_row_is_locked_elsewhere_does_not_hold_up_writes_of_other_files(
        tmp_path, pg_dsn, servers):
    """A psql session keeps one auth file's row locked: an edit of that file waits (then
    503), while an edit of another file on the same server goes through at once."""
    a = pg_server(tmp_path / "a", pg_dsn)
    servers.append(a)
    a.start()
    with session() as s:
        for name in ("held.json", "free.json"):
            assert s.post(a.url(f"/auth-files?name={name}"), json={"type": "claude"}, timeout=30).status_code == 200
        with psycopg.connect(pg_dsn) as holder:
            holder.execute("SELECT 1 FROM auth_store WHERE id = 'held.json' FOR UPDATE")
            answers = []
            waiting = threading.Thread(target=lambda: answers.append(s.patch(
                a.url("/auth-files/status"), json={"name": "held.json", "disabled": True}, timeout=60)))
            waiting.start()
            time.sleep(0.5)  # the edit of held.json now waits for its row
            started = time.monotonic()
            with session() as other:
                r = other.patch(a.url("/auth-files/status"), json={"name": "free.json", "disabled": True},
                                timeout=60)
            took = time.monotonic() - started
            assert r.status_code == 200, r.text
            assert took < LOCK_TIMEOUT_MS / 1000 / 2, took
            waiting.join(timeout=LOCK_TIMEOUT_MS / 1000 + 20)
            holder.rollback()
        [held] = answers
        assert held.status_code == 503 and "database busy" in held.json()["error"], held.text
        listed = {f["name"]: f["disabled"] for f in s.get(a.url("/auth-files"), timeout=30).json()["files"]}
        assert listed == {"held.json": False, "free.json": True}


# -- a database that stops answering -------------------------------------------------------------

def _cluster_pids(cluster) -> list[int]:
    """The postmaster of `cluster` and every process it started."""
    with open(os.path.join(cluster.data, "postmaster.pid")) as f:
        postmaster = int(f.readline())
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == postmaster:
                children.append(int(entry))
    return [postmaster, *children]


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:  # a backend that was exiting as the list was made
            pass


@pytest.fixture
def own_cluster(pg_cluster):
    """A cluster of this test's own (it gets frozen: the shared one must not be)."""
    cluster = Cluster(pg_cluster.bin_dir, pg_cluster.run_as)
    cluster.init()
    yield cluster
    cluster.remove()


def test_a_frozen_database_ends_writes_after_the_reply_timeout_and_they_work_once_it_thaws(
        tmp_path, own_cluster, monkeypatch):
    """Every process of the cluster stopped (SIGSTOP: connections stay open, the kernel still
    acknowledges, nothing answers). A statement on an open connection ends after the reply
    timeout; writes, more of them at once than the pool has connections, each end with 503
    instead of waiting for ever (the pool's check of a connection is bounded too); once the
    database runs again, writes go through."""
    monkeypatch.setattr(pgdeadline, "REPLY_TIMEOUT", 1.5)
    store = storage(tmp_path, own_cluster.create_database())
    frozen = []
    try:
        held = store.pool.getconn()
        frozen = _cluster_pids(own_cluster)
        _signal_all(frozen, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(pgdeadline.NoAnswer, match=r"^database did not answer within 1.5 s$"):
            held.execute("SELECT 1")
        assert time.monotonic() - started < 5
        store.pool.putconn(held)
        outcomes = []

        def write():
            started = time.monotonic()
            try:
                with store.transaction() as conn:
                    conn.execute("UPDATE config_store SET content = 'debug: true\n'")
                outcomes.append(("written", time.monotonic() - started))
            except Unavailable as exc:
                outcomes.append((str(exc), time.monotonic() - started))

        writers = [threading.Thread(target=write) for _ in range(store.pool.max_size + 2)]
        for w in writers:
            w.start()
        for w in writers:
            w.join(timeout=60)
        assert not any(w.is_alive() for w in writers), "a write still waits for the frozen database"
        assert len(outcomes) == len(writers) and all(took < 15 for _, took in outcomes), outcomes
        assert not [text for text, _ in outcomes if text == "written"], outcomes
    finally:
        _signal_all(frozen, signal.SIGCONT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with store.transaction() as conn:
                    conn.execute("UPDATE config_store SET content = 'debug: true\n'")
                break
            except Unavailable:
                assert time.monotonic() < deadline, "writes did not work again after the thaw"
                time.sleep(0.2)
        with store.transaction() as conn:
            assert conn.execute("SELECT content FROM config_store").fetchone() == ("debug: true\n",)
    finally:
        store.close()


def _throttled_proxy(port: int, rate: int) -> tuple[int, socket.socket]:
    """A TCP proxy on loopback to `port` that passes the server's bytes at `rate` bytes/s in
    steady small pieces: a slow link, never a silent one. (port, listening socket)"""
    listener = socket.create_server(("127.0.0.1", 0))

    def pipe(src, dst, paced):
        try:
            while data := src.recv(rate // 20 if paced else 65536):
                dst.sendall(data)
                if paced:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def serve():
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                server = socket.create_connection(("127.0.0.1", port))
                threading.Thread(target=pipe, args=(client, server, False), daemon=True).start()
                threading.Thread(target=pipe, args=(server, client, True), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], listener


def test_a_large_answer_over_a_slow_link_is_not_cut(pg_cluster, pg_dsn, monkeypatch):
    """The deadline is on silence, not on the whole answer: 300 kB at 100 kB/s take 3 s,
    twice the reply timeout, and arrive whole."""
    monkeypatch.setattr(pgdeadline, "REPLY_TIMEOUT", 1.5)
    port, listener = _throttled_proxy(pg_cluster.port, 100_000)
    try:
        slow = pg_dsn.replace(f":{pg_cluster.port}/", f":{port}/")
        with pgdeadline.BoundedConnection.connect(slow) as conn:
            started = time.monotonic()
            [(text,)] = conn.execute("SELECT repeat('x', 300000)").fetchall()
            assert len(text) == 300000 and time.monotonic() - started > 2
    finally:
        listener.close()


def test_a_table_locked_elsewhere_holds_up_the_listener_without_taking_the_instance_offline(
        tmp_path, pg_dsn, monkeypatch, caplog):
    """Maintenance (`VACUUM FULL`, `ALTER TABLE`) locks auth_store for longer than the reply
    timeout. The listener's poll gives up after the lock timeout (the database answered),
    instead of waiting in silence until the deadline cuts it, so the instance stays online
    and config writes, which the lock does not touch, go on working."""
    monkeypatch.setattr(postgres, "LOCK_TIMEOUT_MS", 300)
    monkeypatch.setattr(pgdeadline, "REPLY_TIMEOUT", 1.0)
    monkeypatch.setattr(postgres, "POLL_SECONDS", 0.5)
    store = storage(tmp_path, pg_dsn)
    try:
        with psycopg.connect(pg_dsn) as locker, caplog.at_level("INFO", logger="cliproxy_mgmt.storage.postgres"):
            locker.execute("LOCK TABLE auth_store IN ACCESS EXCLUSIVE MODE")
            started, texts = time.monotonic(), []
            while time.monotonic() - started < 4:
                text = f"debug: {len(texts) % 2 == 0}\n".lower()
                store.config.write(text, None)  # (raises Unavailable if the instance went offline)
                texts.append(text)
                assert store.online
                time.sleep(0.2)
            locker.rollback()
            deadline = time.monotonic() + 10
            while not any("no longer held up" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
                time.sleep(0.1)
        said = [r.getMessage() for r in caplog.records]
        assert sum("wait behind a lock" in m for m in said) == 1, said
        assert not [m for m in said if "connection lost" in m], said
    finally:
        store.close()


def test_the_watchdog_cuts_a_silent_wait_and_forgets_ended_ones():
    """The watchdog itself, on a real socket pair: a wait that hears nothing is shut down
    after its deadline (the reader sees the end of the stream); a wait whose deadline keeps
    moving is not; and 10,000 short waits leave its heap the size of the open ones."""
    watchdog = pgdeadline.Watchdog()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ino = os.fstat(ours.fileno()).st_ino
        for _ in range(10_000):
            with watchdog.bound(ours.fileno(), ino, 15):
                pass
        assert len(watchdog._heap) <= 64

        with watchdog.bound(ours.fileno(), ino, 0.3) as heard:
            ended = time.monotonic() + 1.0
            while time.monotonic() < ended:  # the server keeps talking
                heard.due = time.monotonic() + 0.3
                time.sleep(0.05)
        assert not heard.cut

        started = time.monotonic()
        with watchdog.bound(ours.fileno(), ino, 0.3) as silent:
            assert ours.recv(1) == b""  # woken by the shutdown, not by data
        assert silent.cut and 0.25 < time.monotonic() - started < 5
