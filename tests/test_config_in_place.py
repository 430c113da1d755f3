"""Config saves rewrite config.yaml in place, so that the Go proxy's file watch survives them.

The Go proxy watches config.yaml itself with fsnotify (inotify on the file, not its folder)
and never adds the watch again; fsnotify drops it when the watched inode is renamed or
deleted. A save that renames a new file over the config would be seen once, then never.
Here a real inotify watch, set as fsnotify sets it, follows saves of a real server process.

A rewrite in place is made crash-safe by a journal beside the file (`storage/inplace.py`):
these tests cut saves off at each step and start a backend on what is left.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import select
import struct
import subprocess
import threading
import time

import pytest

from cliproxy_mgmt.config.store import ConfigStore
from cliproxy_mgmt.storage import inplace
from cliproxy_mgmt.storage.files import FileConfig
from disks import fill, small_disk
from realserver import RealServer, session

_libc = ctypes.CDLL(None, use_errno=True)
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVE_SELF, IN_DELETE_SELF, IN_IGNORED = 0x800, 0x400, 0x8000
# What fsnotify v1.9 asks for on Linux when a file is watched (all its operations).
FSNOTIFY_FLAGS = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVE_SELF | IN_DELETE_SELF | 0x100 | 0x200 | 0xC0


class FileWatch:
    """An inotify watch on one file, as fsnotify's Add(path) makes it."""

    def __init__(self, path):
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            pytest.skip(f"inotify is not available: {os.strerror(ctypes.get_errno())}")
        if _libc.inotify_add_watch(self.fd, os.fsencode(path), FSNOTIFY_FLAGS) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")

    def masks(self, wait: float = 2.0) -> list[int]:
        """The event masks that arrived, waiting up to `wait` s for the first one."""
        found = []
        while select.select([self.fd], [], [], wait if not found else 0.1)[0]:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            at = 0
            while at < len(buf):
                _, mask, _, size = struct.unpack_from("iIII", buf, at)
                found.append(mask)
                at += 16 + size
        return found

    def close(self):
        os.close(self.fd)


@pytest.fixture
def server(tmp_path):
    srv = RealServer(tmp_path).start()
    yield srv
    srv.stop()


def test_the_go_proxys_file_watch_sees_every_save(server):
    watch = FileWatch(server.config_path)
    inode = server.config_path.stat().st_ino
    try:
        with session() as s:
            for n in range(3):
                r = s.patch(server.url("/api-keys"), json={"old": "seed-key-2" if n == 0 else f"k{n - 1}",
                                                           "new": f"k{n}"})
                assert r.status_code == 200, r.text
                masks = watch.masks()
                assert any(m & (IN_MODIFY | IN_CLOSE_WRITE) for m in masks), (n, masks)
                # A renamed or deleted inode ends the watch for good (IN_IGNORED follows).
                assert not any(m & (IN_MOVE_SELF | IN_DELETE_SELF | IN_IGNORED) for m in masks), (n, masks)
                assert f'"k{n}"' in server.config_path.read_text()
    finally:
        watch.close()
    assert server.config_path.stat().st_ino == inode


OLD = "debug: false\napi-keys:\n" + "".join(f"  - key-{n:03d}\n" for n in range(300))


class Crash(BaseException):
    """The process dies here (nothing after it runs)."""


def _journal(config):
    return config.with_name("." + config.name + ".journal")


def _started(tmp_path, text: str = OLD):
    """config.yaml holding `text`, a backend started on it, and the version it read."""
    config = tmp_path / "config.yaml"
    config.write_text(text)
    backend = FileConfig(str(config))
    return config, backend, backend.read()[1]


def test_a_save_cut_off_half_way_is_undone_at_the_next_start(tmp_path, monkeypatch, caplog):
    config, backend, base = _started(tmp_path)

    def half_then_die(f, data, old_size, edit):
        os.pwrite(f.fileno(), data[edit.start:(edit.start + edit.new_end) // 2], edit.start)
        raise Crash()

    monkeypatch.setattr(inplace, "overwrite", half_then_die)
    new = "debug: true\napi-keys:\n" + "".join(f"  - other-{n:03d}\n" for n in range(300))
    with pytest.raises(Crash):
        backend.write(new, base)
    monkeypatch.undo()
    torn = config.read_text()
    assert torn not in (OLD, new)
    assert _journal(config).read_bytes().startswith(b"pending")

    with caplog.at_level("WARNING"):
        store = ConfigStore(str(config))  # the next start
    assert config.read_text() == OLD
    assert store.data["api-keys"][0] == "key-000"
    assert "a save was cut off half-way" in caplog.text
    assert _journal(config).read_bytes().startswith(b"settled")
    assert oct(_journal(config).stat().st_mode & 0o777) == "0o600"  # it holds the config's secrets
    caplog.clear()
    FileConfig(str(config))  # a settled journal changes nothing
    assert config.read_text() == OLD and "cut off" not in caplog.text


@pytest.mark.parametrize("where", ["before the rewrite", "before the truncate", "before the settle"])
def test_a_save_cut_off_at_a_whole_version_is_left_as_it_is(tmp_path, monkeypatch, where):
    """A file that holds the old text, or the whole new one, may have been read already
    (by the Go proxy, by a client): the next start keeps it."""
    config, backend, base = _started(tmp_path)
    new = "debug: true\napi-keys:\n  - key-000\n"
    real_overwrite = inplace.overwrite

    class TruncateDies:
        def __init__(self, f):
            self._f = f

        def fileno(self):
            return self._f.fileno()

        def truncate(self, size):
            raise Crash()

    def dies(f, data, old_size, edit):
        raise Crash()

    def truncate_dies(f, data, old_size, edit):
        return real_overwrite(TruncateDies(f), data, old_size, edit)

    if where == "before the rewrite":
        monkeypatch.setattr(inplace, "overwrite", dies)
    elif where == "before the truncate":
        monkeypatch.setattr(inplace, "overwrite", truncate_dies)
    else:
        def close_dies(journal, settle=True):
            os.close(journal._fd)  # a dead process's files close (and its lock goes) unsettled
            raise Crash()

        monkeypatch.setattr(inplace.SaveJournal, "close", close_dies)
    with pytest.raises(Crash):
        backend.write(new, base)
    monkeypatch.undo()
    after_crash = config.read_text()
    assert after_crash == OLD if where == "before the rewrite" else after_crash.rstrip("\n") + "\n" == new
    FileConfig(str(config))  # the next start
    # (the padding of a rewrite cut off before its truncate goes: it could change a value,
    # a `|+` block scalar at the end of the file)
    assert config.read_text() == (OLD if where == "before the rewrite" else new)
    assert _journal(config).read_bytes().startswith(b"settled")


def test_a_torn_journal_is_ignored(tmp_path):
    """A journal cut off while it was written: the file was not touched yet."""
    config = tmp_path / "config.yaml"
    config.write_text("debug: true\n")
    backend = FileConfig(str(config))
    _, base = backend.read()
    backend.write("debug: false\n", base)  # creates the journal
    journal = _journal(config).read_bytes()
    _journal(config).write_bytes(b"pending" + journal[len(b"settled"):-3])  # its tail never written
    FileConfig(str(config))
    assert config.read_text() == "debug: false\n"


def test_a_live_save_is_not_undone_by_another_start(tmp_path):
    """The journal is locked while a save uses it: a second process starting on the file
    waits for it instead of taking the save in progress for a crash."""
    config, backend, base = _started(tmp_path)
    backend.write(OLD + "# one\n", base)
    fd = os.open(_journal(config), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a save in progress, half-way: journal pending, file torn
        journal = bytearray(_journal(config).read_bytes())
        journal[: len(b"pending")] = b"pending"
        os.pwrite(fd, bytes(journal), 0)
        config.write_text("half-way")
        started = threading.Event()
        thread = threading.Thread(target=lambda: (FileConfig(str(config)), started.set()))
        thread.start()
        assert not started.wait(0.3)
        config.write_text(OLD + "# two\n")  # the save finishes and settles its journal
        os.pwrite(fd, b"settled", 0)
    finally:
        os.close(fd)  # releases the lock
    thread.join(5)
    assert started.is_set()
    assert config.read_text() == OLD + "# two\n"


def test_an_editor_renaming_its_file_in_during_the_save_gets_the_change_on_top(tmp_path, monkeypatch):
    """An editor saves (by rename) after the last check and before the new bytes are in:
    they went to the file it took away; the store re-applies its change on the edit, once."""
    config = tmp_path / "config.yaml"
    config.write_text("debug: false\napi-keys:\n  - a\n")
    store = ConfigStore(str(config))
    real_overwrite, renamed = inplace.overwrite, []

    def editor_first(f, data, old_size, edit):
        if not renamed:
            edited = tmp_path / ".edit.tmp"
            edited.write_text("# by hand\ndebug: false\napi-keys:\n  - a\n  - by-hand\n")
            os.replace(edited, config)
            renamed.append(1)
        return real_overwrite(f, data, old_size, edit)

    monkeypatch.setattr(inplace, "overwrite", editor_first)
    calls = []
    store.edit(lambda d: (calls.append(1), d["api-keys"].append("by-api")))
    assert len(calls) == 2
    assert config.read_text() == "# by hand\ndebug: false\napi-keys:\n  - a\n  - by-hand\n  - by-api\n"
    assert store.data["api-keys"] == ["a", "by-hand", "by-api"]


def test_an_append_landing_during_the_save_is_kept_after_it(tmp_path, monkeypatch):
    """Someone appends while the new bytes are written: the file keeps the append after the
    new text (no truncate), and the store reads it back as an outside edit."""
    config = tmp_path / "config.yaml"
    config.write_text("debug: false\napi-keys:\n  - a\n  - b\n")
    store = ConfigStore(str(config))
    real_fstat, appended = os.fstat, []

    def fstat(fd):
        if not appended and os.path.samestat(real_fstat(fd), os.stat(config)) and real_fstat(fd).st_size > 0:
            frame = __import__("sys")._getframe(1)
            if frame.f_code.co_name == "overwrite":  # between the write and the truncate
                with open(config, "a") as f:
                    f.write("# appended by hand\n")
                appended.append(1)
        return real_fstat(fd)

    monkeypatch.setattr(inplace.os, "fstat", fstat)
    store.edit(lambda d: d.__setitem__("api-keys", ["a"]))
    monkeypatch.undo()
    assert appended
    text = config.read_text()
    assert text.startswith("debug: false\napi-keys:\n  - a\n") and text.endswith("# appended by hand\n")
    store.refresh(force=True)
    assert store.text == text and store.data["api-keys"] == ["a"]


def test_a_journal_that_cannot_be_opened_leaves_the_file_whole(tmp_path):
    """The journal cannot be opened (its name is taken by a folder): nothing else is touched."""
    config, backend, base = _started(tmp_path)
    os.mkdir(_journal(config))  # the journal's name is taken by a folder
    with pytest.raises(OSError) as exc:
        backend.write("debug: true\n", base)
    assert exc.value.errno in (errno.EISDIR, errno.ELOOP, errno.ENOTDIR)
    assert config.read_text() == OLD


def test_the_changed_range_is_the_first_to_the_last_differing_byte():
    rng = __import__("random").Random(14)
    for _ in range(3000):
        old = bytes(rng.choice(b"ab\n") for _ in range(rng.randrange(0, 200)))
        new = bytearray(old)
        for _ in range(rng.randrange(0, 3)):
            at = rng.randrange(len(new) + 1)
            new[at:at + rng.randrange(0, 3)] = bytes(rng.choice(b"ab\n") for _ in range(rng.randrange(0, 3)))
        new = bytes(new)
        edit = inplace.Edit.between(old, new)
        assert old[:edit.start] == new[:edit.start]
        assert old[edit.old_end:] == new[edit.new_end:]
        assert edit.tail == (len(old) != len(new))
        if edit.tail:
            assert edit.start == len(os.path.commonprefix([old, new]))
            assert (edit.old_end, edit.new_end) == (len(old), len(new))
        elif old != new:  # the smallest range: its first and last bytes differ
            assert old[edit.start] != new[edit.start] and old[edit.old_end - 1] != new[edit.new_end - 1]
        else:
            assert edit.start == edit.old_end == len(old)


def _journal_range(config) -> int:
    """How many old bytes the journal's last save kept (its header's range)."""
    header = _journal(config).read_bytes().split(b"\n", 1)[0]
    return int(header.split(b" ")[8])


def test_a_save_writes_only_the_range_it_changes(tmp_path):
    """The journal keeps, and the save rewrites, the changed bytes; a change of length
    rewrites from the change to the end (the rest moved)."""
    config = tmp_path / "config.yaml"
    config.write_text(OLD)
    store = ConfigStore(str(config))
    store.edit(lambda d: d["api-keys"].__setitem__(150, "key-XYZ"))  # same length
    assert _journal_range(config) == 3
    assert config.read_text() == OLD.replace("key-150", "key-XYZ")
    store.edit(lambda d: d["api-keys"].__setitem__(299, "key-299-longer"))  # the last line
    assert _journal_range(config) < 10
    store.edit(lambda d: d["api-keys"].__setitem__(0, "key-000-longer"))  # the first item
    assert _journal_range(config) > len(OLD) - 40
    assert store.data["api-keys"][:1] + store.data["api-keys"][150:151] + store.data["api-keys"][299:] == [
        "key-000-longer", "key-XYZ", "key-299-longer"]
    assert ConfigStore(str(config)).data == store.data


def test_a_middle_range_cut_off_half_way_is_undone(tmp_path, monkeypatch):
    config, backend, base = _started(tmp_path)
    new = OLD.replace("key-100\n  - key-101\n  - key-102", "key-AAA\n  - key-BBB\n  - key-CCC")

    def half_then_die(f, data, old_size, edit):
        assert not edit.tail and edit.new_end - edit.start < 40
        os.pwrite(f.fileno(), data[edit.start:edit.start + 6], edit.start)
        raise Crash()

    monkeypatch.setattr(inplace, "overwrite", half_then_die)
    with pytest.raises(Crash):
        backend.write(new, base)
    monkeypatch.undo()
    assert config.read_text() not in (OLD, new)
    FileConfig(str(config))
    assert config.read_text() == OLD


def test_a_config_removed_and_written_anew_is_recovered_by_its_own_checksums(tmp_path, monkeypatch):
    """A save after the file was removed creates it anew; checksums kept from the removed
    text must not stand for the new one (past the first 64 KiB, where they are reused), or
    the journal of the next save would not match, and a cut-off save would stay torn."""
    big = "".join(f"  - key-{n:05d}\n" for n in range(20000))  # about 300 KiB
    config, backend, base = _started(tmp_path, "api-keys:\n" + big)
    backend.write("debug: false\napi-keys:\n" + big, base)  # checksums of this text kept
    config.unlink()
    again = "debug: true\napi-keys:\n" + big.replace("key-0", "key-A")
    created = backend.write(again, None)

    def half_then_die(f, data, old_size, edit):
        os.pwrite(f.fileno(), data[edit.start:(edit.start + edit.new_end) // 2], edit.start)
        raise Crash()

    monkeypatch.setattr(inplace, "overwrite", half_then_die)
    with pytest.raises(Crash):
        backend.write(again.replace("key-19999", "key-LAST!"), created)
    monkeypatch.undo()
    FileConfig(str(config))  # the next start
    assert config.read_text() == again


@pytest.mark.parametrize("kind", ["fifo", "symlink", "huge"])
def test_a_journal_replaced_by_something_else_neither_hangs_nor_is_followed(tmp_path, kind, caplog):
    """A FIFO, a symlink (to a file elsewhere) or a huge file where the journal should be:
    a start does not wait, follow or read it all; a save refuses a non-file and leaves the
    config whole."""
    config = tmp_path / "config.yaml"
    config.write_text(OLD)
    journal, elsewhere = _journal(config), tmp_path / "elsewhere"
    elsewhere.write_text("not yours\n")
    if kind == "fifo":
        os.mkfifo(journal)
    elif kind == "symlink":
        journal.symlink_to(elsewhere)
    else:
        with open(journal, "wb") as f:
            f.write(b"pending cliproxy-mgmt journal 0 10 10 999999999999 00000000 10 00000000\n")
            f.truncate(1 << 34)  # 16 GiB, sparse
    done = threading.Event()
    thread = threading.Thread(target=lambda: (ConfigStore(str(config)), done.set()), daemon=True)
    thread.start()
    assert done.wait(10), "the start hung on the journal"
    assert config.read_text() == OLD and elsewhere.read_text() == "not yours\n"
    backend = FileConfig(str(config))
    _, base = backend.read()
    if kind == "huge":
        backend.write("debug: true\n", base)  # a regular file: it is simply reused
        assert config.read_text() == "debug: true\n"
    else:
        with pytest.raises(OSError):
            backend.write("debug: true\n", base)
        assert config.read_text() == OLD and elsewhere.read_text() == "not yours\n"


def test_a_full_disk_for_the_journal_leaves_file_and_memory_as_they_were(tmp_path):
    """A change that shrinks the config needs no new space in it, but the journal must hold
    the old bytes: on a full disk that fails first, and nothing is overwritten."""
    with small_disk(tmp_path / "disk") as disk:
        config = disk / "config.yaml"
        config.write_text(OLD)
        store = ConfigStore(str(config))
        fill(disk)
        with pytest.raises(OSError) as exc:
            store.edit(lambda d: d["api-keys"].pop(0))
        assert exc.value.errno == errno.ENOSPC
        assert config.read_text() == OLD and store.data["api-keys"][0] == "key-000"
        (disk / "filler").unlink()
        store.edit(lambda d: d["api-keys"].pop(0))  # with room again, it goes through
        assert config.read_text() == OLD.replace("  - key-000\n", "")


@pytest.mark.parametrize("edit", ["append", "backup", "top"])
def test_a_config_changed_between_the_crash_and_the_start_is_left_as_it_is(tmp_path, monkeypatch, caplog, edit):
    """A save was cut off (half-way or before it settled); then the file was changed before
    the server started again: a line added by hand, a backup copied over it, a line added
    at the top. The start restores only a file that provably is the old text with part of
    the range rewritten; this one is left as it is, with a warning."""
    config, backend, base = _started(tmp_path)
    monkeypatch.setattr(inplace, "overwrite", lambda f, data, old_size, e: (
        os.pwrite(f.fileno(), data[e.start:e.start + 4], e.start), (_ for _ in ()).throw(Crash())))
    with pytest.raises(Crash):
        backend.write(OLD.replace("key-150", "key-new"), base)
    monkeypatch.undo()
    if edit == "append":
        with open(config, "a") as f:
            f.write("# an edit by hand\n")
    elif edit == "backup":
        config.write_text("debug: true\napi-keys:\n  - from-the-backup\n")
    else:
        config.write_text("# a comment at the top\n" + config.read_text())
    edited = config.read_text()
    with caplog.at_level("WARNING"):
        FileConfig(str(config))
    assert config.read_text() == edited
    assert "the file was changed since; it is left as it is" in caplog.text
    assert _journal(config).read_bytes().startswith(b"settled")


def test_a_crash_during_the_recovery_is_recovered_at_the_next_start(tmp_path, monkeypatch):
    config, backend, base = _started(tmp_path)
    monkeypatch.setattr(inplace, "overwrite", lambda f, data, old_size, e: (
        os.pwrite(f.fileno(), data[e.start:(e.start + e.new_end) // 2], e.start), (_ for _ in ()).throw(Crash())))
    with pytest.raises(Crash):
        backend.write(OLD.replace("key-1", "KEY-1"), base)  # a range of 100 changed lines
    monkeypatch.undo()
    real_pwrite = os.pwrite

    def dies_half_way(fd, data, offset):  # the start's own restore is cut off
        real_pwrite(fd, bytes(data)[:3], offset)
        raise Crash()

    monkeypatch.setattr(inplace.os, "pwrite", dies_half_way)
    with pytest.raises(Crash):
        inplace.recover(str(config))
    monkeypatch.undo()
    assert config.read_text() != OLD
    FileConfig(str(config))
    assert config.read_text() == OLD


def test_a_shrinking_save_whose_truncate_alone_reached_the_disk_is_undone(tmp_path, monkeypatch):
    """Power lost during a save that shortens the file: the file system may have kept the
    truncate but not the overwrite of blocks it already had (ext4 data=ordered does not order
    those). On disk: the old text cut to the new length, the journal pending."""
    config, backend, base = _started(tmp_path)
    new = OLD.replace("debug: false\n", "")
    monkeypatch.setattr(inplace, "overwrite", lambda f, data, old_size, e: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        backend.write(new, base)
    monkeypatch.undo()
    os.truncate(config, len(new))
    FileConfig(str(config))
    assert config.read_text() == OLD


def test_a_nearly_full_disk_refuses_the_save_before_the_journal_is_short(tmp_path):
    """The journal can grow by a page, not by the whole old range: the save is refused
    (ENOSPC) before the config is touched, not made without its copy."""
    with small_disk(tmp_path / "disk") as disk:
        config = disk / "config.yaml"
        old = "debug: false\napi-keys:\n" + "".join(f"  - key-{n:03d}\n" for n in range(1500))
        config.write_text(old)
        store = ConfigStore(str(config))
        store.edit(lambda d: d["api-keys"].__setitem__(1499, "key-XXX"))  # a one-page journal
        fill(disk)
        filler = disk / "filler"
        os.truncate(filler, filler.stat().st_size - 8192)  # two pages free
        before = config.read_text()
        with pytest.raises(OSError) as exc:
            store.edit(lambda d: d["api-keys"].pop(0))  # shrinks: its range is the whole file
        assert exc.value.errno == errno.ENOSPC
        assert config.read_text() == before and store.data["api-keys"][0] == "key-000"


def test_an_in_place_edit_while_the_save_prepares_is_not_overwritten(tmp_path, monkeypatch):
    """A hand edit in place, of the same size, lands after the save read the file and before
    it wrote the journal: the save sees it (Conflict) and applies its change on top."""
    config = tmp_path / "config.yaml"
    text = "debug: false\nport: 8317\napi-keys:\n  - a\n"
    config.write_text(text)
    store = ConfigStore(str(config))
    real_between, edited = inplace.Edit.between.__func__, []

    def between(cls, old, new):
        if not edited:
            with open(config, "r+") as f:
                f.write(text.replace("8317", "9999"))
            edited.append(1)
        return real_between(cls, old, new)

    monkeypatch.setattr(inplace.Edit, "between", classmethod(between))
    store.edit(lambda d: d.__setitem__("debug", True))
    assert config.read_text() == "debug: true\nport: 9999\napi-keys:\n  - a\n"
    assert store.data["port"] == 9999 and store.data["debug"] is True


def test_a_journal_locked_elsewhere_is_waited_for_then_refused(tmp_path, monkeypatch):
    """Another process holds the journal's lock (a stuck second instance, `flock`): the save
    waits a moment, then answers an error naming the journal; the start goes on."""
    monkeypatch.setattr(inplace, "_OPEN_TRIES", 3)
    config, backend, base = _started(tmp_path)
    backend.write(OLD + "# one\n", base)
    _, base = backend.read()
    holder = subprocess.Popen(["flock", str(_journal(config)), "sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["flock", "-n", str(_journal(config)), "true"]).returncode == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(OSError) as exc:
            backend.write(OLD + "# two\n", base)
        assert "save journal" in str(exc.value) and "locked by another process" in str(exc.value)
        assert config.read_text() == OLD + "# one\n"
        FileConfig(str(config))  # a start: a warning, no hang
    finally:
        holder.kill()
        holder.wait()


def test_a_journal_with_other_hard_links_is_refused_and_its_mode_is_kept_private(tmp_path):
    config, backend, base = _started(tmp_path)
    backend.write(OLD + "# one\n", base)
    os.chmod(_journal(config), 0o644)
    _, base = backend.read()
    backend.write(OLD + "# two\n", base)
    assert oct(_journal(config).stat().st_mode & 0o777) == "0o600"
    other = tmp_path / "other"
    os.link(_journal(config), other)
    before = other.read_bytes()
    _, base = backend.read()
    with pytest.raises(OSError) as exc:
        backend.write(OLD + "# three\n", base)
    assert "save journal" in str(exc.value)
    assert other.read_bytes() == before and config.read_text() == OLD + "# two\n"


