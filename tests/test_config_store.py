"""The config store: atomic writes, failed saves, hot reload (docs/decisions.md, "Data safety")."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time

import pytest

from cliproxy_mgmt.config.store import ConfigError, ConfigStore, SaveError
from disks import fill, small_disk

TEXT = '# settings\ndebug: false\napi-keys:\n  - "a" # first\n'


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text(TEXT)
    return p


def reload_now(store):
    store.refresh(force=True)


def test_edit_is_visible_and_persisted(path):
    store = ConfigStore(str(path))
    version = store.version
    store.edit(lambda d: d.__setitem__("debug", True))
    assert store.data["debug"] is True
    assert store.version == version + 1
    assert "debug: true" in path.read_text()


def test_refused_change_writes_nothing(path):
    store = ConfigStore(str(path))

    def change(d):
        d["debug"] = True
        raise RuntimeError("refused")
    with pytest.raises(RuntimeError):
        store.edit(change)
    assert store.data["debug"] is False
    assert path.read_text() == TEXT


def test_invalid_result_is_refused(path):
    def validate(data):
        if data.get("debug") == "yes":
            raise ConfigError("debug must be a bool")
    store = ConfigStore(str(path), validate=validate)
    with pytest.raises(ConfigError):
        store.edit(lambda d: d.__setitem__("debug", "yes"))
    assert path.read_text() == TEXT and store.data["debug"] is False


def test_failed_save_changes_neither_file_nor_memory(tmp_path):
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "config.yaml").write_text(TEXT)
    store = ConfigStore(str(folder / "config.yaml"))
    shutil.rmtree(folder)  # the folder is gone: the temp file cannot be created
    with pytest.raises(SaveError):
        store.edit(lambda d: d.__setitem__("debug", True))
    assert store.data["debug"] is False
    assert "debug: false" in store.text


def test_write_keeps_mode_and_follows_symlink(tmp_path):
    target = tmp_path / "real.yaml"
    target.write_text(TEXT)
    target.chmod(0o640)
    link = tmp_path / "config.yaml"
    link.symlink_to(target)
    store = ConfigStore(str(link))
    store.edit(lambda d: d.__setitem__("debug", True))
    assert link.is_symlink()
    assert "debug: true" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_single_file_bind_mount_is_written_in_place(tmp_path):
    """rename() over a bind-mounted file fails with EBUSY: the store writes in place instead."""
    source = tmp_path / "source.yaml"
    source.write_text(TEXT)
    mounted = tmp_path / "config.yaml"
    mounted.write_text("")
    if subprocess.run(["mount", "--bind", str(source), str(mounted)], capture_output=True).returncode:
        pytest.skip("bind mounts need root (CAP_SYS_ADMIN)")
    try:
        store = ConfigStore(str(mounted))
        store.edit(lambda d: d.__setitem__("debug", True))
        assert "debug: true" in source.read_text()
        assert store.data["debug"] is True
    finally:
        subprocess.run(["umount", str(mounted)], check=True)


def test_a_full_disk_leaves_a_bind_mounted_config_whole(tmp_path):
    """Written in place, a config that grows on a full disk fails before its first old byte
    is overwritten: the file, and the config in force, stay as they were."""
    mounted = tmp_path / "config.yaml"
    mounted.write_text("")
    with small_disk(tmp_path / "disk") as disk:
        source = disk / "config.yaml"
        source.write_text(TEXT)
        subprocess.run(["mount", "--bind", str(source), str(mounted)], check=True)
        try:
            store = ConfigStore(str(mounted))
            before = source.read_bytes()
            fill(disk)
            keys = [f"key-{i:04d}-{'x' * 60}" for i in range(200)]
            with pytest.raises(OSError):
                store.edit(lambda d: d.__setitem__("api-keys", keys))
            assert source.read_bytes() == before
            assert "api-keys" not in store.data or store.data["api-keys"] != keys
        finally:
            subprocess.run(["umount", str(mounted)], check=True)


def test_external_edit_is_loaded(path):
    store = ConfigStore(str(path))
    path.write_text(TEXT.replace("debug: false", "debug: true"))
    reload_now(store)
    assert store.data["debug"] is True


def test_invalid_external_edit_keeps_last_good_config(path, caplog):
    store = ConfigStore(str(path))
    path.write_text("debug: [unclosed\n")
    reload_now(store)
    assert store.data["debug"] is False
    assert store.last_error
    assert "keeping the last good config" in caplog.text
    path.write_text(TEXT.replace("debug: false", "debug: true"))
    reload_now(store)
    assert store.data["debug"] is True and store.last_error is None


def test_refresh_is_throttled_but_sees_changes_within_a_second(path):
    store = ConfigStore(str(path))
    path.write_text(TEXT.replace("debug: false", "debug: true"))
    deadline = time.monotonic() + 1.0
    while store.data["debug"] is False and time.monotonic() < deadline:
        store.refresh()
        time.sleep(0.02)
    assert store.data["debug"] is True


def test_edit_applies_on_top_of_an_unseen_external_edit(path):
    store = ConfigStore(str(path))
    path.write_text(TEXT + "request-retry: 9\n")
    store.edit(lambda d: d.__setitem__("debug", True))  # must not overwrite the external change
    assert store.data["request-retry"] == 9
    assert "request-retry: 9" in path.read_text()


def test_own_write_is_not_reloaded(path):
    store = ConfigStore(str(path))
    calls = []
    store.on_load(lambda s: calls.append(s.version))
    store.edit(lambda d: d.__setitem__("debug", True))
    reload_now(store)
    assert len(calls) == 1  # only the registration call


def test_loaded_listener_runs_after_reload(path):
    store = ConfigStore(str(path))
    seen = []
    store.on_load(lambda s: seen.append(s.data.get("debug")))
    os.utime(path, ns=(0, 0))
    path.write_text(TEXT.replace("debug: false", "debug: true"))
    reload_now(store)
    assert seen == [False, True]


@pytest.mark.parametrize("text, fragment", [
    ("remote-management:\n  trusted-proxies: [not-an-ip]\n", "trusted-proxies"),
    ("remote-management:\n  max-json-body-bytes: -1\n", "max-json-body-bytes"),
    ("remote-management:\n  max-upload-bytes: 0\n", "max-upload-bytes"),
])
def test_core_schema_refuses_unusable_values(text, fragment):
    from cliproxy_mgmt.config.schema import make_validator
    from cliproxy_mgmt.config.store import parse
    with pytest.raises(ConfigError, match=fragment):
        make_validator({})(parse(text))


def test_change_listeners_hear_edits_and_reloads(path):
    store = ConfigStore(str(path))
    heard = []
    store.on_change(lambda s: heard.append(s.data.get("debug")))
    store.edit(lambda d: d.__setitem__("debug", True))
    path.write_text(TEXT + "request-retry: 1\n")
    reload_now(store)
    assert heard == [True, False]


def test_an_external_edit_that_is_not_utf8_keeps_last_good_config(path, caplog):
    store = ConfigStore(str(path))
    path.write_bytes(TEXT.replace("debug: false", "debug: true").encode() + b"# caf\xe9\n")
    reload_now(store)
    reload_now(store)
    assert store.data["debug"] is False
    assert store.last_error == "not UTF-8 text: byte 0xe9 on line 5 cannot be decoded"
    assert caplog.text.count("keeping the last good config: not UTF-8") == 1
    with pytest.raises(SaveError, match="does not load"):
        store.edit(lambda d: d.__setitem__("debug", True))
    store.replace_text(TEXT.replace("debug: false", "debug: true"))
    assert store.data["debug"] is True and store.last_error is None
    assert path.read_text() == TEXT.replace("debug: false", "debug: true")


def test_a_write_while_the_file_is_missing_is_refused_at_once(path, caplog):
    store = ConfigStore(str(path))
    backup = path.with_name("backup.yaml")
    os.rename(path, backup)
    calls = []
    with pytest.raises(SaveError, match="is missing"):
        store.edit(lambda d: calls.append(1))
    assert calls == [] and not path.exists() and store.data["debug"] is False
    os.rename(backup, path)  # put back as it was: writes work again
    store.edit(lambda d: d.__setitem__("debug", True))
    assert "debug: true" in path.read_text()


def test_a_save_error_reads_as_its_message_or_as_an_os_error_and_names_the_file(path):
    """What `failed to save config: ...` shows: our message as it stands, or OSError's form."""
    message = f"{path} is missing (deleted or moved away); nothing was written"
    ours = SaveError(message, filename=str(path))
    assert (str(ours), ours.filename, ours.errno, ours.strerror) == (message, str(path), None, None)
    failed = SaveError(28, "No space left on device", str(path))
    assert str(failed) == f"[Errno 28] No space left on device: {str(path)!r}"
    assert (failed.filename, failed.errno) == (str(path), 28)
    store = ConfigStore(str(path))
    os.unlink(path)
    with pytest.raises(SaveError) as caught:
        store.edit(lambda d: d.__setitem__("debug", True))
    assert str(caught.value) == message and caught.value.filename == str(path)
