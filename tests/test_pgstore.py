"""The PostgreSQL backend: upstream's pgstore tables, several instances live on one database.

Real PostgreSQL (tests/pg.py starts a throw-away cluster) and real server processes. Each
test gets a database of its own; two instances have their own ports and mirror folders.
"""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from pg import pg_cluster, pg_dsn, psycopg  # noqa: F401 - fixtures
from realserver import RealServer, session

SEEN_WITHIN = 1.0  # seconds: every instance sees every change this soon


def pg_server(root, dsn: str, **kw) -> RealServer:
    srv = RealServer(root, **kw)
    srv.args = ["--port", str(srv.port)]  # the config (and its port) is shared in the database
    srv.env.update(PGSTORE_DSN=dsn, PGSTORE_LOCAL_PATH=str(root))
    return srv


@pytest.fixture
def servers():
    started: list[RealServer] = []
    yield started
    for srv in started:
        srv.kill()


@pytest.fixture
def pair(tmp_path, pg_dsn, servers):
    a = pg_server(tmp_path / "a", pg_dsn)
    servers.append(a)
    a.start()
    b = pg_server(tmp_path / "b", pg_dsn)
    servers.append(b)
    b.start()
    return a, b


def wait_for(check, timeout: float = SEEN_WITHIN) -> float:
    """Seconds until `check()` is true; fails after `timeout`."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not seen within {timeout}s")
        time.sleep(0.005)


def db_config(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT content FROM config_store WHERE id = 'config'").fetchone()[0]


def test_changes_on_one_instance_are_seen_on_the_other(pair):
    a, b = pair
    delays = []
    with session() as s:
        for n in range(1, 21):
            assert s.put(a.url("/request-retry"), json={"value": n}, timeout=30).status_code == 200
            delays.append(wait_for(lambda: s.get(b.url("/request-retry"), timeout=30).json()["request-retry"] == n))
    delays.sort()
    assert delays[-1] <= SEEN_WITHIN, delays
    print(f"propagation median {statistics.median(delays) * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms")
    # the mirror files follow, so a Go proxy on B's host reads the change too
    assert yaml.safe_load(b.root.joinpath("pgstore/config/config.yaml").read_text())["request-retry"] == 20
    # the audit log says who: a client on A; on B, not "a hand edit of the file"
    assert "changed by client 127.0.0.1: request-retry" in a.log_path.read_text()
    assert "changed by another instance or a direct change to the database row: request-retry" in \
        b.log_path.read_text()


def test_a_comment_survives_in_the_database_text(pair, pg_dsn):
    a, _ = pair
    with session() as s:
        assert s.patch(a.url("/api-keys"), json={"old": "seed-key-2", "new": "changed"}, timeout=30).status_code == 200
    text = db_config(pg_dsn)
    assert '  - "seed-key-1" # first client\n' in text and "# Management API settings\n" in text
    assert "changed" in text


def test_auth_files_uploaded_and_deleted_on_one_are_listed_and_gone_on_the_other(pair, pg_dsn):
    a, b = pair

    def names(srv):
        return [f["name"] for f in s.get(srv.url("/auth-files"), timeout=30).json()["files"]]

    with session() as s:
        body = {"type": "claude", "email": "someone@example.com"}
        assert s.post(a.url("/auth-files?name=claude-1.json"), json=body, timeout=30).status_code == 200
        wait_for(lambda: names(b) == ["claude-1.json"])
        got = s.get(b.url("/auth-files/download?name=claude-1.json"), timeout=30)
        assert json.loads(got.content) == body
        with psycopg.connect(pg_dsn) as conn:
            assert conn.execute("SELECT content FROM auth_store WHERE id = 'claude-1.json'").fetchone()[0] == body
        assert s.patch(b.url("/auth-files/status"), json={"name": "claude-1.json", "disabled": True},
                       timeout=30).status_code == 200
        wait_for(lambda: [f["disabled"] for f in s.get(a.url("/auth-files"), timeout=30).json()["files"]] == [True])
        assert s.delete(a.url("/auth-files?name=claude-1.json"), timeout=30).status_code == 200
        wait_for(lambda: names(b) == [])
        assert not b.root.joinpath("pgstore/auths/claude-1.json").exists()


def test_a_row_written_straight_into_config_store_is_seen_by_both(pair, pg_dsn):
    a, b = pair
    text = db_config(pg_dsn).replace("request-retry: 3", "request-retry: 7")
    with psycopg.connect(pg_dsn) as conn:  # what a Go proxy does when it saves its config
        conn.execute("""INSERT INTO config_store (id, content, created_at, updated_at)
            VALUES ($1, $2, NOW(), NOW()) ON CONFLICT (id)
            DO UPDATE SET content = EXCLUDED.content, updated_at = NOW()""".replace("$1", "%s").replace("$2", "%s"),
                     ("config", text))
    with session() as s:
        for srv in (a, b):
            wait_for(lambda: s.get(srv.url("/request-retry"), timeout=30).json()["request-retry"] == 7)
    assert a.root.joinpath("pgstore/config/config.yaml").read_text() == text


def _writers(targets, per_writer: int, tag: str, acked: list, failures: list, stop=None):
    def run(w: int, srv):
        with session() as s:
            for n in range(per_writer):
                if stop is not None and stop.is_set():
                    return
                try:
                    r = s.patch(srv.url("/api-keys"), json={"old": f"absent-{tag}-{w}-{n}",
                                                            "new": f"{tag}-{w}-{n}"}, timeout=30)
                except Exception as exc:  # noqa: BLE001 - the instance was killed
                    failures.append(f"{w}/{n}: {exc.__class__.__name__}")
                    return
                if r.status_code != 200:
                    failures.append(f"{w}/{n}: {r.status_code} {r.text}")
                    return
                acked.append(f"{tag}-{w}-{n}")
    threads = [threading.Thread(target=run, args=(w, srv)) for w, srv in enumerate(targets)]
    for t in threads:
        t.start()
    return threads


def test_writers_on_two_instances_lose_nothing(pair, pg_dsn):
    a, b = pair
    acked, failures = [], []
    for t in _writers([a] * 4 + [b] * 4, 25, "w", acked, failures):
        t.join(300)
    assert not failures
    assert len(acked) == 200
    keys = yaml.safe_load(db_config(pg_dsn))["api-keys"]
    assert sorted(set(acked) - set(keys)) == []
    with session() as s:
        for srv in (a, b):
            wait_for(lambda: set(acked) <= set(s.get(srv.url("/api-keys"), timeout=30).json()["api-keys"]))


def test_sigkill_of_one_instance_during_writes_loses_nothing(pair, pg_dsn):
    a, b = pair
    acked, failures = [], []
    threads = _writers([a] * 3 + [b] * 3, 40, "k", acked, failures)
    time.sleep(0.5)
    a.kill(signal.SIGKILL)
    for t in threads:
        t.join(300)
    keys = set(yaml.safe_load(db_config(pg_dsn))["api-keys"])
    assert set(acked) <= keys
    with session() as s:
        wait_for(lambda: set(acked) <= set(s.get(b.url("/api-keys"), timeout=30).json()["api-keys"]))
    a.start()  # and it starts again on the same database
    with session() as s:
        assert set(acked) <= set(s.get(a.url("/api-keys"), timeout=30).json()["api-keys"])


def test_the_config_row_is_seeded_byte_for_byte_and_then_is_the_truth(tmp_path, pg_dsn, servers):
    a = pg_server(tmp_path / "a", pg_dsn)
    a.config_path.write_text(a.config_path.read_text().replace("\n", "\r\n", 3) + "# the end\n")
    seed = a.config_path.read_bytes()
    servers.append(a)
    a.start()
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT content FROM config_store").fetchone()[0].encode() == seed
    b = pg_server(tmp_path / "b", pg_dsn)  # its own --config file is not used: the row is
    b.config_path.write_text("debug: true\n")
    servers.append(b)
    b.start()
    assert b.root.joinpath("pgstore/config/config.yaml").read_bytes() == seed


def test_database_down_at_start_up_is_one_line_and_a_failure(tmp_path):
    from realserver import free_port
    srv = RealServer(tmp_path)
    env = dict(srv.env, PGSTORE_DSN=f"postgresql://postgres@127.0.0.1:{free_port()}/none",
               PGSTORE_LOCAL_PATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "cliproxy_mgmt", "serve", "--config", str(srv.config_path)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cliproxy-mgmt: cannot start: cannot use the PostgreSQL store"), lines


def test_database_lost_while_running(pair, pg_cluster, pg_dsn):
    a, b = pair
    with session() as s:
        assert s.post(a.url("/auth-files?name=x.json"), json={"type": "claude"}, timeout=30).status_code == 200
        wait_for(lambda: len(s.get(b.url("/auth-files"), timeout=30).json()["files"]) == 1)
        pg_cluster.stop()
        try:
            assert s.get(a.url("/request-retry"), timeout=30).json() == {"request-retry": 3}
            assert len(s.get(b.url("/auth-files"), timeout=30).json()["files"]) == 1
            r = s.put(a.url("/request-retry"), json={"value": 9}, timeout=30)
            assert r.status_code == 503 and r.json()["error"].startswith("storage unavailable"), r.text
            r = s.post(a.url("/auth-files?name=y.json"), json={"type": "claude"}, timeout=30)
            assert r.status_code == 503, r.text
            r = s.delete(a.url("/auth-files?name=x.json"), timeout=30)
            assert r.status_code == 503, r.text
            assert s.get(a.url("/request-retry"), timeout=30).json() == {"request-retry": 3}
            assert [f["name"] for f in s.get(a.url("/auth-files"), timeout=30).json()["files"]] == ["x.json"]
            assert "request-retry: 3" in a.root.joinpath("pgstore/config/config.yaml").read_text()
        finally:
            pg_cluster.start()
        # it reconnects by itself: writes work again and the other instance follows them
        wait_for(lambda: s.put(a.url("/request-retry"), json={"value": 9}, timeout=30).status_code == 200,
                 timeout=30)
        wait_for(lambda: s.get(b.url("/request-retry"), timeout=30).json()["request-retry"] == 9, timeout=10)


# Upstream's pgstore SQL (internal/store/postgresstore.go), as a Go proxy runs it.
GO_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS config_store (id TEXT PRIMARY KEY, content TEXT NOT NULL,
       created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW())""",
    """CREATE TABLE IF NOT EXISTS auth_store (id TEXT PRIMARY KEY, content JSONB NOT NULL,
       created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW())""",
    """CREATE TABLE IF NOT EXISTS cooldown_store (auth_id TEXT NOT NULL, model TEXT NOT NULL DEFAULT '',
       content JSONB NOT NULL, deleted BOOLEAN NOT NULL DEFAULT FALSE,
       created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
       PRIMARY KEY (auth_id, model))""",
]
GO_UPSERT = """INSERT INTO {table} (id, content, created_at, updated_at) VALUES (%s, %s, NOW(), NOW())
    ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, updated_at = NOW()"""


def _columns(conn, table):
    return conn.execute("""SELECT column_name, data_type FROM information_schema.columns
        WHERE table_name = %s ORDER BY ordinal_position""", (table,)).fetchall()


def test_rows_written_by_upstreams_pgstore_are_read(tmp_path, pg_dsn, servers):
    from realserver import config_text
    go_config = config_text(1) + "# written by the Go proxy\n"
    with psycopg.connect(pg_dsn) as conn:
        for statement in GO_SCHEMA:
            conn.execute(statement)
        conn.execute(GO_UPSERT.format(table="config_store"), ("config", go_config))
        for rel_id, body in (("gemini-a.json", {"type": "gemini", "email": "a@example.com"}),
                             ("team/codex-b.json", {"type": "codex"})):
            conn.execute(GO_UPSERT.format(table="auth_store"), (rel_id, json.dumps(body)))
        before = {t: _columns(conn, t) for t in ("config_store", "auth_store", "cooldown_store")}
    a = pg_server(tmp_path / "a", pg_dsn)
    servers.append(a)
    a.start()
    with session() as s:
        files = s.get(a.url("/auth-files"), timeout=30).json()["files"]
        assert [(f["name"], f["email"]) for f in files] == [("gemini-a.json", "a@example.com")]
        assert s.get(a.url("/api-keys"), timeout=30).json() == {"api-keys": ["seed-key-1", "seed-key-2"]}
    mirror = a.root / "pgstore"
    assert (mirror / "config/config.yaml").read_text() == go_config
    assert json.loads((mirror / "auths/team/codex-b.json").read_text()) == {"type": "codex"}
    with psycopg.connect(pg_dsn) as conn:  # nothing of theirs was altered
        assert {t: _columns(conn, t) for t in before} == before
        # a Go proxy saving its whole file is followed like any other change
        conn.execute(GO_UPSERT.format(table="config_store"), ("config", go_config.replace("request-retry: 3",
                                                                                          "request-retry: 5")))
        conn.execute("DELETE FROM auth_store WHERE id = %s", ("team/codex-b.json",))
    with session() as s:
        wait_for(lambda: s.get(a.url("/request-retry"), timeout=30).json()["request-retry"] == 5)
    wait_for(lambda: not (mirror / "auths/team/codex-b.json").exists())


def test_rows_we_write_are_what_upstreams_pgstore_reads(pair, pg_dsn):
    a, _ = pair
    body = {"type": "gemini", "email": "b@example.com", "project_id": "p"}
    with session() as s:
        assert s.post(a.url("/auth-files?name=gemini-b.json"), json=body, timeout=30).status_code == 200
        assert s.put(a.url("/request-retry"), json={"value": 4}, timeout=30).status_code == 200
    with psycopg.connect(pg_dsn) as conn:
        for statement in GO_SCHEMA:  # what a Go proxy runs at start-up: all no-ops now
            conn.execute(statement)
        assert _columns(conn, "config_store") == [("id", "text"), ("content", "text"),
                                                  ("created_at", "timestamp with time zone"),
                                                  ("updated_at", "timestamp with time zone")]
        assert _columns(conn, "auth_store")[1] == ("content", "jsonb")
        content = conn.execute("SELECT content FROM config_store WHERE id = %s", ("config",)).fetchone()[0]
        assert yaml.safe_load(content)["request-retry"] == 4 and "# Management API settings" in content
        rows = conn.execute("SELECT id, content::text, created_at, updated_at FROM auth_store ORDER BY id").fetchall()
        assert [(r[0], json.loads(r[1])) for r in rows] == [("gemini-b.json", body)]
        assert rows[0][2] is not None and rows[0][3] >= rows[0][2]


def test_a_schema_prefixes_the_tables(tmp_path, pg_dsn, servers):
    srvs = []
    for name in ("a", "b"):
        srv = pg_server(tmp_path / name, pg_dsn)
        srv.env["PGSTORE_SCHEMA"] = "Team A"
        servers.append(srv)
        srvs.append(srv.start())
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("""SELECT count(*) FROM information_schema.tables
            WHERE table_schema = 'Team A' AND table_name IN ('config_store', 'auth_store')""").fetchone()[0] == 2
        assert conn.execute("SELECT to_regclass('public.config_store')").fetchone()[0] is None
    with session() as s:
        assert s.put(srvs[0].url("/request-retry"), json={"value": 6}, timeout=30).status_code == 200
        wait_for(lambda: s.get(srvs[1].url("/request-retry"), timeout=30).json()["request-retry"] == 6)


def _storage(tmp_path, dsn, name):
    from cliproxy_mgmt.storage.postgres import PostgresStorage
    seed = tmp_path / f"{name}.yaml"
    seed.write_text("debug: false\n")
    return PostgresStorage(dsn, schema="", root=str(tmp_path / name / "pgstore"), seed_path=str(seed))


@pytest.mark.parametrize("locked", [False, True], ids=["save", "read-modify-write"])
def test_a_save_never_writes_over_a_later_one_the_mirror_shows(tmp_path, pg_dsn, locked):
    """A save is mirrored after its commit. If another instance saved the same file in
    between and the listener mirrored that later row first, the mirror keeps the later row:
    our older bytes written over it stayed until the next poll, or for good when the
    listener recorded the later version before our write landed."""
    a = _storage(tmp_path, pg_dsn, "a")
    path = Path(a.auth_dir, "x.json")
    later = {"type": "codex", "note": "saved later, elsewhere"}
    try:
        a.auths.save(a.auth_dir, "x.json", b'{"type": "codex", "note": "first"}')
        mirror_after_commit = a.auths._saved

        def another_instance_saves_first(rel_id, *rest):
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                conn.execute("UPDATE auth_store SET content = %s::jsonb, updated_at = NOW() WHERE id = %s",
                             (json.dumps(later), rel_id))
            wait_for(lambda: json.loads(path.read_bytes()) == later)  # the listener's copy
            mirror_after_commit(rel_id, *rest)

        a.auths._saved = another_instance_saves_first
        ours = b'{"type": "codex", "note": "ours"}'
        if locked:
            with a.auths.exclusive(a.auth_dir, "x.json"):
                a.auths.save(a.auth_dir, "x.json", ours)
        else:
            a.auths.save(a.auth_dir, "x.json", ours)
        assert json.loads(path.read_bytes()) == later
        with psycopg.connect(pg_dsn) as conn:
            updated = conn.execute("SELECT updated_at FROM auth_store WHERE id = 'x.json'").fetchone()[0]
        assert a._auth_versions["x.json"] == updated  # (so the poll has nothing left to put right)
    finally:
        a.close()


@pytest.mark.parametrize("locked", [False, True], ids=["write", "read-modify-write"])
def test_a_config_write_never_replaces_a_later_one_already_in_force(tmp_path, pg_dsn, locked):
    """As for auth files: a config write is put in force after its commit. If another
    instance wrote the config in between and the listener put that later text in force
    first, the later text stays in force (and in the mirror file)."""
    a = _storage(tmp_path, pg_dsn, "a")
    later = "debug: true\n# written later, elsewhere\n"
    try:
        in_force_after_commit = a.config._installed

        def another_instance_writes_first(*args):
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                conn.execute("UPDATE config_store SET content = %s, updated_at = NOW() WHERE id = 'config'",
                             (later,))
            wait_for(lambda: a.config.read()[0] == later)  # the listener put it in force
            in_force_after_commit(*args)

        a.config._installed = another_instance_writes_first
        ours = "debug: false\n# ours\n"
        if locked:
            with a.config.exclusive():
                a.config.write(ours, a.config.read()[1])
        else:
            a.config.write(ours, None)
        assert a.config.read()[0] == later
        assert Path(a.config_path).read_text() == later
    finally:
        a.close()


def test_a_row_the_listener_read_while_a_write_of_ours_went_in_is_read_again(tmp_path, pg_dsn):
    """The listener leaves out a config row it read while a write of ours was put in force
    (the row may be older than ours). When the row was a later write from elsewhere, and
    the notifications of both writes came in the batch it was reading for, it reads again:
    else our older text stayed in force until the next poll."""
    a = _storage(tmp_path, pg_dsn, "a")
    later = "debug: true\n# written later, elsewhere\n"
    read_later, ours_in_force = threading.Event(), threading.Event()
    try:
        read_row, in_force_after_commit = a._config_row, a.config._installed

        def listener_reads_slowly(conn, *args, **kwargs):
            row = read_row(conn, *args, **kwargs)
            if threading.current_thread().name == "pgstore-listener" and row and row[0] == later:
                read_later.set()
                ours_in_force.wait(5)  # ... and puts it in force only after our write
            return row

        def another_instance_writes_first(*args):
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                conn.execute("UPDATE config_store SET content = %s, updated_at = NOW() WHERE id = 'config'",
                             (later,))
            assert read_later.wait(5)
            in_force_after_commit(*args)
            ours_in_force.set()

        a._config_row, a.config._installed = listener_reads_slowly, another_instance_writes_first
        a.config.write("debug: false\n# ours\n", None)
        wait_for(lambda: a.config.read()[0] == later)
    finally:
        ours_in_force.set()
        a.close()


def test_bans_are_counted_across_instances(tmp_path, pg_dsn):
    a, b = _storage(tmp_path, pg_dsn, "a"), _storage(tmp_path, pg_dsn, "b")
    try:
        for n in range(4):
            (a if n % 2 else b).bans.failure("203.0.113.9")
        assert a.bans.remaining("203.0.113.9") == 0
        a.bans.failure("203.0.113.9")  # the fifth wrong key, wherever it is tried
        assert 29 * 60 < b.bans.remaining("203.0.113.9") <= 30 * 60
        assert a.bans.remaining("198.51.100.1") == 0
    finally:
        a.close()
        b.close()


def test_a_login_started_on_one_instance_completes_through_the_others_callback(tmp_path, pg_dsn, servers):
    from fake_provider import FakeProvider, reply
    with FakeProvider() as fake:
        fake.route("/claude/token", reply(200, {
            "access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600,
            "account": {"email_address": "user@example.com"}, "organization": {"uuid": "org"}}))
        a = pg_server(tmp_path / "a", pg_dsn, extra=fake.endpoints_yaml({"anthropic": {"token": "/claude/token"}}))
        servers.append(a)
        a.start()
        b = pg_server(tmp_path / "b", pg_dsn)
        servers.append(b)
        b.start()
        with session() as s:
            state = s.get(a.url("/anthropic-auth-url"), timeout=30).json()["state"]
            assert s.get(b.url("/get-auth-status"), params={"state": state}, timeout=30).json() == {"status": "wait"}
            r = s.post(b.url("/oauth-callback"), json={"provider": "anthropic", "state": state, "code": "c"}, timeout=30)
            assert r.json() == {"status": "ok"}, r.text
            wait_for(lambda: s.get(b.url("/get-auth-status"), params={"state": state}, timeout=30).json()
                     == {"status": "ok"}, timeout=5)
            wait_for(lambda: [f["name"] for f in s.get(b.url("/auth-files"), timeout=30).json()["files"]]
                     == ["claude-user@example.com.json"])
        assert len(fake.requests_to("/claude/token")) == 1


def test_auth_file_edits_on_two_instances_lose_nothing(pair, pg_dsn):
    """Each round, A sets `prefix` and B sets `proxy_url` of one file at the same moment;
    after the round the row holds both (a read-modify-write on a stale copy would not)."""
    a, b = pair
    with session() as s:
        assert s.post(a.url("/auth-files?name=shared.json"), json={"type": "codex"}, timeout=30).status_code == 200
        wait_for(lambda: len(s.get(b.url("/auth-files"), timeout=30).json()["files"]) == 1)
    rounds, start, done = 30, threading.Barrier(3), threading.Barrier(3)
    failures, lost = [], []

    def edit(srv, field):
        with session() as s:
            for n in range(rounds):
                start.wait(30)
                r = s.patch(srv.url("/auth-files/fields"), json={"name": "shared.json", field: f"{field}-{n}"},
                            timeout=30)
                if r.status_code != 200:
                    failures.append(r.text)
                done.wait(30)
    threads = [threading.Thread(target=edit, args=(a, "prefix")), threading.Thread(target=edit, args=(b, "proxy_url"))]
    for t in threads:
        t.start()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for n in range(rounds):
            start.wait(30)
            done.wait(30)
            content = conn.execute("SELECT content FROM auth_store WHERE id = 'shared.json'").fetchone()[0]
            if (content.get("prefix"), content.get("proxy_url")) != (f"prefix-{n}", f"proxy_url-{n}"):
                lost.append(content)
    for t in threads:
        t.join(60)
    assert not failures and not lost, (failures, lost[:3])
    with session() as s:
        for srv in (a, b):
            wait_for(lambda: json.loads(s.get(srv.url("/auth-files/download?name=shared.json"), timeout=30).content)
                     == content)


def test_usage_statistics_are_shared_and_read_as_with_the_file(pair, tmp_path, servers):
    a, b = pair
    plain = RealServer(tmp_path / "plain")  # the SQLite file, for comparison
    servers.append(plain)
    plain.start()

    def detail(ts, total, failed=False):
        return {"timestamp": ts, "source": "src", "auth_index": "idx", "failed": failed,
                "tokens": {"input_tokens": 1, "output_tokens": 1, "reasoning_tokens": 0,
                           "cached_tokens": 0, "total_tokens": total}}
    payload = {"version": 1, "usage": {"apis": {
        "key-b": {"models": {"m2": {"details": [detail("2026-01-11T00:10:00Z", 5, True)]}}},
        "key-a": {"models": {"m1": {"details": [detail("2026-01-10T23:30:00-02:00", 2),
                                                detail("2026-01-11T00:10:00.5Z", 3)]},
                             "M0": {"details": [detail("2026-01-12T08:00:00+05:30", 4)]}}}}}}
    with session() as s:
        answers = [s.post(srv.url("/usage/import"), json=payload, timeout=30).json() for srv in (a, plain)]
        assert answers[0] == answers[1] == {"added": 4, "failed_requests": 1, "skipped": 0, "total_requests": 4}
        assert s.post(b.url("/usage/import"), json=payload, timeout=30).json()["skipped"] == 4  # shared
        expected = s.get(plain.url("/usage"), timeout=30).json()
        assert s.get(b.url("/usage"), timeout=30).json() == expected
        assert s.get(b.url("/usage/export"), timeout=30).json()["usage"] == expected["usage"]


def test_the_slow_poll_catches_what_no_notification_told(pair, pg_dsn):
    """TRUNCATE fires no row trigger: the poll still brings the instances in line."""
    from cliproxy_mgmt.storage.postgres import POLL_SECONDS
    a, b = pair
    with session() as s:
        assert s.post(a.url("/auth-files?name=gone.json"), json={"type": "codex"}, timeout=30).status_code == 200
        wait_for(lambda: len(s.get(b.url("/auth-files"), timeout=30).json()["files"]) == 1)
        with psycopg.connect(pg_dsn) as conn:
            conn.execute("TRUNCATE auth_store")
        for srv in (a, b):
            wait_for(lambda: s.get(srv.url("/auth-files"), timeout=30).json()["files"] == [], timeout=POLL_SECONDS + 2)


def test_a_fifo_in_the_mirror_does_not_stop_the_instance_following(pair):
    """The listener compares a row with the mirror file before it writes one: a FIFO at that
    name must not block it (opening a FIFO waits for a writer), so later changes still arrive."""
    import os
    a, b = pair
    os.mkfifo(b.root / "pgstore" / "auths" / "f.json")
    with session() as s:
        assert s.post(a.url("/auth-files?name=f.json"), json={"type": "codex"}, timeout=30).status_code == 200
        wait_for(lambda: (b.root / "pgstore" / "auths" / "f.json").is_file())
        assert json.loads((b.root / "pgstore" / "auths" / "f.json").read_text()) == {"type": "codex"}
        assert s.put(a.url("/debug"), json={"value": True}, timeout=30).status_code == 200
        wait_for(lambda: s.get(b.url("/debug"), timeout=30).json() == {"debug": True})


def _names(s, srv) -> list[str]:
    return [f["name"] for f in s.get(srv.url("/auth-files"), timeout=30).json()["files"]]


def _row(dsn: str, rel_id: str):
    with psycopg.connect(dsn) as conn:
        found = conn.execute("SELECT content FROM auth_store WHERE id = %s", (rel_id,)).fetchone()
    return found and found[0]


def test_a_file_put_into_the_mirror_by_hand_is_stored_and_reaches_the_others(pair, pg_dsn):
    """As a Go proxy stores a file that appears in its auth-dir: the poll adopts it as its
    row (the other instances then mirror it); a file that is no JSON object stays as it is."""
    from cliproxy_mgmt.storage.postgres import POLL_SECONDS
    a, b = pair
    body = {"type": "codex", "email": "hand@example.com", "refresh_token": "rt"}
    mirror = a.root / "pgstore" / "auths"
    (mirror / "hand.json").write_text(json.dumps(body))
    (mirror / "team").mkdir()
    (mirror / "team" / "nested.json").write_text(json.dumps({"type": "gemini"}))
    (mirror / "broken.json").write_text("{not json")
    (mirror / "list.json").write_text("[1, 2]")
    (mirror / "notes.txt").write_text("kept")
    with session() as s:
        wait_for(lambda: "hand.json" in _names(s, b), timeout=POLL_SECONDS + 2)
        assert json.loads(s.get(b.url("/auth-files/download?name=hand.json"), timeout=30).content) == body
    assert _row(pg_dsn, "hand.json") == body
    wait_for(lambda: (b.root / "pgstore/auths/team/nested.json").is_file())
    assert _row(pg_dsn, "broken.json") is None and _row(pg_dsn, "list.json") is None
    assert (mirror / "broken.json").read_text() == "{not json" and (mirror / "notes.txt").read_text() == "kept"
    wait_for(lambda: "broken.json has no row and cannot be stored" in a.log())
    time.sleep(POLL_SECONDS)  # logged once, not at every poll
    assert a.log().count("broken.json has no row and cannot be stored") == 1


def test_a_file_put_into_the_mirror_while_stopped_is_kept_and_stored_at_start(pair, pg_dsn):
    """At start-up a file no row stands for is adopted, unless this instance mirrored it
    before: then its row was deleted elsewhere meanwhile, and the file goes."""
    a, b = pair
    mirror = a.root / "pgstore" / "auths"
    with session() as s:
        assert s.post(b.url("/auth-files?name=deleted.json"), json={"type": "codex"}, timeout=30).status_code == 200
        wait_for(lambda: (mirror / "deleted.json").is_file())
        time.sleep(0.2)
        a.stop()
        assert s.delete(b.url("/auth-files?name=deleted.json"), timeout=30).status_code == 200
        (mirror / "hand.json").write_text(json.dumps({"type": "claude", "email": "offline@example.com"}))
        (mirror / "broken.json").write_text("{not json")
        a.start()
        assert sorted(_names(s, a)) == ["broken.json", "hand.json"]
        assert not (mirror / "deleted.json").exists()
        assert (mirror / "broken.json").read_text() == "{not json"
        assert _row(pg_dsn, "hand.json") == {"type": "claude", "email": "offline@example.com"}
        wait_for(lambda: _names(s, b) == ["hand.json"])


def test_a_status_change_of_a_hand_placed_file_stores_it_instead_of_deleting_it(pair, pg_dsn):
    a, b = pair
    path = a.root / "pgstore" / "auths" / "placed.json"
    path.write_text(json.dumps({"type": "codex", "email": "placed@example.com"}))
    with session() as s:
        r = s.patch(a.url("/auth-files/status"), json={"name": "placed.json", "disabled": True}, timeout=30)
        assert r.status_code == 200, r.text
        assert json.loads(path.read_text())["disabled"] is True
        assert _row(pg_dsn, "placed.json") == {"type": "codex", "email": "placed@example.com", "disabled": True}
        wait_for(lambda: [f.get("disabled") for f in s.get(b.url("/auth-files"), timeout=30).json()["files"]]
                 == [True])
        broken = path.with_name("broken.json")  # not stored, and not deleted either
        broken.write_text("{not json")
        r = s.patch(a.url("/auth-files/status"), json={"name": "broken.json", "disabled": True}, timeout=30)
        assert 400 <= r.status_code < 500 and "error" in r.json(), r.text
        assert broken.read_text() == "{not json" and _row(pg_dsn, "broken.json") is None


def test_a_row_changed_in_sql_without_a_new_updated_at_is_seen_by_both(pair, pg_dsn):
    a, b = pair
    with session() as s:
        assert s.post(a.url("/auth-files?name=x.json"), json={"type": "codex"}, timeout=30).status_code == 200
        wait_for(lambda: _names(s, b) == ["x.json"])
        with psycopg.connect(pg_dsn) as conn:
            conn.execute("""UPDATE auth_store SET content = content || '{"disabled": true}' WHERE id = 'x.json'""")
        for srv in (a, b):
            wait_for(lambda: [f.get("disabled") for f in s.get(srv.url("/auth-files"), timeout=30).json()["files"]]
                     == [True])
            assert json.loads((srv.root / "pgstore/auths/x.json").read_text()) == {"type": "codex", "disabled": True}


def test_a_mirror_file_deleted_by_hand_comes_back_from_its_row(pair):
    from cliproxy_mgmt.storage.postgres import POLL_SECONDS
    a, b = pair
    with session() as s:
        assert s.post(a.url("/auth-files?name=y.json"), json={"type": "codex"}, timeout=30).status_code == 200
        wait_for(lambda: _names(s, b) == ["y.json"])
        (b.root / "pgstore/auths/y.json").unlink()
        wait_for(lambda: _names(s, b) == ["y.json"], timeout=POLL_SECONDS + 2)
        assert _names(s, a) == ["y.json"]
