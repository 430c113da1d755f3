from pathlib import Path


def test_get_config_with_key(mgmt):
    r = mgmt.get("/config")
    assert r.status_code == 200
    assert r.get_json()["api-keys"] == ["client-key-1", "client-key-2"]


def test_put_debug_persists(mgmt, app):
    assert mgmt.put("/debug", json={"value": True}).get_json() == {"status": "ok"}
    store = app.extensions["cliproxy_mgmt"].store
    assert "debug: true" in Path(store.path).read_text()
