"""Usage statistics survive a restart of the real server (docs/decisions.md), and a SIGKILL."""

from __future__ import annotations

import json
import signal

import pytest

from realserver import RealServer, session

DETAILS = [{"timestamp": f"2026-01-10T09:0{n}:00Z", "source": "s", "auth_index": "i",
            "failed": n == 2, "tokens": {"input_tokens": n, "output_tokens": 1,
                                         "reasoning_tokens": 0, "cached_tokens": 0,
                                         "total_tokens": 0}} for n in range(4)]
SNAPSHOT = {"version": 1, "usage": {"apis": {"client-key-1": {"models": {
    "model-a": {"details": DETAILS[:3]}, "model-b": {"details": DETAILS[3:]}}}}}}


@pytest.fixture
def server(tmp_path):
    srv = RealServer(tmp_path, extra="usage-statistics-enabled: true\n").start()
    yield srv
    srv.stop()


def usage(srv) -> dict:
    with session() as s:
        r = s.get(srv.url("/usage"), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def import_(srv, payload) -> dict:
    with session() as s:
        r = s.post(srv.url("/usage/import"), data=json.dumps(payload), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_usage_survives_a_restart(server, stop):
    assert import_(server, SNAPSHOT)["added"] == 4
    before = usage(server)
    assert before["usage"]["total_requests"] == 4 and before["failed_requests"] == 1

    server.kill(stop)
    server.start()
    assert usage(server) == before
    assert (server.config_path.parent / "usage-statistics.sqlite3").exists()
    # What was kept still de-duplicates a second import of the same details.
    assert import_(server, SNAPSHOT) == {"added": 0, "failed_requests": 1, "skipped": 4,
                                         "total_requests": 4}


def test_a_usage_file_removed_while_running_takes_no_more_writes(server):
    """An import after the file is removed answers a JSON 503 and writes nothing (not into the
    unlinked file, not into a new one); the store warns once, without a traceback (each 503
    has its error line, as a read's has); the next start begins a new file."""
    assert import_(server, SNAPSHOT)["added"] == 4
    path = server.config_path.parent / "usage-statistics.sqlite3"
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        name.unlink(missing_ok=True)
    later = {"version": 1, "usage": {"apis": {"client-key-2": {"models": {"m": {"details": DETAILS}}}}}}
    with session() as s:
        for _ in range(2):
            r = s.post(server.url("/usage/import"), data=json.dumps(later), timeout=10)
            assert r.status_code == 503
            assert r.json()["error"].startswith("storage unavailable: usage statistics: ")
        assert s.get(server.url("/usage"), timeout=10).status_code == 503
    assert not path.exists()
    log = server.log()
    warnings = [line for line in log.splitlines() if " WARNING " in line]
    assert len(warnings) == 1 and "usage-statistics.sqlite3 was removed or replaced" in warnings[0]
    assert "Traceback" not in log
    server.stop()
    server.start()
    assert usage(server)["usage"]["total_requests"] == 0
