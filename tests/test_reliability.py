"""Reliability of config writes on the real server process (issue 6, part 4).

* Concurrent writers lose nothing: 8 client threads x 250 changes against waitress with 8
  worker threads. Each writer owns one item of `api-keys` and replaces it with its next
  value (`PATCH {"old", "new"}`); writers 0-3 also own a scalar setting. A lost update
  would revert a writer's item, and its next PATCH would then append instead of replace,
  so the final list is exact only if no change was lost.
* SIGKILL during writes, 50 times: after every kill the file is byte-for-byte a state the
  server could have written (never half-written), no acknowledged change is missing, and
  the server starts on it again.
* A config the process cannot write (an immutable file, a read-only bind mount of the
  folder or of the single file) answers 500 `failed to save config: ...`, and memory and
  file keep the old values. Tests run as root, and root ignores file modes, so mode bits
  would prove nothing; `chattr +i` and read-only mounts stop root too.
"""

from __future__ import annotations

import io
import os
import random
import re
import subprocess
import threading
import time

import pytest
import requests
import yaml

from cliproxy_mgmt.config.store import ConfigStore, SaveError, Unrepresentable, remove_stale_temp_files
from realserver import KEY, SEED_KEYS, RealServer, config_text, session

WRITERS = 8
CHANGES = 250
SCALARS = {0: "request-retry", 1: "max-retry-interval", 2: "logs-max-total-size-mb",
           3: "error-logs-max-files"}  # writer -> the scalar setting it also owns
KILLS = 50
IN_PLACE_KILLS = 15  # a single-file bind mount: the same checks, fewer rounds to stay quick
KILL_WRITERS = 3
TEMP_FILE = re.compile(r"^\.config\.yaml\..+\.tmp$")


def slot(writer: int, n) -> str:
    return f"writer-{writer}-{n}"


def comment_gap(text: str) -> str:
    """`text` with the gap before a trailing comment normalised (ruamel keeps the comment's
    column when a shorter value is written, so that gap may change)."""
    return re.sub(r'" +#', '" #', text)


def temp_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMP_FILE.match(p.name))


@pytest.fixture
def servers():
    started: list[RealServer] = []
    yield started
    for server in started:
        server.kill()


# -- concurrent writers ----------------------------------------------------------------

def test_concurrent_writers_lose_nothing(tmp_path, servers):
    server = RealServer(tmp_path, threads=8,
                        api_keys=SEED_KEYS + tuple(slot(w, "start") for w in range(WRITERS)))
    servers.append(server)
    server.start()
    acked = [0] * WRITERS
    failures: list[str] = []
    done = threading.Event()
    torn_reads: list[list] = []

    def writer(w: int):
        current = slot(w, "start")
        with session() as s:
            for n in range(CHANGES):
                if w in SCALARS and n % 2:
                    r = s.put(server.url("/" + SCALARS[w]), json={"value": n}, timeout=60)
                else:
                    r = s.patch(server.url("/api-keys"), json={"old": current, "new": slot(w, n)},
                                timeout=60)
                    current = slot(w, n)
                if r.status_code != 200 or r.json() != {"status": "ok"}:
                    failures.append(f"writer {w} change {n}: {r.status_code} {r.text}")
                    return
                acked[w] += 1

    def reader():
        # Every GET sees a whole state: the seeds and exactly one item per writer, in place.
        with session() as s:
            while not done.is_set():
                keys = s.get(server.url("/api-keys"), timeout=60).json()["api-keys"]
                owners = [k.split("-")[1] for k in keys[len(SEED_KEYS):]]
                if keys[:len(SEED_KEYS)] != list(SEED_KEYS) or owners != [str(w) for w in range(WRITERS)]:
                    torn_reads.append(keys)
                time.sleep(0.01)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    watcher = threading.Thread(target=reader)
    for t in threads + [watcher]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()

    assert not failures, failures[:5]
    assert sum(acked) == WRITERS * CHANGES
    assert not torn_reads, torn_reads[:2]

    last = {w: max(n for n in range(CHANGES) if not (w in SCALARS and n % 2)) for w in range(WRITERS)}
    last_scalar = {w: max(n for n in range(CHANGES) if n % 2) for w in SCALARS}
    expected_keys = list(SEED_KEYS) + [slot(w, last[w]) for w in range(WRITERS)]
    on_disk = yaml.safe_load(server.config_path.read_text())
    lost = sum(1 for k in expected_keys if k not in on_disk["api-keys"])
    lost += len(on_disk["api-keys"]) - len(set(on_disk["api-keys"]) & set(expected_keys))
    lost += sum(1 for w, key in SCALARS.items() if on_disk.get(key) != last_scalar[w])
    print(f"\nconcurrent writers: {WRITERS} x {CHANGES} changes, {sum(acked)} acknowledged, "
          f"writes lost: {lost}")
    assert lost == 0
    assert on_disk["api-keys"] == expected_keys
    assert "# first client" in server.config_path.read_text()

    with session() as s:
        assert s.get(server.url("/api-keys"), timeout=30).json() == {"api-keys": expected_keys}
        for w, key in SCALARS.items():
            assert s.get(server.url("/" + key), timeout=30).json() == {key: last_scalar[w]}
    assert temp_files(server.config_path.parent) == []


# -- SIGKILL during writes -----------------------------------------------------------------

@pytest.fixture
def file_bind_mount():
    """Bind-mount a file onto itself (as `docker run -v ./config.yaml:...` does); undone at teardown."""
    mounted = []

    def mount(path):
        done = _run(["mount", "--bind", path, path])
        if done.returncode != 0:
            pytest.skip(f"cannot bind-mount a file here: {done.stderr.strip()}")
        mounted.append(path)

    yield mount
    for path in mounted:
        _run(["umount", path])


@pytest.mark.parametrize("how, kills", [("plain", KILLS), ("bind-mount", IN_PLACE_KILLS)])
def test_sigkill_during_writes_never_corrupts(tmp_path, servers, file_bind_mount, how, kills):
    """Kill the server while 3 clients write; check the file after every kill.

    Every save rewrites the file in place, with a journal of the old text; `bind-mount`
    runs the same on a single-file bind mount (where a rename would be refused with EBUSY).
    """
    initial = tuple(slot(w, "start") for w in range(KILL_WRITERS))
    server = RealServer(tmp_path, config_dir="conf", threads=4, args=["--local-password", KEY],
                        api_keys=initial)
    servers.append(server)
    if how == "bind-mount":
        file_bind_mount(server.config_path)

    rng = random.Random(6)
    corrupt, lost, acknowledged, cut_mid_write = [], 0, 0, 0
    items = list(initial)
    for kill in range(kills):
        server.start()
        acked = list(items)  # per writer: the value on disk or last acknowledged
        counts = [0] * KILL_WRITERS
        stop = threading.Event()

        def writer(w: int):
            current = items[w]
            with session() as s:
                for n in range(1_000_000):
                    if stop.is_set():
                        return
                    new = slot(w, f"{kill}.{n}")
                    try:
                        r = s.patch(server.url("/api-keys"), json={"old": current, "new": new}, timeout=30)
                    except requests.RequestException:
                        return  # the server died under us
                    assert r.status_code == 200, r.text
                    current = acked[w] = new
                    counts[w] += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(KILL_WRITERS)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.03, 0.15))
        server.kill()
        stop.set()
        for t in threads:
            t.join()
        acknowledged += sum(counts)
        journal = server.config_path.with_name(".config.yaml.journal")
        cut_mid_write += journal.exists() and journal.read_bytes().startswith(b"pending")

        text = server.config_path.read_text()
        try:
            items = yaml.safe_load(text)["api-keys"]
        except (yaml.YAMLError, TypeError, KeyError) as exc:
            corrupt.append(f"kill {kill}: {exc}\n{text}")
            break
        if len(items) != KILL_WRITERS or (comment_gap(text).rstrip("\n") != comment_gap(
                config_text(server.port, api_keys=tuple(items))).rstrip("\n")):
            # The original file with only the item lines changed (an in-place save cut
            # before its truncate may leave blank lines at the end), or corrupt.
            corrupt.append(f"kill {kill}: unexpected content\n{text}")
            break
        for w in range(KILL_WRITERS):
            # On disk: the last acknowledged value, or the next one if the kill cut off its answer.
            if acked[w].startswith(slot(w, f"{kill}.")):
                in_flight = slot(w, f"{kill}.{int(acked[w].rsplit('.', 1)[1]) + 1}")
            else:
                in_flight = slot(w, f"{kill}.0")
            lost += items[w] not in (acked[w], in_flight)

    leftovers = temp_files(server.config_path.parent)
    print(f"\nSIGKILL ({how}): {kill + 1} kills ({cut_mid_write} cut a save off: journal pending), "
          f"{acknowledged} writes acknowledged, corrupt files: {len(corrupt)}, "
          f"acknowledged writes lost: {lost}, temp files left: {len(leftovers)}")
    assert not corrupt, corrupt[0]
    assert lost == 0
    assert kill + 1 == kills

    # Leftovers are the store's own temp names only; once stale, the next start removes them.
    assert all(TEMP_FILE.match(name) for name in leftovers)
    an_hour_ago = time.time() - 3600
    for name in leftovers:
        os.utime(server.config_path.parent / name, (an_hour_ago, an_hour_ago))
    server.start()  # the last file is one the server loads
    with session() as s:
        assert s.get(server.url("/api-keys"), timeout=30).json() == {"api-keys": items}
    assert temp_files(server.config_path.parent) == []


# -- a config the process cannot write ---------------------------------------------------------

def _run(cmd) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True)


READ_ONLY = {
    # kind: (commands that make it read-only, command that undoes it); {file}/{dir} filled in
    "immutable-file": ([["chattr", "+i", "{file}"]], ["chattr", "-i", "{file}"]),
    "read-only-folder-mount": ([["mount", "--bind", "{dir}", "{dir}"],
                                ["mount", "-o", "remount,bind,ro", "{dir}"]], ["umount", "{dir}"]),
    # a single-file bind mount refuses rename (EBUSY): the store's in-place fallback runs
    "read-only-file-mount": ([["mount", "--bind", "{file}", "{file}"],
                              ["mount", "-o", "remount,bind,ro", "{file}"]], ["umount", "{file}"]),
}


@pytest.fixture
def read_only():
    """read_only(kind, path): make config `path` unwritable even for root; undone at teardown."""
    undo: list[list[str]] = []

    def make(kind: str, path):
        apply, revert = READ_ONLY[kind]
        fill = {"file": str(path), "dir": str(path.parent)}
        for n, cmd in enumerate(apply):
            done = _run([part.format(**fill) for part in cmd])
            if n == 0 and done.returncode == 0:
                undo.append([part.format(**fill) for part in revert])
            if done.returncode != 0:
                pytest.skip(f"{kind}: `{' '.join(cmd)}` failed here: {done.stderr.strip()}")
        with pytest.raises(OSError):  # the mechanism really stops this (root) process
            open(path, "a").close()
        return lambda: _run(undo.pop()) if undo else None

    yield make
    while undo:
        _run(undo.pop())


@pytest.mark.parametrize("kind", sorted(READ_ONLY))
def test_read_only_config_answers_500_and_keeps_memory(tmp_path, servers, read_only, kind):
    server = RealServer(tmp_path, config_dir="conf", args=["--local-password", KEY])
    servers.append(server)
    server.start()
    before = server.config_path.read_bytes()
    undo = read_only(kind, server.config_path)

    with session() as s:
        attempts = [
            s.patch(server.url("/api-keys"), json={"old": "seed-key-2", "new": "changed"}, timeout=30),
            s.put(server.url("/debug"), json={"value": True}, timeout=30),
            s.delete(server.url("/api-keys"), params={"index": "0"}, timeout=30),
            s.put(server.url("/config.yaml"), data=before.replace(b"request-retry: 3", b"request-retry: 9"),
                  timeout=30),
        ]
        for r in attempts:
            assert r.status_code == 500, r.text
            assert r.json()["error"].startswith("failed to save config: "), r.text
        print(f"\n{kind}: {attempts[0].json()['error']}")
        # memory kept the old values
        assert s.get(server.url("/api-keys"), timeout=30).json() == {"api-keys": list(SEED_KEYS)}
        assert s.get(server.url("/debug"), timeout=30).json() == {"debug": False}
        assert s.get(server.url("/request-retry"), timeout=30).json() == {"request-retry": 3}
        assert s.get(server.url("/config.yaml"), timeout=30).content == before
        assert server.config_path.read_bytes() == before
        assert temp_files(server.config_path.parent) == []

        undo()  # writable again: the same change now succeeds
        r = s.patch(server.url("/api-keys"), json={"old": "seed-key-2", "new": "changed"}, timeout=30)
        assert r.status_code == 200, r.text
        assert s.get(server.url("/api-keys"), timeout=30).json() == {"api-keys": ["seed-key-1", "changed"]}
    assert yaml.safe_load(server.config_path.read_text())["api-keys"] == ["seed-key-1", "changed"]


# -- the store fixes these tests led to ------------------------------------------------------------

def test_stale_temp_files_are_removed_at_start(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("debug: false\n")
    stale, fresh = tmp_path / ".config.yaml.ab_cd123.tmp", tmp_path / ".config.yaml.xy_z9876.tmp"
    others = [tmp_path / ".config.yaml.bak.tmp", tmp_path / ".other.yaml.ab_cd123.tmp",
              tmp_path / "config.yaml.ab_cd123.tmp"]
    for p in [stale, fresh] + others:
        p.write_text("debug: tru")
    old = time.time() - 3600
    for p in [stale] + others:
        os.utime(p, (old, old))
    ConfigStore(str(config))
    assert not stale.exists()
    assert fresh.exists()  # may be a save in flight in another process
    assert all(p.exists() for p in others)  # not names write_atomic makes
    assert remove_stale_temp_files(str(config), older_than=0) == [fresh.name]


def test_auth_file_temp_files_left_by_a_crash_are_removed_at_start(make_app, tmp_path):
    """An upload killed mid-save leaves `.tmp-XXXXXXXX.part` in auth-dir, holding a token:
    the next start removes it, and only it (a fresh one may be a save in flight)."""
    auths = tmp_path / "auths"
    auths.mkdir()
    stale, fresh = auths / ".tmp-ab_cd123.part", auths / ".tmp-xy_z9876.part"
    others = [auths / ".tmp-short.part", auths / "claude-a.json", auths / ".tmp-ab_cd123.json"]
    for p in [stale, fresh] + others:
        p.write_text('{"type": "claude", "access_token": "secret"}')
    old = time.time() - 3600
    for p in [stale] + others:
        os.utime(p, (old, old))
    make_app()
    assert not stale.exists()
    assert fresh.exists() and all(p.exists() for p in others)


def test_save_error_names_the_config_not_the_temp_file(tmp_path):
    folder = tmp_path / "etc"
    folder.mkdir()
    config = folder / "config.yaml"
    config.write_text("debug: false\n")
    store = ConfigStore(str(config))
    folder.rename(tmp_path / "gone")  # the temp file cannot be created
    with pytest.raises(SaveError) as failed:
        store.edit(lambda d: d.__setitem__("debug", True))
    assert failed.value.filename == str(config)
    assert ".tmp" not in str(failed.value)


def test_a_broken_edit_on_disk_is_not_overwritten(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("debug: false\napi-keys:\n  - a\n")
    store = ConfigStore(str(config))
    broken = "debug: false\napi-keys:\n  - a\n  - b\nrequest-retry: [unclosed\n"  # mid-edit
    config.write_text(broken)
    with pytest.raises(SaveError, match="does not load, so it was not overwritten"):
        store.edit(lambda d: d.__setitem__("debug", True))
    assert config.read_text() == broken and store.data["debug"] is False
    store.edit(lambda d: d.__setitem__("debug", False))  # a no-op still answers ok
    config.write_text("debug: false\napi-keys:\n  - a\n")  # the edit undone: same text as in force
    store.edit(lambda d: d.__setitem__("debug", True))
    assert store.data["debug"] is True and "debug: true" in config.read_text()
    config.write_text(broken)
    store.refresh(force=True)
    store.replace_text("debug: false\n")  # PUT /config.yaml is the deliberate fix
    store.edit(lambda d: d.__setitem__("debug", True))
    assert config.read_text() == "debug: true\n"


def test_server_keeps_a_broken_manual_edit(tmp_path, servers):
    server = RealServer(tmp_path, args=["--local-password", KEY])
    servers.append(server)
    server.start()
    broken = server.config_path.read_text().replace("debug: false", "debug: [unclosed")
    server.config_path.write_text(broken)
    with session() as s:
        r = s.patch(server.url("/api-keys"), json={"old": "seed-key-2", "new": "changed"}, timeout=30)
        assert r.status_code == 500 and r.json()["error"].startswith("failed to save config: "), r.text
        assert server.config_path.read_text() == broken
        assert s.get(server.url("/api-keys"), timeout=30).json() == {"api-keys": list(SEED_KEYS)}
        server.config_path.write_text(broken.replace("debug: [unclosed", "debug: true"))
        r = s.patch(server.url("/api-keys"), json={"old": "seed-key-2", "new": "changed"}, timeout=30)
        assert r.status_code == 200, r.text
    data = yaml.safe_load(server.config_path.read_text())
    assert data["debug"] is True and data["api-keys"] == ["seed-key-1", "changed"]


def test_in_place_write_interrupted_before_truncate_leaves_the_new_config(tmp_path):
    """Every config save rewrites the file in place: a crash between write and truncate."""
    from cliproxy_mgmt.storage import inplace

    config = tmp_path / "config.yaml"
    old = "debug: false\napi-keys:\n" + "".join(f"  - key-{n}\n" for n in range(50))
    config.write_text(old)
    new = "debug: true\napi-keys:\n  - key-0\n"

    class Crash(BaseException):
        pass

    class CrashingTruncate(io.FileIO):
        def truncate(self, size=None):
            raise Crash()  # the process dies here

    with CrashingTruncate(config, "r+b") as f, pytest.raises(Crash):
        inplace.overwrite(f, new.encode(), len(old), inplace.Edit.between(old.encode(), new.encode()))
    assert yaml.safe_load(config.read_text()) == yaml.safe_load(new)
    with open(config, "r+b", buffering=0) as f:
        now = config.read_bytes()
        inplace.overwrite(f, new.encode(), len(now), inplace.Edit.between(now, new.encode()))
    assert config.read_text() == new


EMPTIED = {
    # a comment on the key's line, then the container is emptied
    "list": ('api-keys: # the keys\n  - "a"\n  - "b" # c\nrequest-retry: 3\n',
             lambda d: d.__setitem__("api-keys", []), "# the keys"),
    "map": ('oauth-model-alias: # aliases\n  gemini:\n    - name: a\n      alias: b\nrequest-retry: 3\n',
            lambda d: d.__setitem__("oauth-model-alias", {}), "# aliases"),
    "nested list": ('ampcode:\n  model-mappings: # maps\n    - from: a\n      to: b # c\n  upstream-url: x\n'
                    'request-retry: 3\n', lambda d: d["ampcode"].__setitem__("model-mappings", []), "# maps"),
    "item field": ('gemini-api-key:\n  - api-key: k1\n    headers: # hdrs\n      X-A: b\n  - api-key: k2\n'
                   'request-retry: 3\n', lambda d: d["gemini-api-key"][0].__setitem__("headers", {}), "# hdrs"),
    # a comment line before the first item
    "leading comment": ('oauth-excluded-models:\n  gemini:\n    # comment line\n    - a # x\n  claude:\n'
                        '    - b\nrequest-retry: 3\n',
                        lambda d: d["oauth-excluded-models"].__setitem__("gemini", []), None),
    "list of lists": ('m:\n  - # c\n    - a\n  - [b]\nrequest-retry: 3\n', lambda d: d["m"].__setitem__(0, []), None),
}


@pytest.mark.parametrize("name", sorted(EMPTIED))
def test_emptying_a_commented_container_writes_valid_yaml(tmp_path, name):
    """ruamel printed the comment, then `[]` alone on the next line: a file that does not load."""
    text, change, kept = EMPTIED[name]
    config = tmp_path / "config.yaml"
    config.write_text(text)
    store = ConfigStore(str(config))
    store.edit(change)
    assert yaml.safe_load(config.read_text()) == store.data
    assert "request-retry: 3" in config.read_text()
    if kept:
        assert kept in config.read_text()  # the key line's comment stays on that line


def test_text_that_does_not_read_back_is_never_written(tmp_path, monkeypatch):
    from cliproxy_mgmt.config import yamlio

    config = tmp_path / "config.yaml"
    config.write_text("debug: false # flag\napi-keys:\n  - a\n")
    store = ConfigStore(str(config))
    real_dump = yamlio._dump
    # An emitter quirk in the spliced block: the whole-document path takes over.
    monkeypatch.setattr(yamlio, "_dump", lambda y, data: real_dump(y, data) + "[]\n")
    store.edit(lambda d: d.__setitem__("debug", True))
    assert yaml.safe_load(config.read_text()) == {"debug": True, "api-keys": ["a"]}
    # And when nothing reads back, the change is refused (a 400 for the request): file and memory unchanged.
    before = config.read_text()
    monkeypatch.setattr(yamlio, "reads_back", lambda text, expected: False)
    with pytest.raises(Unrepresentable, match="does not read back|reads back"):
        store.edit(lambda d: d.__setitem__("debug", False))
    assert config.read_text() == before and store.data["debug"] is True
