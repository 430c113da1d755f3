"""What the server logs: access lines, audit lines, and never a key (issue 10 item 9, issue 11 item 8).

The real-server test runs `cliproxy-mgmt serve` with `logging-to-file: true` on a config
holding client keys, a provider key and a proxy password, provokes every way a key could
reach the log (a `?key=` query, a key in a path, a broken hand edit whose YAML error
snippet shows a key) and checks that neither main.log, nor `GET /logs`, nor the console
contains any of them, while the access and audit lines are there.
"""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import quote

import pytest

from cliproxy_mgmt.logs.access import safe_query
from cliproxy_mgmt.logs.redact import MASK, RedactingFormatter, SecretRegistry, config_secrets, redact
from cliproxy_mgmt.testing import MGMT_PREFIX
from realserver import SEED_KEYS, RealServer, session

GEMINI_KEY = "AIzaSy-gemini-secret-0001"
PROXY_PASSWORD = "proxy-pass-0002"
HEADER_TOKEN = "header-token-0003"
SECRETS = (*SEED_KEYS, GEMINI_KEY, PROXY_PASSWORD, HEADER_TOKEN)

EXTRA = f"""
logging-to-file: true
proxy-url: "socks5://proxyuser:{PROXY_PASSWORD}@127.0.0.1:1080"
gemini-api-key:
  - api-key: "{GEMINI_KEY}"
    base-url: "https://generativelanguage.example"
    headers:
      X-Custom-Auth-Token: "{HEADER_TOKEN}"
    models:
      - name: "gemini-2.5-pro"
        alias: "pro"
"""


# -- the pieces ---------------------------------------------------------------------------------

def test_config_secrets_finds_keys_not_ordinary_values():
    data = {"api-keys": ["client-1-abc", "client-2-abc"], "remote-management": {"secret-key": "$2b$10$hash"},
            "proxy-url": "http://u:p4ssw0rd@proxy:3128",
            "gemini-api-key": [{"api-key": "g-key-1", "base-url": "https://x.example",
                                "headers": {"Authorization": "Bearer tok-1"},
                                "models": [{"name": "gemini-2.5-pro", "alias": "pro"}]}],
            "openai-compatibility": [{"name": "openrouter", "api-key-entries": [{"api-key": "or-key-1"}]}],
            "ampcode": {"upstream-api-keys": [{"upstream-api-key": "amp-up-1", "api-keys": ["amp-cl-1"]}]},
            "debug": True, "request-retry": 3}
    assert config_secrets(data) == {"client-1-abc", "client-2-abc", "$2b$10$hash", "p4ssw0rd", "g-key-1",
                                    "Bearer tok-1", "or-key-1", "amp-up-1", "amp-cl-1"}


@pytest.mark.parametrize("text, hidden", [
    ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
    ("GET /x?key=k123&other=1 HTTP/1.1", "k123"),
    ("callback?state=st-1&code=c0de-1", "c0de-1"),
    ("proxy http://user:hunter22@proxy:8080 failed", "hunter22"),
    ("x-management-key: mk-77", "mk-77"),
])
def test_credential_shapes_are_masked_whatever_their_value(text, hidden):
    assert hidden not in redact(text) and MASK in redact(text)


def test_registry_masks_known_secrets_and_forgets_dead_owners():
    registry = SecretRegistry()

    class Owner:
        pass

    owner = Owner()
    registry.remember(owner, {"short", "a-longer-secret", "ab"})
    assert registry.redact("x a-longer-secret y short ab") == f"x {MASK} y {MASK} ab"
    del owner
    assert registry.redact("a-longer-secret") == "a-longer-secret"


def test_registry_masks_secrets_added_by_later_writes_whole():
    registry = SecretRegistry()

    class Owner:
        pass

    owner = Owner()
    registry.remember(owner, {f"client-key-{i:03d}" for i in range(50)})
    registry.remember(owner, {"abcd"})  # later writes: patterns of their own
    registry.remember(owner, {"abcd-efgh"})
    assert registry.redact("a abcd-efgh b abcd c client-key-007 d client-key-0077") == \
        f"a {MASK} b {MASK} c {MASK} d {MASK}7"


def test_secrets_added_by_a_write_are_masked_wherever_they_land(make_app):
    """Only what a write changed is searched for secrets: a key inserted in the middle of a
    long list, one changed inside a list of objects, and one in a new list are all found."""
    keys = [f"client-key-{i:04d}" for i in range(300)]
    app = make_app(extra_yaml="gemini-api-key:\n" + "".join(
        f'  - api-key: "AIza-old-{i:03d}"\n' for i in range(50)))
    store = app.extensions["cliproxy_mgmt"].store
    store.edit(lambda d: d.__setitem__("api-keys", keys))
    store.edit(lambda d: d["api-keys"].insert(150, "inserted-key-0001"))
    store.edit(lambda d: d["gemini-api-key"][25].__setitem__("api-key", "AIza-changed-0002"))
    store.edit(lambda d: d.__setitem__("codex-api-key", [{"api-key": "codex-new-0003"}]))
    line = "keys inserted-key-0001 AIza-changed-0002 codex-new-0003 client-key-0299 AIza-old-049"
    assert redact(line) == " ".join(["keys"] + [MASK] * 5)


def test_formatter_masks_message_arguments_and_tracebacks(make_app):
    make_app(extra_yaml=EXTRA)  # its store's secrets are now known to the formatter
    formatter = RedactingFormatter("%(message)s")
    try:
        raise ValueError(f"bad key {GEMINI_KEY}")
    except ValueError:
        import sys
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "client %s used %s", ("client-key-1", GEMINI_KEY),
                                   sys.exc_info())
    line = formatter.format(record)
    assert GEMINI_KEY not in line and "client-key-1" not in line and "ValueError" in line


def test_safe_query_masks_credential_parameters():
    assert safe_query("key=abc&name=x.json&state=s1&code=c1&is_webui=true") == \
        f"key={MASK}&name=x.json&state={MASK}&code={MASK}&is_webui=true"


# -- the index ------------------------------------------------------------------------------------

def test_management_root_answers_like_a_management_route(make_app, mgmt, client):
    r = mgmt.get("")
    assert r.status_code == 200
    assert r.get_json()["status"] == "ok" and r.get_json()["openapi"] == MGMT_PREFIX + "/openapi.json"
    assert r.headers["X-CPA-VERSION"]
    assert mgmt.get("/").status_code == 200
    assert client.get(MGMT_PREFIX).status_code == 401
    assert mgmt.get("", key="wrong").status_code == 401


def test_management_root_is_404_while_management_is_off(make_app, tmp_path):
    from cliproxy_mgmt.testing import config_text
    app = make_app(config_text(tmp_path / "auths", key=""))
    r = app.test_client().get(MGMT_PREFIX)
    assert r.status_code == 404 and r.data == b"404 page not found"


# -- the real server --------------------------------------------------------------------------------

@pytest.fixture
def server(tmp_path):
    server = RealServer(tmp_path, threads=2, extra=EXTRA)
    server.env["WRITABLE_PATH"] = str(tmp_path / "writable")
    server.start()
    yield server
    server.stop()


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_no_key_reaches_main_log_or_get_logs(server, tmp_path):
    main_log = tmp_path / "writable" / "logs" / "main.log"
    with session() as s:
        assert s.get(server.url(f"/debug?key={SEED_KEYS[0]}&x=1"), timeout=10).status_code == 200
        assert s.get(server.url(f"/{SEED_KEYS[1]}"), timeout=10).status_code == 404
        assert s.put(server.url("/request-retry"), json={"value": 5}, timeout=10).status_code == 200
        # a broken hand edit: the parser's snippet of this line would show a key
        text = server.config_path.read_text()
        server.config_path.write_text(text.replace(f'  - "{SEED_KEYS[1]}"', f'  - "{SEED_KEYS[1]}" x: [', 1))
        time.sleep(0.2)
        assert s.get(server.url("/debug"), timeout=10).status_code == 200  # triggers the reload
        assert _wait_for(lambda: main_log.exists() and "config reload failed" in main_log.read_text())
        logs = s.get(server.url("/logs"), timeout=10)
    assert logs.status_code == 200
    served = "\n".join(logs.json()["lines"])
    written = main_log.read_text()
    console = server.log_path.read_text()
    for where in (written, served, console):
        for secret in SECRETS:
            assert secret not in where
    # what is there instead
    assert re.search(r'127\.0\.0\.1 "GET /v0/management/debug\?key=\*\*\*&x=1 HTTP/1\.1" 200 \d+ [\d.]+ms', written)
    assert '"GET /v0/management/*** HTTP/1.1" 404' in written
    assert "audit: config" in written and "by client 127.0.0.1: request-retry" in written
    reload_line = next(line for line in written.splitlines() if "config reload failed" in line)
    assert re.search(r"line \d+, column \d+", reload_line)
    assert "x: [" not in written  # no snippet of the file


def test_a_path_cannot_forge_a_log_line(server, tmp_path):
    """A newline or NUL decoded from the path is written escaped, as the client sent it."""
    main_log = tmp_path / "writable" / "logs" / "main.log"
    forged = "[2026-01-02 03:04:05] [error] INJECTED"
    with session() as s:
        assert s.get(server.url("/x%0a" + quote(forged) + "%00"), timeout=10).status_code == 404
        assert _wait_for(lambda: main_log.exists() and "INJECTED" in main_log.read_text())
        served = s.get(server.url("/logs"), timeout=10).json()["lines"]
    for lines in (main_log.read_text().splitlines(), served):
        [shown] = [line for line in lines if "INJECTED" in line]
        assert '"GET /v0/management/x%0A%5B2026-01-02%2003' in shown and "%00 HTTP/1.1" in shown
        assert not shown.startswith(forged) and "\x00" not in shown


def test_auth_file_changes_are_audited(tmp_path):
    server = RealServer(tmp_path, threads=2, extra=f'auth-dir: "{tmp_path / "auths"}"\n').start()
    try:
        with session() as s:
            r = s.post(server.url("/auth-files?name=audit-me.json"), data=b'{"type":"gemini"}', timeout=10)
            assert r.status_code == 200, r.text
            assert s.delete(server.url("/auth-files?name=audit-me.json"), timeout=10).status_code == 200
        assert _wait_for(lambda: "auth file audit-me.json deleted by client 127.0.0.1" in server.log())
        assert "auth file audit-me.json written by client 127.0.0.1" in server.log()
    finally:
        server.stop()
