"""The `cliproxy-mgmt` command and `waitress-serve wsgi:app`, run as real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import bcrypt
import pytest
import requests

from cliproxy_mgmt.testing import KEY, config_text

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def cli(*args, **kw):
    return subprocess.run([str(BIN / "cliproxy-mgmt"), *args], capture_output=True, text=True, timeout=60, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hash_key():
    result = cli("hash-key", "s3cret")
    assert result.returncode == 0
    assert bcrypt.checkpw(b"s3cret", result.stdout.strip().encode())
    from_stdin = cli("hash-key", input="other\n")
    assert bcrypt.checkpw(b"other", from_stdin.stdout.strip().encode())
    assert cli("hash-key", "x" * 80).returncode == 1


def test_check_config(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(config_text(tmp_path))
    assert cli("check-config", str(good)).returncode == 0
    assert cli("check-config", str(ROOT / "config.yaml")).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("port: abc\n")
    result = cli("check-config", str(bad))
    assert result.returncode == 1 and "port" in result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("debug: [\n")
    assert cli("check-config", str(broken)).returncode == 1


def test_plugins_lists_built_ins():
    result = cli("plugins")
    assert result.returncode == 0
    assert "cliproxy_mgmt.providers.gemini" in result.stdout
    assert "config gemini-api-key" in result.stdout


def _wait_up(port: int, proc) -> requests.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited"
        try:
            return requests.get(f"http://127.0.0.1:{port}/v0/management/debug",
                                headers={"Authorization": f"Bearer {KEY}"}, timeout=2)
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("server did not answer")


def _stop(proc) -> str:
    """Stop the server; return what it printed."""
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    return out if isinstance(out, str) else out.decode(errors="replace")


def _config(tmp_path, port):
    path = tmp_path / "config.yaml"
    path.write_text(config_text(tmp_path / "auths").replace("port: 8317", f"port: {port}"))
    return path


def test_serve_runs_waitress_on_the_configured_port(tmp_path):
    port = free_port()
    config = _config(tmp_path, port)
    proc = subprocess.Popen([str(BIN / "cliproxy-mgmt"), "serve", "--config", str(config), "--threads", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        r = _wait_up(port, proc)
        assert r.status_code == 200 and r.json() == {"debug": False}
        assert "waitress" in r.headers.get("Server", "") or r.headers.get("X-CPA-VERSION")
    finally:
        _stop(proc)


def test_serve_without_any_key_says_how_to_enable(tmp_path):
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(config_text(tmp_path / "auths", key="").replace("port: 8317", f"port: {port}"))
    env = {k: v for k, v in os.environ.items() if k != "MANAGEMENT_PASSWORD"}
    proc = subprocess.Popen([str(BIN / "cliproxy-mgmt"), "serve", "--config", str(config)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True)
    try:
        assert _wait_up(port, proc).status_code == 404
    finally:
        output = _stop(proc)
    assert "--local-password" in output


def test_invalid_config_refuses_to_start(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("port: abc\n")
    result = cli("serve", "--config", str(config))
    assert result.returncode == 1 and "cannot start" in result.stderr


@pytest.mark.skipif(not (BIN / "waitress-serve").exists(), reason="waitress-serve not installed")
def test_waitress_serve_wsgi_app(tmp_path):
    port = free_port()
    config = _config(tmp_path, port)
    env = {**os.environ, "CLIPROXY_MGMT_CONFIG": str(config)}
    proc = subprocess.Popen([str(BIN / "waitress-serve"), f"--listen=127.0.0.1:{port}", "wsgi:app"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        assert _wait_up(port, proc).json() == {"debug": False}
    finally:
        _stop(proc)
