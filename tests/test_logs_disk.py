"""The log folder on a bad disk: files that cannot be removed, FIFOs and sockets named like
logs, broken rotated archives, a log file that cannot be opened. Real files every time."""

from __future__ import annotations

import array
import contextlib
import fcntl
import logging
import os
import time

import pytest

from cliproxy_mgmt import logs
from cliproxy_mgmt.testing import ManagementClient
from realserver import RealServer, session

FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x10


def _set_flags(path, change) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        flags[0] = change(flags[0])
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, flags, True)
    finally:
        os.close(fd)


@contextlib.contextmanager
def immutable(path):
    """`path` with the immutable attribute (chattr +i): not even root can delete it."""
    try:
        _set_flags(path, lambda f: f | FS_IMMUTABLE_FL)
    except OSError as exc:
        pytest.skip(f"this filesystem cannot make a file immutable: {exc}")
    try:
        yield path
    finally:
        _set_flags(path, lambda f: f & ~FS_IMMUTABLE_FL)


def error_logs(folder, count: int, first: int = 0) -> list:
    """`count` request error logs from error-<first>.log, the oldest, on."""
    now = time.time()
    paths = []
    for n in range(first, first + count):
        path = folder / f"error-{n:02d}.log"
        path.write_text("e")
        os.utime(path, (now - 1000 + n, now - 1000 + n))
        paths.append(path)
    return paths


# -- upkeep that cannot remove a file ---------------------------------------------------------

def test_a_log_that_cannot_be_removed_never_fails_a_config_write(make_app, folder, caplog):
    paths = error_logs(folder, 12)  # error-logs-max-files is 10: the two oldest should go
    with immutable(paths[0]):
        app = make_app()  # start-up tidies the folder too
        assert sorted(p.name for p in folder.iterdir())[:2] == ["error-00.log", "error-02.log"]
        assert "cannot remove" in caplog.text and str(paths[0]) in caplog.text
        error_logs(folder, 3, first=20)  # over the limit again: the next write tidies
        mgmt = ManagementClient(app.test_client())
        r = mgmt.put("/api-keys", json=["one", "two"])
        assert r.status_code == 200 and r.get_json() == {"status": "ok"}
        assert mgmt.get("/api-keys").get_json() == {"api-keys": ["one", "two"]}
        r = mgmt.delete("/api-keys", query_string={"index": "0"})
        assert r.status_code == 200
        assert mgmt.get("/api-keys").get_json() == {"api-keys": ["two"]}
        assert paths[0].exists()
        logs.close(app)


def test_the_server_starts_with_logs_it_cannot_remove(tmp_path):
    srv = RealServer(tmp_path, extra="logging-to-file: false\nerror-logs-max-files: 2\n")
    folder = tmp_path / "writable" / "logs"
    folder.mkdir(parents=True)
    srv.env["WRITABLE_PATH"] = str(tmp_path / "writable")
    paths = error_logs(folder, 4)
    with immutable(paths[0]):
        try:
            srv.start()
            with session() as s:
                assert s.get(srv.url("/api-keys"), timeout=10).status_code == 200
        finally:
            srv.stop()
    assert paths[0].exists() and not paths[1].exists() and paths[3].exists()
    warnings = [x for x in srv.log().splitlines() if "cannot remove" in x]
    assert warnings and str(paths[0]) in warnings[0]
    assert "Traceback" not in srv.log()
