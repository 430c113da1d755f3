"""The docs: docs/config-keys.md documents every config key the server reads, and the
repository is self-contained (no doc or code points at anything a plain clone lacks).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from cliproxy_mgmt.config.schema import CoreConfig

DOC = (Path(__file__).resolve().parent.parent / "docs" / "config-keys.md").read_text()


def schema_keys(schema, prefix=""):
    for name, field in schema.fields.items():
        key = prefix + (field.data_key or name)
        yield key
        nested = getattr(field, "nested", None)
        if nested is not None:
            yield from schema_keys(nested() if isinstance(nested, type) else nested, key + ".")


def test_every_core_key_is_documented():
    def documented(key: str) -> bool:
        # by its dotted name, by its own name in its section's table, or (a parent) through a child
        return key in DOC or f"`{key.rsplit('.', 1)[-1]}`" in DOC or f"`{key}." in DOC
    missing = [key for key in schema_keys(CoreConfig()) if not documented(key)]
    assert missing == []


def test_every_plugin_section_is_documented(app):
    sections = app.extensions["cliproxy_mgmt"].registry.config_sections
    missing = [key for key, section in sections.items()
               for name in (key, *section.legacy_keys) if f"`{name}`" not in DOC]
    assert missing == []


# -- the repository is self-contained: its docs and code point nowhere outside it ------------

ROOT = Path(__file__).resolve().parent.parent
# What a plain clone does not have (spelled in pieces so this file does not match itself).
OUTSIDE = [re.compile(p) for p in (
    r"\.\./" + "shared", "shared/" + r"(design|spec|conformance)", r"\bdecisions? \d",
    "\u00a7", "reference-" + "behaviour", "reference-" + "delta", "architecture" + r"\.md",
    "anchors" + r"\.md", "/work" + "/", r"\bseeds" + "/")]
# The test command itself runs the conformance suite where a checkout has it beside the repo.
RUNS_THE_SUITE = {"scripts/test"}
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".cfg", ".conf", ".service", ".txt", ""}


def repo_files():
    for top in ("README.md", "CHANGELOG.md", "config.yaml", "setup.cfg", "setup.py", "pyproject.toml",
                "wsgi.py", "docs", "cliproxy_mgmt", "plugins", "tests", "examples", "deploy",
                "benchmarks", "scripts", ".ci"):
        path = ROOT / top
        for file in ([path] if path.is_file() else sorted(path.rglob("*"))):
            relative = file.relative_to(ROOT).as_posix()
            if (file.is_file() and file.suffix in TEXT_SUFFIXES and relative not in RUNS_THE_SUITE
                    and not any(part in ("__pycache__", "build") or part.endswith(".egg-info")
                                for part in file.parts)):
                yield relative, file.read_text(errors="replace")


def test_nothing_points_outside_the_repository():
    found = [f"{name}:{n}: {line.strip()}" for name, text in repo_files()
             for n, line in enumerate(text.splitlines(), 1)
             if any(p.search(line) for p in OUTSIDE)]
    assert found == []


def test_relative_links_in_the_docs_resolve_inside_the_repository():
    broken = []
    for name, text in repo_files():
        if not name.endswith(".md"):
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            resolved = ((ROOT / name).parent / target.split("#")[0]).resolve()
            if not resolved.exists() or ROOT not in (resolved, *resolved.parents):
                broken.append(f"{name}: {target}")
    assert broken == []


def test_repository_paths_named_in_the_docs_exist():
    named = re.compile(r"`((?:cliproxy_mgmt|plugins|deploy|scripts|tests|docs|examples|benchmarks)/[\w./-]*)`")
    missing = [f"{name}: {path}" for name, text in repo_files() if name.endswith(".md")
               for path in named.findall(text) if not (ROOT / path).exists()]
    assert missing == []


def test_the_readme_lists_every_command():
    from cliproxy_mgmt.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    [commands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert [c for c in commands.choices if f"cliproxy-mgmt {c}" not in readme] == []


def test_the_routes_the_docs_name_outside_the_api_exist(client, mgmt):
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert "GET /healthz" in operations and "GET /v0/management/openapi.json" in operations
    assert client.get("/healthz").status_code == 200
    assert mgmt.get("/openapi.json").status_code == 200
