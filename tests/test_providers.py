"""The provider credential lists: body conventions and field normalisation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cliproxy_mgmt.testing import ManagementClient

OK = {"status": "ok"}
LISTS = ["gemini-api-key", "claude-api-key", "codex-api-key", "vertex-api-key", "openai-compatibility",
         "xai-api-key", "interactions-api-key"]
BASE = {"codex-api-key": "https://codex.test/v1", "vertex-api-key": "https://vertex.test",
        "openai-compatibility": "https://compat.test/v1", "xai-api-key": "https://api.x.ai/v1"}


def entry(key: str, ident: str, **fields) -> dict:
    """A minimal valid entry of list `key` (its id field, and the base-url it needs)."""
    id_field = "name" if key == "openai-compatibility" else "api-key"
    base = {"base-url": BASE[key]} if key in BASE else {}
    return {id_field: ident, **base, **fields}


@pytest.fixture
def seeded(make_app):
    """seeded(yaml_text) -> (client, path of config.yaml): an app started on extra config."""
    def make(text: str):
        app = make_app(extra_yaml=text)
        return ManagementClient(app.test_client()), Path(app.extensions["cliproxy_mgmt"].store.path)
    return make


def listed(mgmt, key: str) -> list:
    """GET of a list; openai-compatibility's always-shown `disabled: false` is checked (and
    dropped) here, so the tests compare the stored fields."""
    items = mgmt.get(f"/{key}").get_json()[key]
    if key == "openai-compatibility":
        assert all(isinstance(item.pop("disabled"), bool) for item in items), items
    return items


def on_disk(path: Path, key: str):
    return yaml.safe_load(path.read_text()).get(key)


# -- shared rules, every list ----------------------------------------------------------

@pytest.mark.parametrize("key", LISTS)
def test_empty_lists_are_arrays_everywhere(mgmt, key):
    assert listed(mgmt, key) == []
    assert mgmt.get("/config").get_json()[key] == []


@pytest.mark.parametrize("key", LISTS)
def test_prefix_and_headers_are_normalised(mgmt, key):
    items = [entry(key, "a", prefix=" /team/ ", headers={" X-A ": " 1 ", "X-B": " ", "": "x"}),
             entry(key, "b", prefix="a/b", headers={"X-B": ""})]
    assert mgmt.put(f"/{key}", json=items).get_json() == OK
    assert listed(mgmt, key) == [entry(key, "a", prefix="team", headers={"X-A": "1"}), entry(key, "b")]


@pytest.mark.parametrize("key", ["gemini-api-key", "claude-api-key", "codex-api-key", "xai-api-key",
                                 "interactions-api-key"])
def test_excluded_models_are_lowercased_and_deduplicated(mgmt, key):
    items = [entry(key, "a", **{"excluded-models": [" Pro ", "pro", "", "*-Preview"]}),
             entry(key, "b", **{"excluded-models": [" "]})]
    assert mgmt.put(f"/{key}", json=items).get_json() == OK
    assert listed(mgmt, key) == [entry(key, "a", **{"excluded-models": ["pro", "*-preview"]}), entry(key, "b")]


@pytest.mark.parametrize("key", LISTS)
@pytest.mark.parametrize("bad", [{"priority": "1"}, {"priority": 1.5}, {"headers": {"X": 1}},
                                 {"prefix": ["x"]}, {"models": [{"name": 5}]}])
def test_wrongly_typed_fields_are_invalid_bodies(mgmt, key, bad):
    assert mgmt.put(f"/{key}", json=[entry(key, "a", **bad)]).get_json() == {"error": "invalid body"}
    assert mgmt.put(f"/{key}", json=[entry(key, "a")]).get_json() == OK
    assert mgmt.patch(f"/{key}", json={"index": 0, "value": bad}).get_json() == {"error": "invalid body"}


@pytest.mark.parametrize("key", LISTS)
def test_unknown_fields_and_comments_survive_writes(seeded, key):
    id_field = "name" if key == "openai-compatibility" else "api-key"
    base = f'    base-url: "{BASE[key]}"\n' if key in BASE else ""
    mgmt, path = seeded(f'{key}:\n  - {id_field}: "u-1"  # first\n    x-owner: blue\n{base}'
                        f'  - {id_field}: "u-2"\n{base}')
    assert mgmt.patch(f"/{key}", json={"index": 0, "value": {"prefix": "p"}}).get_json() == OK
    assert mgmt.delete(f"/{key}?index=1").get_json() == OK
    assert on_disk(path, key) == [entry(key, "u-1", **{"x-owner": "blue", "prefix": "p"})]
    assert "# first" in path.read_text()
    assert listed(mgmt, key)[0]["x-owner"] == "blue"


@pytest.mark.parametrize("key", LISTS)
def test_a_wrongly_typed_list_in_the_file_is_refused(make_app, key):
    from cliproxy_mgmt.config.store import ConfigError
    with pytest.raises(ConfigError, match=key):
        make_app(extra_yaml=f"{key}:\n  - headers: [1, 2]\n")


# -- gemini-api-key --------------------------------------------------------------------------

def test_gemini_trims_drops_empty_keys_and_keeps_the_first_duplicate(mgmt):
    assert mgmt.put("/gemini-api-key", json=[
        {"api-key": " g1 ", "base-url": " https://a ", "proxy-url": "  "},
        {"api-key": "  "}, {"api-key": "g1", "base-url": "https://dup"}, {"api-key": "g2"},
    ]).get_json() == OK
    assert listed(mgmt, "gemini-api-key") == [{"api-key": "g1", "base-url": "https://a"}, {"api-key": "g2"}]


def test_gemini_patch_cannot_set_models_and_an_empty_key_deletes(mgmt):
    mgmt.put("/gemini-api-key", json=[{"api-key": "g1"}, {"api-key": "g2"}])
    assert mgmt.patch("/gemini-api-key", json={"match": " g1 ", "value": {
        "models": [{"name": "m"}], "proxy-url": " socks5://p ", "base-url": None}}).get_json() == OK
    assert listed(mgmt, "gemini-api-key")[0] == {"api-key": "g1", "proxy-url": "socks5://p"}
    assert mgmt.patch("/gemini-api-key", json={"match": "", "value": {"api-key": "x"}}).status_code == 404
    assert mgmt.patch("/gemini-api-key", json={"match": "g1", "value": {"api-key": " "}}).get_json() == OK
    assert listed(mgmt, "gemini-api-key") == [{"api-key": "g2"}]


def test_gemini_delete_by_unknown_key_is_404(mgmt):
    mgmt.put("/gemini-api-key", json=[{"api-key": "g1"}])
    r = mgmt.delete("/gemini-api-key?api-key=nope")
    assert (r.status_code, r.get_json()) == (404, {"error": "item not found"})
    assert mgmt.delete("/gemini-api-key?api-key=%20g1%20").get_json() == OK
    assert listed(mgmt, "gemini-api-key") == []


def test_legacy_string_view_rebuilds_the_gemini_list(mgmt):
    mgmt.put("/gemini-api-key", json=[{"api-key": "keep", "prefix": "team"}, {"api-key": "drop"}])
    assert mgmt.get("/generative-language-api-key").get_json() == {"generative-language-api-key": ["keep", "drop"]}
    assert mgmt.put("/generative-language-api-key", json={"items": [" keep ", "", "new", "new"]}).get_json() == OK
    assert listed(mgmt, "gemini-api-key") == [{"api-key": "keep", "prefix": "team"}, {"api-key": "new"}]
    assert mgmt.patch("/generative-language-api-key", json={"old": "absent", "new": "added"}).get_json() == OK
    assert mgmt.delete("/generative-language-api-key?value=new").get_json() == OK
    assert mgmt.get("/generative-language-api-key").get_json()["generative-language-api-key"] == ["keep", "added"]


def test_legacy_config_key_is_folded_in_and_leaves_the_file_on_write(seeded):
    mgmt, path = seeded('gemini-api-key:\n  - api-key: "g1"\ngenerative-language-api-key:\n  - "g1"\n  - " g2 "\n')
    assert [e["api-key"] for e in listed(mgmt, "gemini-api-key")] == ["g1", "g2"]
    assert "generative-language-api-key" in path.read_text()  # reading changes nothing
    assert mgmt.patch("/gemini-api-key", json={"match": "g2", "value": {"prefix": "p"}}).get_json() == OK
    data = yaml.safe_load(path.read_text())
    assert "generative-language-api-key" not in data
    assert data["gemini-api-key"] == [{"api-key": "g1"}, {"api-key": "g2", "prefix": "p"}]


# -- claude-api-key ----------------------------------------------------------------------------

def test_claude_keeps_every_entry_and_cleans_models(mgmt):
    assert mgmt.put("/claude-api-key", json=[
        {"api-key": " c1 ", "models": [{"name": " m ", "alias": " a "}, {"name": " ", "alias": ""}, {"name": "n"}]},
        {"api-key": ""}, {"api-key": "c1"},
    ]).get_json() == OK
    assert listed(mgmt, "claude-api-key") == [
        {"api-key": "c1", "models": [{"name": "m", "alias": "a"}, {"name": "n"}]}, {"api-key": ""}, {"api-key": "c1"}]


def test_claude_empty_match_selects_an_entry_with_an_empty_key(mgmt):
    mgmt.put("/claude-api-key", json=[{"api-key": "c1"}, {"api-key": ""}])
    assert mgmt.patch("/claude-api-key", json={"match": "", "value": {"api-key": "c2"}}).get_json() == OK
    assert [e["api-key"] for e in listed(mgmt, "claude-api-key")] == ["c1", "c2"]


def test_claude_delete_compares_the_untrimmed_key(mgmt):
    mgmt.put("/claude-api-key", json=[{"api-key": "c1"}])
    assert mgmt.delete("/claude-api-key?api-key=%20c1").get_json() == OK
    assert len(listed(mgmt, "claude-api-key")) == 1
    assert mgmt.delete("/claude-api-key?api-key=c1").get_json() == OK
    assert listed(mgmt, "claude-api-key") == []


def test_claude_header_defaults_in_config(seeded, mgmt):
    fields = {"user-agent": "", "package-version": "", "runtime-version": "", "timeout": ""}
    assert mgmt.get("/config").get_json()["claude-header-defaults"] == fields
    seeded_mgmt, _ = seeded('claude-header-defaults:\n  user-agent: "cli/1.0"\n  timeout: 600\n')
    assert seeded_mgmt.get("/config").get_json()["claude-header-defaults"] == {
        **fields, "user-agent": "cli/1.0", "timeout": "600"}


# -- codex-api-key -------------------------------------------------------------------------------

def test_codex_entries_without_base_url_are_dropped(seeded):
    mgmt, path = seeded('codex-api-key:\n  - api-key: "x1"\n  - api-key: "x2"\n    base-url: "https://c"\n')
    assert listed(mgmt, "codex-api-key") == [{"api-key": "x2", "base-url": "https://c"}]
    assert mgmt.patch("/codex-api-key", json={"index": 0, "value": {"api-key": ""}}).get_json() == OK
    assert on_disk(path, "codex-api-key") == [{"api-key": "", "base-url": "https://c"}]
    assert mgmt.patch("/codex-api-key", json={"index": 0, "value": {"base-url": " "}}).get_json() == OK
    assert on_disk(path, "codex-api-key") == []


# -- xai-api-key (upstream's CodexKey rules) ---------------------------------------------------------

def test_xai_keeps_upstream_fields_drops_entries_without_base_url_and_never_stores_alpha_search(seeded):
    rule = {"status": 429, "match": ["quota"], "action": "stop-and-cooldown"}
    mgmt, path = seeded("request-log: false\n")
    assert mgmt.put("/xai-api-key", json={"items": [
        {"api-key": " xk1 ", "base-url": " https://api.x.ai/v1 ", "websockets": True, "alpha-search": True,
         "priority": 2, "weight": 3, "disable-cooling": True, "request-retry": 1, "request-scoped-errors": [rule],
         "models": [{"name": "grok-4", "alias": "g", "test-model": True}]},
        {"api-key": "xk2"},
    ]}).get_json() == OK
    expected = [{"api-key": "xk1", "base-url": "https://api.x.ai/v1", "websockets": True, "priority": 2,
                 "weight": 3, "disable-cooling": True, "request-retry": 1, "request-scoped-errors": [rule],
                 "models": [{"name": "grok-4", "alias": "g", "test-model": True}]}]
    assert listed(mgmt, "xai-api-key") == expected
    assert on_disk(path, "xai-api-key") == expected
    assert mgmt.get("/config").get_json()["xai-api-key"] == expected
    assert mgmt.patch("/xai-api-key", json={"match": "xk1", "value": {"websockets": False, "weight": 7}}
                      ).get_json() == OK
    assert (listed(mgmt, "xai-api-key")[0]["websockets"], listed(mgmt, "xai-api-key")[0]["weight"]) == (False, 7)
    assert mgmt.patch("/xai-api-key", json={"index": 0, "value": {"base-url": ""}}).get_json() == OK
    assert on_disk(path, "xai-api-key") == []


def test_xai_list_as_the_v1_22_ui_edits_it(mgmt):
    """The UI PUTs the whole array (read from GET /config) and deletes by api-key + base-url."""
    ui_entry = {"api-key": "xk", "base-url": "https://api.x.ai/v1", "proxy-url": "", "headers": {},
                "models": [], "excluded-models": [], "websockets": False}
    assert mgmt.put("/xai-api-key", json=[ui_entry]).get_json() == OK
    assert mgmt.get("/config").get_json()["xai-api-key"] == [
        {"api-key": "xk", "base-url": "https://api.x.ai/v1", "proxy-url": "", "models": [], "websockets": False}]
    assert mgmt.delete("/xai-api-key", query_string={"api-key": "xk", "base-url": "https://api.x.ai/v1"}
                       ).get_json() == OK
    assert listed(mgmt, "xai-api-key") == []


# -- interactions-api-key (upstream's GeminiKey rules for its newer lists) ------------------------------

def test_interactions_keeps_an_entry_with_a_key_or_a_base_url_and_drops_exact_duplicates(mgmt):
    assert mgmt.put("/interactions-api-key", json=[
        {"api-key": " i1 ", "base-url": " https://generativelanguage.googleapis.com ", "proxy-url": " "},
        {"api-key": "i1", "base-url": "https://generativelanguage.googleapis.com"},
        {"api-key": "i1", "base-url": "https://other.example"},
        {"api-key": " ", "base-url": "https://gateway.example"},
        {"api-key": "  "},
        {"api-key": "i2", "weight": 5, "disable-cooling": False, "request-retry": 0},
    ]).get_json() == OK
    assert listed(mgmt, "interactions-api-key") == [
        {"api-key": "i1", "base-url": "https://generativelanguage.googleapis.com"},
        {"api-key": "i1", "base-url": "https://other.example"},
        {"api-key": "", "base-url": "https://gateway.example"},
        {"api-key": "i2", "weight": 5, "disable-cooling": False, "request-retry": 0}]
    assert mgmt.get("/config").get_json()["interactions-api-key"] == listed(mgmt, "interactions-api-key")


def test_interactions_delete_as_the_ui_sends_it_and_404_for_an_unknown_key(mgmt):
    assert mgmt.put("/interactions-api-key", json=[{"api-key": "i1"}, {"api-key": "i2"}]).get_json() == OK
    assert mgmt.delete("/interactions-api-key", query_string={"api-key": "i1", "base-url": ""}).get_json() == OK
    assert listed(mgmt, "interactions-api-key") == [{"api-key": "i2"}]
    r = mgmt.delete("/interactions-api-key", query_string={"api-key": "nope"})
    assert (r.status_code, r.get_json()) == (404, {"error": "item not found"})


# -- vertex-api-key --------------------------------------------------------------------------------

def test_vertex_needs_key_and_base_url_and_deduplicates_on_both(mgmt):
    assert mgmt.put("/vertex-api-key", json=[
        {"api-key": " v1 ", "base-url": " https://a ", "models": [{"name": "m", "alias": "a"}, {"name": "m", "alias": " "}]},
        {"api-key": "v1", "base-url": "https://a"}, {"api-key": "v1", "base-url": "https://b"},
        {"api-key": "v2"}, {"api-key": " ", "base-url": "https://c"},
    ]).get_json() == OK
    assert listed(mgmt, "vertex-api-key") == [
        {"api-key": "v1", "base-url": "https://a", "models": [{"name": "m", "alias": "a"}]},
        {"api-key": "v1", "base-url": "https://b"}]


# -- openai-compatibility --------------------------------------------------------------------------

def test_openai_compat_key_entries_are_trimmed_and_empty_keys_kept(mgmt):
    assert mgmt.put("/openai-compatibility", json=[
        {"name": " or ", "base-url": " https://o ", "api-key-entries": [{"api-key": " k1 "}, {"api-key": ""}]},
        {"name": "nobase", "base-url": " "},
    ]).get_json() == OK
    assert listed(mgmt, "openai-compatibility") == [
        {"name": "or", "base-url": "https://o", "api-key-entries": [{"api-key": "k1"}, {"api-key": ""}]}]


def test_openai_compat_legacy_api_keys_become_key_entries(seeded):
    mgmt, path = seeded('openai-compatibility:\n  - name: "leg"\n    base-url: "https://l"\n'
                        '    api-key-entries:\n      - api-key: "k0"\n'
                        '    api-keys: ["k1", "", "k0", "k1", " k2 "]\n')
    expected = [{"api-key": "k0"}, {"api-key": "k1"}, {"api-key": "k2"}]
    assert listed(mgmt, "openai-compatibility")[0]["api-key-entries"] == expected
    assert mgmt.patch("/openai-compatibility", json={"name": "leg", "value": {"prefix": "p"}}).get_json() == OK
    [item] = on_disk(path, "openai-compatibility")
    assert "api-keys" not in item and item["api-key-entries"] == expected


def test_openai_compat_is_selected_and_deleted_by_name(mgmt):
    mgmt.put("/openai-compatibility", json=[entry("openai-compatibility", n) for n in ("a", "b", "a")])
    assert mgmt.patch("/openai-compatibility", json={"name": "b", "value": {"name": "c"}}).get_json() == OK
    assert mgmt.delete("/openai-compatibility?name=a").get_json() == OK
    assert [e["name"] for e in listed(mgmt, "openai-compatibility")] == ["c"]
    r = mgmt.delete("/openai-compatibility?index=5")
    assert (r.status_code, r.get_json()) == (400, {"error": "missing name or index"})


@pytest.mark.parametrize("key", LISTS)
def test_emptying_a_commented_list_keeps_a_valid_file(seeded, key):
    id_field = "name" if key == "openai-compatibility" else "api-key"
    base = f'    base-url: "{BASE[key]}"\n' if key in BASE else ""
    mgmt, path = seeded(f'{key}:\n  # a comment inside the list\n  - {id_field}: "u-1"\n{base}\n# next\nrequest-log: true\n')
    assert mgmt.put(f"/{key}", json=[]).get_json() == OK
    data = yaml.safe_load(path.read_text())
    assert data[key] == [] and data["request-log"] is True and "# next" in path.read_text()
