"""Opening only a regular file (`fileio.open_regular`, `fileio.read_regular_stat`): what each
kind of entry gives, with symlinks followed (config.yaml) and refused (logs, auth files)."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from cliproxy_mgmt.fileio import NotRegularFile, open_regular, read_regular_stat


@pytest.fixture
def entries(tmp_path):
    """A folder holding one entry of every kind, by name."""
    (tmp_path / "file").write_bytes(b"contents\n")
    os.symlink("file", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    os.symlink("fifo", tmp_path / "link-to-fifo")
    (tmp_path / "dir").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    os.chdir(tmp_path)  # bound by a relative name: tmp paths may be too long for AF_UNIX
    try:
        sock.bind("sock")
    finally:
        os.chdir(cwd)
    yield tmp_path
    sock.close()


def test_a_regular_file_opens_blocking_with_its_fstat(entries):
    for follow in (False, True):
        f, st = open_regular(str(entries / "file"), follow_symlinks=follow)
        with f:
            assert f.read() == b"contents\n"
            assert os.get_blocking(f.fileno())
            assert (st.st_ino, st.st_size) == (os.stat(entries / "file").st_ino, 9)
    f, _ = open_regular(str(entries / "file"), "r+b", buffering=0)
    with f:
        f.write(b"C")
    assert (entries / "file").read_bytes() == b"Contents\n"


def test_a_symlink_is_refused_by_default_and_followed_when_asked(entries):
    with pytest.raises(NotRegularFile) as caught:
        open_regular(str(entries / "link"))
    assert (caught.value.errno, caught.value.strerror, caught.value.filename) == (
        errno.EINVAL, "not a regular file", str(entries / "link"))
    f, st = open_regular(str(entries / "link"), follow_symlinks=True)
    with f:
        assert f.read() == b"contents\n" and st.st_ino == os.stat(entries / "file").st_ino


@pytest.mark.parametrize("name", ["fifo", "link-to-fifo", "dir"])
def test_fifos_and_folders_are_not_regular_files_either_way(entries, name):
    """(A FIFO opens without waiting for a writer: the test would hang otherwise.)"""
    with pytest.raises(NotRegularFile):
        open_regular(str(entries / name), follow_symlinks=True)
    with pytest.raises(NotRegularFile):
        open_regular(str(entries / name))


def test_a_socket_is_refused_as_the_open_reports_it_when_symlinks_are_followed(entries):
    with pytest.raises(NotRegularFile):
        open_regular(str(entries / "sock"))
    with pytest.raises(OSError) as caught:
        open_regular(str(entries / "sock"), follow_symlinks=True)
    assert caught.value.errno == errno.ENXIO and not isinstance(caught.value, NotRegularFile)


def test_read_regular_stat_reads_only_a_regular_file_and_tells_a_symlink_apart(entries):
    data, st = read_regular_stat(str(entries / "file"))
    assert data == b"contents\n" and st.st_size == 9
    for name in ("fifo", "dir"):
        with pytest.raises(NotRegularFile):
            read_regular_stat(str(entries / name))
    for name, code in (("link", errno.ELOOP), ("link-to-fifo", errno.ELOOP), ("sock", errno.ENXIO)):
        with pytest.raises(OSError) as caught:
            read_regular_stat(str(entries / name))
        assert caught.value.errno == code and not isinstance(caught.value, NotRegularFile)
    with pytest.raises(FileNotFoundError):
        read_regular_stat(str(entries / "missing"))
