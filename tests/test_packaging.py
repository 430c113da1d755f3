"""What `pip install cliproxy-mgmt` puts into an environment, read from a wheel built once.

* only `cliproxy_mgmt` (the built-in providers as `cliproxy_mgmt.providers`, with their
  model catalogues), no top-level `plugins` or `wsgi`;
* no pytest11 entry point: the fixtures for plugin authors are opt-in, so an unrelated
  pytest project in the same environment sees none of them (checked by running one);
* the licence in the metadata;
* the layering: no module of the package imports the CLI.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def build_sources() -> list[str]:
    """What the container image's build stage copies to build the wheel (deploy/docker/Dockerfile)."""
    text = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    stage = text[:text.index("\nFROM ", text.index("FROM "))]
    return [source for line in stage.splitlines() if line.startswith("COPY ")
            for source in line.split()[1:-1]]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel pip builds from a copy of exactly those files (no stale build/ folder of the
    checkout can slip in, and the image's build stage is shown to have all it needs)."""
    source = tmp_path_factory.mktemp("source")
    for name in build_sources():
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                           "--disable-pip-version-check", "--wheel-dir", str(out), str(source)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert done.returncode == 0, done.stderr
    [path] = out.glob("cliproxy_mgmt-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    [member] = [n for n in wheel.namelist() if n.split("/")[0].endswith(".dist-info") and n.endswith("/" + name)]
    return wheel.read(member).decode()


def test_only_cliproxy_mgmt_is_installed(wheel):
    assert dist_info(wheel, "top_level.txt").split() == ["cliproxy_mgmt"]
    tops = {name.split("/")[0] for name in wheel.namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"cliproxy_mgmt"}
    names = set(wheel.namelist())
    for folder in sorted(p.parent.name for p in (ROOT / "plugins").glob("*/__init__.py")):
        assert f"cliproxy_mgmt/providers/{folder}/__init__.py" in names
        if (ROOT / "plugins" / folder / "models.json").exists():
            assert f"cliproxy_mgmt/providers/{folder}/models.json" in names


def test_no_pytest_plugin_is_registered(wheel):
    entry_points = dist_info(wheel, "entry_points.txt")
    assert "[pytest11]" not in entry_points and "[console_scripts]" in entry_points


def test_the_licence_is_in_the_metadata(wheel):
    metadata = dist_info(wheel, "METADATA")
    assert "License: MIT" in metadata or "License-Expression: MIT" in metadata
    assert "MIT License" in dist_info(wheel, "LICENSE")


def test_an_unrelated_pytest_project_sees_no_fixture_of_ours(tmp_path):
    """This environment has cliproxy-mgmt installed; a project that never opted in asks for `app`."""
    (tmp_path / "test_other.py").write_text("def test_uses_its_own_app(app):\n    pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--fixtures",
                           str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    for fixture in ("make_app", "mgmt", "cliproxy_mgmt"):
        assert fixture not in done.stdout
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "fixture 'app' not found" in done.stdout


def test_no_module_of_the_package_imports_the_cli():
    """Lower layers never reach up to the command line (it imports them, not the reverse)."""
    offenders = []
    for path in list((ROOT / "cliproxy_mgmt").rglob("*.py")) + list((ROOT / "plugins").rglob("*.py")):
        if path.name in ("cli.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "cli":
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
