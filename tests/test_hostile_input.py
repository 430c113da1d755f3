"""Hostile input, odd files and races against the real server: nothing lost, nothing leaked,
nothing hangs, never a 500.

One class per section, each tested over its dimension: JSON and YAML nesting depth and
alias expansion (one loader, safeload.py), integer range and NUL in paths (the config
schema), writes that cannot be applied (rolled back), anchors on edit, auth-dir entry kinds
(regular, dir, FIFO, symlinks, socket) and an auth-dir that is no folder, auth-file name
alphabets, upload encodings, usage import ranges.
"""

from __future__ import annotations

import codecs
import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cliproxy_mgmt.authfiles.names import trimmed
from cliproxy_mgmt.config.store import ConfigStore
from cliproxy_mgmt.safeload import INT64_MAX, MAX_JSON_DEPTH, MAX_YAML_DEPTH
from realserver import HANG, RealServer, call, session

DEEP = 100_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    (root / "auths").mkdir()
    srv = RealServer(root, extra=f'auth-dir: "{root / "auths"}"\n').start()
    srv.auths = root / "auths"
    srv.http = session()
    yield srv
    srv.http.close()
    srv.kill()



def config_text(srv) -> str:
    return srv.config_path.read_text()


def put_yaml(srv, text):
    return call(srv, "PUT", "/config.yaml", data=text.encode("utf-8", "surrogatepass"),
                headers={"Content-Type": "application/yaml"})


@pytest.fixture
def restore_config(server):
    """Put the server's config back as it was after the test."""
    before = config_text(server)
    yield
    assert put_yaml(server, before).status_code == 200


@pytest.fixture
def clean_auths(server):
    yield server.auths
    for entry in server.auths.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            os.rmdir(entry)
        else:
            entry.unlink()


def error_of(resp) -> str:
    assert resp.headers["Content-Type"].startswith("application/json"), resp.text
    return resp.json()["error"]


# -- JSON nesting, NaN, encodings: one loader for every body --------------------------------------

DEEP_JSON = {"array": b"[" * DEEP + b"]" * DEEP, "object": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
             "unclosed": b"[" * DEEP}
JSON_ROUTES = [("PUT", "/api-keys"), ("PATCH", "/api-keys"), ("PUT", "/debug"),
               ("PUT", "/request-retry"), ("PUT", "/openai-compatibility"),
               ("PATCH", "/openai-compatibility"), ("PATCH", "/auth-files/status"),
               ("PATCH", "/auth-files/fields"), ("POST", "/auth-files?name=deep.json"),
               ("POST", "/usage/import"), ("PUT", "/gemini-api-key"), ("PATCH", "/claude-api-key")]


@pytest.mark.parametrize("method,path", JSON_ROUTES)
@pytest.mark.parametrize("kind", sorted(DEEP_JSON))
def test_json_nested_too_deep_is_400_on_every_json_route(server, clean_auths, method, path, kind):
    before = config_text(server)
    r = call(server, method, path, data=DEEP_JSON[kind], headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert error_of(r)
    assert config_text(server) == before
    assert list(clean_auths.iterdir()) == []


def test_every_management_json_route_refuses_deep_json_without_a_500(make_app):
    """The whole route table (in-process): no route lets a deep body reach code that breaks."""
    app = make_app()
    client = app.test_client()
    headers = {"Authorization": "Bearer test-management-key", "Content-Type": "application/json"}
    seen = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v0/management") or "<" in rule.rule:
            continue
        for method in sorted(rule.methods & {"PUT", "PATCH", "POST"}):
            r = client.open(rule.rule, method=method, data=DEEP_JSON["array"], headers=headers)
            assert r.status_code < 500, (method, rule.rule, r.get_data(as_text=True))
            seen += 1
    assert seen > 40


def test_json_at_the_depth_limit_is_accepted_and_stays_writable(server, restore_config):
    value = "x"
    for _ in range(MAX_JSON_DEPTH - 2):  # under the body's list and item: the deepest body
        value = {"k": value}
    item = {"api-key": "deep-key", "headers": {"X-Deep": "1"}, "deep": value}
    r = call(server, "PUT", "/claude-api-key", json=[item])
    assert r.status_code == 200, r.text
    assert call(server, "PUT", "/debug", json={"value": True}).status_code == 200
    on_disk = yaml.safe_load(config_text(server))
    assert on_disk["claude-api-key"][0]["deep"] == value and on_disk["debug"] is True
    deeper = {"api-key": "k", "deep": {"k": value}}
    assert call(server, "PUT", "/claude-api-key", json=[deeper]).status_code == 400


def test_an_auth_file_nested_too_deep_is_listed_as_an_error(server, clean_auths):
    (clean_auths / "deep.json").write_bytes(b'{"type":"claude","x":' + b"[" * DEEP + b"]" * DEEP + b"}")
    (clean_auths / "ok.json").write_text('{"type":"claude","email":"a@example.com"}')
    r = call(server, "GET", "/auth-files")
    assert r.status_code == 200
    files = {f["name"]: f for f in r.json()["files"]}
    assert files["deep.json"]["status"] == "error"
    assert "nested deeper" in files["deep.json"]["status_message"]
    assert files["ok.json"]["status"] == "active"
    r = call(server, "PATCH", "/auth-files/status", json={"name": "deep.json", "disabled": True})
    assert r.status_code == 422 and error_of(r).startswith("failed to update auth: invalid auth file")


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 600, 3000])
def test_a_field_path_deeper_than_the_json_limit_is_refused(server, clean_auths, levels):
    content = b'{"type":"claude","email":"a@example.com"}'
    (clean_auths / "p.json").write_bytes(content)
    path = ".".join(["a"] * levels)
    r = call(server, "PATCH", "/auth-files/fields", json={"name": "p.json", path: 1})
    assert (r.status_code, error_of(r)) == (400, f"invalid field {path}")
    assert (clean_auths / "p.json").read_bytes() == content


@pytest.mark.parametrize("levels,value,status", [
    (MAX_JSON_DEPTH, 1, 200),                      # the file's object, then 99 more: 100 levels
    (MAX_JSON_DEPTH - 1, {"k": 1}, 200),
    (MAX_JSON_DEPTH - 1, {"k": [1]}, 400),         # the value takes it to 101
    (MAX_JSON_DEPTH - 1, [[]], 400),
    (2, json.loads("[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)), 400),  # the deepest body value
    (1, json.loads("[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)), 200),
])
def test_a_field_path_and_its_value_together_stay_within_the_json_limit(server, clean_auths, levels, value, status):
    """What the fields route accepts, the server can list and edit again."""
    content = b'{"type":"claude","email":"a@example.com"}'
    (clean_auths / "p.json").write_bytes(content)
    path = ".".join(["a"] * levels)
    r = call(server, "PATCH", "/auth-files/fields", json={"name": "p.json", path: value})
    assert r.status_code == status, r.text
    if status == 400:
        assert error_of(r) == f"invalid field {path}"
        assert (clean_auths / "p.json").read_bytes() == content
        return
    entry = {f["name"]: f for f in call(server, "GET", "/auth-files").json()["files"]}["p.json"]
    assert entry["status"] == "active", entry
    r = call(server, "PATCH", "/auth-files/fields", json={"name": "p.json", "note": "again"})
    assert r.status_code == 200, r.text
    saved = json.loads((clean_auths / "p.json").read_text())
    assert saved["note"] == "again"
    node = saved
    for _ in range(levels - 1):
        node = node["a"]
    assert node["a"] == value


UNREADABLE_UPLOADS = {
    "nan": b'{"type":"claude","x":NaN}', "infinity": b'{"type":"claude","x":Infinity}',
    "minus-infinity": b'{"type":"claude","x":-Infinity}', "huge-float": b'{"type":"claude","x":1e999}',
    "bom": codecs.BOM_UTF8 + b'{"type":"claude"}', "utf-16": '{"type":"claude"}'.encode("utf-16"),
    "utf-16-le": '{"type":"claude"}'.encode("utf-16-le"), "utf-32": '{"type":"claude"}'.encode("utf-32"),
    "latin-1": '{"type":"claude","n":"caf\u00e9"}'.encode("latin-1"),
    "surrogate": b'{"type":"claude","n":"\\ud800"}'}


@pytest.mark.parametrize("kind", sorted(UNREADABLE_UPLOADS))
@pytest.mark.parametrize("multipart", [False, True])
def test_uploads_go_cannot_read_are_refused_with_the_invalid_file_error(server, clean_auths, kind, multipart):
    body = UNREADABLE_UPLOADS[kind]
    if multipart:
        r = call(server, "POST", "/auth-files", files={"file": ("odd.json", body, "application/json")})
    else:
        r = call(server, "POST", "/auth-files?name=odd.json", data=body)
    assert r.status_code == 400, r.text
    assert error_of(r).startswith("invalid auth file: ")
    assert list(clean_auths.iterdir()) == []


# -- YAML nesting and aliases: PUT /config.yaml and hand edits ------------------------------------

def nested_block(depth: int) -> str:
    """`extra:` holding mappings `depth` levels deep (the root mapping is one more)."""
    lines = ["extra:"]
    for level in range(1, depth):
        lines.append("  " * level + f"k{level}:")
    lines.append("  " * depth + "leaf: 1")
    return "\n".join(lines) + "\n"


def laughs(levels: int = 7, fan_out: int = 10) -> str:
    text = "l0: &l0 [" + ", ".join(["x"] * fan_out) + "]\n"
    for n in range(1, levels + 1):
        text += f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * fan_out) + "]\n"
    return text


@pytest.mark.parametrize("extra", [
    pytest.param("extra: " + "[" * 500 + "]" * 500 + "\n", id="flow-500"),
    pytest.param("extra: " + "[" * DEEP + "]" * DEEP + "\n", id="flow-100000"),
    pytest.param(nested_block(MAX_YAML_DEPTH + 1), id="block-limit+1"),
    pytest.param(nested_block(400), id="block-400"),
    pytest.param(laughs(), id="aliases-10^7"),
    pytest.param("loop: &a [1, *a]\n", id="alias-loop")])
def test_yaml_over_a_limit_is_refused_and_changes_nothing(server, extra):
    before = config_text(server)
    r = put_yaml(server, before + extra)
    assert r.status_code == 400, r.text[:300]
    assert error_of(r) == "invalid_yaml"
    assert config_text(server) == before
    assert call(server, "PUT", "/debug", json={"value": False}).status_code == 200


def test_yaml_at_the_depth_limit_is_accepted_and_later_writes_work(server, restore_config):
    before = config_text(server)
    assert put_yaml(server, before + nested_block(MAX_YAML_DEPTH - 1)).status_code == 200
    for n in range(3):
        assert call(server, "PUT", "/request-retry", json={"value": n}).status_code == 200
    assert call(server, "GET", "/config").status_code == 200
    assert yaml.safe_load(config_text(server))["request-retry"] == 2


@pytest.mark.parametrize("extra", [
    pytest.param("extra: " + "[" * 2000 + "]" * 2000 + "\n", id="flow-2000"),
    pytest.param(nested_block(400), id="block-400"),
    pytest.param(laughs(), id="aliases-10^7")])
def test_a_hand_edit_over_a_limit_keeps_the_last_good_config(server, restore_config, extra):
    good = config_text(server)
    server.config_path.write_text(good.replace("request-retry: 3", "request-retry: 9") + extra)
    r = call(server, "GET", "/request-retry")
    assert (r.status_code, r.json()) == (200, {"request-retry": 3})
    assert call(server, "GET", "/config").status_code == 200
    # A write never overwrites the hand edit with our copy.
    r = call(server, "PUT", "/debug", json={"value": True})
    assert r.status_code != 200 and error_of(r)
    assert extra in config_text(server)
    assert "config reload failed" in server.log()


# -- Integers and paths: what goes into config.yaml fits the Go field types ---------------------------

@pytest.mark.parametrize("value", [INT64_MAX + 1, 2 ** 64, -(2 ** 63) - 1, 10 ** 30])
@pytest.mark.parametrize("route", ["/request-retry", "/max-retry-interval", "/logs-max-total-size-mb"])
def test_json_integers_beyond_int64_are_refused(server, value, route):
    before = config_text(server)
    r = call(server, "PUT", route, json={"value": value})
    assert (r.status_code, error_of(r)) == (400, "invalid body")
    assert config_text(server) == before


INTEGERS = st.one_of(st.integers(), st.integers(min_value=2 ** 62, max_value=2 ** 66),
                     st.integers(min_value=-(2 ** 66), max_value=-(2 ** 62)),
                     st.sampled_from([INT64_MAX, INT64_MAX + 1, -INT64_MAX - 1, -INT64_MAX - 2]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(INTEGERS)
def test_integer_range_property(app, mgmt, n):
    """In-process, over the integers: in the int64 range is stored, out of it is 400 and
    changes nothing, through a JSON route and through PUT /config.yaml alike."""
    store = app.extensions["cliproxy_mgmt"].store
    fits = -(2 ** 63) <= n <= INT64_MAX
    before = store.text
    r = mgmt.put("/max-retry-interval", json={"value": n})
    assert r.status_code == (200 if fits else 400)
    assert (store.data.get("max-retry-interval", 0) == n) if fits else store.text == before
    before = store.text
    r = mgmt.put("/config.yaml", data=before + f"\nstreaming:\n  bootstrap-retries: {n}\n",
                 headers={"Content-Type": "application/yaml"})
    assert r.status_code == (200 if fits else 400), r.get_data(as_text=True)
    if fits:
        assert store.data["streaming"]["bootstrap-retries"] == n
        mgmt.put("/config.yaml", data=before, headers={"Content-Type": "application/yaml"})
    else:
        assert "streaming.bootstrap-retries" in r.get_json()["message"] and store.text == before


def test_int64_limits_themselves_are_accepted(server, restore_config):
    assert call(server, "PUT", "/request-retry", json={"value": INT64_MAX}).status_code == 200
    assert call(server, "GET", "/request-retry").json() == {"request-retry": INT64_MAX}
    assert yaml.safe_load(config_text(server))["request-retry"] == INT64_MAX


@pytest.mark.parametrize("line,key", [
    ("request-retry: 9223372036854775808", "request-retry"),
    ("max-retry-interval: -9223372036854775809", "max-retry-interval"),
    ("streaming:\n  keepalive-seconds: 18446744073709551616", "streaming.keepalive-seconds"),
    ("claude-api-key:\n  - api-key: k\n    priority: 9223372036854775808", "claude-api-key"),
    ("openai-compatibility:\n  - name: n\n    base-url: https://x\n    priority: 99999999999999999999",
     "openai-compatibility")])
def test_config_integers_beyond_int64_are_400_naming_the_key(server, line, key):
    before = config_text(server)
    r = put_yaml(server, before.replace("request-retry: 3\n", "") + line + "\n")
    assert r.status_code == 400, r.text
    assert key in r.json()["message"]
    assert config_text(server) == before


def test_auth_file_priority_beyond_int64_is_refused(server, clean_auths):
    (clean_auths / "p.json").write_text('{"type":"claude"}')
    r = call(server, "PATCH", "/auth-files/fields", json={"name": "p.json", "priority": 2 ** 63})
    assert r.status_code == 400
    assert (clean_auths / "p.json").read_text() == '{"type":"claude"}'


def with_path(text: str, key: str, value: str, auths: Path) -> str:
    """`text` with the path setting `key` set to the YAML double-quoted `value`."""
    if key == "auth-dir":
        return text.replace(f'auth-dir: "{auths}"', f'auth-dir: "{value}"')
    if key == "remote-management.panel-file":
        return text.replace("remote-management:\n", f'remote-management:\n  panel-file: "{value}"\n')
    if key == "tls.cert":
        return text + f'tls:\n  cert: "{value}"\n'
    return text + f'{key}: "{value}"\n'


@pytest.mark.parametrize("key", ["auth-dir", "usage-statistics-file", "tls.cert", "remote-management.panel-file"])
@pytest.mark.parametrize("value", ["\\0bad", "/tmp/x\\0y", "\\0"])
def test_a_nul_in_a_path_is_400_and_nothing_changes(server, key, value):
    before = config_text(server)
    r = put_yaml(server, with_path(before, key, value, server.auths))
    assert r.status_code == 400, r.text
    assert "NUL" in r.json()["message"] and key.split(".")[0] in r.json()["message"]
    assert config_text(server) == before
    # every later write and read still works, and is applied once
    assert call(server, "PUT", "/request-retry", json={"value": 4}).status_code == 200
    assert call(server, "GET", "/auth-files").status_code == 200
    assert call(server, "PUT", "/request-retry", json={"value": 3}).status_code == 200


def test_a_hand_edited_nul_path_keeps_the_last_good_config(server, restore_config):
    good = config_text(server)
    server.config_path.write_text(good.replace(f'auth-dir: "{server.auths}"', 'auth-dir: "\\0bad"'))
    assert call(server, "GET", "/auth-files").status_code == 200
    assert call(server, "GET", "/config").status_code == 200


def test_a_change_that_cannot_be_applied_is_rolled_back(tmp_path):
    """File and memory as before when applying the new config fails after the write."""
    path = tmp_path / "config.yaml"
    path.write_text("# keep me\ndebug: false\n")
    store = ConfigStore(str(path))
    failing = {"on": True}

    def listener(s):
        if failing["on"] and s.data.get("debug") is True:
            raise RuntimeError("cannot apply")
    store.on_change(listener)
    for attempt in range(2):  # a client retrying the failed write changes nothing either
        with pytest.raises(RuntimeError):
            store.edit(lambda d: d.__setitem__("debug", True))
        assert path.read_text() == "# keep me\ndebug: false\n"
        assert store.data == {"debug": False}
        with pytest.raises(RuntimeError):
            store.replace_text("debug: true\n")
        assert path.read_text() == "# keep me\ndebug: false\n"
        assert store.data == {"debug": False}
    # A hand edit that cannot be applied is not put in force either (and is not overwritten).
    path.write_text("debug: true\n")
    assert store.refresh(force=True) is False
    assert store.data == {"debug": False} and store.last_error
    assert path.read_text() == "debug: true\n"
    failing["on"] = False
    path.write_text("# keep me\ndebug: false\n")
    store.refresh(force=True)
    store.edit(lambda d: d.__setitem__("debug", True))
    assert path.read_text() == "# keep me\ndebug: true\n"


# -- Anchors: a delete or replace never leaves a dangling or changed alias ---------------------------

ANCHORED = """\
openai-compatibility:
  - name: first # owns the anchor
    base-url: "https://a.example.test"
    api-key-entries: &shared
      - api-key: "shared-key"
  - name: second
    base-url: "https://b.example.test"
    api-key-entries: *shared
defaults: &d {x: 1}
uses-defaults: *d
"""


def entries(srv):
    return call(srv, "GET", "/openai-compatibility").json()["openai-compatibility"]


def saved_matches_get_config(srv):
    on_disk = yaml.safe_load(config_text(srv))
    shown = call(srv, "GET", "/config").json()
    assert shown["openai-compatibility"] == entries(srv)
    names = [e["name"] for e in on_disk.get("openai-compatibility") or []]
    assert names == [e["name"] for e in shown["openai-compatibility"]]
    return on_disk


@pytest.mark.parametrize("change", [
    ("DELETE", "/openai-compatibility?name=first", None),
    ("DELETE", "/openai-compatibility?index=0", None),
    ("PATCH", "/openai-compatibility", {"name": "first", "value": {"api-key-entries": [{"api-key": "new"}]}}),
    ("PATCH", "/openai-compatibility", {"name": "second", "value": {"api-key-entries": [{"api-key": "new"}]}}),
    ("PATCH", "/openai-compatibility", {"index": 0, "value": {"base-url": "https://c.example.test"}}),
    ("PUT", "/openai-compatibility", "second-only")])
def test_editing_an_anchored_item_keeps_the_file_loadable_and_aliases_right(server, restore_config, change):
    assert put_yaml(server, config_text(server) + ANCHORED).status_code == 200
    before = entries(server)
    method, path, body = change
    if body == "second-only":
        body = [before[1]]
    r = call(server, method, path, json=body)
    assert r.status_code == 200, r.text
    on_disk = saved_matches_get_config(server)  # the saved file parses, as GET shows it
    after = {e["name"]: e for e in entries(server)}
    patched = body.get("name") if isinstance(body, dict) else None
    if "second" in after and patched != "second":  # the alias still means what it meant
        assert after["second"]["api-key-entries"] == [{"api-key": "shared-key"}]
    if patched:
        assert after[patched]["api-key-entries"] == [{"api-key": "new"}]
        other = after["second" if patched == "first" else "first"]
        assert other["api-key-entries"] == [{"api-key": "shared-key"}]
    assert on_disk["uses-defaults"] == {"x": 1}
    assert call(server, "PUT", "/debug", json={"value": True}).status_code == 200


@pytest.mark.parametrize("method,path,body,keys", [
    ("PUT", "/api-keys", ["c"], ["c"]),
    ("DELETE", "/api-keys?index=0", None, ["b"]),
    ("PATCH", "/api-keys", {"old": "a", "new": "z"}, ["z", "b"]),
    ("PUT", "/api-keys", None, [])])
def test_a_top_level_anchor_changed_or_removed_leaves_its_aliases_as_they_were(
        server, restore_config, method, path, body, keys):
    text = config_text(server)
    start = text.index("api-keys:")
    end = text.index("\n\n", start)
    text = text[:start] + 'api-keys: &keys ["a", "b"]\nold-keys: *keys' + text[end:]
    assert put_yaml(server, text).status_code == 200
    r = call(server, method, path, data=None if method == "DELETE" else json.dumps(body))
    assert r.status_code == 200, r.text
    on_disk = yaml.safe_load(config_text(server))
    assert (on_disk.get("api-keys") or []) == keys
    assert call(server, "GET", "/api-keys").json() == {"api-keys": keys}
    assert on_disk["old-keys"] == ["a", "b"]


# -- auth-dir entry kinds: opened in one place, never blocking ---------------------------------------

def make_entry(kind: str, folder: Path, outside: Path) -> None:
    path = folder / "odd.json"
    if kind == "regular":
        path.write_text('{"type":"claude","email":"r@example.com"}')
    elif kind == "dir":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink-inside":
        (folder / "real.txt").write_text('{"type":"claude"}')
        path.symlink_to(folder / "real.txt")
    elif kind == "symlink-outside":
        outside.write_text('{"type":"claude","secret":"outside"}')
        path.symlink_to(outside)
    elif kind == "dangling-symlink":
        path.symlink_to(folder / "missing.json")
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    elif kind == "unreadable":
        path.write_text('{"type":"claude"}')
        path.chmod(0)


KINDS = ["regular", "dir", "fifo", "symlink-inside", "symlink-outside", "dangling-symlink", "socket",
         pytest.param("unreadable", marks=pytest.mark.skipif(os.geteuid() == 0, reason="root reads mode 000"))]


@pytest.mark.parametrize("kind", KINDS)
def test_auth_dir_entry_kinds_never_hang_or_500(server, clean_auths, tmp_path, kind):
    outside = tmp_path / "outside.json"
    make_entry(kind, clean_auths, outside)
    listed = {f["name"] for f in call(server, "GET", "/auth-files").json()["files"]}
    assert ("odd.json" in listed) == (kind == "regular")
    requests_ = [("GET", "/auth-files/download?name=odd.json", None),
                 ("GET", "/auth-files/models?name=odd.json", None),
                 ("PATCH", "/auth-files/status", {"name": "odd.json", "disabled": True}),
                 ("PATCH", "/auth-files/fields", {"name": "odd.json", "priority": 3}),
                 ("POST", "/auth-files?name=odd.json", {"type": "claude"}),
                 ("DELETE", "/auth-files?name=odd.json", None)]
    for method, path, body in requests_:
        r = call(server, method, path, json=body)
        assert r.status_code < 500, (method, path, r.status_code, r.text)
        assert "outside" not in r.text
        if kind == "regular":
            assert r.status_code == 200, (method, path, r.text)
        elif path.startswith("/auth-files/models"):
            assert r.json() == {"models": []}
        else:
            assert (r.status_code, error_of(r)) == (400, "invalid name"), (method, path, r.text)
    if kind == "symlink-outside":
        assert json.loads(outside.read_text())["secret"] == "outside"
    if kind != "regular":
        assert os.path.lexists(clean_auths / "odd.json")  # refused, so not removed either


def test_twelve_fifos_do_not_hang_the_server(server, clean_auths):
    for n in range(12):
        os.mkfifo(clean_auths / f"fifo-{n}.json")
    (clean_auths / "real.json").write_text('{"type":"claude"}')
    def download(n):
        with session() as s:
            return s.get(server.url(f"/auth-files/download?name=fifo-{n}.json"), timeout=HANG)

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(download, range(12)))
    assert [a.status_code for a in answers] == [400] * 12
    assert call(server, "GET", "/auth-files/download?name=real.json").status_code == 200
    assert [f["name"] for f in call(server, "GET", "/auth-files").json()["files"]] == ["real.json"]


@pytest.mark.parametrize("kind", ["regular-file", "fifo", "dangling-symlink"])
def test_an_auth_dir_that_is_not_a_folder_is_a_clear_answer(server, restore_config, tmp_path, kind):
    target = tmp_path / "not-a-dir"
    if kind == "regular-file":
        target.write_text("x")
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to(tmp_path / "missing")
    text = config_text(server).replace(f'auth-dir: "{server.auths}"', f'auth-dir: "{target}"')
    assert put_yaml(server, text).status_code == 200
    for method, path, body in [("GET", "/auth-files", None), ("GET", "/auth-files/download?name=a.json", None),
                               ("POST", "/auth-files?name=a.json", {"type": "claude"}),
                               ("DELETE", "/auth-files?name=a.json", None),
                               ("DELETE", "/auth-files?all=true", None),
                               ("PATCH", "/auth-files/status", {"name": "a.json", "disabled": True})]:
        r = call(server, method, path, json=body)
        assert r.headers["Content-Type"].startswith("application/json")
        if kind == "dangling-symlink" and method != "POST":  # no folder yet: no files
            assert r.status_code in (200, 404), (method, path, r.text)
        else:
            assert (r.status_code, error_of(r)) == (503, "auth directory unavailable"), (method, path, r.text)


# -- auth-file names: any alphabet uploads, lists, downloads and deletes ---------------------------

NAMES = ["caf\u00e9.json", "\u540d\u524d.json", "\U0001F600-emoji.json", "\u05e9\u05dc\u05d5\u05dd.json",
         'quote"d.json', "back\\slash.json", "sp ace;x=1.json", "e\u0301-combining.json",
         "percent%20.json", "\u00ff\u00fe.json"]


@pytest.mark.parametrize("name", NAMES)
def test_any_name_alphabet_round_trips(server, clean_auths, name):
    r = call(server, "POST", f"/auth-files?name={quote(name)}", json={"type": "claude", "n": name})
    if "\\" in name:
        assert r.status_code == 400  # a separator is never part of a name
        return
    assert r.status_code == 200, r.text
    assert name in {f["name"] for f in call(server, "GET", "/auth-files").json()["files"]}
    r = call(server, "GET", f"/auth-files/download?name={quote(name)}")
    assert r.status_code == 200
    assert r.json()["n"] == name
    disposition = r.headers["Content-Disposition"]
    disposition.encode("latin-1")
    if name.isascii() and '"' not in name:
        assert disposition == f'attachment; filename="{name}"'
    else:
        fallback, _, star = disposition.partition("; filename*=UTF-8''")
        assert fallback.startswith('attachment; filename="') and fallback.isascii()
        assert unquote(star) == name
    assert call(server, "DELETE", f"/auth-files?name={quote(name)}").status_code == 200


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40))
def test_name_alphabets_property(mgmt, name):
    """In-process, over any Unicode: a name is refused (400) or fully usable, never a 500.
    (White space around a name is not part of it: the name as stored is trimmed.)"""
    name = name + ".json"
    r = mgmt.post("/auth-files", query_string={"name": name}, json={"type": "claude"})
    assert r.status_code in (200, 400), r.get_data(as_text=True)
    if r.status_code == 400:
        return
    listed = {f["name"] for f in mgmt.get("/auth-files").get_json()["files"]}
    assert trimmed(name) in listed
    r = mgmt.get("/auth-files/download", query_string={"name": name})
    assert r.status_code == 200
    r.headers["Content-Disposition"].encode("latin-1")
    assert mgmt.delete("/auth-files", query_string={"name": name}).status_code == 200


def test_a_file_name_that_is_not_utf8_is_skipped(server, clean_auths):
    os.close(os.open(os.path.join(os.fsencode(clean_auths), b"bad-\xff.json"), os.O_CREAT | os.O_WRONLY, 0o600))
    (clean_auths / "good.json").write_text('{"type":"claude"}')
    r = call(server, "GET", "/auth-files")
    assert r.status_code == 200
    assert [f["name"] for f in r.json()["files"]] == ["good.json"]
    os.unlink(os.path.join(os.fsencode(clean_auths), b"bad-\xff.json"))


# -- usage import: integers stay integers, times stay in range ------------------------------------------

def export_with(*details, api="k", model="m"):
    return {"version": 1, "usage": {"apis": {api: {"models": {model: {"details": list(details)}}}}}}


def detail(total, stamp="2026-01-02T03:04:05Z", source="s"):
    return {"timestamp": stamp, "source": source, "auth_index": "", "failed": False,
            "tokens": {"input_tokens": 0, "output_tokens": 0, "reasoning_tokens": 0,
                       "cached_tokens": 0, "total_tokens": total}}


def test_usage_sums_beyond_int64_saturate_and_stay_integers(server):
    body = export_with(detail(INT64_MAX, source="a"), detail(INT64_MAX, source="b"), api="overflow-api")
    assert call(server, "POST", "/usage/import", json=body).status_code == 200
    again = export_with(detail(5, source="c"), api="overflow-api")
    assert call(server, "POST", "/usage/import", json=again).status_code == 200
    for path in ("/usage", "/usage/export"):
        r = call(server, "GET", path)
        assert r.status_code == 200
        assert "e+" not in r.text and "E+" not in r.text
        usage = r.json()["usage"]
        assert usage["total_tokens"] == INT64_MAX
        assert usage["apis"]["overflow-api"]["total_tokens"] == INT64_MAX
        assert usage["apis"]["overflow-api"]["models"]["m"]["total_tokens"] == INT64_MAX
        assert all(isinstance(v, int) and v <= INT64_MAX for v in usage["tokens_by_day"].values())


@pytest.mark.parametrize("total", [INT64_MAX + 1, -(2 ** 63) - 1, 2 ** 64])
def test_usage_token_counts_beyond_int64_are_400(server, total):
    r = call(server, "POST", "/usage/import", json=export_with(detail(total)))
    assert (r.status_code, error_of(r)) == (400, "invalid json")


def test_usage_computed_total_beyond_int64_is_400(server):
    d = detail(0)
    d["tokens"].update(input_tokens=INT64_MAX, output_tokens=INT64_MAX)
    r = call(server, "POST", "/usage/import", json=export_with(d))
    assert (r.status_code, error_of(r)) == (400, "invalid json")


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00",
                                   "0001-01-01T00:00:00+01:00", "1500-01-01T00:00:00Z",
                                   "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01T25:00:00Z",
                                   "2026-01-01T00:00:00+24:00", "not a time", ""])
def test_usage_timestamps_out_of_range_or_invalid_are_400(server, stamp):
    r = call(server, "POST", "/usage/import", json=export_with(detail(1, stamp=stamp)))
    assert (r.status_code, error_of(r)) == (400, "invalid json")
    assert call(server, "GET", "/usage").status_code == 200


def test_usage_go_zero_time_means_now(server):
    r = call(server, "POST", "/usage/import", json=export_with(detail(1, stamp="0001-01-01T00:00:00Z",
                                                                    source="zero-time"), api="zero"))
    assert r.status_code == 200 and r.json()["added"] == 1


# -- GET /config: payload rule lists ----------------------------------------------------------------------

def test_payload_rule_lists_are_empty_lists_not_null(server, restore_config):
    payload = call(server, "GET", "/config").json()["payload"]
    assert payload == {"default": [], "default-raw": [], "override": [], "override-raw": [], "filter": []}
    rule = {"models": [{"name": "gpt-*", "protocol": "openai"}], "params": {"temperature": 0.5}}
    text = config_text(server) + "payload:\n  default:\n    - models:\n        - name: gpt-*\n" \
        "          protocol: openai\n      params:\n        temperature: 0.5\n"
    assert put_yaml(server, text).status_code == 200
    payload = call(server, "GET", "/config").json()["payload"]
    assert payload["default"] == [rule] and payload["filter"] == []


# -- start-up: a config over a limit is one clear line, not a traceback ---------------------------------

@pytest.mark.parametrize("extra", [
    pytest.param("extra: " + "[" * DEEP + "]" * DEEP + "\n", id="deep"),
    pytest.param(laughs(), id="aliases"),
    pytest.param('auth-dir: "\\0bad"\n', id="nul-path"),
    pytest.param("request-retry: 9223372036854775808\n", id="int64")])
@pytest.mark.parametrize("command", ["serve", "check-config"])
def test_a_config_over_a_limit_stops_start_up_with_one_line(tmp_path, extra, command):
    path = tmp_path / "config.yaml"
    path.write_text("debug: false\n" + extra)
    args = ["serve", "--config", str(path)] if command == "serve" else ["check-config", str(path)]
    done = subprocess.run([sys.executable, "-m", "cliproxy_mgmt", *args], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
