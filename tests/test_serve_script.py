"""The README's server command (`./scripts/serve`) leaves the tracked config.yaml pristine: it
serves a git-ignored copy, config.local.yaml, made on the first run and kept afterwards.

The script runs for real, in a copy of the checkout's config.yaml and scripts/serve whose
.venv points at this environment's `cliproxy-mgmt` (so it installs nothing).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from realserver import free_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "change-me"


def serve(checkout: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MANAGEMENT_PASSWORD", "WRITABLE_PATH", "writable_path", "CLIPROXY_MGMT_CONFIG")}
    return subprocess.Popen([checkout / "scripts" / "serve", "--local-password", PASSWORD], cwd="/",
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def call(method: str, url: str, proc, **kw) -> requests.Response:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, proc.stdout.read()
        try:
            return requests.request(method, url, headers={"Authorization": f"Bearer {PASSWORD}"},
                                    timeout=5, **kw)
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.1)


def stop(proc) -> str:
    os.killpg(proc.pid, signal.SIGTERM)
    return proc.communicate(timeout=10)[0]


def test_the_server_command_edits_a_copy(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "serve", checkout / "scripts" / "serve")
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "cliproxy-mgmt").symlink_to(Path(sys.executable).parent / "cliproxy-mgmt")
    port = free_port()
    bundled = (ROOT / "config.yaml").read_text().replace("port: 8317", f"port: {port}")
    (checkout / "config.yaml").write_text(bundled)
    debug = f"http://127.0.0.1:{port}/v0/management/debug"

    proc = serve(checkout)
    try:
        assert call("PUT", debug, proc, json={"value": True}).json() == {"status": "ok"}
    finally:
        output = stop(proc)
    assert "created config.local.yaml" in output
    assert (checkout / "config.yaml").read_text() == bundled
    local = (checkout / "config.local.yaml").read_text()
    assert local == bundled.replace("debug: false", "debug: true")

    proc = serve(checkout)  # a second run keeps the working copy and its edits
    try:
        assert call("GET", debug, proc).json() == {"debug": True}
    finally:
        output = stop(proc)
    assert "created" not in output and (checkout / "config.yaml").read_text() == bundled


def test_what_runs_create_is_ignored():
    ignored = (ROOT / ".gitignore").read_text().split()
    for name in ("/config.local.yaml", "/.config.local.yaml.journal", "/auths/", "/logs/", "/static/",
                 "/usage-statistics.sqlite3*"):
        assert name in ignored
