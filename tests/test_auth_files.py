"""The auth-dir store: listing and its cache, names, uploads, PATCHes, lookup by auth_index."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cliproxy_mgmt.authfiles import auth_files, auth_index, find_by_auth_index
from cliproxy_mgmt.authfiles.names import is_auth_file_name
from cliproxy_mgmt.authfiles.store import resolve_auth_dir
from cliproxy_mgmt.testing import config_text

CLAUDE = {"type": "claude", "email": "alice@example.com", "access_token": "at"}


@pytest.fixture
def auths(app) -> Path:
    return Path(app.extensions["cliproxy_mgmt"].store.path).parent / "auths"


def put(folder: Path, name: str, data, *, raw: bytes | None = None) -> Path:
    path = folder / name
    path.write_bytes(raw if raw is not None else json.dumps(data).encode())
    return path


def listing(mgmt) -> dict:
    r = mgmt.get("/auth-files")
    assert r.status_code == 200, r.data
    return {e["name"]: e for e in r.get_json()["files"]}


# -- listing ------------------------------------------------------------------------------

def test_entry_fields(mgmt, auths):
    path = put(auths, "claude-alice@example.com.json", {**CLAUDE, "last_refresh": "2026-01-02T03:04:05Z"})
    entry = listing(mgmt)["claude-alice@example.com.json"]
    st = path.stat()
    assert entry == {
        "id": "claude-alice@example.com.json", "name": "claude-alice@example.com.json",
        "auth_index": hashlib.sha256(b"file:claude-alice@example.com.json").hexdigest()[:16],
        "type": "claude", "provider": "claude", "label": "alice@example.com", "email": "alice@example.com",
        "account_type": "oauth", "account": "alice@example.com", "status": "active", "status_message": "",
        "disabled": False, "unavailable": False, "runtime_only": False, "source": "file",
        "size": st.st_size, "path": str(path), "modtime": entry["modtime"],
        "last_refresh": entry["last_refresh"],
        "success": 0, "failed": 0, "recent_requests": entry["recent_requests"],
    }
    assert len(entry["recent_requests"]) == 20
    assert all(b["success"] == b["failed"] == 0 for b in entry["recent_requests"])
    assert datetime.fromisoformat(entry["modtime"].replace("Z", "+00:00")).timestamp() == \
        pytest.approx(st.st_mtime, abs=1e-6)
    assert datetime.fromisoformat(entry["last_refresh"].replace("Z", "+00:00")) == \
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_only_plain_json_files_are_listed_sorted_without_case(mgmt, auths):
    put(auths, "b.json", {"type": "codex"})
    put(auths, "A.json", {"type": "qwen"})
    put(auths, "C.json", {"type": "iflow"})  # (by bytes, `C` would come before `b`)
    put(auths, ".hidden.json", {"type": "claude"})
    put(auths, "notes.txt", {"type": "claude"})
    (auths / "sub").mkdir()
    put(auths / "sub", "nested.json", {"type": "claude"})
    (auths / "link.json").symlink_to(auths / "b.json")
    assert list(listing(mgmt)) == ["A.json", "b.json", "C.json"]


def test_unusable_files_are_listed_as_errors(mgmt, auths):
    put(auths, "broken.json", None, raw=b"{nope")
    put(auths, "untyped.json", {"email": "x@example.com"})
    entries = listing(mgmt)
    assert (entries["broken.json"]["status"], entries["broken.json"]["type"]) == ("error", "unknown")
    assert entries["broken.json"]["status_message"].startswith("invalid auth file")
    assert (entries["untyped.json"]["type"], entries["untyped.json"]["status"]) == ("unknown", "active")


@pytest.mark.parametrize("value,shown", [
    (1e300, None), (10**30, None), (253402300800, None), ("0001-01-01 00:00:00", None),
    ("0001-01-01T00:00:00+08:00", "0000-12-31T16:00:00Z"),
    ("9999-12-31T23:59:59.999999+00:00", "9999-12-31T23:59:59.999999Z"),
    ("2026-01-15T07:08:24.123457+08:00", "2026-01-14T23:08:24.123457Z"),
])
def test_a_last_refresh_out_of_range_is_left_out_not_an_error(mgmt, auths, value, shown, zone):
    zone("UTC")
    put(auths, "a.json", {**CLAUDE, "last_refresh": value})
    put(auths, "b.json", CLAUDE)
    entries = listing(mgmt)
    assert entries["a.json"].get("last_refresh") == shown
    assert entries["a.json"]["status"] == entries["b.json"]["status"] == "active"


def test_a_file_time_beyond_the_platforms_range_is_listed_with_the_zero_time():
    """tmpfs keeps 64-bit mtimes that localtime() refuses: that entry shows Go's zero time,
    and the listing still answers (it used to fail whole)."""
    from cliproxy_mgmt.authfiles.listing import ListingCache
    from cliproxy_mgmt.authfiles.store import AuthDir

    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm (tmpfs) here")
    folder = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        for name in ("far.json", "near.json"):
            (folder / name).write_text(json.dumps(CLAUDE))
        try:
            os.utime(folder / "far.json", ns=(0, 10**17 * 10**9))
        except (OSError, OverflowError, ValueError):
            pytest.skip("this file system does not keep such a time")
        files = json.loads(bytes(ListingCache(watch=False).body(AuthDir(str(folder)), {})))["files"]
        shown = {entry["name"]: entry["modtime"] for entry in files}
        assert shown["far.json"] == "0001-01-01T00:00:00Z"
        assert shown["near.json"].startswith(str(datetime.now().year))
    finally:
        shutil.rmtree(folder)


def test_rewritten_files_keep_their_owner(mgmt, auths, app):
    """A server run as root rewrites config.yaml and token files of the proxy's user: they stay
    that user's (a 0600 token given to root is lost to the proxy)."""
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    nobody = 65534
    config = Path(app.extensions["cliproxy_mgmt"].store.path)
    token = put(auths, "claude-o.json", CLAUDE)
    for path in (config, token):
        os.chown(path, nobody, nobody)
        path.chmod(0o600)
    assert mgmt.put("/debug", json={"value": True}).status_code == 200
    assert mgmt.patch("/auth-files/status", json={"name": "claude-o.json", "disabled": True}).status_code == 200
    assert "debug: true" in config.read_text() and json.loads(token.read_text())["disabled"] is True
    for path in (config, token):
        st = path.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (nobody, nobody, 0o600), path.name


def test_a_warm_listing_reads_no_unchanged_file(mgmt, auths, app):
    path = put(auths, "claude-a.json", {**CLAUDE, "email": "aaa@example.com"})
    assert listing(mgmt)["claude-a.json"]["email"] == "aaa@example.com"
    st = path.stat()
    # Same size, same inode, mtime put back: only a re-read could notice the new email.
    with open(path, "r+b") as f:
        f.write(path.read_bytes().replace(b"aaa@", b"bbb@"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert listing(mgmt)["claude-a.json"]["email"] == "aaa@example.com"

    files = auth_files(app.extensions["cliproxy_mgmt"])
    folder = files.folder()
    assert files.listing.body(folder, files.types) is files.listing.body(folder, files.types)

    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert listing(mgmt)["claude-a.json"]["email"] == "bbb@example.com"
    path.unlink()
    assert listing(mgmt) == {}


def test_unset_auth_dir(make_app, mgmt_factory):
    text = config_text("x").replace('auth-dir: "x"\n', "")
    mgmt = mgmt_factory(make_app(text))
    assert mgmt.get("/auth-files").get_json() == {"files": []}
    r = mgmt.post("/auth-files", query_string={"name": "a.json"}, data=b"{}")
    assert (r.status_code, r.get_json()) == (503, {"error": "auth directory not configured"})


def test_auth_dir_is_relative_to_the_config_file_and_expands_home(tmp_path, monkeypatch):
    class Config:
        path = str(tmp_path / "conf" / "config.yaml")

        def __init__(self, value):
            self.value = value

        def get(self, key, default=None):
            return self.value

    monkeypatch.chdir("/")
    assert resolve_auth_dir(Config("tokens")) == str(tmp_path / "conf" / "tokens")
    assert resolve_auth_dir(Config("../tokens/")) == str(tmp_path / "tokens")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_auth_dir(Config("~/.cli-proxy-api")) == str(tmp_path / "home" / ".cli-proxy-api")
    assert resolve_auth_dir(Config("/abs/dir")) == "/abs/dir"
    assert resolve_auth_dir(Config("")) is None


# -- names, uploads and limits --------------------------------------------------------------

@pytest.mark.parametrize("name,ok", [
    ("claude-user+tag@example.com.json", True), ("Gemini-a b.JSON", True), ("x.json", True),
    ("", False), (".x.json", False), ("a..b.json", False), ("a/b.json", False), ("a\\b.json", False),
    ("a\x00.json", False), ("a\n.json", False), ("x.txt", False), ("x" * 251 + ".json", False),
    ("x" * 250 + ".json", True), ("é" * 125 + ".json", True), ("é" * 126 + ".json", False),
    ("a\udcff.json", False), ("a.Json", True), ("a\x7f.json", False), ("..json", False),
])
def test_auth_file_names(name, ok):
    assert is_auth_file_name(name) is ok


def test_upload_limits(make_app, mgmt_factory):
    app = make_app(extra_yaml="")
    store = app.extensions["cliproxy_mgmt"].store
    store.edit(lambda d: d["remote-management"].__setitem__("max-upload-bytes", 64))
    mgmt = mgmt_factory(app)
    big = json.dumps({"type": "claude", "pad": "x" * 100}).encode()
    r = mgmt.post("/auth-files", query_string={"name": "big.json"}, data=big)
    assert (r.status_code, r.get_json()) == (413, {"error": "request body too large"})
    r = mgmt.post("/auth-files", data={"file": (io.BytesIO(big), "big.json")},
                  content_type="multipart/form-data")
    assert r.status_code == 413
    small = b'{"type":"claude"}'
    assert mgmt.post("/auth-files", query_string={"name": "small.json"}, data=small).status_code == 200
    assert not (Path(store.path).parent / "auths" / "big.json").exists()


def test_upload_refuses_content_that_is_not_an_object(mgmt, auths):
    r = mgmt.post("/auth-files", query_string={"name": "a.json"}, data=b"[1]")
    assert r.status_code == 400 and r.get_json()["error"].startswith("invalid auth file")
    assert not (auths / "a.json").exists()


def test_written_files_are_private(mgmt, auths):
    assert mgmt.post("/auth-files", query_string={"name": "p.json"}, data=b'{"type":"x"}').status_code == 200
    assert (auths / "p.json").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in auths.iterdir()] == ["p.json"]  # no temp file left behind


SPACES = ["%20", "%09", "%E3%80%80", "%C2%A0"]  # space, tab, ideographic space, no-break space


@pytest.mark.parametrize("space", SPACES)
def test_names_in_the_query_are_trimmed(mgmt, auths, space):
    """Upstream trims the name of a raw upload, a download and a delete (strings.TrimSpace)."""
    r = mgmt.post(f"/auth-files?name={space}t.json{space}", data=b'{"type":"claude"}')
    assert (r.status_code, r.get_json()) == (200, {"status": "ok"})
    assert [p.name for p in auths.iterdir()] == ["t.json"]
    for query in (f"{space}t.json", f"t.json{space}"):
        r = mgmt.get(f"/auth-files/download?name={query}")
        assert (r.status_code, r.data) == (200, b'{"type":"claude"}')
        assert r.headers["Content-Disposition"] == 'attachment; filename="t.json"'
    r = mgmt.delete(f"/auth-files?name={space}t.json")
    assert (r.status_code, r.get_json()) == (200, {"status": "ok"})
    assert list(auths.iterdir()) == []


def test_a_name_is_trimmed_only_of_white_space(mgmt, auths):
    """Go's TrimSpace leaves the separator controls (\\x1c-\\x1f) that Python's strip() takes: they
    stay in the name, which is then refused."""
    r = mgmt.post("/auth-files?name=%1Ct.json", data=b'{"type":"claude"}')
    assert (r.status_code, r.get_json()) == (400, {"error": "invalid name"})
    r = mgmt.post("/auth-files?name=t.json%1F", data=b'{"type":"claude"}')
    assert (r.status_code, r.get_json()) == (400, {"error": "invalid name"})
    assert list(auths.iterdir()) == []


def test_a_blank_query_name_leaves_the_body_to_name_the_files(mgmt, auths):
    put(auths, "a.json", {})
    put(auths, "b.json", {})
    r = mgmt.delete("/auth-files?name=%20", json={"names": ["a.json"]})
    assert (r.status_code, r.get_json()) == (200, {"status": "ok"})
    assert [p.name for p in auths.iterdir()] == ["b.json"]
    r = mgmt.delete("/auth-files?name=%20")
    assert (r.status_code, r.get_json()) == (400, {"error": "invalid name"})
    assert [p.name for p in auths.iterdir()] == ["b.json"]


def test_multipart_file_names_are_trimmed(mgmt, auths):
    """Upstream stores `filepath.Base(strings.TrimSpace(filename))`; a failure shows the name
    as sent."""
    r = mgmt.post("/auth-files", data={"file": (io.BytesIO(b'{"type":"claude"}'), " e.json ")},
                  content_type="multipart/form-data")
    assert (r.status_code, r.get_json()) == (200, {"status": "ok"})
    assert [p.name for p in auths.iterdir()] == ["e.json"]
    r = mgmt.post("/auth-files", data={"file": [(io.BytesIO(b'{"type":"codex"}'), "\tf.json "),
                                                (io.BytesIO(b"{}"), " g.txt ")]},
                  content_type="multipart/form-data")
    assert (r.status_code, r.get_json()) == (207, {"status": "partial", "uploaded": 1, "files": ["f.json"],
                                                   "failed": [{"name": " g.txt ", "error": "file must be .json"}]})
    assert sorted(p.name for p in auths.iterdir()) == ["e.json", "f.json"]


# -- PATCH status and fields ------------------------------------------------------------------

def test_patch_keeps_the_file_layout_and_other_fields(mgmt, auths):
    indented = put(auths, "vertex-p.json", None, raw=json.dumps({"type": "vertex", "z": 1, "a": [1]}, indent=2).encode())
    compact = put(auths, "claude-c.json", None, raw=b'{"type":"claude","b":2}')
    for name in ("vertex-p.json", "claude-c.json"):
        r = mgmt.patch("/auth-files/status", json={"name": name, "disabled": True})
        assert r.get_json() == {"status": "ok", "disabled": True}
    assert indented.read_text() == '{\n  "type": "vertex",\n  "z": 1,\n  "a": [\n    1\n  ],\n  "disabled": true\n}\n'
    assert compact.read_text() == '{"type":"claude","b":2,"disabled":true}\n'
    entry = listing(mgmt)["claude-c.json"]
    assert (entry["disabled"], entry["status"]) == (True, "disabled")


def test_a_patch_that_changes_nothing_writes_nothing(mgmt, auths):
    path = put(auths, "claude-c.json", {**CLAUDE, "priority": 4})
    before = path.stat()
    assert mgmt.patch("/auth-files/fields", json={"name": "claude-c.json", "priority": 4}).status_code == 200
    assert path.stat().st_ino == before.st_ino and path.stat().st_mtime_ns == before.st_mtime_ns


def test_patch_fields_sets_and_clears(mgmt, auths):
    path = put(auths, "claude-c.json", CLAUDE)
    body = {"name": " claude-c.json ", "prefix": " team ", "proxy_url": "http://p:1", "priority": 7}
    assert mgmt.patch("/auth-files/fields", json=body).get_json() == {"status": "ok"}
    assert json.loads(path.read_text()) == {**CLAUDE, "prefix": " team ", "proxy_url": "http://p:1", "priority": 7}
    mgmt.patch("/auth-files/fields", json={"name": "claude-c.json", "prefix": "", "proxy_url": "", "priority": 0})
    assert json.loads(path.read_text()) == CLAUDE


def test_patch_refuses_a_symlink(mgmt, auths, tmp_path):
    target = put(tmp_path, "outside.json", CLAUDE)
    (auths / "link.json").symlink_to(target)
    r = mgmt.patch("/auth-files/status", json={"name": "link.json", "disabled": True})
    assert (r.status_code, r.get_json()) == (400, {"error": "invalid name"})
    assert json.loads(target.read_text()) == CLAUDE


def test_delete_all_removes_only_auth_files(mgmt, auths, tmp_path):
    put(auths, "a.json", {})
    put(auths, "b.json", {})
    put(auths, "keep.txt", {})
    target = put(tmp_path, "outside.json", {})
    (auths / "link.json").symlink_to(target)
    assert mgmt.delete("/auth-files", query_string={"all": "true"}).get_json() == {"status": "ok", "deleted": 2}
    assert sorted(p.name for p in auths.iterdir()) == ["keep.txt", "link.json"]
    assert target.exists()


@pytest.mark.parametrize("value", ["TRUE", "True", " true", "true ", " 1", "*\t", "yes"])
def test_delete_all_takes_only_the_exact_values(mgmt, auths, value):
    """Upstream compares `all` exactly: any other spelling is no delete-all, so with no names
    the request is 400 `invalid name` and nothing is removed."""
    put(auths, "a.json", {})
    put(auths, "b.json", {})
    r = mgmt.delete("/auth-files", query_string={"all": value})
    assert (r.status_code, r.get_json()) == (400, {"error": "invalid name"})
    assert sorted(p.name for p in auths.iterdir()) == ["a.json", "b.json"]


def test_delete_with_an_inexact_all_deletes_only_the_named_file(mgmt, auths):
    put(auths, "a.json", {})
    put(auths, "b.json", {})
    r = mgmt.delete("/auth-files", query_string={"all": "TRUE", "name": "a.json"})
    assert (r.status_code, r.get_json()) == (200, {"status": "ok"})
    assert sorted(p.name for p in auths.iterdir()) == ["b.json"]


# -- lookup by auth_index (for api-call) -------------------------------------------------------

def test_find_by_auth_index(app, mgmt, auths):
    put(auths, "codex-x.json", {"type": "codex", "access_token": "tok"})
    put(auths, "broken.json", None, raw=b"[]")
    index = listing(mgmt)["codex-x.json"]["auth_index"]
    state = app.extensions["cliproxy_mgmt"]
    assert find_by_auth_index(state, index) == ("codex-x.json", {"type": "codex", "access_token": "tok"})
    assert find_by_auth_index(state.store, f" {index} ") == ("codex-x.json", {"type": "codex", "access_token": "tok"})
    assert find_by_auth_index(None, index)[0] == "codex-x.json"  # the current app
    assert find_by_auth_index(state, auth_index("broken.json")) is None
    assert find_by_auth_index(state, "0000000000000000") is None
    assert find_by_auth_index(state, "") is None


@pytest.fixture
def mgmt_factory():
    from cliproxy_mgmt.testing import ManagementClient

    return lambda app: ManagementClient(app.test_client())


# -- POST /vertex/import ------------------------------------------------------------------------

def service_account(key_pem: str, project="my-proj") -> bytes:
    return json.dumps({"type": "service_account", "project_id": project, "private_key": key_pem,
                       "client_email": "sa@my-proj.iam.gserviceaccount.com"}).encode()


def pem(key, fmt) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def test_vertex_import_repairs_a_mangled_key(mgmt, auths):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pkcs8 = pem(key, serialization.PrivateFormat.PKCS8)
    header, *body, footer = pkcs8.strip().splitlines()
    mangled = "\x1b[32m" + header + "\r\n" + " ".join(body) + "\r\n" + footer + "\x1b[0m\r\n"
    r = mgmt.post("/vertex/import", data={"file": (io.BytesIO(service_account(mangled)), "sa.json"),
                                          "location": "europe-west1"}, content_type="multipart/form-data")
    assert r.status_code == 200, r.data
    assert r.get_json() == {"status": "ok", "auth-file": str(auths / "vertex-my-proj.json"), "project_id": "my-proj",
                            "email": "sa@my-proj.iam.gserviceaccount.com", "location": "europe-west1"}
    saved = json.loads((auths / "vertex-my-proj.json").read_text())
    assert list(saved) == ["service_account", "project_id", "email", "location", "type"]
    assert saved["service_account"]["private_key"] == pem(key, serialization.PrivateFormat.TraditionalOpenSSL)
    assert (auths / "vertex-my-proj.json").read_text().startswith('{\n  "service_account": {\n')


def test_vertex_import_refuses_a_key_that_is_not_rsa(mgmt, auths):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8)
    r = mgmt.post("/vertex/import", data={"file": (io.BytesIO(service_account(key)), "sa.json")},
                  content_type="multipart/form-data")
    assert (r.status_code, r.get_json()) == (400, {"error": "invalid service account",
                                                   "message": "private_key is not an RSA key"})
    assert list(auths.iterdir()) == []


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    return pem(rsa.generate_private_key(public_exponent=65537, key_size=1024), serialization.PrivateFormat.PKCS8)


def vertex_import(mgmt, account: bytes):
    return mgmt.post("/vertex/import", data={"file": (io.BytesIO(account), "sa.json")},
                     content_type="multipart/form-data")


@pytest.mark.parametrize("project,name", [
    (" team/proj:x y\u3000", "vertex-team_proj_x-y.json"),   # upstream's sanitising, after its trim
    ("a.b", "vertex-a.b.json"),
    ("p" * 243, "vertex-" + "p" * 243 + ".json"),             # 255 bytes, the longest name
])
def test_vertex_import_names_the_file_as_upstream_does(mgmt, auths, rsa_pem, project, name):
    r = vertex_import(mgmt, service_account(rsa_pem, project))
    assert r.status_code == 200, r.data
    assert r.get_json()["auth-file"] == str(auths / name)
    assert r.get_json()["project_id"] == project.strip()
    assert [p.name for p in auths.iterdir()] == [name]


@pytest.mark.parametrize("project", ["a..b", "..", "p\x01q", "p\x7f", "p" * 244, "\u00e9" * 122])
def test_vertex_import_of_a_project_id_that_cannot_name_a_file_is_400(mgmt, auths, rsa_pem, project):
    """Upstream writes such a name (or fails with a 500 when it is too long); our names refuse
    `..`, control characters and more than 255 bytes: 400, and nothing is written."""
    r = vertex_import(mgmt, service_account(rsa_pem, project))
    assert r.status_code == 400, r.data
    assert r.get_json()["error"] == "invalid service account"
    assert r.get_json()["message"].startswith("project_id cannot name an auth file: vertex-")
    assert list(auths.iterdir()) == []


def test_vertex_import_over_a_symlink_is_refused_not_a_500(mgmt, auths, rsa_pem, tmp_path):
    target = put(tmp_path, "outside.json", {})
    (auths / "vertex-my-proj.json").symlink_to(target)
    r = vertex_import(mgmt, service_account(rsa_pem))
    assert (r.status_code, r.get_json()) == (400, {"error": "invalid name"})
    assert json.loads(target.read_text()) == {}


@pytest.mark.parametrize("watch", [True, False], ids=["inotify", "stat-only"])
def test_the_listing_cache_sees_every_kind_of_change(tmp_path, watch):
    from cliproxy_mgmt.authfiles.listing import ListingCache
    from cliproxy_mgmt.authfiles.store import AuthDir

    folder, cache = AuthDir(str(tmp_path / "auths")), ListingCache(watch=watch)

    def shown():
        return {e["name"]: e.get("email") for e in json.loads(bytes(cache.body(folder, {})))["files"]}

    assert shown() == {}  # the folder does not exist yet
    (tmp_path / "auths").mkdir()
    put(tmp_path / "auths", "a.json", {"email": "a@x"})
    assert shown() == {"a.json": "a@x"}
    os.replace(tmp_path / "auths" / "a.json", tmp_path / "auths" / "b.json")
    assert shown() == {"b.json": "a@x"}
    with open(tmp_path / "auths" / "b.json", "w") as f:  # in place, as Go's os.WriteFile does
        f.write('{"email": "changed@x"}')
    put(tmp_path / "auths", "c.json", {"email": "c@x"})
    assert shown() == {"b.json": "changed@x", "c.json": "c@x"}
    (tmp_path / "auths" / "b.json").unlink()
    assert shown() == {"c.json": "c@x"}


# Each key the listing shows from a file (edited_fields), alone in a file: (value, shown as).
EDITED = {
    "prefix": ("team", ("prefix", "team")), "proxy_url": ("http://p:1", ("proxy_url", "http://p:1")),
    "disable_cooling": (True, ("disable_cooling", True)), "disable-cooling": (True, ("disable_cooling", True)),
    "using_api": (False, ("using_api", False)), "using-api": (True, ("using_api", True)),
    "excluded_models": (["m"], ("excluded_models", ["m"])), "excluded-models": (["m"], ("excluded_models", ["m"])),
    "headers": ({"X": "1"}, ("headers", {"X": "1"})), "priority": (5, ("priority", 5)),
    "weight": (7, ("weight", 7)), "request_retry": (2, ("request_retry", 2)), "note": (" hi ", ("note", "hi")),
    "websockets": ("TRUE", ("websockets", True)), "project_id": ("p-1", ("project_id", "p-1")),
}


@pytest.mark.parametrize("key", sorted(EDITED))
def test_each_edited_field_alone_is_shown(mgmt, auths, key):
    from cliproxy_mgmt.authfiles.listing import _EDITED_KEYS

    assert set(EDITED) == _EDITED_KEYS  # every key the shortcut skips for is covered here
    value, (shown, expected) = EDITED[key]
    put(auths, "a.json", {key: value})
    assert listing(mgmt)["a.json"][shown] == expected


def test_a_failed_full_pass_is_made_again_in_full(tmp_path, monkeypatch):
    """A scan that fails part way (an I/O error on the folder) has used up the watch's news:
    the next listing still looks at every file, so no change made meanwhile is missed."""
    from cliproxy_mgmt.authfiles import listing
    from cliproxy_mgmt.authfiles.store import AuthDir

    (tmp_path / "auths").mkdir()
    folder, cache = AuthDir(str(tmp_path / "auths")), listing.ListingCache()
    for name in ("a.json", "b.json"):
        put(tmp_path / "auths", name, {"email": f"{name}@x"})
    json.loads(bytes(cache.body(folder, {})))
    put(tmp_path / "auths", "b.json", {"email": "changed@x"})
    real_scan = AuthDir.scan

    def failing_scan(self, **kw):
        yield next(real_scan(self, **kw))
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(listing, "FULL_CHECK_INTERVAL", 0.0)  # this listing is a full pass
    monkeypatch.setattr(AuthDir, "scan", failing_scan)
    with pytest.raises(OSError):
        cache.body(folder, {})
    monkeypatch.setattr(listing, "FULL_CHECK_INTERVAL", 3600.0)
    monkeypatch.setattr(AuthDir, "scan", real_scan)
    shown = {e["name"]: e["email"] for e in json.loads(bytes(cache.body(folder, {})))["files"]}
    assert shown == {"a.json": "a.json@x", "b.json": "changed@x"}


@pytest.mark.parametrize("value", [5, ["a@x"], {"a": 1}, None, True])
def test_an_email_hook_that_returns_no_string_leaves_the_entry_without_one(tmp_path, value):
    from cliproxy_mgmt.authfiles.listing import ListingCache
    from cliproxy_mgmt.authfiles.store import AuthDir
    from cliproxy_mgmt.records import AuthFileType

    (tmp_path / "auths").mkdir()
    put(tmp_path / "auths", "odd.json", {"type": "odd", "email": value})
    types = {"odd": AuthFileType(type="odd", provider="odd", email=lambda data: data.get("email"))}
    entry = json.loads(bytes(ListingCache().body(AuthDir(str(tmp_path / "auths")), types)))["files"][0]
    assert (entry["label"], entry["status"], "email" in entry) == ("odd", "active", False)


def test_models_of_an_auth_file_come_from_its_channel(mgmt, auths):
    put(auths, "gemini-a@x-p.json", {"type": "gemini", "email": "a@x", "project_id": "p"})
    put(auths, "mystery.json", {"type": "mystery"})
    models = mgmt.get("/auth-files/models", query_string={"name": "gemini-a@x-p.json"}).get_json()["models"]
    catalogue = mgmt.get("/model-definitions/gemini-cli").get_json()["models"]
    assert [m["id"] for m in models] == [m["id"] for m in catalogue] and models
    assert set(models[0]) <= {"id", "display_name", "type", "owned_by"}
    assert mgmt.get("/auth-files/models", query_string={"name": "mystery.json"}).get_json() == {"models": []}
    assert mgmt.get("/auth-files/models", query_string={"name": "../x.json"}).get_json() == {"models": []}


def test_deleted_and_rewritten_files_leave_the_listing_at_once(mgmt, auths):
    put(auths, "a.json", {"email": "a@x"})
    put(auths, "b.json", {"email": "b@x"})
    assert set(listing(mgmt)) == {"a.json", "b.json"}
    assert mgmt.delete("/auth-files", query_string={"name": "a.json"}).status_code == 200
    assert set(listing(mgmt)) == {"b.json"}
    assert mgmt.post("/auth-files", query_string={"name": "b.json"}, data=b'{"email": "c@x"}').status_code == 200
    assert listing(mgmt)["b.json"]["email"] == "c@x"



@pytest.mark.parametrize("name", ["\x1ct.json", "t.json\x1f"])
def test_edits_by_name_keep_separator_controls_in_the_name(mgmt, auths, name):
    """The PATCH routes and the listing's filter trim a name as upstream does (TrimSpace): a
    separator control stays in it, so it names no file, and t.json is left alone."""
    before = put(auths, "t.json", CLAUDE).read_bytes()
    r = mgmt.patch("/auth-files/status", json={"name": name, "disabled": True})
    assert (r.status_code, r.get_json()) == (400, {"error": "invalid name"})
    r = mgmt.patch("/auth-files/fields", json={"name": name, "note": "x"})
    assert (r.status_code, r.get_json()) == (400, {"error": "invalid name"})
    assert (auths / "t.json").read_bytes() == before
    assert mgmt.get("/auth-files", query_string={"name": name}).get_json() == {"files": []}
    assert mgmt.get("/auth-files/models", query_string={"name": name}).get_json() == {"models": []}


@pytest.mark.parametrize("name", ["\u3000t.json\u3000", " t.json\t", "\xa0t.json"])
def test_edits_by_name_trim_go_white_space(mgmt, auths, name):
    put(auths, "t.json", CLAUDE)
    r = mgmt.patch("/auth-files/status", json={"name": name, "disabled": True})
    assert (r.status_code, r.get_json()) == (200, {"status": "ok", "disabled": True})
    r = mgmt.patch("/auth-files/fields", json={"name": name, "note": "x"})
    assert (r.status_code, r.get_json()) == (200, {"status": "ok"})
    assert json.loads((auths / "t.json").read_bytes()) == {**CLAUDE, "disabled": True, "note": "x"}
    [entry] = mgmt.get("/auth-files", query_string={"name": name}).get_json()["files"]
    assert entry["name"] == "t.json"
    assert mgmt.get("/auth-files/models", query_string={"name": name}).get_json()["models"]
