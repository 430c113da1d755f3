"""GET /management.html: served from the configured file, only when it is HTML, never downloaded;
the file it comes from cannot be changed through the API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PANEL = b"<!doctype html><title>Management Center</title>"


@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv("WRITABLE_PATH", raising=False)
    monkeypatch.delenv("writable_path", raising=False)


def test_default_location_beside_the_config(client, tmp_path, env):
    assert client.get("/management.html").status_code == 404  # missing: 404, no download
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "management.html").write_bytes(PANEL)
    with client.get("/management.html") as r:
        assert r.status_code == 200 and r.data == PANEL
        assert r.mimetype == "text/html" and r.headers["Cache-Control"] == "no-cache"
        assert "X-CPA-VERSION" not in r.headers  # not a management route: no key needed either


def test_writable_path_location(client, tmp_path, monkeypatch):
    monkeypatch.setenv("WRITABLE_PATH", str(tmp_path / "w"))
    (tmp_path / "w" / "static").mkdir(parents=True)
    (tmp_path / "w" / "static" / "management.html").write_bytes(PANEL)
    with client.get("/management.html") as r:
        assert r.data == PANEL


def test_configured_file_and_disable_switch(make_app, tmp_path, env):
    (tmp_path / "panel").mkdir()
    (tmp_path / "panel" / "mc.html").write_bytes(PANEL)
    app = make_app()
    store = app.extensions["cliproxy_mgmt"].store
    store.edit(lambda d: d["remote-management"].__setitem__("panel-file", "panel/mc.html"))
    client = app.test_client()
    with client.get("/management.html",
                    headers={"If-Modified-Since": "Wed, 01 Jan 2099 00:00:00 GMT"}) as r:
        assert r.status_code == 304
    with client.get("/management.html") as r:
        assert r.data == PANEL
    store.edit(lambda d: d["remote-management"].__setitem__("disable-control-panel", True))
    assert client.get("/management.html").status_code == 404


def test_the_api_cannot_point_panel_file_at_another_file(mgmt, app, env):
    config = Path(app.extensions["cliproxy_mgmt"].store.path)
    before = config.read_bytes()
    for target in ("/etc/passwd", config):
        text = before.decode().replace("  trusted-proxies: []", f'  trusted-proxies: []\n  panel-file: "{target}"')
        with mgmt.put("/config.yaml", data=text, content_type="application/yaml") as r:
            assert r.status_code == 422 and r.get_json()["error"] == "invalid_config"
            assert "panel-file" in r.get_json()["message"]
        assert config.read_bytes() == before
        assert app.test_client().get("/management.html").status_code == 404
    # a PUT that leaves panel-file as it is still works
    assert mgmt.put("/config.yaml", data=before.replace(b"debug: false", b"debug: true"),
                    content_type="application/yaml").status_code == 200


@pytest.mark.parametrize("target", ["/etc/passwd", "config.yaml", "auths/user.json", "fifo", "static"])
def test_only_an_html_file_is_served(make_app, tmp_path, env, target):
    """Whatever panel-file names (set in the file by hand), only an HTML document is sent."""
    app = make_app()
    (tmp_path / "auths" / "user.json").write_text('{"type": "claude", "access_token": "secret"}')
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "static").mkdir()
    store = app.extensions["cliproxy_mgmt"].store
    store.edit(lambda d: d["remote-management"].__setitem__("panel-file", target))
    assert app.test_client().get("/management.html").status_code == 404


def test_a_default_panel_that_is_not_html_is_not_served(client, tmp_path, env):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "management.html").write_bytes(b"api-keys: [secret]\n")
    assert client.get("/management.html").status_code == 404
    (tmp_path / "static" / "management.html").write_bytes(b"\xef\xbb\xbf\n  <HTML><body>ok")
    assert client.get("/management.html").status_code == 200
