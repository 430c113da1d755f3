"""The PostgreSQL backend: upstream's pgstore tables, several instances live on one database.

Real PostgreSQL (tests/pg.py starts a throw-away cluster) and real server processes. Each
test gets a database of its own; two instances have their own ports and mirror folders.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

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
