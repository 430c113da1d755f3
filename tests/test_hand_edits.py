"""Hand edits of config.yaml survive while the API writes (compare-and-swap on the file).

A real server process; one client PATCHes `api-keys` in a loop as fast as it can, while the
test edits the file by hand, twelve times each way: saved by rename (what editors do) and
appended in place. Each hand edit must be in the file a second later, and the API's writes
must go on: a write that lost the race was re-applied on top of the edit, not over it.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
import yaml

from cliproxy_mgmt.config.store import ConfigStore
from realserver import RealServer, session

TRIES = 12


@pytest.fixture
def server(tmp_path):
    srv = RealServer(tmp_path).start()
    yield srv
    srv.stop()


def _patch_loop(server, stop: threading.Event, done: list) -> None:
    with session() as s:
        n = 0
        while not stop.is_set():
            old, new = f"loop-{n}" if n else "seed-key-2", f"loop-{n + 1}"
            r = s.patch(server.url("/api-keys"), json={"old": old, "new": new}, timeout=30)
            assert r.status_code == 200, r.text
            n += 1
        done.append(n)


def _by_rename(path, marker: str) -> None:
    # Like an editor that checks the file was not changed since it read it before saving
    # over it: a rename based on an older read would throw away an API write that landed in
    # between (the editor's loss, which no server can prevent; at hundreds of writes a
    # second the loop would often hit that window).
    tmp = path.with_name(".hand-edit.tmp")
    while True:
        before = os.stat(path)
        text = path.read_text()
        tmp.write_text(text + f"# {marker}\n")
        now = os.stat(path)
        if (now.st_ino, now.st_size, now.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns):
            os.replace(tmp, path)
            return


def _by_append(path, marker: str) -> None:
    with open(path, "a") as f:
        f.write(f"# {marker}\n")


@pytest.mark.parametrize("edit", [_by_rename, _by_append], ids=["rename", "append"])
def test_hand_edits_survive_a_patch_loop(server, edit):
    stop, done = threading.Event(), []
    writer = threading.Thread(target=_patch_loop, args=(server, stop, done))
    writer.start()
    lost = []
    try:
        for n in range(TRIES):
            marker = f"hand edit {edit.__name__} {n}"
            time.sleep(0.05)
            edit(server.config_path, marker)
            time.sleep(1.0)
            if marker not in server.config_path.read_text():
                lost.append(marker)
    finally:
        stop.set()
        writer.join(60)
    assert done and done[0] > TRIES, "the PATCH loop did not run"
    assert not lost, f"{len(lost)} of {TRIES} hand edits were thrown away: {lost}"
    keys = yaml.safe_load(server.config_path.read_text())["api-keys"]
    assert keys == ["seed-key-1", f"loop-{done[0]}"]


def test_an_edit_landing_before_the_swap_is_reapplied_on_top(tmp_path):
    """The store's write finds the file changed since the edit began: it loads the hand
    edit and applies its change again on it, once."""
    path = tmp_path / "config.yaml"
    path.write_text("debug: false\napi-keys:\n  - a\n")
    store = ConfigStore(str(path))
    calls = []

    def change(d):
        calls.append(1)
        if len(calls) == 1:  # a hand edit lands while this first attempt is rendered
            path.write_text("# by hand\ndebug: false\napi-keys:\n  - a\n  - by-hand\n")
        d["api-keys"].append("by-api")

    store.edit(change)
    assert len(calls) == 2
    assert path.read_text() == "# by hand\ndebug: false\napi-keys:\n  - a\n  - by-hand\n  - by-api\n"
    assert store.data["api-keys"] == ["a", "by-hand", "by-api"]


def test_the_audit_log_names_a_hand_edit(server):
    server.config_path.write_text(server.config_path.read_text().replace("request-retry: 3", "request-retry: 7"))
    with session() as s:
        deadline = time.monotonic() + 10
        while s.get(server.url("/request-retry"), timeout=30).json() != {"request-retry": 7}:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert "changed by a hand edit of the file: request-retry" in server.log_path.read_text()
