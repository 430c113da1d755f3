"""Values the config must not take, and keys nothing reads (issue 10, item 8)."""

from __future__ import annotations

import logging

import pytest

from cliproxy_mgmt.config.known_keys import known_keys, unknown_key_warnings


@pytest.mark.parametrize("port", [0, -1, 65536, 99999])
def test_put_config_yaml_refuses_a_port_out_of_range(app, mgmt, port):
    store = app.extensions["cliproxy_mgmt"].store
    before = store.text
    r = mgmt.put("/config.yaml", data=before.replace("port: 8317", f"port: {port}"))
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_yaml"
    assert "is not a port (1-65535)" in r.get_json()["message"]
    assert store.text == before


def test_port_bounds_are_accepted(app, mgmt):
    text = app.extensions["cliproxy_mgmt"].store.text
    for port in (1, 65535):
        assert mgmt.put("/config.yaml", data=text.replace("port: 8317", f"port: {port}")).status_code == 200


def test_unknown_keys_are_kept_and_named_with_the_closest_known_key(make_app, mgmt, caplog):
    with caplog.at_level(logging.WARNING):
        app = make_app(extra_yaml="remote-managment:\n  allow-remote: true\nfuture-upstream-key: 1\n")
    assert "unknown config key remote-managment (did you mean remote-management?)" in caplog.text
    assert "unknown config key future-upstream-key: kept" in caplog.text
    store = app.extensions["cliproxy_mgmt"].store
    assert store.data["remote-managment"] == {"allow-remote": True}  # kept, not dropped


def test_a_reload_warns_again(app, mgmt, caplog):
    store = app.extensions["cliproxy_mgmt"].store
    with caplog.at_level(logging.WARNING):
        assert mgmt.put("/config.yaml", data=store.text + "api-key: [\"x\"]\n").status_code == 200
    assert "unknown config key api-key (did you mean api-keys?)" in caplog.text


def test_known_keys_cover_the_core_the_plugins_and_upstream(app):
    sections = app.extensions["cliproxy_mgmt"].registry.config_sections
    known = known_keys(sections)
    assert {"port", "remote-management", "payload", "claude-code"} <= known  # core and upstream
    assert set(sections) <= known
    assert unknown_key_warnings({"debug": True, "api-keys": []}, sections) == []
