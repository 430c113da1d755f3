"""`cliproxy-mgmt panel fetch`: the Management Center's management.html from a release API.

A real HTTP server on loopback (tests/fake_provider.py) stands in for GitHub's release API
and its asset downloads; the CLI is run as a real process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cliproxy_mgmt.panel import PanelError, fetch_panel, release_api_url
from fake_provider import FakeProvider, reply

PANEL = b"<!DOCTYPE html><html><title>Management Center</title></html>\n"
OLD_PANEL = b"<!doctype html><title>old</title>\n"
LATEST = "/repos/router-for-me/Cli-Proxy-API-Management-Center/releases/latest"
BIN = Path(sys.executable).parent


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def release(github: FakeProvider, path: str, body: bytes, *, digest: str | None = "auto",
            asset_name: str = "management.html") -> None:
    """Publish `body` as the asset of the release at `path`."""
    download = f"/download{path}/{asset_name}"
    asset = {"name": asset_name, "browser_download_url": github.base + download}
    if digest is not None:
        asset["digest"] = f"sha256:{sha256(body)}" if digest == "auto" else digest
    github.route(path, reply(200, {"tag_name": "v1.22.2", "assets": [{"name": "other.zip"}, asset]}))
    github.route(download, reply(200, body, {"Content-Type": "application/octet-stream"}))


@pytest.fixture
def github(monkeypatch):
    with FakeProvider() as fake:
        monkeypatch.setenv("CLIPROXY_MGMT_GITHUB_API", fake.base)
        yield fake


@pytest.fixture
def config(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("WRITABLE_PATH", raising=False)
    monkeypatch.delenv("writable_path", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text("remote-management:\n  secret-key: \"\"\n")
    return path


def test_fetch_installs_the_latest_panel_which_is_then_served(github, config, make_app):
    release(github, LATEST, PANEL)
    done = subprocess.run([BIN / "cliproxy-mgmt", "panel", "fetch", "--config", config],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
                          env={**os.environ, "CLIPROXY_MGMT_GITHUB_API": github.base})
    assert done.returncode == 0, done.stderr
    installed = config.parent / "static" / "management.html"
    assert installed.read_bytes() == PANEL
    assert sha256(PANEL) in done.stdout and "matches the release digest" in done.stdout
    assert [r.headers.get("Accept") for r in github.requests_to(LATEST)] == ["application/vnd.github+json"]
    # the server serves what was installed (the test app's config lives in the same folder)
    with make_app().test_client().get("/management.html") as r:
        assert r.status_code == 200 and r.data == PANEL


def test_a_version_and_a_repository_url_from_the_config(github, config):
    config.write_text('remote-management:\n'
                      f'  panel-github-repository: "{github.base}/repos/me/panel"\n'
                      '  panel-file: "ui/panel.html"\n')
    release(github, "/repos/me/panel/releases/tags/v1.0.0", PANEL)
    assert "installed" in fetch_panel(str(config), version="v1.0.0")
    assert (config.parent / "ui" / "panel.html").read_bytes() == PANEL


@pytest.mark.parametrize("digest, body, error", [
    ("sha256:" + "0" * 64, PANEL, "does not match the release's digest"),
    ("md5:abc", PANEL, "unsupported digest"),
    ("auto", b"#!/bin/sh\necho not a panel\n", "not an HTML document"),
    (None, b"", "not an HTML document"),
])
def test_a_file_that_fails_the_checks_is_not_installed(github, config, digest, body, error):
    installed = config.parent / "static" / "management.html"
    installed.parent.mkdir()
    installed.write_bytes(OLD_PANEL)
    release(github, LATEST, body, digest=digest)
    with pytest.raises(PanelError, match=error):
        fetch_panel(str(config))
    assert installed.read_bytes() == OLD_PANEL
    assert [p.name for p in installed.parent.iterdir()] == ["management.html"]  # no temp file left


def test_without_a_digest_the_html_check_is_reported(github, config):
    release(github, LATEST, PANEL, digest=None)
    assert "no digest in the release; checked it is HTML" in fetch_panel(str(config))


def test_failures_are_one_line_and_exit_1(github, config):
    release(github, LATEST, PANEL, asset_name="panel.zip")
    done = subprocess.run([BIN / "cliproxy-mgmt", "panel", "fetch", "--config", config],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
                          env={**os.environ, "CLIPROXY_MGMT_GITHUB_API": github.base})
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "has no management.html asset" in done.stderr
    with pytest.raises(PanelError, match="status 404"):
        fetch_panel(str(config), version="v9.9.9")


def test_repository_forms():
    api = "https://api.github.com/repos/o/n/releases"
    assert release_api_url("o/n", None) == f"{api}/latest"
    assert release_api_url("https://github.com/o/n.git", "v1") == f"{api}/tags/v1"
    assert release_api_url("https://api.github.com/repos/o/n/releases/latest", None) == f"{api}/latest"
    assert release_api_url("", None, "http://127.0.0.1:9") == (
        "http://127.0.0.1:9/repos/router-for-me/Cli-Proxy-API-Management-Center/releases/latest")
    with pytest.raises(PanelError, match="neither owner/name"):
        release_api_url("ftp://example.com/x", None)
