"""schemathesis against the real waitress server: no 5xx, and every response conforms to the description.

The server and schemathesis run in a private network namespace (`unshare -n`, loopback
only), so whatever URL a fuzzed body names (api-call, OAuth endpoints set through
PUT /config.yaml, ...), no packet leaves the machine; without that privilege the routes
that reach out are left out.

The routes that reach out answer upstream's 5xx when the far side is unreachable (502
`request_failed` from /api-call and /latest-version, 500 `failed to generate
authorization url` when qwen's device endpoint is down): a second run holds them to the
description only.
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
EXAMPLES = 15  # per operation and phase: bounded, so a run takes about a minute
REACHES_OUT = r"^/(api-call|latest-version|qwen-auth-url|iflow-auth-url|kimi-auth-url|xai-auth-url)$"  # paths below the server URL
ALL_CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"
DESCRIPTION_CHECKS = "response_schema_conformance,content_type_conformance"


def isolated() -> bool:
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def schemathesis(checks: str, *select: str) -> str:
    command = [str(BIN / "schemathesis"), "run", f"http://127.0.0.1:{PORT}/v0/management/openapi.json",
               "--wait-for-schema", "30", "-H", f"Authorization: Bearer {PASSWORD}",
               "-n", str(EXAMPLES), "--phases", "examples,coverage,fuzzing", "--seed", "20261123",
               "--checks", checks, "--generation-database", "none", "--no-color",
               "--request-timeout", "20", *select]
    return " ".join(shlex.quote(part) for part in command)


def test_fuzzing_finds_no_server_errors(tmp_path):
    if not (BIN / "schemathesis").exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    config = tmp_path / "config.yaml"
    config.write_text((ROOT / "config.yaml").read_text()
                      .replace("port: 8317", f"port: {PORT}")
                      .replace('auth-dir: "auths"', f'auth-dir: "{tmp_path / "auths"}"'))
    (tmp_path / "auths").mkdir()
    sandboxed = isolated()
    runs = [schemathesis(ALL_CHECKS, "--exclude-path-regex", REACHES_OUT)]
    if sandboxed:
        runs.append(schemathesis(DESCRIPTION_CHECKS, "--include-path-regex", REACHES_OUT))
    script = "\n".join([
        "ip link set lo up" if sandboxed else "true",
        f"MANAGEMENT_PASSWORD={PASSWORD} {BIN / 'cliproxy-mgmt'} serve --config {config} "
        f"> {tmp_path / 'server.log'} 2>&1 &",
        "rc=0",
        *[f"echo '=== run {n}'; {run} || rc=1" for n, run in enumerate(runs)],
        "kill %1 2>/dev/null; wait; exit $rc", ""])
    runner = ["unshare", "-n", "bash", "-c", script] if sandboxed else ["bash", "-c", script]
    result = subprocess.run(runner, capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    output = result.stdout + result.stderr
    operations = sum(int(n) for n in re.findall(r"Tested: (\d+)", output))
    cases = sum(int(n) for n in re.findall(r"(\d+) generated", output))
    errors = len(re.findall(r"Server error", output))
    print(f"schemathesis: {operations} operations, {cases} test cases, server-error reports {errors}, "
          f"exit {result.returncode}, {'network namespace' if sandboxed else 'routes that reach out excluded'}")
    failures = "\n".join(re.findall(r"_{3,} [A-Z]+ \S+ _{3,}", output))
    assert result.returncode == 0, (failures + "\n" + output[-5000:] + "\n--- server log ---\n"
                                    + (tmp_path / "server.log").read_text()[-3000:])
