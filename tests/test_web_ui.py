"""GET /management.html: served from the configured file, never downloaded."""

from __future__ import annotations

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
