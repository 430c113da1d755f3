"""`/oauth-excluded-models` and `/oauth-model-alias`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cliproxy_mgmt.testing import ManagementClient

OK = {"status": "ok"}
ALIAS_YAML = """\
oauth-model-alias:
  # aliases per channel
  codex:
    - name: gpt-5
      alias: g5
  claude:
    - name: claude-sonnet-4-5
      alias: cs
      fork: true
"""


@pytest.fixture
def seeded(make_app):
    def make(text: str):
        app = make_app(extra_yaml=text)
        return ManagementClient(app.test_client()), Path(app.extensions["cliproxy_mgmt"].store.path)
    return make


def on_disk(path: Path, key: str):
    return yaml.safe_load(path.read_text()).get(key)


def test_empty_maps_are_hidden_from_config(mgmt):
    assert mgmt.get("/oauth-excluded-models").get_json() == {"oauth-excluded-models": {}}
    assert mgmt.get("/oauth-model-alias").get_json() == {"oauth-model-alias": {}}
    config = mgmt.get("/config").get_json()
    assert "oauth-excluded-models" not in config and "oauth-model-alias" not in config


def test_excluded_models_put_normalises_and_shows_keys_sorted(mgmt):
    assert mgmt.put("/oauth-excluded-models", json={
        " Zeta ": [" A ", "a", ""], "alpha": ["x"], "  ": ["y"], "empty": [" "]}).get_json() == OK
    body = mgmt.get("/oauth-excluded-models").get_json()["oauth-excluded-models"]
    assert list(body.items()) == [("alpha", ["x"]), ("zeta", ["a"])]
    assert mgmt.get("/config").get_json()["oauth-excluded-models"] == body


@pytest.mark.parametrize("body", ['{"items": {"a": ["x"]}}', '{"a": ["x"]}'])
def test_put_takes_a_raw_or_wrapped_map(mgmt, body):
    assert mgmt.put("/oauth-excluded-models", data=body, content_type="application/json").get_json() == OK
    assert mgmt.get("/oauth-excluded-models").get_json() == {"oauth-excluded-models": {"a": ["x"]}}


@pytest.mark.parametrize("body", ["[1]", '{"a": "x"}', '{"a": [1]}', "nope"])
def test_put_refuses_what_is_not_a_map_of_lists(mgmt, body):
    r = mgmt.put("/oauth-excluded-models", data=body, content_type="application/json")
    assert (r.status_code, r.get_json()) == (400, {"error": "invalid body"})


def test_excluded_models_patch_and_delete(seeded):
    mgmt, path = seeded("oauth-excluded-models:\n  qwen: [a]\n  iflow: [b]\n")
    assert mgmt.patch("/oauth-excluded-models", json={"provider": " Codex ", "models": ["M"]}).get_json() == OK
    assert mgmt.patch("/oauth-excluded-models", json={"provider": "qwen", "models": []}).get_json() == OK
    assert on_disk(path, "oauth-excluded-models") == {"iflow": ["b"], "codex": ["m"]}
    r = mgmt.patch("/oauth-excluded-models", json={"provider": "qwen", "models": []})
    assert (r.status_code, r.get_json()) == (404, {"error": "provider not found"})
    assert mgmt.patch("/oauth-excluded-models", json={"models": ["m"]}).get_json() == {"error": "invalid body"}
    assert mgmt.delete("/oauth-excluded-models?provider=IFLOW").get_json() == OK
    assert mgmt.delete("/oauth-excluded-models?provider=codex").get_json() == OK
    assert on_disk(path, "oauth-excluded-models") == {}  # emptied where it was: deletions stick


def test_alias_sanitising(mgmt):
    assert mgmt.put("/oauth-model-alias", json={" CoDeX ": [
        {"name": " gpt-5 ", "alias": " g5 ", "fork": False}, {"name": "gpt-5", "alias": "G5"},
        {"name": "same", "alias": "SAME"}, {"name": "", "alias": "x"},
        {"name": "gpt-5", "alias": "g5-fork", "fork": True}]}).get_json() == OK
    assert mgmt.get("/oauth-model-alias").get_json() == {"oauth-model-alias": {"codex": [
        {"name": "gpt-5", "alias": "g5"}, {"name": "gpt-5", "alias": "g5-fork", "fork": True}]}}


def test_alias_patch_channel_wins_over_provider_and_old_field_deletes(seeded):
    mgmt, path = seeded(ALIAS_YAML)
    new = [{"name": "glm-4.6", "alias": "glm"}]
    assert mgmt.patch("/oauth-model-alias", json={"channel": "iflow", "provider": "qwen", "aliases": new}).get_json() == OK
    assert mgmt.patch("/oauth-model-alias", json={"provider": "Qwen", "aliases": new}).get_json() == OK
    assert mgmt.patch("/oauth-model-alias", json={"channel": "codex", "mappings": new}).get_json() == OK
    assert sorted(on_disk(path, "oauth-model-alias")) == ["claude", "iflow", "qwen"]
    assert "# aliases per channel" in path.read_text()
    r = mgmt.patch("/oauth-model-alias", json={"channel": " ", "aliases": new})
    assert (r.status_code, r.get_json()) == (400, {"error": "invalid channel"})


def test_deleted_aliases_stay_deleted_after_a_reload(seeded):
    mgmt, path = seeded(ALIAS_YAML)
    assert mgmt.delete("/oauth-model-alias?provider=codex").get_json() == OK
    assert mgmt.delete("/oauth-model-alias?channel=claude").get_json() == OK
    assert on_disk(path, "oauth-model-alias") == {}
    path.write_text(path.read_text() + "\n# touched\n")  # an external edit: reloaded
    assert mgmt.get("/oauth-model-alias").get_json() == {"oauth-model-alias": {}}
    r = mgmt.delete("/oauth-model-alias?channel=codex")
    assert (r.status_code, r.get_json()) == (404, {"error": "channel not found"})
    assert mgmt.delete("/oauth-model-alias").get_json() == {"error": "missing channel"}


def test_old_mappings_route_is_gone(mgmt):
    assert mgmt.get("/oauth-model-mappings").status_code == 404
