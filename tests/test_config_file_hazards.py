"""config.yaml by hand, the hard cases, against a real server: bytes that are not UTF-8,
integers too long to be numbers, a file that is no file (FIFO), a file that is gone.

Each is a hand edit that cannot be loaded: every request still answers (the last good
config stays in force), a write says why it was refused, nothing hangs, there is no 500
with a traceback, and PUT /config.yaml can still replace the file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from realserver import RealServer, call, session

SETTLE = 0.2  # seconds: more than the store's interval between two looks at the file


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = RealServer(tmp_path_factory.mktemp("hazards")).start()
    srv.http = session()
    srv.good = srv.config_path.read_text()
    yield srv
    srv.http.close()
    srv.kill()



def put_yaml(srv, text: str):
    return call(srv, "PUT", "/config.yaml", data=text.encode("utf-8"),
                headers={"Content-Type": "application/yaml"})


@pytest.fixture
def good(server):
    """The server's good config text; after the test, the file is that text again."""
    yield server.good
    if server.config_path.is_symlink() or not server.config_path.is_file():
        server.config_path.unlink(missing_ok=True)
    assert put_yaml(server, server.good).status_code == 200
    assert call(server, "PUT", "/debug", json={"value": False}).status_code == 200


def error_of(resp) -> str:
    assert resp.headers["Content-Type"].startswith("application/json"), resp.text
    return resp.json()["error"]


def assert_last_good_config_in_force(srv) -> None:
    """Reads answer from the last good config; a write is refused, with a reason."""
    for path in ("/auth-files", "/debug", "/config", "/config.yaml"):
        r = call(srv, "GET", path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    assert call(srv, "GET", "/debug").json() == {"debug": False}
    r = call(srv, "PUT", "/debug", json={"value": True})
    assert r.status_code != 200 and error_of(r), r.text[:300]
    assert "internal server error" not in r.text
    return r


def full_log(srv) -> str:
    return srv.log_path.read_text(errors="replace")


def assert_no_traceback(srv) -> None:
    assert "Traceback" not in full_log(srv)


# -- bytes that are not UTF-8 ------------------------------------------------------------------

@pytest.mark.parametrize("edit", [
    pytest.param(lambda text: text.encode("utf-8") + b"\n# caf\xe9\n", id="latin-1-byte"),
    pytest.param(lambda text: text.encode("utf-16"), id="utf-16")])
def test_a_hand_edit_that_is_not_utf8_keeps_the_last_good_config(server, good, edit):
    reported = full_log(server).count("keeping the last good config: not UTF-8 text")
    server.config_path.write_bytes(edit(good))
    time.sleep(SETTLE)
    r = assert_last_good_config_in_force(server)
    assert "does not load" in r.json()["error"] and "not UTF-8 text" in r.json()["error"]
    assert server.config_path.read_bytes() == edit(good)  # the edit was not overwritten
    # PUT /config.yaml replaces it, and writes work again.
    assert put_yaml(server, good).status_code == 200
    assert call(server, "PUT", "/debug", json={"value": True}).status_code == 200
    assert call(server, "GET", "/debug").json() == {"debug": True}
    # logged once, however often it was looked at
    assert full_log(server).count("keeping the last good config: not UTF-8 text") == reported + 1
    assert_no_traceback(server)


def start_up(tmp_path, raw: bytes, command: str) -> subprocess.CompletedProcess:
    path = tmp_path / "config.yaml"
    path.write_bytes(raw)
    args = ["serve", "--config", str(path)] if command == "serve" else ["check-config", str(path)]
    return subprocess.run([sys.executable, "-m", "cliproxy_mgmt", *args], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)


@pytest.mark.parametrize("command", ["serve", "check-config"])
def test_a_config_that_is_not_utf8_stops_start_up_with_one_line(tmp_path, command):
    done = start_up(tmp_path, b"debug: false\n# caf\xe9\n", command)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "not UTF-8 text: byte 0xe9 on line 2" in done.stderr


# -- integers too long to be numbers --------------------------------------------------------------

HUGE = {"decimal": "x: " + "9" * 5000, "hex": "request-retry: 0x" + "f" * 5000,
        "hex-500-digits": "request-retry: 0x" + "f" * 500}


@pytest.mark.parametrize("kind", sorted(HUGE))
def test_a_hand_edit_with_a_huge_integer_keeps_the_last_good_config(server, good, kind):
    edited = good.replace("request-retry: 3\n", "") + HUGE[kind] + "\n"
    server.config_path.write_text(edited)
    time.sleep(SETTLE)
    r = assert_last_good_config_in_force(server)
    assert "does not load" in r.json()["error"] and len(r.text) < 1000, r.text[:1000]
    assert call(server, "GET", "/request-retry").json() == {"request-retry": 3}
    assert server.config_path.read_text() == edited
    assert put_yaml(server, good).status_code == 200
    assert call(server, "PUT", "/debug", json={"value": True}).status_code == 200
    assert_no_traceback(server)


@pytest.mark.parametrize("kind", sorted(HUGE))
def test_put_config_yaml_with_a_huge_integer_is_400(server, good, kind):
    r = put_yaml(server, good.replace("request-retry: 3\n", "") + HUGE[kind] + "\n")
    assert r.status_code == 400 and error_of(r) == "invalid_yaml", r.text[:300]
    assert len(r.text) < 1000 and ("1000 digits" in r.text or "2000-bit number" in r.text), r.text[:1000]
    assert server.config_path.read_text() == good
    assert_no_traceback(server)


@pytest.mark.parametrize("kind", sorted(HUGE))
def test_a_config_with_a_huge_integer_stops_start_up_with_one_line(tmp_path, kind):
    for command in ("serve", "check-config"):
        done = start_up(tmp_path, f"debug: false\n{HUGE[kind]}\n".encode(), command)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert len(done.stderr) < 300, done.stderr[:1000]


# -- a FIFO (or a symlink to one) where config.yaml was ----------------------------------------------

def replace_with_fifo(path, how: str):
    real = path.with_name("config.yaml.real")
    os.replace(path, real)
    if how == "fifo":
        os.mkfifo(path)
    else:
        os.mkfifo(path.with_name("config.fifo"))
        os.symlink("config.fifo", path)
    return real


@pytest.mark.parametrize("how", ["fifo", "symlink-to-fifo"])
def test_config_yaml_replaced_by_a_fifo_never_hangs_the_server(server, good, how):
    real = replace_with_fifo(server.config_path, how)
    try:
        time.sleep(SETTLE)
        assert_last_good_config_in_force(server)
        r = call(server, "PUT", "/debug", json={"value": True})  # again: no thread is stuck
        assert (r.status_code, error_of(r)) == (
            500, f"failed to save config: {server.config_path} cannot be read (not a regular file); "
                 "nothing was written")
    finally:
        server.config_path.unlink()
        server.config_path.with_name("config.fifo").unlink(missing_ok=True)
        os.replace(real, server.config_path)
    # The real file is back: writes work (they never waited on the FIFO).
    assert call(server, "PUT", "/debug", json={"value": True}).status_code == 200
    assert call(server, "GET", "/debug").json() == {"debug": True}
    assert "debug: true" in server.config_path.read_text()
    assert_no_traceback(server)


def test_a_symlink_to_a_regular_file_is_read_and_written_through(server, good):
    target = server.config_path.with_name("real-config.yaml")
    target.write_text(good.replace("request-retry: 3", "request-retry: 4"))
    server.config_path.unlink()
    server.config_path.symlink_to(target.name)
    try:
        time.sleep(SETTLE)
        assert call(server, "GET", "/request-retry").json() == {"request-retry": 4}
        assert call(server, "PUT", "/debug", json={"value": True}).status_code == 200
        assert server.config_path.is_symlink() and "debug: true" in target.read_text()
    finally:
        server.config_path.unlink()
        os.replace(target, server.config_path)


def test_check_config_on_a_fifo_is_one_line_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "config.yaml")
    done = subprocess.run([sys.executable, "-m", "cliproxy_mgmt", "check-config", "config.yaml"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == "config.yaml: invalid: not a regular file"


# -- config.yaml deleted while the server runs ---------------------------------------------------------

def test_config_yaml_deleted_keeps_the_config_in_force_and_writes_say_it_is_missing(server, good):
    warning = f"cannot read {server.config_path}, keeping the config in force: No such file"
    reported = full_log(server).count(warning)
    server.config_path.unlink()
    time.sleep(SETTLE)
    r = assert_last_good_config_in_force(server)
    assert (r.status_code, error_of(r)) == (
        500, f"failed to save config: {server.config_path} is missing (deleted or moved away); "
             "nothing was written")
    assert not server.config_path.exists()  # a write does not recreate it from memory
    assert "kept changing" not in full_log(server)
    assert full_log(server).count(warning) == reported + 1  # once, however often it was looked at
    # PUT /config.yaml writes a new one, and writes work again.
    assert put_yaml(server, good).status_code == 200
    assert call(server, "PUT", "/debug", json={"value": True}).status_code == 200
    assert "debug: true" in server.config_path.read_text()
    assert_no_traceback(server)
