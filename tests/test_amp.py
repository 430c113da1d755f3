"""The `ampcode` block and its routes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cliproxy_mgmt.testing import ManagementClient

OK = {"status": "ok"}
DEFAULTS = {"upstream-url": "", "upstream-api-key": "", "upstream-api-keys": [],
            "restrict-management-to-localhost": False, "model-mappings": [], "force-model-mappings": False}


@pytest.fixture
def seeded(make_app):
    def make(text: str):
        app = make_app(extra_yaml=text)
        return ManagementClient(app.test_client()), Path(app.extensions["cliproxy_mgmt"].store.path)
    return make


def amp_on_disk(path: Path) -> dict:
    return yaml.safe_load(path.read_text()).get("ampcode") or {}


def test_defaults_without_a_block(mgmt, app):
    before = Path(app.extensions["cliproxy_mgmt"].store.path).read_text()
    assert mgmt.get("/ampcode").get_json() == {"ampcode": DEFAULTS}
    assert mgmt.get("/config").get_json()["ampcode"] == DEFAULTS
    # setting a default where no block exists adds nothing to the file
    assert mgmt.put("/ampcode/force-model-mappings", json={"value": False}).get_json() == OK
    assert mgmt.delete("/ampcode/upstream-url").get_json() == OK
    assert Path(app.extensions["cliproxy_mgmt"].store.path).read_text() == before


@pytest.mark.parametrize("field", ["upstream-url", "upstream-api-key"])
def test_strings_are_trimmed_and_delete_clears(mgmt, field):
    assert mgmt.patch(f"/ampcode/{field}", json={"value": "  v  "}).get_json() == OK
    assert mgmt.get(f"/ampcode/{field}").get_json() == {field: "v"}
    assert mgmt.put(f"/ampcode/{field}", json={"value": 1}).get_json() == {"error": "invalid body"}
    assert mgmt.delete(f"/ampcode/{field}").get_json() == OK
    assert mgmt.get(f"/ampcode/{field}").get_json() == {field: ""}


def test_model_mappings_put_patch_delete(seeded):
    mgmt, path = seeded("ampcode:\n  # keep me\n  model-mappings:\n    - from: a\n      to: b\n")
    assert mgmt.patch("/ampcode/model-mappings", json={"value": [
        {"from": " a ", "to": "b2"}, {"from": "c", "to": "d", "regex": True}]}).get_json() == OK
    assert mgmt.get("/ampcode/model-mappings").get_json() == {"model-mappings": [
        {"from": " a ", "to": "b2"}, {"from": "c", "to": "d", "regex": True}]}  # stored as given
    assert mgmt.delete("/ampcode/model-mappings", json={"value": [" c "]}).get_json() == OK
    assert amp_on_disk(path)["model-mappings"] == [{"from": " a ", "to": "b2"}]
    assert "# keep me" in path.read_text()
    assert mgmt.put("/ampcode/model-mappings", json={"value": [{"from": 1}]}).get_json() == {"error": "invalid body"}
    # upstream: a DELETE without a usable body clears every mapping
    assert mgmt.delete("/ampcode/model-mappings", data="junk").get_json() == OK
    assert amp_on_disk(path)["model-mappings"] == []


def test_upstream_api_keys_are_normalised_and_upserted(mgmt):
    assert mgmt.put("/ampcode/upstream-api-keys", json={"value": [
        {"upstream-api-key": " u1 ", "api-keys": [" k1 ", ""], "note": "kept"},
        {"upstream-api-key": " ", "api-keys": ["k"]}, {"upstream-api-key": "u2", "api-keys": [" "]}]}).get_json() == OK
    assert mgmt.patch("/ampcode/upstream-api-keys", json={"value": [
        {"upstream-api-key": "u2", "api-keys": ["k2"]}, {"upstream-api-key": "u3"}]}).get_json() == OK
    assert mgmt.get("/ampcode/upstream-api-keys").get_json()["upstream-api-keys"] == [
        {"upstream-api-key": "u1", "api-keys": ["k1"], "note": "kept"},
        {"upstream-api-key": "u2", "api-keys": ["k2"]}, {"upstream-api-key": "u3"}]


@pytest.mark.parametrize("body, error", [
    ({"value": None}, "missing value"), ({"value": [" "]}, "empty value"), ({"value": "u1"}, "invalid body")])
def test_upstream_api_keys_delete_errors(mgmt, body, error):
    assert mgmt.delete("/ampcode/upstream-api-keys", json=body).get_json() == {"error": error}


def test_legacy_top_level_keys_are_folded_in_and_leave_the_file_on_write(seeded):
    mgmt, path = seeded('amp-upstream-url: "https://old"\namp-restrict-management-to-localhost: true\n'
                        'amp-model-mappings:\n  - from: x\n    to: y\n'
                        'ampcode:\n  upstream-url: ""\n  restrict-management-to-localhost: false\n')
    block = mgmt.get("/ampcode").get_json()["ampcode"]
    assert block["upstream-url"] == "https://old"
    assert block["restrict-management-to-localhost"] is True  # the legacy flag always wins
    assert block["model-mappings"] == [{"from": "x", "to": "y"}]
    assert mgmt.put("/ampcode/force-model-mappings", json={"value": True}).get_json() == OK
    data = yaml.safe_load(path.read_text())
    assert not [k for k in data if k.startswith("amp-")]
    assert data["ampcode"] == {"upstream-url": "https://old", "restrict-management-to-localhost": True,
                               "model-mappings": [{"from": "x", "to": "y"}], "force-model-mappings": True}


def test_a_wrongly_typed_block_is_refused(make_app):
    from cliproxy_mgmt.config.store import ConfigError
    with pytest.raises(ConfigError, match="ampcode"):
        make_app(extra_yaml="ampcode:\n  force-model-mappings: maybe\n")


def test_null_items_are_no_items(mgmt):
    """Found by fuzzing: a JSON null inside a `value` list (Go decodes it as a zero value)."""
    assert mgmt.patch("/ampcode/model-mappings", json={"value": [None, {"from": "a", "to": "b"}]}).get_json() == OK
    assert mgmt.put("/ampcode/upstream-api-keys", json={"value": [None]}).get_json() == OK
    assert mgmt.get("/ampcode").get_json()["ampcode"]["model-mappings"] == [{"from": "a", "to": "b"}]
    assert mgmt.delete("/ampcode/upstream-api-keys", json={"value": [None]}).get_json() == {"error": "empty value"}
