"""The `cliproxy-mgmt` command and `waitress-serve wsgi:app`, run as real processes."""

from __future__ import annotations

import logging
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


def test_check_config_refuses_a_key_weight_the_proxy_would_refuse(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(config_text(tmp_path) + 'openai-compatibility:\n  - name: "p"\n    base-url: "https://x"\n'
                      '    api-key-entries:\n      - api-key: "k"\n        weight: 5000000\n')
    result = cli("check-config", str(config))
    assert result.returncode == 1
    assert "openai-compatibility[0].api-key-entries[0].weight: weight must not exceed 1000000" in result.stderr


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


# -- one line, never a traceback (issue 10, items 7, 8, 11 and 13) ---------------------------------

def assert_one_line(result, prefix: str) -> str:
    """The command failed with exactly one line on stderr that starts with `prefix`."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith(prefix), result.stderr
    assert not [line for line in lines if line.startswith("cliproxy-mgmt:")][1:], result.stderr
    return lines[-1]


def test_version_and_help_with_defaults():
    from cliproxy_mgmt import __version__
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"cliproxy-mgmt {__version__}"
    help_text = cli("serve", "--help").stdout
    assert "(default: 8)" in help_text and "--connection-limit" in help_text and "--log-level" in help_text
    assert "(default: None)" not in help_text


@pytest.mark.parametrize("args, message", [
    (["--threads", "0"], "argument --threads: 0 is less than 1"),
    (["--port", "99999"], "argument --port: 99999 is not a port"),
    (["--connection-limit", "x"], "is not a whole number"),
])
def test_serve_refuses_bad_options(tmp_path, args, message):
    result = cli("serve", "--config", str(_config(tmp_path, free_port())), *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("port", [99999, 0, -1])
def test_a_port_out_of_range_is_refused(tmp_path, port):
    config = tmp_path / "config.yaml"
    config.write_text(config_text(tmp_path / "auths").replace("port: 8317", f"port: {port}"))
    checked = cli("check-config", str(config))
    assert checked.returncode == 1 and "is not a port (1-65535)" in checked.stderr
    assert "is not a port" in assert_one_line(cli("serve", "--config", str(config)), "cliproxy-mgmt: cannot start:")


def test_port_in_use_is_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("serve", "--config", str(_config(tmp_path, port)))
    line = assert_one_line(result, "cliproxy-mgmt: cannot start:")
    assert f"127.0.0.1:{port}" in line and "in use" in line


def test_a_host_that_does_not_resolve_is_one_line(tmp_path):
    result = cli("serve", "--config", str(_config(tmp_path, free_port())), "--host", "no-such-host.invalid")
    assert "does not resolve" in assert_one_line(result, "cliproxy-mgmt: cannot start:")


def test_a_missing_config_is_one_line(tmp_path):
    result = cli("serve", "--config", str(tmp_path / "nope.yaml"))
    assert "not found" in assert_one_line(result, "cliproxy-mgmt: cannot start:")


def _plugin_dist(tmp_path, name: str, module_text: str):
    """A third-party plugin installed on PYTHONPATH: a module and its dist-info with the entry point."""
    site = tmp_path / "site"
    (site / f"{name}-1.0.dist-info").mkdir(parents=True)
    (site / f"{name}.py").write_text(module_text)
    (site / f"{name}-1.0.dist-info" / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (site / f"{name}-1.0.dist-info" / "entry_points.txt").write_text(f"[cliproxy_mgmt]\n{name} = {name}\n")
    return {**os.environ, "PYTHONPATH": str(site)}


def test_a_plugin_that_fails_to_import_is_one_line(tmp_path):
    env = _plugin_dist(tmp_path, "broken_plugin", "import module_that_is_not_installed\n")
    served = cli("serve", "--config", str(_config(tmp_path, free_port())), env=env)
    line = assert_one_line(served, "cliproxy-mgmt: cannot start:")
    assert "'broken_plugin'" in line and "module_that_is_not_installed" in line
    listed = cli("plugins", env=env)
    assert "'broken_plugin'" in assert_one_line(listed, "cliproxy-mgmt: error:")


def test_a_misspelled_hook_is_one_line(tmp_path):
    env = _plugin_dist(tmp_path, "typo_plugin", "from cliproxy_mgmt import hookimpl\n\n"
                                                "@hookimpl\ndef register_bluprints(config):\n    return []\n")
    line = assert_one_line(cli("serve", "--config", str(_config(tmp_path, free_port())), env=env),
                           "cliproxy-mgmt: cannot start:")
    assert "typo_plugin" in line and "register_bluprints" in line
    assert "register_bluprints" in assert_one_line(cli("plugins", env=env), "cliproxy-mgmt: error:")


def _hash_key_on_a_terminal(keystroke: bytes) -> tuple[int, str]:
    """Run `hash-key` on a pseudo-terminal, answer the prompt with `keystroke`; (exit status, output)."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: the command on the terminal
        os.execv(str(BIN / "cliproxy-mgmt"), ["cliproxy-mgmt", "hash-key"])
    output = b""
    try:
        while b"management key:" not in output:
            output += os.read(fd, 1024)
        time.sleep(0.2)  # the prompt is written just before the terminal is switched to no-echo
        os.write(fd, keystroke)
        while True:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


@pytest.mark.parametrize("keystroke, code, message", [(b"\x04", 1, "cliproxy-mgmt: error: no key entered"),
                                                      (b"\x03", 130, "cliproxy-mgmt: interrupted")])
def test_ctrl_d_and_ctrl_c_at_the_hash_key_prompt(keystroke, code, message):
    status, output = _hash_key_on_a_terminal(keystroke)
    assert status == code and message in output and "Traceback" not in output


def test_plugins_into_a_closed_pipe_is_quiet():
    proc = subprocess.Popen([str(BIN / "cliproxy-mgmt"), "plugins"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # `| head` that has already exited
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    proc.stderr.close()
    assert proc.returncode != 0 and err == ""


def test_plugins_show_the_package_version_for_built_ins():
    from cliproxy_mgmt import __version__
    assert f"cliproxy_mgmt.providers.gemini {__version__}:" in cli("plugins").stdout


# -- start-up (issue 10 items 8, 9, 13) -----------------------------------------------------------

def test_host_and_port_options_override_the_config(tmp_path):
    config = _config(tmp_path, 1)  # the config's port is not usable: the option wins
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([str(BIN / "cliproxy-mgmt"), "serve", "--config", str(config), "--host", "127.0.0.1",
                               "--port", str(port), "--threads", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True)
             for port in ports]
    outputs = []
    try:
        for port, proc in zip(ports, procs):
            assert _wait_up(port, proc).status_code == 200
    finally:
        outputs = [_stop(proc) for proc in procs]
    assert f"listening on http://127.0.0.1:{ports[0]}" in outputs[0]


def test_start_up_summary_and_unknown_key_warning(tmp_path):
    from cliproxy_mgmt import __version__
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(config_text(tmp_path / "auths", extra_yaml="remote-managment:\n  allow-remote: true\n")
                      .replace("port: 8317", f"port: {port}"))
    proc = subprocess.Popen([str(BIN / "cliproxy-mgmt"), "serve", "--config", str(config), "--threads", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True)
    try:
        _wait_up(port, proc)
    finally:
        output = _stop(proc)
    for expected in (f"cliproxy-mgmt {__version__}", f"config: {config}", f"listening on http://127.0.0.1:{port}",
                     "management API: on (remote-management.secret-key; remote clients refused)",
                     f"cliproxy_mgmt.providers.gemini {__version__}", "storage: files",
                     "unknown config key remote-managment (did you mean remote-management?)",
                     f'127.0.0.1 "GET /v0/management/debug HTTP/1.1" 200'):
        assert expected in output, expected
    assert KEY not in output
    checked = cli("check-config", str(config))
    assert checked.returncode == 0 and "did you mean remote-management?" in checked.stderr


def test_log_level_and_access_log_options(tmp_path):
    port = free_port()
    env = {**os.environ, "CLIPROXY_MGMT_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([str(BIN / "cliproxy-mgmt"), "serve", "--config", str(_config(tmp_path, port)),
                             "--threads", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True)
    try:
        _wait_up(port, proc)
    finally:
        output = _stop(proc)
    assert "listening on" not in output and "GET /v0/management" not in output
    port = free_port()
    proc = subprocess.Popen([str(BIN / "cliproxy-mgmt"), "serve", "--config", str(_config(tmp_path, port)),
                             "--no-access-log", "--log-level", "info"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True)
    try:
        _wait_up(port, proc)
    finally:
        output = _stop(proc)
    assert "listening on" in output and "GET /v0/management" not in output


def test_a_plugin_route_without_a_description_is_a_start_up_warning(make_app, caplog):
    from flask import Blueprint

    from cliproxy_mgmt import hookimpl

    class Undocumented:
        @hookimpl
        def register_blueprints(self, config):
            bp = Blueprint("undocumented", __name__)
            bp.add_url_rule("/undocumented", "undocumented", lambda: "x")
            return [bp]

    with caplog.at_level(logging.WARNING):
        make_app(plugins=[Undocumented()])
    assert "route GET /v0/management/undocumented has no OpenAPI description" in caplog.text


def test_the_example_configs_have_no_unknown_keys():
    for path in (ROOT / "tests" / "data" / "config.example.yaml", ROOT / "config.yaml"):
        result = cli("check-config", str(path))
        assert result.returncode == 0 and "unknown config key" not in result.stderr, result.stderr


def test_a_plugin_hook_that_raises_is_one_line(tmp_path):
    env = _plugin_dist(tmp_path, "raising_plugin", "from cliproxy_mgmt import hookimpl\n\n"
                                                   "@hookimpl\ndef register_providers(config):\n"
                                                   "    raise RuntimeError('plugin bug')\n")
    line = assert_one_line(cli("serve", "--config", str(_config(tmp_path, free_port())), env=env),
                           "cliproxy-mgmt: cannot start:")
    assert "RuntimeError: plugin bug" in line
    debug = cli("serve", "--config", str(_config(tmp_path, free_port())), "--log-level", "debug", env=env)
    assert "Traceback" in debug.stderr and "cannot start: RuntimeError: plugin bug" in debug.stderr


def test_serve_shares_one_malloc_arena_on_glibc(monkeypatch):
    import platform

    from cliproxy_mgmt.serving import _one_malloc_arena

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt's arena setting is glibc's")
    assert _one_malloc_arena() is True


def test_an_operators_malloc_arena_setting_is_left_alone(monkeypatch):
    from cliproxy_mgmt.serving import _one_malloc_arena

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert _one_malloc_arena() is False
