"""deploy/docker and deploy/systemd: what they say is true of the repository.

No container builder runs here, so the Dockerfile and compose file are parsed and checked:
the paths they copy exist, the server runs as a non-root user with the config and auth-dir
on volumes, the health check asks /healthz, and the bundled config has the lines the image
rewrites. The systemd unit is parsed, and checked with `systemd-analyze verify` when present.
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "deploy" / "docker"
UNIT = ROOT / "deploy" / "systemd" / "cliproxy-mgmt.service"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def test_dockerfile_copies_what_exists_and_runs_unprivileged():
    steps = dockerfile_instructions()
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM"):]
    for word, args in steps:
        if word == "COPY" and not args.startswith("--from"):
            *sources, _dest = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    [volumes] = [args for word, args in final if word == "VOLUME"]
    assert set(yaml.safe_load(volumes)) == {"/config", "/auths"}
    [cmd] = [args for word, args in final if word == "CMD"]
    assert yaml.safe_load(cmd) == ["cliproxy-mgmt", "serve", "--config", "/config/config.yaml"]
    [health] = [args for word, args in final if word == "HEALTHCHECK"]
    assert "/healthz" in health
    # the lines the image rewrites for a container are in the bundled config, as written
    config = (ROOT / "config.yaml").read_text().splitlines()
    assert 'host: "127.0.0.1"' in config and 'auth-dir: "auths"' in config


def test_dockerignore_keeps_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "config.local.yaml", "auths"} <= set(ignored)


def test_compose_builds_from_the_repository_with_volumes():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    service = compose["services"]["cliproxy-mgmt"]
    context = (DOCKER / service["build"]["context"]).resolve()
    assert context == ROOT and (context / service["build"]["dockerfile"]).is_file()
    mounts = {volume.split(":")[1] for volume in service["volumes"]}
    assert mounts == {"/config", "/auths"}
    assert set(compose["volumes"]) == {volume.split(":")[0] for volume in service["volumes"]}
    assert "MANAGEMENT_PASSWORD" in service["environment"]
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read_string(UNIT.read_text())
    return parser


def test_systemd_unit_is_complete_and_hardened():
    parsed = unit()
    assert parsed.sections() == ["Unit", "Service", "Install"]
    service = parsed["Service"]
    assert shlex.split(service["ExecStart"])[1:3] == ["serve", "--config"]
    assert service["User"] not in ("root", "0")
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "CapabilityBoundingSet": ""}.items():
        assert service[key] == value, key
    assert service["ReadWritePaths"]
    assert parsed["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path):
    # the unit's ExecStart names where the docs install the package; point it at this one
    text = UNIT.read_text().replace("/opt/cliproxy-mgmt/bin/cliproxy-mgmt",
                                    str(Path(sys.executable).parent / "cliproxy-mgmt"))
    (tmp_path / UNIT.name).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / UNIT.name)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
