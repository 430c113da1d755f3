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


WEIGHTED = {
    "gemini-api-key": ('gemini-api-key:\n  - api-key: "g"\n    weight: {w}\n', "gemini-api-key[0].weight"),
    "interactions-api-key": ('interactions-api-key:\n  - api-key: "i"\n    weight: {w}\n',
                             "interactions-api-key[0].weight"),
    "claude-api-key": ('claude-api-key:\n  - api-key: "c"\n  - api-key: "d"\n    weight: {w}\n',
                       "claude-api-key[1].weight"),
    "vertex-api-key": ('vertex-api-key:\n  - api-key: "v"\n    base-url: "https://v"\n    weight: {w}\n',
                       "vertex-api-key[0].weight"),
    "codex-api-key": ('codex-api-key:\n  - api-key: "x"\n    base-url: "https://c"\n    weight: {w}\n',
                      "codex-api-key[0].weight"),
    "xai-api-key": ('xai-api-key:\n  - api-key: "x"\n    base-url: "https://api.x.ai/v1"\n    weight: {w}\n',
                    "xai-api-key[0].weight"),
    "openai-compatibility": ('openai-compatibility:\n  - name: "p"\n    base-url: "https://x"\n    api-key-entries:\n'
                             '      - api-key: "a"\n      - api-key: "b"\n        weight: {w}\n',
                             "openai-compatibility[0].api-key-entries[1].weight"),
}


@pytest.mark.parametrize("family", WEIGHTED)
def test_put_config_yaml_refuses_a_credential_weight_over_the_limit(app, mgmt, family):
    """Upstream's loader refuses such a file, so the proxy could not start with it."""
    store = app.extensions["cliproxy_mgmt"].store
    before = store.text
    section, path = WEIGHTED[family]
    r = mgmt.put("/config.yaml", data=before + section.format(w=1_000_001))
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_yaml"
    assert r.get_json()["message"].endswith(f"{path}: weight must not exceed 1000000")
    assert store.text == before
    assert mgmt.put("/config.yaml", data=before + section.format(w=1_000_000)).status_code == 200
