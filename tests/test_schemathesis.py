"""schemathesis against the real waitress server: no 5xx, and every response conforms to the description.

The server and schemathesis run in a private network namespace (`unshare -n`, loopback
only), so whatever URL a fuzzed body names (api-call, OAuth endpoints set through
PUT /config.yaml, ...), no packet leaves the machine. Without that privilege the routes
that make outgoing requests are left out instead.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PORT = 18317
PASSWORD = "fuzz-management-password"
EXAMPLES = 15  # per operation and phase: bounded, so the run takes about a minute
NETWORK_ROUTES = r"/(api-call|latest-version)$|-auth-url$"


def isolated() -> bool:
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def test_fuzzing_finds_no_server_errors(tmp_path):
    if not (BIN / "schemathesis").exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    config = tmp_path / "config.yaml"
    config.write_text((ROOT / "config.yaml").read_text()
                      .replace("port: 8317", f"port: {PORT}")
                      .replace('auth-dir: "auths"', f'auth-dir: "{tmp_path / "auths"}"'))
    (tmp_path / "auths").mkdir()
    sandboxed = isolated()
    command = [str(BIN / "schemathesis"), "run", f"http://127.0.0.1:{PORT}/v0/management/openapi.json",
               "--wait-for-schema", "30", "-H", f"Authorization: Bearer {PASSWORD}",
               "-n", str(EXAMPLES), "--phases", "examples,coverage,fuzzing", "--seed", "20261123",
               "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance",
               "--generation-database", "none", "--no-color", "--request-timeout", "20"]
    if not sandboxed:
        command += ["--exclude-path-regex", NETWORK_ROUTES]
    script = (
        ("ip link set lo up\n" if sandboxed else "")
        + f"MANAGEMENT_PASSWORD={PASSWORD} {BIN / 'cliproxy-mgmt'} serve --config {config} "
        + f"> {tmp_path / 'server.log'} 2>&1 &\n"
        + " ".join(shlex.quote(part) for part in command) + "\nrc=$?\nkill %1 2>/dev/null\nwait\nexit $rc\n")
    runner = ["unshare", "-n", "bash", "-c", script] if sandboxed else ["bash", "-c", script]
    result = subprocess.run(runner, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    output = result.stdout + result.stderr
    tested = re.search(r"Tested: (\d+)", output)
    cases = re.search(r"(\d+) generated", output)
    print(f"schemathesis: {tested.group(1) if tested else '?'} operations, "
          f"{cases.group(1) if cases else '?'} test cases, exit {result.returncode}, "
          f"{'network namespace' if sandboxed else 'network routes excluded'}")
    assert result.returncode == 0, output[-6000:] + "\n--- server log ---\n" + (tmp_path / "server.log").read_text()[-3000:]
