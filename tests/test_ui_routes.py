"""What the current web UI (Management Center v1.22) sends and reads, next to the seed-era routes:
auth-file batch delete, multi-file upload and field edits, per-file request counts, key-list
deletes by api-key + base-url, openai-compatibility `disabled`, the X-CPA-* headers,
/plugins and /plugin-store, and upstream's newer routes."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from cliproxy_mgmt.authfiles import auth_index
from cliproxy_mgmt.testing import ManagementClient
from cliproxy_mgmt.usage import UsageRecord, record_usage

CLAUDE = {"type": "claude", "email": "alice@example.com", "access_token": "at"}


@pytest.fixture
def auths(app) -> Path:
    return Path(app.extensions["cliproxy_mgmt"].store.path).parent / "auths"


@pytest.fixture
def config_path(app) -> Path:
    return Path(app.extensions["cliproxy_mgmt"].store.path)


def put(folder: Path, name: str, data) -> Path:
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def listing(mgmt) -> dict:
    r = mgmt.get("/auth-files")
    assert r.status_code == 200, r.data
    return {e["name"]: e for e in r.get_json()["files"]}


def multipart(*files) -> dict:
    return {"data": {"file": [(io.BytesIO(content), name) for name, content in files]},
            "content_type": "multipart/form-data"}


# -- DELETE /auth-files with a JSON body ------------------------------------------------------

def test_batch_delete_by_json_names(mgmt, auths):
    for n in ("a", "b", "c"):
        put(auths, f"{n}.json", CLAUDE)
    r = mgmt.delete("/auth-files", json={"names": ["a.json", " b.json ", "a.json"]})
    assert (r.status_code, r.get_json()) == (200, {"status": "ok", "deleted": 2, "files": ["a.json", "b.json"]})
    assert sorted(p.name for p in auths.iterdir()) == ["c.json"]
    assert list(listing(mgmt)) == ["c.json"]


def test_batch_delete_reports_each_failure_with_207(mgmt, auths):
    put(auths, "a.json", CLAUDE)
    r = mgmt.delete("/auth-files", json={"names": ["a.json", "missing.json", "../x.json"]})
    assert r.status_code == 207
    assert r.get_json() == {"status": "partial", "deleted": 1, "files": ["a.json"], "failed": [
        {"name": "missing.json", "error": "auth file not found"}, {"name": "../x.json", "error": "invalid name"}]}
    assert not (auths / "a.json").exists()


@pytest.mark.parametrize("body", [{"names": ["a.json"]}, {"name": "a.json"}, ["a.json"],
                                  {"name": "a.json", "names": None}, {"name": None, "names": ["a.json", None]}],
                         ids=["names", "name", "array", "null-names", "null-name"])
def test_single_name_in_a_body_answers_ok(mgmt, auths, body):
    put(auths, "a.json", CLAUDE)
    r = mgmt.delete("/auth-files", json=body)
    assert (r.status_code, r.get_json()) == (200, {"status": "ok"})
    assert not (auths / "a.json").exists()


@pytest.mark.parametrize("kw,status,error", [
    ({"json": {"names": ["a/b.json"]}}, 400, "invalid name"),
    ({"json": {"names": ["nobody.json"]}}, 404, "auth file not found"),
    ({"json": {"names": []}}, 400, "invalid name"),
    ({"data": "{nope", "content_type": "application/json"}, 400, "invalid request body"),
    ({"json": {"names": [1]}}, 400, "invalid request body"),
    ({"json": {"name": "a.json", "names": 5}}, 400, "invalid request body"),
    ({"json": {"name": "a.json", "names": {"x": 1}}}, 400, "invalid request body"),
    ({"json": {"name": "a.json", "names": "b.json"}}, 400, "invalid request body"),
    ({"json": {"name": "a.json", "names": True}}, 400, "invalid request body"),
    ({"json": {"name": 5, "names": ["a.json"]}}, 400, "invalid request body"),
    ({"data": "null", "content_type": "application/json"}, 400, "invalid name"),
    ({}, 400, "invalid name"),
])
def test_batch_delete_errors(mgmt, auths, kw, status, error):
    put(auths, "a.json", CLAUDE)
    r = mgmt.delete("/auth-files", **kw)
    assert (r.status_code, r.get_json()["error"]) == (status, error)
    assert (auths / "a.json").exists()


def test_seed_era_single_delete_is_unchanged(mgmt, auths):
    r = mgmt.delete("/auth-files?name=missing.json")
    assert (r.status_code, r.get_json()) == (404, {"error": "file not found"})
    put(auths, "a.json", CLAUDE)
    put(auths, "b.json", CLAUDE)
    r = mgmt.delete("/auth-files?name=a.json&name=b.json")
    assert r.get_json() == {"status": "ok", "deleted": 2, "files": ["a.json", "b.json"]}


# -- POST /auth-files with several files ------------------------------------------------------

def test_multi_file_upload_stores_every_file(mgmt, auths):
    r = mgmt.post("/auth-files", **multipart(("a.json", b'{"type":"claude"}'), ("b.json", b'{"type":"codex"}')))
    assert (r.status_code, r.get_json()) == (200, {"status": "ok", "uploaded": 2, "files": ["a.json", "b.json"]})
    assert (auths / "a.json").read_bytes() == b'{"type":"claude"}'
    assert (auths / "b.json").read_bytes() == b'{"type":"codex"}'


def test_multi_file_upload_with_bad_files_is_207_and_stores_the_good_ones(mgmt, auths):
    r = mgmt.post("/auth-files", **multipart(("a.json", b'{"type":"claude"}'), ("notes.txt", b"{}"),
                                             ("bad.json", b"[1]")))
    assert r.status_code == 207
    body = r.get_json()
    assert (body["status"], body["uploaded"], body["files"]) == ("partial", 1, ["a.json"])
    assert [f["name"] for f in body["failed"]] == ["notes.txt", "bad.json"]
    assert body["failed"][0]["error"] == "file must be .json"
    assert body["failed"][1]["error"].startswith("invalid auth file")
    assert sorted(p.name for p in auths.iterdir()) == ["a.json"]


def test_single_multipart_upload_keeps_its_answer(mgmt, auths):
    r = mgmt.post("/auth-files", **multipart(("a.json", b'{"type":"claude"}')))
    assert (r.status_code, r.get_json()) == (200, {"status": "ok"})


# -- PATCH /auth-files/fields -----------------------------------------------------------------

def test_fields_sets_everything_the_ui_edits_and_the_listing_shows_it(mgmt, auths):
    put(auths, "c.json", {**CLAUDE, "headers": {"X-Old": "1", "X-Keep": "k"}, "disable-cooling": False})
    body = {"name": "c.json", "weight": 7, "note": "  main  ", "disable-cooling": True, "websockets": True,
            "using_api": True, "excluded_models": ["m1"], "headers": {"X-Old": "", "X-New": "2"},
            "request_retry": 2, "expired": "2026-01-01T00:00:00Z", "priority": 3, "meta.tier": "pro"}
    assert mgmt.patch("/auth-files/fields", json=body).get_json() == {"status": "ok"}
    data = json.loads((auths / "c.json").read_text())
    assert data["weight"] == 7 and data["note"] == "main" and data["disable_cooling"] is True
    assert "disable-cooling" not in data
    assert data["websockets"] is True and data["using_api"] is True and data["excluded_models"] == ["m1"]
    assert data["headers"] == {"X-Keep": "k", "X-New": "2"}
    assert data["request_retry"] == 2 and data["expired"] == "2026-01-01T00:00:00Z"
    assert data["meta"] == {"tier": "pro"} and data["access_token"] == "at"
    entry = listing(mgmt)["c.json"]
    assert (entry["weight"], entry["note"], entry["websockets"], entry["priority"], entry["request_retry"]) == \
        (7, "main", True, 3, 2)
    assert (entry["disable_cooling"], entry["using_api"], entry["excluded_models"], entry["headers"]) == \
        (True, True, ["m1"], {"X-Keep": "k", "X-New": "2"})


def test_fields_refresh_now_sends_expired_alone(mgmt, auths):
    put(auths, "c.json", CLAUDE)
    expired = datetime.now().astimezone().isoformat()
    r = mgmt.patch("/auth-files/fields", json={"name": "c.json", "expired": expired})
    assert (r.status_code, r.get_json()) == (200, {"status": "ok"})
    assert json.loads((auths / "c.json").read_text())["expired"] == expired


def test_fields_null_weight_removes_it_and_headers_can_empty(mgmt, auths):
    put(auths, "c.json", {**CLAUDE, "weight": 4, "headers": {"X-A": "1"}, "request_retry": 1})
    mgmt.patch("/auth-files/fields", json={"name": "c.json", "weight": None, "headers": {"X-A": ""},
                                           "request_retry": -1})
    data = json.loads((auths / "c.json").read_text())
    assert "weight" not in data and "headers" not in data and "request_retry" not in data


@pytest.mark.parametrize("body,error", [
    ({"weight": "x"}, "weight must be an integer"),
    ({"weight": 1_000_001}, "weight must not exceed 1000000"),
    ({"weight.x": 1}, "weight does not support nested fields"),
    ({"request_retry": "x"}, "request_retry must be an integer or null"),
    ({"a..b": 1}, "invalid field path: a..b"),
    ({"": 1}, "field name is required"),
    ({"note": 5}, "invalid request body"),
    # names are trimmed, and each part of a path: the same checks apply
    ({" weight": "abc"}, "weight must be an integer"),
    ({"weight ": 99999999999}, "weight must not exceed 1000000"),
    ({" weight . x": 1}, "weight does not support nested fields"),
    ({" request_retry": "x"}, "request_retry must be an integer or null"),
    ({"priority ": "x"}, "invalid request body"),
    ({"disabled ": "x"}, "invalid request body"),
    ({" note ": 5}, "invalid request body"),
    ({"a. .b": 1}, "invalid field path: a..b"),
    ({"  ": 1}, "field name is required"),
    ({"note": "x", " note": "y"}, 'auth file fields "note" and " note" refer to the same field'),
    ({" weight": 1, "weight ": 99999999999}, 'auth file fields " weight" and "weight " refer to the same field'),
    ({"note": None, " note ": "y"}, 'auth file fields "note" and " note " refer to the same field'),
    ({"meta.tier": 1, "meta . tier": 2}, 'auth file fields "meta.tier" and "meta . tier" refer to the same field'),
    ({"proxy-url": "a", " proxy-url": "b"}, 'auth file fields "proxy-url" and " proxy-url" refer to the same field'),
    ({"note\t": "x", "note": "y"}, 'auth file fields "note\\t" and "note" refer to the same field'),
])
def test_fields_errors(mgmt, auths, body, error):
    path = put(auths, "c.json", CLAUDE)
    before = path.read_bytes()
    r = mgmt.patch("/auth-files/fields", json={"name": "c.json", **body})
    assert (r.status_code, r.get_json()) == (400, {"error": error})
    assert path.read_bytes() == before


def test_fields_names_and_path_parts_are_trimmed(mgmt, auths):
    put(auths, "c.json", CLAUDE)
    r = mgmt.patch("/auth-files/fields", json={"name": "c.json", " weight ": 5, " meta . tier ": "pro",
                                               "note ": " n ", " proxy-url": "http://a", "proxy_url ": "http://b"})
    assert (r.status_code, r.get_json()) == (200, {"status": "ok"})
    data = json.loads((auths / "c.json").read_text())
    assert data == {**CLAUDE, "weight": 5, "meta": {"tier": "pro"}, "note": "n", "proxy_url": "http://b"}


def test_fields_snake_case_spelling_wins(mgmt, auths):
    put(auths, "c.json", CLAUDE)
    mgmt.patch("/auth-files/fields", json={"name": "c.json", "proxy-url": "http://a", "proxy_url": "http://b"})
    assert json.loads((auths / "c.json").read_text())["proxy_url"] == "http://b"


# -- GET /auth-files counts ---------------------------------------------------------------------

def test_listing_counts_requests_per_file(make_app):
    app = make_app(extra_yaml="usage-statistics-enabled: true\n")
    mgmt = ManagementClient(app.test_client())
    auths = Path(app.extensions["cliproxy_mgmt"].store.path).parent / "auths"
    put(auths, "a.json", CLAUDE)
    put(auths, "b.json", CLAUDE)
    assert listing(mgmt)["a.json"]["success"] == 0
    index = auth_index("a.json")
    for failed in (False, False, True):
        record_usage(UsageRecord(model="m", api_key="k", auth_index=index, failed=failed), app=app)
    entries = listing(mgmt)
    a, b = entries["a.json"], entries["b.json"]
    assert (a["success"], a["failed"], b["success"], b["failed"]) == (2, 1, 0, 0)
    assert len(a["recent_requests"]) == 20
    assert a["recent_requests"][-1]["success"] == 2 and a["recent_requests"][-1]["failed"] == 1
    start, end = a["recent_requests"][-1]["time"].split("-")
    assert len(start) == len(end) == 5


# -- key lists: delete by api-key + base-url, new fields ------------------------------------------

def seeded(make_app, text: str) -> tuple[ManagementClient, Path]:
    app = make_app(extra_yaml=text)
    return ManagementClient(app.test_client()), Path(app.extensions["cliproxy_mgmt"].store.path)


CLAUDE_KEYS = """claude-api-key:
  - api-key: "k"
    base-url: "https://a.example.com"
  - api-key: "k"
  - api-key: "k"
    base-url: "https://b.example.com"
"""


def test_delete_by_key_and_base_url_removes_only_that_entry(make_app):
    mgmt, _ = seeded(make_app, CLAUDE_KEYS)
    r = mgmt.delete("/claude-api-key?api-key=k&base-url=https://b.example.com")
    assert r.get_json() == {"status": "ok"}
    assert [e.get("base-url") for e in mgmt.get("/claude-api-key").get_json()["claude-api-key"]] == \
        ["https://a.example.com", None]


def test_delete_with_empty_base_url_matches_entries_without_one(make_app):
    mgmt, _ = seeded(make_app, CLAUDE_KEYS)
    assert mgmt.delete("/claude-api-key?api-key=k&base-url=").status_code == 200
    assert [e.get("base-url") for e in mgmt.get("/claude-api-key").get_json()["claude-api-key"]] == \
        ["https://a.example.com", "https://b.example.com"]


def test_delete_by_key_and_base_url_matching_nothing_is_ok(make_app):
    mgmt, path = seeded(make_app, CLAUDE_KEYS)
    before = path.read_text()
    assert mgmt.delete("/claude-api-key?api-key=k&base-url=https://c.example.com").status_code == 200
    assert path.read_text() == before


GEMINI_KEYS = """gemini-api-key:
  - api-key: "g"
    base-url: "https://a.example.com"
  - api-key: "h"
    base-url: "https://a.example.com"
"""


def test_gemini_delete_by_key_and_base_url_needs_exactly_one(make_app):
    mgmt, _ = seeded(make_app, GEMINI_KEYS)
    r = mgmt.delete("/gemini-api-key?api-key=g&base-url=https://b.example.com")
    assert (r.status_code, r.get_json()) == (404, {"error": "item not found"})
    assert mgmt.delete("/gemini-api-key?api-key=g&base-url=https://a.example.com").status_code == 200
    assert [e["api-key"] for e in mgmt.get("/gemini-api-key").get_json()["gemini-api-key"]] == ["h"]


INTERACTIONS_TWINS = """interactions-api-key:
  - api-key: "k1"
    base-url: "https://a.example.com"
  - api-key: "k1"
    base-url: "https://b.example.com"
"""


def test_interactions_patch_by_an_ambiguous_match_is_refused(make_app):
    mgmt, path = seeded(make_app, INTERACTIONS_TWINS)
    before = path.read_bytes()
    r = mgmt.patch("/interactions-api-key", json={"match": "k1", "value": {"prefix": "p"}})
    assert (r.status_code, r.get_json()) == (400, {"error": "multiple items match; index is required"})
    assert path.read_bytes() == before


@pytest.mark.parametrize("how,patched", [({"params": "?base-url=https://b.example.com"}, 1),
                                         ({"body": {"index": 1}}, 1)], ids=["base-url", "index"])
def test_interactions_patch_narrowed_to_one_entry_patches_it(make_app, how, patched):
    mgmt, _ = seeded(make_app, INTERACTIONS_TWINS)
    body = {"match": "k1", "value": {"prefix": "p"}, **how.get("body", {})}
    assert mgmt.patch("/interactions-api-key" + how.get("params", ""), json=body).get_json() == {"status": "ok"}
    entries = mgmt.get("/interactions-api-key").get_json()["interactions-api-key"]
    assert [e.get("prefix") for e in entries] == [None, "p"]


def test_claude_patch_by_a_shared_key_takes_the_first_entry_as_upstream(make_app):
    mgmt, _ = seeded(make_app, CLAUDE_KEYS)
    assert mgmt.patch("/claude-api-key", json={"match": "k", "value": {"prefix": "p"}}).status_code == 200
    assert [e.get("prefix") for e in mgmt.get("/claude-api-key").get_json()["claude-api-key"]] == ["p", None, None]


def test_openai_compat_disabled_is_patched_stored_and_shown(make_app):
    mgmt, path = seeded(make_app, 'openai-compatibility:\n  - name: "p"\n    base-url: "https://x.example.com/v1"\n')
    assert mgmt.get("/openai-compatibility").get_json()["openai-compatibility"][0]["disabled"] is False
    assert mgmt.patch("/openai-compatibility", json={"index": 0, "value": {"disabled": True}}).status_code == 200
    assert yaml.safe_load(path.read_text())["openai-compatibility"][0]["disabled"] is True
    assert mgmt.get("/openai-compatibility").get_json()["openai-compatibility"][0]["disabled"] is True
    assert mgmt.get("/config").get_json()["openai-compatibility"][0]["disabled"] is True


def test_new_entry_fields_are_stored_through_put_and_patch(make_app):
    mgmt, path = seeded(make_app, "")
    item = {"api-key": "c", "base-url": "https://codex.example.com/v1", "weight": 5, "disable-cooling": True,
            "request-retry": 2, "alpha-search": True,
            "request-scoped-errors": [{"status": 429, "match": ["quota"], "action": "stop"}]}
    assert mgmt.put("/codex-api-key", json=[item]).status_code == 200
    assert mgmt.patch("/codex-api-key", json={"index": 0, "value": {"weight": None, "request-retry": 3}}).status_code == 200
    stored = yaml.safe_load(path.read_text())["codex-api-key"][0]
    assert "weight" not in stored and stored["request-retry"] == 3 and stored["disable-cooling"] is True
    assert stored["request-scoped-errors"][0]["status"] == 429


@pytest.mark.parametrize("value,error", [({"weight": "x"}, "weight must be an integer"),
                                         ({"disable-cooling": "yes"}, "disable-cooling must be a boolean or null")])
def test_patch_refuses_bad_weight_and_cooling(make_app, value, error):
    mgmt, _ = seeded(make_app, 'claude-api-key:\n  - api-key: "k"\n')
    r = mgmt.patch("/claude-api-key", json={"index": 0, "value": value})
    assert (r.status_code, r.get_json()) == (400, {"error": error})


@pytest.mark.parametrize("key,entry", [("claude-api-key", {}), ("xai-api-key", {"base-url": "https://api.x.ai/v1"}),
                                       ("interactions-api-key", {})])
def test_put_refuses_weight_over_the_limit(mgmt, key, entry):
    r = mgmt.put(f"/{key}", json=[{"api-key": "k", **entry, "weight": 1_000_001}])
    assert (r.status_code, r.get_json()) == (400, {"error": f"{key}[0].weight: weight must not exceed 1000000"})


OPENAI_P = 'openai-compatibility:\n  - name: "p"\n    base-url: "https://x"\n    api-key-entries:\n      - api-key: "k"\n'


def test_openai_compat_put_refuses_a_key_weight_over_the_limit(make_app):
    mgmt, path = seeded(make_app, OPENAI_P)
    before = path.read_bytes()
    body = [{"name": "p", "base-url": "https://x", "api-key-entries": [{"api-key": "k", "weight": 1_000_000}]},
            {"name": "q", "base-url": "https://y", "api-key-entries": [{"api-key": "a"}, {"api-key": "k",
                                                                                        "weight": 5_000_000}]}]
    r = mgmt.put("/openai-compatibility", json=body)
    assert (r.status_code, r.get_json()) == (
        400, {"error": "openai-compatibility[1].api-key-entries[1].weight: weight must not exceed 1000000"})
    assert path.read_bytes() == before
    assert mgmt.put("/openai-compatibility", json=body[:1]).status_code == 200
    assert yaml.safe_load(path.read_text())["openai-compatibility"][0]["api-key-entries"][0]["weight"] == 1_000_000


def test_openai_compat_patch_refuses_a_key_weight_over_the_limit(make_app):
    mgmt, path = seeded(make_app, OPENAI_P)
    before = path.read_bytes()
    value = {"api-key-entries": [{"api-key": "k", "weight": 9_000_000}]}
    r = mgmt.patch("/openai-compatibility", json={"name": "p", "value": value})
    assert (r.status_code, r.get_json()) == (400, {"error": "api-key-entries[0].weight: weight must not exceed 1000000"})
    r = mgmt.patch("/openai-compatibility", json={"name": "nobody", "value": value})
    assert (r.status_code, r.get_json()) == (404, {"error": "item not found"})
    assert path.read_bytes() == before
    # an upstream has no weight of its own: upstream ignores one in the value, as any unknown field
    assert mgmt.patch("/openai-compatibility", json={"name": "p", "value": {"weight": "x"}}).status_code == 200


def test_openai_compat_patch_that_drops_the_entry_does_not_check_its_weights(make_app):
    """As upstream: an empty base-url removes the upstream before the new key entries are looked at."""
    mgmt, _ = seeded(make_app, OPENAI_P)
    value = {"base-url": " ", "api-key-entries": [{"api-key": "k", "weight": 9_000_000}]}
    assert mgmt.patch("/openai-compatibility", json={"name": "p", "value": value}).status_code == 200
    assert mgmt.get("/openai-compatibility").get_json()["openai-compatibility"] == []


@pytest.mark.parametrize("key,entry", [("xai-api-key", {"base-url": "https://api.x.ai/v1"}),
                                       ("interactions-api-key", {})])
def test_patch_null_clears_weight_on_the_new_lists(make_app, key, entry):
    mgmt, _ = seeded(make_app, f"{key}:\n  - api-key: \"k\"\n" + "".join(
        f"    {name}: \"{value}\"\n" for name, value in entry.items()) + "    weight: 5\n")
    assert mgmt.patch(f"/{key}", json={"index": 0, "value": {"weight": None}}).status_code == 200
    assert "weight" not in mgmt.get(f"/{key}").get_json()[key][0]


# -- headers -------------------------------------------------------------------------------------

def test_version_headers_carry_a_real_build_date_and_the_plugin_switch(mgmt):
    r = mgmt.get("/debug")
    from cliproxy_mgmt.build_info import version
    assert r.headers["X-CPA-VERSION"] == version()
    assert datetime.fromisoformat(r.headers["X-CPA-BUILD-DATE"].replace("Z", "+00:00")).year >= 2024
    assert r.headers["X-CPA-SUPPORT-PLUGIN"] == "1"


def test_cors_exposes_every_x_cpa_header(make_app):
    app = make_app(extra_yaml="")
    store = app.extensions["cliproxy_mgmt"].store
    store.edit(lambda d: d["remote-management"].__setitem__("cors-allowed-origins", ["https://panel.example"]))
    r = ManagementClient(app.test_client()).get("/debug", headers={"Origin": "https://panel.example"})
    exposed = {h.strip() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-CPA-VERSION", "X-CPA-COMMIT", "X-CPA-BUILD-DATE", "X-CPA-SUPPORT-PLUGIN"} <= exposed


# -- /plugins ------------------------------------------------------------------------------------

def plugins(mgmt) -> dict:
    r = mgmt.get("/plugins")
    assert r.status_code == 200
    return {p["id"]: p for p in r.get_json()["plugins"]}


def test_plugins_lists_the_built_ins_in_the_ui_shape(mgmt):
    body = mgmt.get("/plugins").get_json()
    assert body["plugins_enabled"] is True and body["plugins_dir"]
    entries = {p["id"]: p for p in body["plugins"]}
    for ident in ("gemini", "claude", "codex", "openai_compat", "vertex", "amp", "qwen", "iflow"):
        entry = entries[ident]
        assert entry["registered"] and entry["enabled"] and entry["effective_enabled"]
        for key in ("path", "configured", "supports_oauth", "oauth_provider", "logo", "config_fields", "menus",
                    "metadata", "name", "version", "description", "registers"):
            assert key in entry
    gemini = entries["gemini"]
    assert "gemini-api-key" in gemini["registers"]["config_sections"]
    assert "GET /gemini-api-key" in gemini["registers"]["routes"]
    assert gemini["metadata"]["version"] == gemini["version"]


def test_oauth_cards_for_gemini_cli_qwen_and_iflow(app, mgmt):
    """The UI's OAuth page adds a card per plugin with supports_oauth, effective_enabled and an
    oauth_provider it does not build in; it then calls GET /<oauth_provider>-auth-url (not
    called here: it would reach the real provider) and names it in POST /oauth-callback."""
    entries = plugins(mgmt)
    cards = {p["oauth_provider"] for p in entries.values() if p["supports_oauth"] and p["effective_enabled"]}
    assert {"gemini-cli", "qwen", "iflow"} <= cards
    routes = {(rule.rule, method) for rule in app.url_map.iter_rules() for method in rule.methods}
    for provider in ("gemini-cli", "qwen", "iflow"):
        assert (f"/v0/management/{provider}-auth-url", "GET") in routes
    r = mgmt.post("/oauth-callback", json={"provider": "gemini-cli", "redirect_url": "http://x/?state=s1&code=c"})
    assert r.get_json() == {"status": "error", "error": "unknown or expired state"}  # a known provider


def test_disabling_a_plugin_takes_its_routes_logins_and_section_out_of_service(make_app):
    mgmt, path = seeded(make_app, 'gemini-api-key:\n  - api-key: "g"  # keep me\n')
    assert mgmt.patch("/plugins/gemini/enabled", json={"enabled": False}).get_json() == {"status": "ok"}
    assert plugins(mgmt)["gemini"]["effective_enabled"] is False  # at once: the UI polls for it
    for route in ("/gemini-api-key", "/gemini-cli-auth-url"):
        r = mgmt.get(route)
        assert (r.status_code, r.get_json()["error"]) == (409, "plugin_disabled")
    r = mgmt.post("/oauth-callback", json={"provider": "gemini-cli", "redirect_url": "http://x/?state=s&code=c"})
    assert r.get_json() == {"status": "error", "error": "unsupported provider"}
    assert "gemini-api-key" not in mgmt.get("/config").get_json()
    assert "# keep me" in path.read_text()
    assert yaml.safe_load(path.read_text())["plugins"]["configs"]["gemini"]["enabled"] is False
    assert mgmt.get("/claude-api-key").status_code == 200  # the others are untouched

    assert mgmt.patch("/plugins/gemini/enabled", json={"enabled": True}).status_code == 200
    assert mgmt.get("/gemini-api-key").get_json() == {"gemini-api-key": [{"api-key": "g"}]}


def test_plugin_config_routes(mgmt):
    assert mgmt.get("/plugins/codex/config").get_json() == {}
    assert mgmt.patch("/plugins/codex/config", json={"tier": "pro", "x": 1}).status_code == 200
    assert mgmt.patch("/plugins/codex/config", json={"x": None}).status_code == 200
    assert mgmt.get("/plugins/codex/config").get_json() == {"tier": "pro"}
    assert mgmt.put("/plugins/codex/config", json={"enabled": True, "a": 2}).status_code == 200
    assert mgmt.get("/plugins/codex/config").get_json() == {"enabled": True, "a": 2}
    assert plugins(mgmt)["codex"]["configured"] is True


@pytest.mark.parametrize("method,path,kw,status,error", [
    ("PATCH", "/plugins/codex/enabled", {"json": {}}, 400, "invalid_body"),
    ("PATCH", "/plugins/codex/enabled", {"json": {"enabled": "no"}}, 400, "invalid_body"),
    ("PATCH", "/plugins/-bad/enabled", {"json": {"enabled": True}}, 400, "invalid_plugin_id"),
    ("GET", "/plugins/nothing/config", {}, 404, "plugin_not_found"),
    ("PUT", "/plugins/codex/config", {"json": [1]}, 400, "invalid_body"),
    ("PATCH", "/plugins/codex/config", {"json": {"enabled": "yes"}}, 400, "invalid_config"),
    ("PUT", "/plugins/codex/config", {"json": {"priority": 2 ** 64}}, 400, "invalid_config"),
    ("PATCH", "/plugins/codex/config", {"json": {"priority": -(2 ** 63) - 1}}, 400, "invalid_config"),
    ("DELETE", "/plugins/codex", {}, 409, "plugin_delete_unsupported"),
    ("DELETE", "/plugins/nothing", {}, 404, "plugin_not_found"),
    ("POST", "/plugin-store/acme/install", {}, 404, "plugin_store_unavailable"),
])
def test_plugin_route_errors_use_upstreams_envelope(mgmt, method, path, kw, status, error):
    r = mgmt.request(method, path, **kw)
    assert r.status_code == status
    body = r.get_json()
    assert body["error"] == error and body["message"]


def test_deleting_a_config_only_plugin_entry(make_app):
    mgmt, path = seeded(make_app, "plugins:\n  configs:\n    gone:\n      enabled: true\n")
    assert plugins(mgmt)["gone"]["registered"] is False
    r = mgmt.delete("/plugins/gone")
    assert r.get_json() == {"status": "deleted", "id": "gone", "path": "", "file_deleted": False,
                            "configured_removed": True, "restart_required": False}
    assert "gone" not in plugins(mgmt)


def test_plugin_store_is_empty(mgmt):
    assert mgmt.get("/plugin-store").get_json() == {"plugins_enabled": True, "plugins_dir": "plugins",
                                                    "sources": [], "plugins": []}


# -- upstream's other newer routes ------------------------------------------------------------------

def test_max_retry_credentials_and_weighted_round_robin(mgmt):
    assert mgmt.put("/max-retry-credentials", json={"value": 2}).status_code == 200
    assert mgmt.get("/max-retry-credentials").get_json() == {"max-retry-credentials": 2}
    assert mgmt.get("/config").get_json()["max-retry-credentials"] == 2
    assert mgmt.put("/routing/strategy", json={"value": "wrr"}).status_code == 200
    assert mgmt.get("/routing/strategy").get_json() == {"strategy": "weighted-round-robin"}


def test_oauth_request_scoped_errors(mgmt, config_path):
    assert mgmt.get("/oauth-request-scoped-errors").get_json() == {"oauth-request-scoped-errors": {}}
    rules = [{"status": 429, "match": [" quota "], "action": "Stop"}]
    assert mgmt.patch("/oauth-request-scoped-errors", json={"provider": " Codex ", "rules": rules}).status_code == 200
    assert mgmt.get("/oauth-request-scoped-errors").get_json() == {
        "oauth-request-scoped-errors": {"codex": [{"status": 429, "match": ["quota"], "action": "stop"}]}}
    assert mgmt.put("/oauth-request-scoped-errors", json={"items": {"claude": rules}}).status_code == 200
    assert list(yaml.safe_load(config_path.read_text())["oauth-request-scoped-errors"]) == ["claude"]
    assert mgmt.delete("/oauth-request-scoped-errors?channel=claude").status_code == 200
    assert "oauth-request-scoped-errors" not in yaml.safe_load(config_path.read_text())
    for r, error in ((mgmt.delete("/oauth-request-scoped-errors"), "missing channel"),
                     (mgmt.delete("/oauth-request-scoped-errors?channel=x"), "channel not found"),
                     (mgmt.patch("/oauth-request-scoped-errors", json={"rules": rules}), "invalid channel"),
                     (mgmt.patch("/oauth-request-scoped-errors", json={"channel": "x", "rules": []}),
                      "channel not found")):
        assert r.get_json() == {"error": error}


def test_oauth_request_scoped_errors_keep_only_the_rules_upstream_keeps(mgmt, config_path):
    """A rule needs a positive status, a match or match-regexr, and an action."""
    body = {"claude": [{"status": 0, "match": ["x"], "action": "stop"}, {"match": ["y"]}],
            "codex": [{"status": 429, "match-regexr": [" ^q "], "action": " Continue "},
                      {"status": -1, "match": ["a"], "action": "stop"}, {"status": 400, "match": [" "], "action": "stop"},
                      {"status": 400, "match": ["z"]}, {"status": 400, "action": "stop"}]}
    assert mgmt.put("/oauth-request-scoped-errors", json=body).get_json() == {"status": "ok"}
    kept = {"codex": [{"status": 429, "match-regexr": ["^q"], "action": "continue"}]}
    assert mgmt.get("/oauth-request-scoped-errors").get_json() == {"oauth-request-scoped-errors": kept}
    assert yaml.safe_load(config_path.read_text())["oauth-request-scoped-errors"] == kept
    before = config_path.read_bytes()
    r = mgmt.patch("/oauth-request-scoped-errors", json={"channel": "claude", "rules": [{"status": 500}]})
    assert (r.status_code, r.get_json()) == (404, {"error": "channel not found"})
    assert config_path.read_bytes() == before
    # rules that are all dropped remove the channel, as no rules do
    r = mgmt.patch("/oauth-request-scoped-errors", json={"channel": "codex", "rules": [{"status": 500}]})
    assert r.get_json() == {"status": "ok"}
    assert "oauth-request-scoped-errors" not in yaml.safe_load(config_path.read_text())


def test_oauth_request_scoped_errors_store_any_action_trimmed_and_lower_cased(mgmt, config_path):
    """Upstream's sanitizer keeps any non-empty action (its proxy later skips a rule whose action
    it does not know); only an action that is not a string is a wrong body."""
    body = {"codex": [{"status": 429, "match": ["q"], "action": " Retry-Later "}]}
    assert mgmt.put("/oauth-request-scoped-errors", json=body).get_json() == {"status": "ok"}
    kept = {"codex": [{"status": 429, "match": ["q"], "action": "retry-later"}]}
    assert mgmt.get("/oauth-request-scoped-errors").get_json() == {"oauth-request-scoped-errors": kept}
    assert yaml.safe_load(config_path.read_text())["oauth-request-scoped-errors"] == kept
    r = mgmt.patch("/oauth-request-scoped-errors",
                   json={"channel": "Claude", "rules": [{"status": 500, "match": ["x"], "action": "SKIP"}]})
    assert r.get_json() == {"status": "ok"}
    assert mgmt.get("/oauth-request-scoped-errors").get_json()["oauth-request-scoped-errors"]["claude"] == \
        [{"status": 500, "match": ["x"], "action": "skip"}]
    before = config_path.read_bytes()
    for r in (mgmt.put("/oauth-request-scoped-errors", json={"codex": [{"status": 429, "match": ["q"], "action": 1}]}),
              mgmt.patch("/oauth-request-scoped-errors",
                         json={"channel": "codex", "rules": [{"status": 429, "match": ["q"], "action": ["stop"]}]})):
        assert (r.status_code, r.get_json()) == (400, {"error": "invalid body"})
    assert config_path.read_bytes() == before


def test_oauth_request_scoped_errors_keep_upstreams_four_fields_in_its_order(mgmt, config_path):
    """Upstream rebuilds each rule from status, match, match-regexr and action: other keys go."""
    body = {"codex": [{"action": "stop", "note": "mine", "match": ["q"], "status": 429, "x": {"y": 1}}]}
    assert mgmt.put("/oauth-request-scoped-errors", json=body).get_json() == {"status": "ok"}
    kept = [{"status": 429, "match": ["q"], "action": "stop"}]
    shown = mgmt.get("/oauth-request-scoped-errors").get_json()["oauth-request-scoped-errors"]["codex"]
    assert shown == kept and list(shown[0]) == ["status", "match", "action"]
    stored = yaml.safe_load(config_path.read_text())["oauth-request-scoped-errors"]["codex"]
    assert stored == kept and list(stored[0]) == ["status", "match", "action"]


def test_oauth_request_scoped_errors_loaded_rules_upstream_drops_are_not_shown(make_app):
    mgmt, _ = seeded(make_app, "oauth-request-scoped-errors:\n  claude:\n    - status: 0\n      match: [x]\n"
                               "      action: stop\n  codex:\n    - status: 500\n      match: [y]\n")
    assert mgmt.get("/oauth-request-scoped-errors").get_json() == {"oauth-request-scoped-errors": {}}
    assert mgmt.get("/config").get_json().get("oauth-request-scoped-errors", {}) == {}


def test_reset_quota(mgmt, auths):
    put(auths, "a.json", CLAUDE)
    index = auth_index("a.json")
    assert mgmt.post("/reset-quota", json={"auth_index": index}).get_json() == \
        {"status": "ok", "auth_index": index, "models": []}
    assert mgmt.post("/reset-quota", json={"auth_index": "0" * 16}).get_json() == {"error": "auth not found"}
    assert mgmt.post("/reset-quota", json={}).get_json() == {"error": "auth_index is required"}
    assert mgmt.post("/reset-quota", data="x").get_json() == {"error": "invalid request body"}


def test_usage_queue_pops_records_while_statistics_are_on(make_app):
    app = make_app(extra_yaml="usage-statistics-enabled: true\n")
    mgmt = ManagementClient(app.test_client())
    for model in ("m1", "m2", "m3"):
        record_usage(UsageRecord(model=model, api_key="k", input_tokens=1), app=app)
    first = mgmt.get("/usage-queue").get_json()
    assert [r["model"] for r in first] == ["m1"]
    assert first[0]["token_breakdown"]["input_tokens"] == 1
    assert [r["model"] for r in mgmt.get("/usage-queue?count=5").get_json()] == ["m2", "m3"]
    assert mgmt.get("/usage-queue").get_json() == []
    assert mgmt.get("/usage-queue?count=0").get_json() == {"error": "count must be a positive integer"}


@pytest.mark.parametrize("count, popped", [("", 1), ("%20", 1), ("%202%20", 2), ("+2", 2), ("1_0", None),
                                           ("\u0663", None), ("2.0", None), ("9" * 20, None),
                                           ("%E3%80%802", 2), ("%1C2", None)])
def test_usage_queue_reads_count_as_upstream_does(make_app, count, popped):
    """Trimmed as Go trims (an ideographic space goes, a separator control stays), empty
    meaning 1, then Go's Atoi: ASCII digits within int64 only."""
    app = make_app(extra_yaml="usage-statistics-enabled: true\n")
    mgmt = ManagementClient(app.test_client())
    for model in ("m1", "m2", "m3"):
        record_usage(UsageRecord(model=model, api_key="k", input_tokens=1), app=app)
    r = mgmt.get(f"/usage-queue?count={count}")
    if popped is None:
        assert r.status_code == 400 and r.get_json() == {"error": "count must be a positive integer"}
        assert len(mgmt.get("/usage-queue?count=9").get_json()) == 3  # nothing was taken
    else:
        assert [x["model"] for x in r.get_json()] == ["m1", "m2"][:popped]


def test_gemini_patch_match_is_narrowed_by_base_url(make_app):
    mgmt, _ = seeded(make_app, GEMINI_KEYS)
    r = mgmt.patch("/gemini-api-key?base-url=https://a.example.com", json={"match": "h", "value": {"prefix": "p"}})
    assert r.status_code == 200
    assert [e.get("prefix") for e in mgmt.get("/gemini-api-key").get_json()["gemini-api-key"]] == [None, "p"]
    r = mgmt.patch("/gemini-api-key?base-url=https://b.example.com", json={"match": "h", "value": {"prefix": "q"}})
    assert (r.status_code, r.get_json()) == (404, {"error": "item not found"})


def test_openapi_describes_the_new_routes(mgmt):
    paths = mgmt.get("/openapi.json").get_json()["paths"]
    for path in ("/plugins", "/plugins/{ident}/enabled", "/plugins/{ident}/config", "/plugins/{ident}",
                 "/plugin-store", "/plugin-store/{ident}/install", "/max-retry-credentials",
                 "/oauth-request-scoped-errors", "/reset-quota", "/usage-queue"):
        assert path in paths, path
    assert "delete" in paths["/auth-files"] and "requestBody" in paths["/auth-files"]["delete"]


def test_switching_a_plugin_is_a_targeted_edit(make_app):
    mgmt, path = seeded(make_app, "plugins:\n  configs:\n    codex:\n      tier: pro # my tier\n")
    assert mgmt.patch("/plugins/codex/enabled", json={"enabled": False}).status_code == 200
    text = path.read_text()
    assert "tier: pro # my tier" in text and "enabled: false" in text


def test_status_patch_may_name_the_auth_index_too(mgmt, auths):
    put(auths, "a.json", CLAUDE)
    r = mgmt.patch("/auth-files/status", json={"name": "a.json", "auth_index": "0" * 16, "disabled": True})
    assert (r.status_code, r.get_json()) == (404, {"error": "auth file not found"})
    r = mgmt.patch("/auth-files/status", json={"name": "a.json", "auth_index": auth_index("a.json"), "disabled": True})
    assert r.get_json() == {"status": "ok", "disabled": True}


def test_listing_filters_by_name_and_auth_index(mgmt, auths):
    put(auths, "a.json", CLAUDE)
    put(auths, "b.json", CLAUDE)
    assert [e["name"] for e in mgmt.get("/auth-files?name=b.json").get_json()["files"]] == ["b.json"]
    index = auth_index("a.json")
    assert [e["name"] for e in mgmt.get(f"/auth-files?auth_index={index}").get_json()["files"]] == ["a.json"]
    assert mgmt.get(f"/auth-files?auth_index={index}&name=b.json").get_json() == {"files": []}


def test_a_filtered_listing_answers_the_entries_of_the_full_one(mgmt, auths):
    for name in ("a.json", "b.json", "c.json"):
        put(auths, name, CLAUDE)
    full = {e["name"]: e for e in mgmt.get("/auth-files").get_json()["files"]}
    assert mgmt.get("/auth-files?name=b.json").get_json() == {"files": [full["b.json"]]}
    index = auth_index("c.json")
    assert mgmt.get(f"/auth-files?auth_index={index}").get_json() == {"files": [full["c.json"]]}
    assert mgmt.get("/auth-files?name=nothing.json").get_json() == {"files": []}


class AcmePlugin:
    """The acme provider: a third-party plugin with a route and a config section."""

    __name__ = "acme"  # its pluggy name, as an entry point would give it

    from cliproxy_mgmt import hookimpl as _hookimpl

    @_hookimpl
    def register_providers(self):
        from cliproxy_mgmt import Provider
        return [Provider(id="acme")]

    @_hookimpl
    def register_config_sections(self):
        from cliproxy_mgmt import ConfigSection
        return [ConfigSection(key="acme-keys", view=lambda value, data: value or [], provider="acme")]

    @_hookimpl
    def register_blueprints(self):
        from flask import Blueprint, jsonify
        bp = Blueprint("acme_routes", __name__)
        bp.add_url_rule("/acme-keys", "acme_keys", lambda: jsonify({"acme-keys": []}))
        return [bp]


def test_a_third_party_plugin_is_listed_and_can_be_switched_off(make_app):
    app = make_app(extra_yaml='acme-keys: ["a"]\n', plugins=[AcmePlugin()])
    mgmt = ManagementClient(app.test_client())
    acme = plugins(mgmt)["acme"]
    assert acme["builtin"] is False and acme["description"].startswith("The acme provider")
    assert acme["registers"]["routes"] == ["GET /acme-keys"]
    assert acme["registers"]["config_sections"] == ["acme-keys"]
    assert mgmt.get("/config").get_json()["acme-keys"] == ["a"]
    assert mgmt.patch("/plugins/acme/enabled", json={"enabled": False}).status_code == 200
    assert mgmt.get("/acme-keys").status_code == 409
    assert "acme-keys" not in mgmt.get("/config").get_json()
    assert yaml.safe_load(Path(app.extensions["cliproxy_mgmt"].store.path).read_text())["acme-keys"] == ["a"]


def test_docs_list_every_new_route_by_client():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "clients.md").read_text()
    for route in ("/plugins", "/plugin-store", "/max-retry-credentials", "/oauth-request-scoped-errors",
                  "/reset-quota", "/usage-queue", "/auth-files/fields", "/api-key-usage", "/xai-api-key"):
        assert f"`{route}" in doc or f" {route}" in doc, route
