"""The log folder on a bad disk: files that cannot be removed, FIFOs and sockets named like
logs, broken rotated archives, a log file that cannot be opened. Real files every time."""

from __future__ import annotations

import array
import contextlib
import fcntl
import gzip
import logging
import os
import socket
import sys
import time

import pytest

from cliproxy_mgmt import logs
from cliproxy_mgmt.fileio import NotRegularFile, open_regular
from cliproxy_mgmt.logs import backwards, reader
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


# -- FIFOs and sockets named like logs --------------------------------------------------------

@pytest.fixture
def server_and_folder(tmp_path):
    """A real server with logging-to-file on, and its log folder."""
    srv = RealServer(tmp_path, extra="logging-to-file: true\n")
    folder = tmp_path / "writable" / "logs"
    folder.mkdir(parents=True)
    srv.env["WRITABLE_PATH"] = str(tmp_path / "writable")
    srv.start()
    yield srv, folder
    srv.stop()


def bind_socket(folder, name: str) -> socket.socket:
    """A listening Unix socket at folder/name (bound by a relative name: paths may be long)."""
    sock = socket.socket(socket.AF_UNIX)
    here = os.getcwd()
    os.chdir(folder)
    try:
        sock.bind(name)
    finally:
        os.chdir(here)
    sock.listen()
    return sock


def test_fifos_and_sockets_named_like_logs_are_not_logs(server_and_folder):
    srv, folder = server_and_folder
    (folder / "error-real.log").write_text("real error log")
    (folder / "v1-chat-2026-01-15T090000-real1.log").write_text("real request log")
    (folder / "main.log").write_text("[2026-01-01 00:00:09] [--------] [info ] [x.py:1] kept\n")
    os.mkfifo(folder / "error-fifo.log")
    os.mkfifo(folder / "v1-chat-2026-01-15T090000-fifo1.log")
    os.mkfifo(folder / "main-2026-01-01T00-00-00.000.log")
    sockets = [bind_socket(folder, name) for name in (
        "error-sock.log", "v1-chat-2026-01-15T090000-sock1.log", "main.log.1")]
    try:
        with session() as s:
            def get(path, **kw):
                return s.get(srv.url(path), timeout=10, **kw)  # a hang fails, not blocks

            for name in ("error-fifo.log", "error-sock.log"):
                r = get(f"/request-error-logs/{name}")
                assert r.status_code == 404 and r.json() == {"error": "log file not found"}, name
            for rid in ("fifo1", "sock1"):
                r = get(f"/request-log-by-id/{rid}")
                assert r.status_code == 404, rid
                assert r.json() == {"error": "log file not found for the given request ID"}
            r = get("/request-error-logs/error-real.log", headers={"Range": "bytes=0-3"})
            assert r.status_code == 206 and r.content == b"real"
            assert r.headers["Content-Disposition"] == 'attachment; filename="error-real.log"'
            assert get("/request-log-by-id/real1").content == b"real request log"
            names = [f["name"] for f in get("/request-error-logs").json()["files"]]
            assert names == ["error-real.log"]
            for query in ({}, {"after": "5"}, {"limit": "50"}):
                r = get("/logs", params=query)
                assert r.status_code == 200, query
                assert any(x.endswith("] kept") for x in r.json()["lines"]), query
            # every worker is still free: none waits on a FIFO
            for _ in range(srv.threads * 2):
                assert get("/request-error-logs/error-fifo.log").status_code == 404
    finally:
        for sock in sockets:
            sock.close()


def test_a_log_swapped_for_a_fifo_after_the_listing_is_read_as_gone(folder):
    """The readers open what the folder listing named; by then it may be a FIFO or a socket."""
    fifo, sock_name = folder / "main-2026-01-01T00-00-00.000.log", "main.log.1"
    os.mkfifo(fifo)
    sock = bind_socket(folder, sock_name)
    try:
        for path in (str(fifo), str(folder / sock_name), str(folder / "main.log.2")):
            assert list(reader._lines(path)) == []
            assert list(backwards.reverse_lines(path)) == []
            assert backwards.LineCounts().total([path]) == 0
    finally:
        sock.close()
    with pytest.raises(NotRegularFile):
        open_regular(str(fifo))
    (folder / "main.log").write_text("one\n")
    (folder / "link.log").symlink_to(folder / "main.log")
    with pytest.raises(NotRegularFile):
        open_regular(str(folder / "link.log"))


# -- broken rotated archives ------------------------------------------------------------------

def log_line(stamp: str, text: str) -> str:
    return f"[{stamp}] [--------] [info ] [x.py:1] {text}\n"


def test_broken_archives_are_read_up_to_the_break_and_the_rest_is_served(make_app, folder, caplog):
    old = "".join(log_line("2026-01-01 00:00:01", f"old {n} {os.urandom(8).hex()}")
                  for n in range(20000)).encode()
    whole = gzip.compress(old)
    truncated = folder / "main-2026-01-01T00-00-00.000.log.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    (folder / "main-2026-01-02T00-00-00.000.log.gz").write_bytes(b"not gzip at all\n")
    corrupt = bytearray(gzip.compress(log_line("2026-01-02 12:00:00", "corrupt").encode()))
    corrupt[-8] ^= 0xFF  # the CRC
    (folder / "main-2026-01-02T12-00-00.000.log.gz").write_bytes(bytes(corrupt))
    with gzip.open(folder / "main-2026-01-03T00-00-00.000.log.gz", "wt") as f:
        f.write(log_line("2026-01-03 00:00:00", "good archive"))
    (folder / "main.log").write_text(log_line("2026-01-04 00:00:00", "current"))
    app = make_app(extra_yaml="logging-to-file: true\n")
    try:
        mgmt = ManagementClient(app.test_client())
        caplog.set_level(logging.WARNING, logger="cliproxy_mgmt.logs")
        body = mgmt.get("/logs").get_json()
        # (the warnings are log lines too: with logging-to-file on, they end main.log)
        texts = [x.split("] ")[-1] for x in body["lines"] if "broken log archive" not in x]
        assert texts[-2:] == ["good archive", "current"]
        assert texts[0].startswith("old 0 ") and 0 < sum(t.startswith("old ") for t in texts) < 20000
        for query in ({"after": "5"}, {"limit": "10"}, {"after": "5", "limit": "100000"}):
            r = mgmt.get("/logs", query_string=query)
            assert r.status_code == 200, query
            assert any(x.endswith("] current") for x in r.get_json()["lines"]), query
        cursor = mgmt.get("/logs", query_string={"limit": "1"}).get_json()["next-cursor"]
        assert mgmt.get("/logs", query_string={"cursor": cursor}).status_code == 200
        warnings = [r.getMessage() for r in caplog.records if "broken log archive" in r.getMessage()]
        for name in ("main-2026-01-01T00-00-00.000.log.gz", "main-2026-01-02T00-00-00.000.log.gz",
                     "main-2026-01-02T12-00-00.000.log.gz"):
            assert sum(name in w for w in warnings) == 1, name  # once, not on every read
        assert not any("good archive" in w for w in warnings)
    finally:
        logs.close(app)


# -- a log file that cannot be opened ---------------------------------------------------------

@pytest.mark.parametrize("break_folder, problem", [
    (lambda folder: (folder / "main.log" / "x").mkdir(parents=True), "cannot write"),
    (lambda folder: folder.rmdir() or folder.write_text("a file"), "cannot create"),
])
def test_logging_to_a_file_that_cannot_be_opened_keeps_the_console(tmp_path, break_folder, problem):
    srv = RealServer(tmp_path, extra="logging-to-file: false\n")
    folder = tmp_path / "writable" / "logs"
    folder.mkdir(parents=True)
    srv.env["WRITABLE_PATH"] = str(tmp_path / "writable")
    break_folder(folder)
    srv.start()
    try:
        with session() as s:
            r = s.put(srv.url("/logging-to-file"), json={"value": True}, timeout=10)
            assert r.status_code == 200  # saved, as upstream does
            assert s.get(srv.url("/logging-to-file"), timeout=10).json() == {"logging-to-file": True}
            r = s.put(srv.url("/api-keys"), json=["after-the-switch"], timeout=10)
            assert r.status_code == 200
            deadline = time.monotonic() + 10
            while "/api-keys" not in srv.log().split("logging-to-file: " + problem)[-1]:
                assert time.monotonic() < deadline, srv.log()
                time.sleep(0.05)
    finally:
        srv.stop()
    console = srv.log()
    reports = [x for x in console.splitlines() if "logging-to-file: " + problem in x]
    assert reports and str(folder) in reports[0]
    after = console.split(reports[0])[-1]
    assert "PUT /v0/management/api-keys" in after  # the access line still reaches the console
    assert "Logging error" not in console and "Traceback" not in console


def test_a_folder_where_main_log_cannot_be_created_keeps_the_console(make_app, folder, caplog):
    console = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(console)
    try:
        with immutable(folder):  # nothing can be created in it, not even by root
            app = make_app(extra_yaml="logging-to-file: true\n")
            assert app.extensions["cliproxy_mgmt"].extras["logs"]._handler is None
            assert console.filters == []  # not muted
            assert f"logging-to-file: cannot write {folder / 'main.log'}" in caplog.text
        assert list(folder.iterdir()) == []  # the probe left nothing behind
        logs.close(app)
    finally:
        logging.getLogger().removeHandler(console)


def test_a_log_file_that_stops_taking_lines_hands_back_to_the_console(tmp_path):
    """main.log on a full disk (a link to /dev/full: it opens, every write fails)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    srv = RealServer(tmp_path, extra="logging-to-file: true\n")
    folder = tmp_path / "writable" / "logs"
    folder.mkdir(parents=True)
    (folder / "main.log").symlink_to("/dev/full")
    srv.env["WRITABLE_PATH"] = str(tmp_path / "writable")
    srv.start()
    try:
        with session() as s:
            for keys in (["one"], ["two"]):
                assert s.put(srv.url("/api-keys"), json=keys, timeout=10).status_code == 200
            deadline = time.monotonic() + 10
            while srv.log().count("PUT /v0/management/api-keys") < 2:
                assert time.monotonic() < deadline, srv.log()
                time.sleep(0.05)
    finally:
        srv.stop()
    console = srv.log()
    assert "logging-to-file: cannot write" in console and "No space left on device" in console
    assert "audit: config" in console  # the audit lines are not lost either
    assert "Logging error" not in console and "Traceback" not in console
