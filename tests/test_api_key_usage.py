"""GET /api-key-usage: per API-key credential counts from the persisted usage store, and the
per-credential lookup the auth-file listing uses."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta

import pytest

from cliproxy_mgmt.testing import ManagementClient
from cliproxy_mgmt.usage import UsageRecord, record_usage, usage_service
from cliproxy_mgmt.usage.credentials import BUCKET_SECONDS, BUCKETS
from cliproxy_mgmt.usage.views import api_key_index

KEYS = """\
usage-statistics-enabled: true
gemini-api-key:
  - api-key: "AIza-one"
    base-url: " https://gemini.example.test "
  - api-key: "AIza-two"
codex-api-key:
  - api-key: "sk-codex"
    base-url: "https://codex.example.test/v1"
openai-compatibility:
  - name: "My-Compat"
    base-url: "https://compat.example.test/v1"
    api-key-entries:
      - api-key: "key-a"
      - api-key: "key-b"
"""


def record(app, key: str, *, failed=False, by_index=True, at: datetime | None = None):
    record_usage(UsageRecord(model="m", api_key="client-key-1", failed=failed,
                             auth_index=api_key_index(key) if by_index else "",
                             source=key, requested_at=at), app=app)


def get_usage(app) -> dict:
    r = ManagementClient(app.test_client()).get("/api-key-usage")
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def test_every_configured_key_is_listed_in_upstreams_shape(make_app):
    app = make_app(extra_yaml=KEYS)
    body = get_usage(app)
    assert set(body) == {"gemini", "codex", "my-compat"}
    assert set(body["gemini"]) == {"https://gemini.example.test|AIza-one", "|AIza-two"}
    assert set(body["codex"]) == {"https://codex.example.test/v1|sk-codex"}
    assert set(body["my-compat"]) == {"https://compat.example.test/v1|key-a",
                                      "https://compat.example.test/v1|key-b"}
    entry = body["gemini"]["|AIza-two"]
    assert entry["success"] == entry["failed"] == 0
    recent = entry["recent_requests"]
    assert len(recent) == BUCKETS
    assert all(re.fullmatch(r"\d\d:\d\d-\d\d:\d\d", b["time"]) for b in recent)
    assert all(b["success"] == b["failed"] == 0 for b in recent)
    now = time.localtime()
    start = now.tm_min - now.tm_min % 10
    assert recent[-1]["time"].startswith(f"{now.tm_hour:02d}:{start:02d}-")


def test_requests_are_counted_by_index_or_by_key(make_app):
    app = make_app(extra_yaml=KEYS)
    record(app, "sk-codex")
    record(app, "sk-codex", failed=True)
    record(app, "sk-codex", by_index=False)  # reported with the key as source only
    record(app, "key-b")
    record(app, "sk-codex", at=datetime.now() - timedelta(seconds=BUCKET_SECONDS * BUCKETS))
    body = get_usage(app)
    codex = body["codex"]["https://codex.example.test/v1|sk-codex"]
    assert (codex["success"], codex["failed"]) == (3, 1)  # the old one counts in the totals
    assert (codex["recent_requests"][-1]["success"], codex["recent_requests"][-1]["failed"]) == (2, 1)
    assert sum(b["success"] for b in codex["recent_requests"]) == 2  # ...not in the buckets
    compat = body["my-compat"]
    assert compat["https://compat.example.test/v1|key-b"]["success"] == 1
    assert compat["https://compat.example.test/v1|key-a"]["success"] == 0


def test_counts_survive_a_restart_and_follow_imports(make_app):
    app = make_app(extra_yaml=KEYS)
    record(app, "AIza-one")
    record(app, "AIza-one", failed=True)
    before = get_usage(app)
    usage_service(app).close()

    again = make_app(extra_yaml=KEYS)
    assert get_usage(again) == before
    stamp = datetime.now().astimezone().isoformat()
    payload = {"version": 1, "usage": {"apis": {"c": {"models": {"m": {"details": [
        {"timestamp": stamp, "source": "AIza-one", "auth_index": api_key_index("AIza-one"),
         "failed": False, "tokens": {}}]}}}}}}
    mgmt = ManagementClient(again.test_client())
    assert mgmt.post("/usage/import", data=json.dumps(payload),
                     content_type="application/json").get_json()["added"] == 1
    entry = get_usage(again)["gemini"]["https://gemini.example.test|AIza-one"]
    assert (entry["success"], entry["failed"]) == (2, 1)
    assert (entry["recent_requests"][-1]["success"], entry["recent_requests"][-1]["failed"]) == (2, 1)


def test_credential_lookup_for_auth_files(make_app):
    """What the auth-file listing reads: counts by a file's auth_index."""
    app = make_app(extra_yaml="usage-statistics-enabled: true\n")
    record_usage(UsageRecord(model="m", auth_index="abcdef0123456789", source="a@b.c"), app=app)
    record_usage(UsageRecord(model="m", auth_index="abcdef0123456789", failed=True), app=app)
    usage = usage_service(app).credential_usage()
    stats = usage.lookup("abcdef0123456789")
    assert (stats["success"], stats["failed"]) == (1, 1)
    assert len(stats["recent_requests"]) == BUCKETS
    assert usage.lookup("unknown-index") == {
        "success": 0, "failed": 0, "recent_requests": [
            {"time": b["time"], "success": 0, "failed": 0} for b in stats["recent_requests"]]}


@pytest.mark.parametrize("path", ["/api-key-usage"])
def test_needs_the_management_key(app, path):
    assert ManagementClient(app.test_client()).get(path, key=None).status_code == 401


def test_a_store_written_before_the_counts_is_upgraded_on_open(tmp_path):
    import sqlite3

    from cliproxy_mgmt.usage.store import SqliteUsageStore

    path = str(tmp_path / "u.db")
    store = SqliteUsageStore(path)
    store.add([UsageRecord(model="m", api_key="k", auth_index="idx", total_tokens=3).to_detail()])
    before = "".join(store.stream(lambda failed: "", ""))
    store.close()
    conn = sqlite3.connect(path)  # back to the older layout
    conn.executescript("ALTER TABLE details DROP COLUMN body; DROP TABLE credentials; "
                       "DROP TABLE credential_buckets; PRAGMA user_version = 0;")
    conn.close()

    store = SqliteUsageStore(path)
    try:
        assert "".join(store.stream(lambda failed: "", "")) == before
        assert store.credential_usage().lookup("idx")["success"] == 1
    finally:
        store.close()


def test_interactions_and_xai_keys_are_filed_under_upstreams_provider_names(make_app):
    app = make_app(extra_yaml='usage-statistics-enabled: true\ninteractions-api-key:\n  - api-key: "AIza-int"\n'
                              'xai-api-key:\n  - api-key: "xai-1"\n    base-url: "https://api.x.ai/v1"\n')
    record(app, "AIza-int")
    body = get_usage(app)
    assert body["gemini-interactions"]["|AIza-int"]["success"] == 1
    assert body["xai"]["https://api.x.ai/v1|xai-1"]["success"] == 0


def test_keys_the_proxy_does_not_register_are_not_listed(make_app):
    """A disabled openai-compatibility upstream, and the keys of a plugin switched off."""
    app = make_app(extra_yaml=KEYS.replace('  - name: "My-Compat"\n', '  - name: "My-Compat"\n    disabled: true\n'))
    body = get_usage(app)
    assert "my-compat" not in body and {"gemini", "codex"} <= set(body)
    off = ManagementClient(app.test_client()).patch("/plugins/codex/enabled", json={"enabled": False})
    assert off.status_code == 200
    assert "codex" not in get_usage(app) and "gemini" in get_usage(app)
