"""scripts/ensure-debian-packages: installs system-wide only on CI or when the user opts in.

apt-get itself is replaced by a recording stand-in on PATH: the real one would change this
machine. dpkg-query is the real one.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENSURE = ROOT / "scripts" / "ensure-debian-packages"
MISSING = "cliproxy-mgmt-no-such-package"


def ensure(tmp_path, *packages, **env_vars) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "apt-calls"
    fake = bin_dir / "apt-get"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CLIPROXY_MGMT_TEST_INSTALL")}
    env.update(env_vars, PATH=f"{bin_dir}:{env['PATH']}")
    done = subprocess.run([str(ENSURE), *packages], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_without_ci_or_opt_in_nothing_is_installed(tmp_path):
    done, calls = ensure(tmp_path, MISSING)
    assert done.returncode == 0 and calls == []
    assert "CLIPROXY_MGMT_TEST_INSTALL=1" in done.stdout and MISSING in done.stdout


def test_ci_installs_and_waits_for_the_dpkg_lock(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("installing needs root (or password-less sudo)")
    for env in ({"CI": "true"}, {"CLIPROXY_MGMT_TEST_INSTALL": "1"}):
        done, calls = ensure(tmp_path, MISSING, **env)
        assert done.returncode == 0, done.stderr
        assert calls and all("-o DPkg::Lock::Timeout=300" in call for call in calls)
        assert f"install {MISSING}" in calls[0]
        (tmp_path / "apt-calls").unlink()


def test_installed_packages_are_left_alone(tmp_path):
    done, calls = ensure(tmp_path, "dpkg", CI="true")
    assert (done.returncode, done.stdout, calls) == (0, "", [])
