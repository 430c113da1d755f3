"""The shared body conventions, through the core routes that use them."""

from __future__ import annotations

import pytest

from cliproxy_mgmt.conventions import go_int, set_path

OK = {"status": "ok"}
INVALID = {"error": "invalid body"}


@pytest.mark.parametrize("text, value", [
    ("1", 1), (" 2", 2), ("-3", -3), ("+4", 4), ("1abc", 1), ("abc", None), ("", None), (None, None),
    ("\u0661", None), ("1\u0662", 1),  # Arabic-Indic digits: Go's %d reads ASCII digits only
])
def test_go_int(text, value):
    assert go_int(text) == value


def test_set_path_skips_a_missing_default():
    data = {"a": 1}
    set_path(data, ("b", "c"), False, False)
    assert data == {"a": 1}
    set_path(data, ("b", "c"), True, False)
    assert data == {"a": 1, "b": {"c": True}}
    set_path(data, ("b", "c"), False, False)
    assert data == {"a": 1, "b": {"c": False}}


@pytest.mark.parametrize("route, good, bad", [
    ("/debug", True, [1, "true", None]),
    ("/request-retry", 5, [True, 1.5, "5", None]),
    ("/proxy-url", "http://p:1", [5, ["a"], None]),
])
def test_value_body(mgmt, route, good, bad):
    for value in bad:
        r = mgmt.put(route, json={"value": value})
        assert r.status_code == 400 and r.get_json() == INVALID
    assert mgmt.patch(route, data="{", content_type="application/json").get_json() == INVALID
    assert mgmt.put(route, json={"value": good}).get_json() == OK
    assert list(mgmt.get(route).get_json().values()) == [good]


def test_string_list_bodies(mgmt):
    assert mgmt.put("/api-keys", json={"items": ["a", "b"]}).get_json() == OK
    assert mgmt.put("/api-keys", json={"items": []}).get_json() == INVALID
    assert mgmt.put("/api-keys", json=["x", 1]).get_json() == INVALID
    assert mgmt.patch("/api-keys", json={"old": "a", "new": "c"}).get_json() == OK
    assert mgmt.patch("/api-keys", json={"index": 9, "value": "z"}).get_json() == {"error": "missing fields"}
    assert mgmt.delete("/api-keys?index=1junk").get_json() == OK
    assert mgmt.get("/api-keys").get_json() == {"api-keys": ["c"]}
    assert mgmt.put("/api-keys", data="null", content_type="application/json").get_json() == OK
    assert mgmt.get("/api-keys").get_json() == {"api-keys": []}


def test_routing_strategy(mgmt):
    assert mgmt.get("/routing/strategy").get_json() == {"strategy": "round-robin"}
    assert mgmt.put("/routing/strategy", json={"value": " FF "}).get_json() == OK
    assert mgmt.get("/routing/strategy").get_json() == {"strategy": "fill-first"}
    assert mgmt.put("/routing/strategy", json={"value": "random"}).get_json() == {"error": "invalid strategy"}


def test_clamped_settings(mgmt):
    assert mgmt.put("/logs-max-total-size-mb", json={"value": -1}).get_json() == OK
    assert mgmt.get("/logs-max-total-size-mb").get_json() == {"logs-max-total-size-mb": 0}
    assert mgmt.put("/error-logs-max-files", json={"value": -1}).get_json() == OK
    assert mgmt.get("/error-logs-max-files").get_json() == {"error-logs-max-files": 10}


def test_json_body_limit(make_app, client):
    from cliproxy_mgmt.testing import ManagementClient
    mgmt = ManagementClient(client)
    mgmt.client.application.extensions["cliproxy_mgmt"].store.edit(
        lambda d: d["remote-management"].__setitem__("max-json-body-bytes", 64))
    r = mgmt.put("/api-keys", json=["k" * 100])
    assert r.status_code == 413 and r.get_json() == {"error": "request body too large"}
    assert mgmt.put("/api-keys", json=["k"]).get_json() == OK


def test_config_yaml_round_trip(mgmt, app):
    text = mgmt.get("/config.yaml").get_data(as_text=True)
    new = text.replace("debug: false", "debug: true")
    r = mgmt.put("/config.yaml", data=new, content_type="application/yaml")
    assert r.get_json() == {"ok": True, "changed": ["config"]}
    assert mgmt.get("/debug").get_json() == {"debug": True}
    r = mgmt.put("/config.yaml", data="port: abc\n")
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_yaml"
    r = mgmt.put("/config.yaml", data="remote-management:\n  secret-key: " + "s" * 80 + "\n")
    assert r.status_code == 422 and r.get_json()["error"] == "invalid_config"
    assert mgmt.put("/config.yaml", data="").status_code == 400
    assert mgmt.get("/config.yaml").get_data(as_text=True) == new


def test_unknown_route_and_errors_are_json(mgmt):
    r = mgmt.get("/no-such-route")
    assert r.status_code == 404 and r.is_json
    r = mgmt.post("/debug", json={"value": True})
    assert r.status_code == 405 and r.get_json() == {"error": "method not allowed"}


def test_failed_save_answers_500_and_keeps_memory(mgmt, app, tmp_path):
    import shutil
    from pathlib import Path
    store = app.extensions["cliproxy_mgmt"].store
    shutil.rmtree(Path(store.path).parent)
    r = mgmt.put("/debug", json={"value": True})
    assert r.status_code == 500
    assert r.get_json()["error"].startswith("failed to save config: ")
    assert mgmt.get("/debug").get_json() == {"debug": False}


def test_text_no_file_can_hold_is_refused(mgmt, app):
    before = app.extensions["cliproxy_mgmt"].store.text
    r = mgmt.put("/api-keys", data='["\\ud800"]', content_type="application/json")
    assert r.status_code == 400 and r.get_json() == {"error": "invalid body"}
    assert app.extensions["cliproxy_mgmt"].store.text == before


def test_value_yaml_cannot_read_back_is_refused(mgmt, app):
    before = app.extensions["cliproxy_mgmt"].store.text
    r = mgmt.put("/proxy-url", json={"value": "line\u0085break"})  # plain NEL reads back as a line break
    assert r.status_code == 400 and r.get_json()["error"] == "invalid body"
    assert app.extensions["cliproxy_mgmt"].store.text == before
    assert mgmt.get("/proxy-url").get_json() == {"proxy-url": ""}


def test_get_config_is_compact_json(mgmt):
    body = mgmt.get("/config").get_data(as_text=True)
    assert body.startswith('{"proxy-url":"",') and ": " not in body
