"""Logs: the log folder, reading main.log for GET /logs, the server's own log file, upkeep,
and the request error log endpoints."""

from __future__ import annotations

import gzip
import logging
import os
import re
import sys
import time

import pytest

from cliproxy_mgmt import logs
from cliproxy_mgmt.logs import writer
from cliproxy_mgmt.logs.paths import log_dir
from cliproxy_mgmt.logs.reader import main_log_files, read_logs
from cliproxy_mgmt.testing import ManagementClient


def line(stamp: str, text: str) -> str:
    return f"[{stamp}] [--------] [info ] [x.py:1] {text}\n"


def unix(stamp: str) -> int:
    return int(time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")))


@pytest.fixture
def logging_app(make_app, folder):
    """An app with logging-to-file on; its log handler is removed afterwards."""
    app = make_app(extra_yaml="logging-to-file: true\n")
    yield app
    logs.close(app)


# -- the folder -------------------------------------------------------------------------------

def test_log_dir_resolution(app, tmp_path, monkeypatch):
    config = app.extensions["cliproxy_mgmt"].store
    monkeypatch.delenv("WRITABLE_PATH", raising=False)
    monkeypatch.setenv("writable_path", str(tmp_path / "w"))
    assert log_dir(config) == str(tmp_path / "w" / "logs")
    monkeypatch.delenv("writable_path")
    monkeypatch.chdir(tmp_path)
    assert log_dir(config) == str(tmp_path / "auths" / "logs")  # no ./logs: beside the auth files
    (tmp_path / "logs").mkdir()
    assert log_dir(config) == str(tmp_path / "logs")


# -- reading -------------------------------------------------------------------------------------

def seed(folder):
    (folder / "main.log.2").write_text(line("2020-01-01 00:00:01", "numbered-2"))
    (folder / "main.log.1").write_text(line("2020-01-01 00:00:02", "numbered-1"))
    (folder / "main-2019-12-30T00-00-00.000.log").write_text(line("2019-12-30 00:00:00", "oldest"))
    with gzip.open(folder / "main-2019-12-31T00-00-00.log.gz", "wt") as f:
        f.write(line("2019-12-31 00:00:00", "zipped"))
    (folder / "main.log").write_bytes(
        (line("2020-01-01 00:00:03", "current") + "  continued\r\n"
         + line("2020-01-01 00:00:05", "newest")).encode())
    (folder / "error-v1-x-2020-01-01T000000-aaaa.log").write_text("not the main log\n")
    (folder / "other.log").write_text("not the main log\n")


def test_files_are_read_oldest_first_main_log_last(folder):
    seed(folder)
    names = [os.path.basename(p) for p in main_log_files(str(folder))]
    assert names == ["main-2019-12-30T00-00-00.000.log", "main-2019-12-31T00-00-00.log.gz",
                     "main.log.2", "main.log.1", "main.log"]
    body = read_logs(str(folder), 0, None)
    assert [x.split("] ")[-1] for x in body["lines"]] == [
        "oldest", "zipped", "numbered-2", "numbered-1", "current", "  continued", "newest"]
    assert body["line-count"] == 7
    assert body["latest-timestamp"] == unix("2020-01-01 00:00:05")


def test_after_keeps_newer_lines_and_their_continuations(folder):
    seed(folder)
    body = read_logs(str(folder), unix("2020-01-01 00:00:02"), None)
    assert [x.split("] ")[-1] for x in body["lines"]] == ["current", "  continued", "newest"]
    assert body["line-count"] == 7  # every scanned line counts
    body = read_logs(str(folder), unix("2020-01-01 00:00:03"), None)
    assert [x.split("] ")[-1] for x in body["lines"]] == ["newest"]  # its continuation goes too
    assert read_logs(str(folder), unix("2030-01-01 00:00:00"), None)["latest-timestamp"] == \
        unix("2030-01-01 00:00:00")


def test_limit_keeps_the_last_lines(folder):
    seed(folder)
    assert [x.split("] ")[-1] for x in read_logs(str(folder), 0, 2)["lines"]] == [
        "  continued", "newest"]


def test_get_logs(logging_app, folder):
    seed(folder)
    mgmt = ManagementClient(logging_app.test_client())
    body = mgmt.get("/logs", query_string={"after": unix("2020-01-01 00:00:03")}).get_json()
    assert any(x.endswith("newest") for x in body["lines"])
    assert not any(x.endswith("current") for x in body["lines"])
    for value, error in (("0", "must be greater than zero"), ("-1", "must be greater than zero"),
                         ("1.5", "must be a positive integer"), ("1_0", "must be a positive integer"),
                         ("\u0661", "must be a positive integer"), (str(1 << 63), "must be a positive integer")):
        r = mgmt.get("/logs", query_string={"limit": value})
        assert r.status_code == 400 and r.get_json() == {"error": f"invalid limit: {error}"}
    for value in ("+1", " 1", "1 "):  # upstream trims, then Go's Atoi
        assert len(mgmt.get("/logs", query_string={"limit": value}).get_json()["lines"]) == 1
    assert mgmt.get("/logs", query_string={"limit": str((1 << 63) - 1)}).status_code == 200
    assert mgmt.get("/logs", query_string={"after": str(1 << 64)}).get_json()["lines"]  # no filter


def test_logs_refused_while_logging_to_file_is_off(mgmt, folder):
    for method in ("GET", "DELETE"):
        r = mgmt.request(method, "/logs")
        assert r.status_code == 400 and r.get_json() == {"error": "logging to file disabled"}


def test_missing_folder(logging_app, folder):
    folder.rmdir()
    logs.close(logging_app)
    mgmt = ManagementClient(logging_app.test_client())
    assert mgmt.get("/logs?after=7").get_json() == {"lines": [], "line-count": 0,
                                                   "latest-timestamp": 7}
    r = mgmt.delete("/logs")
    assert r.status_code == 404 and r.get_json() == {"error": "log directory not found"}


def test_delete_logs(logging_app, folder):
    seed(folder)
    r = ManagementClient(logging_app.test_client()).delete("/logs")
    assert r.get_json() == {"success": True, "message": "Logs cleared successfully", "removed": 4}
    assert sorted(p.name for p in folder.iterdir()) == [
        "error-v1-x-2020-01-01T000000-aaaa.log", "main.log", "other.log"]


# -- the server's own log ----------------------------------------------------------------------

def test_logging_to_file_writes_upstreams_line_format(logging_app, folder):
    logging.getLogger("cliproxy_mgmt.test").warning("hello %s", "file")
    text = (folder / "main.log").read_text()
    assert re.fullmatch(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[--------\] \[warn \] "
                        r"\[test_logs\.py:\d+\] hello file", text.splitlines()[-1])
    assert time.time() - read_logs(str(folder), 0, None)["latest-timestamp"] < 5


def test_logging_follows_the_setting_and_mutes_the_console(folder, mgmt):
    app = mgmt.client.application
    console = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    root.addHandler(console)
    try:
        assert mgmt.put("/logging-to-file", json={"value": True}).status_code == 200
        assert any(isinstance(f, writer._MuteConsole) for f in console.filters)
        logging.getLogger("cliproxy_mgmt.test").warning("to the file")
        assert "to the file" in (folder / "main.log").read_text()
        assert mgmt.put("/logging-to-file", json={"value": False}).status_code == 200
        assert console.filters == []
        logging.getLogger("cliproxy_mgmt.test").warning("not to the file")
        assert "not to the file" not in (folder / "main.log").read_text()
    finally:
        root.removeHandler(console)
        logs.close(app)


def test_rotation_uses_lumberjack_names_that_get_logs_reads(logging_app, folder, monkeypatch):
    handler = logging_app.extensions["cliproxy_mgmt"].extras["logs"]._handler
    monkeypatch.setattr(handler, "maxBytes", 200)
    log = logging.getLogger("cliproxy_mgmt.test")
    for n in range(6):
        log.warning("line %d %s", n, "x" * 60)
    rotated = sorted(p.name for p in folder.glob("main-*.log"))
    assert rotated and all(os.path.basename(p) != "main.log" for p in rotated)
    lines = read_logs(str(folder), 0, None)["lines"]
    numbers = [int(x.split("line ")[1].split()[0]) for x in lines if "line " in x]
    assert numbers == list(range(6))


def test_upkeep_limits(folder):
    now = time.time()
    for n in range(5):
        path = folder / f"error-x-{n}.log"
        path.write_text("e" * 10)
        os.utime(path, (now - 100 + n, now - 100 + n))
    writer.enforce_limits(str(folder), 0, 2)
    assert sorted(p.name for p in folder.iterdir()) == ["error-x-3.log", "error-x-4.log"]

    (folder / "main.log").write_bytes(b"m" * 700_000)
    for n in range(3):
        path = folder / f"main-2020-01-0{n + 1}T00-00-00.000.log"
        path.write_bytes(b"r" * 300_000)
        os.utime(path, (now - 50 + n, now - 50 + n))
    os.utime(folder / "main.log", (now - 1000, now - 1000))  # oldest, but never deleted
    writer.enforce_limits(str(folder), 1, 0)  # 1 MB: the oldest go first, error logs too
    assert sorted(p.name for p in folder.iterdir()) == [
        "main-2020-01-03T00-00-00.000.log", "main.log"]


# -- request error logs ------------------------------------------------------------------------

ERR = "error-v1-messages-2026-01-15T080000-bbbb2222.log"


def test_error_logs_listing_and_download(mgmt, folder):
    (folder / ERR).write_text("0123456789")
    (folder / "error-dir.log").mkdir()
    listing = mgmt.get("/request-error-logs").get_json()["files"]
    assert [f["name"] for f in listing] == [ERR]
    r = mgmt.get(f"/request-error-logs/{ERR}", headers={"Range": "bytes=2-4"})
    assert r.status_code == 206 and r.data == b"234"
    assert r.headers["Content-Disposition"] == f'attachment; filename="{ERR}"'
    r.close()
    r = mgmt.get("/request-error-logs/error-dir.log")
    assert r.status_code == 400 and r.get_json() == {"error": "invalid log file"}


def test_non_ascii_names_download_with_an_encoded_filename(mgmt, folder):
    name = "error-ünïcode-cccc.log"
    (folder / name).write_text("x")
    r = mgmt.get(f"/request-error-logs/{name}")
    assert r.headers["Content-Disposition"] == \
        "attachment; filename*=UTF-8''error-%C3%BCn%C3%AFcode-cccc.log"
    r.close()


@pytest.mark.parametrize("name, status, error", [
    ("a/error-x.log", 400, "invalid log file name"),
    ("error-x\\y.log", 400, "invalid log file name"),
    ("%20", 400, "invalid log file name"),
    ("main.log", 404, "log file not found"),
    ("error-missing.log", 404, "log file not found"),
    ("error-%00.log", 400, "invalid log file name"),  # (a NUL was a ValueError: 500)
    ("error-" + "x" * 300 + ".log", 404, "log file not found"),  # (too long for any file: was a 500 naming the folder)
])
def test_bad_error_log_names(mgmt, folder, name, status, error):
    r = mgmt.get(f"/request-error-logs/{name}")
    assert r.status_code == status and r.get_json() == {"error": error}


def test_a_symlink_out_of_the_folder_is_refused(mgmt, folder, tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    (folder / "error-link.log").symlink_to(tmp_path / "secret.txt")
    r = mgmt.get("/request-error-logs/error-link.log")
    assert r.status_code == 400 and r.get_json() == {"error": "invalid log file path"}
    assert mgmt.get("/request-error-logs").get_json() == {"files": []}


def test_request_log_by_id(mgmt, folder):
    (folder / "v1-chat-2026-01-15T090000-abcd1234.log").write_text("request")
    r = mgmt.get("/request-log-by-id/abcd1234")
    assert r.status_code == 200 and r.data == b"request"
    r.close()
    for rid, status, error in (("%20", 400, "missing request ID"),
                               ("a\\b", 400, "invalid request ID"),
                               ("a/b", 400, "invalid request ID"),
                               ("a%00b", 400, "invalid request ID"),
                               ("ffff", 404, "log file not found for the given request ID")):
        r = mgmt.get(f"/request-log-by-id/{rid}")
        assert r.status_code == status and r.get_json() == {"error": error}, rid
    r = mgmt.get("/request-log-by-id/%20?id=abcd1234")
    assert r.status_code == 200
    r.close()
    folder.joinpath("v1-chat-2026-01-15T090000-abcd1234.log").unlink()
    folder.rmdir()
    r = mgmt.get("/request-log-by-id/abcd1234")
    assert r.status_code == 404 and r.get_json() == {"error": "log directory not found"}
