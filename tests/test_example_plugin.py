"""A third-party provider plugin, installed with pip into a fresh virtualenv, is picked up by
the server through its entry point: its routes, config section, auth-file type and model
catalogue all work, and the core names it nowhere (examples/cliproxy-acme).

The fresh venv sees this environment's packages (cliproxy-mgmt and its dependencies) through
a `.pth` file, so only the example itself is installed; pip builds it in an isolated build
environment (setuptools from the package index).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import requests
import yaml

from cliproxy_mgmt.testing import KEY, MGMT_PREFIX, config_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cliproxy-acme"


def run(*cmd, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)
    assert result.returncode == 0, f"{cmd}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory) -> Path:
    """A fresh venv holding the example plugin, installed by pip from its source folder."""
    root = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", root)
    python = root / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    host = sysconfig.get_paths()["purelib"]
    Path(purelib, "host-environment.pth").write_text(f"import site; site.addsitedir({host!r})\n")
    run(python, "-m", "pip", "install", "--quiet", "--no-deps", EXAMPLE)
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(venv_python, tmp_path):
    """A real `cliproxy-mgmt serve` run by the venv's Python; yields (base URL, config path)."""
    auth_dir = tmp_path / "auths"
    auth_dir.mkdir()
    (auth_dir / "acme-user.json").write_text(json.dumps({"type": "acme", "email": "user@acme.test"}))
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(config_text(auth_dir, extra_yaml='acme-api-key:\n  - api-key: " a1 "\n')
                      .replace("port: 8317", f"port: {port}"))
    env = {k: v for k, v in os.environ.items() if k not in ("MANAGEMENT_PASSWORD", "CLIPROXY_MGMT_CONFIG")}
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen([venv_python, "-m", "cliproxy_mgmt", "serve", "--config", config],
                                cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}{MGMT_PREFIX}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                requests.get(base + "/config", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.05)
        yield base, config
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def call(method: str, url: str, **kw) -> requests.Response:
    return requests.request(method, url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10, **kw)


def test_the_installed_plugin_is_served(server):
    base, config = server
    assert call("GET", base + "/acme-api-key").json() == {"acme-api-key": [{"api-key": "a1"}]}
    assert call("PUT", base + "/acme-api-key", json=[{"api-key": "a2", "prefix": "/t/"}]).json() == {"status": "ok"}
    assert yaml.safe_load(config.read_text())["acme-api-key"] == [{"api-key": "a2", "prefix": "t"}]
    assert call("GET", base + "/config").json()["acme-api-key"] == [{"api-key": "a2", "prefix": "t"}]
    [entry] = call("GET", base + "/auth-files").json()["files"]
    assert (entry["type"], entry["provider"], entry["email"]) == ("acme", "acme", "user@acme.test")
    models = call("GET", base + "/model-definitions/acme").json()["models"]
    assert [m["id"] for m in models] == ["acme-large", "acme-small"]
    assert requests.get(base + "/acme-api-key", timeout=10).status_code == 401  # the guard covers it


def test_the_plugins_command_lists_what_it_registers(venv_python):
    out = run(venv_python, "-m", "cliproxy_mgmt", "plugins").stdout
    block = out[out.index("acme 0.1.0"):]
    for line in ("provider acme", "config acme-api-key", "auth-file type acme"):
        assert line in block, out


def test_the_plugins_own_tests_pass_with_the_testing_fixtures(venv_python):
    run(venv_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=EXAMPLE)


def test_the_core_does_not_name_it():
    for folder in ("cliproxy_mgmt", "plugins"):
        for path in (ROOT / folder).rglob("*"):
            assert path.is_dir() or "cliproxy_acme" not in path.read_text(errors="replace"), path
