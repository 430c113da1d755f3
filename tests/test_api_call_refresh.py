"""POST /api-call refreshes a gemini-cli token before substituting `$TOKEN$`,
end to end: a real local server plays Google's token endpoint, another records the call."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from fake_provider import FakeProvider, reply
from test_api_call import Upstream, call

from cliproxy_mgmt.authfiles import auth_index
from cliproxy_mgmt.testing import ManagementClient
from cliproxy_mgmt.providers.gemini.login import CLIENT_ID, CLIENT_SECRET

NAME = "gemini-user@example.test-proj-1.json"


def gemini_file(access: str, expiry: datetime, refresh: str = "refresh-1", **extra) -> dict:
    """A token file as the gemini-cli login writes it (expiry in RFC 3339)."""
    token = {"access_token": access, "token_type": "Bearer", "refresh_token": refresh,
             "expiry": expiry.astimezone().isoformat(timespec="seconds"),
             "token_uri": "https://oauth2.googleapis.com/token", "client_id": CLIENT_ID}
    return {"token": token, "project_id": "proj-1", "email": "user@example.test",
            "auto": False, "checked": True, "type": "gemini", **extra}


def ago(**delta) -> datetime:
    return datetime.now(timezone.utc) - timedelta(**delta)


def later(**delta) -> datetime:
    return datetime.now(timezone.utc) + timedelta(**delta)


@pytest.fixture
def upstream():
    up = Upstream()
    yield up
    up.close()


@pytest.fixture
def google():
    with FakeProvider() as fake:
        fake.route("/token", reply(200, {"access_token": "fresh-token", "token_type": "Bearer",
                                         "expires_in": 3599}), "POST")
        yield fake


@pytest.fixture
def app(make_app, google):
    return make_app(extra_yaml=google.endpoints_yaml({"gemini": {"token": "/token"}}))


def write(app, data: dict) -> tuple[str, bytes]:
    """Write the credential; return its auth_index and the exact bytes on disk."""
    folder = app.extensions["cliproxy_mgmt"].store.get("auth-dir")
    raw = json.dumps(data).encode()
    with open(f"{folder}/{NAME}", "wb") as f:
        f.write(raw)
    return auth_index(NAME), raw


def on_disk(app) -> bytes:
    folder = app.extensions["cliproxy_mgmt"].store.get("auth-dir")
    with open(f"{folder}/{NAME}", "rb") as f:
        return f.read()


def bearer_call(mgmt, upstream, index: str):
    return call(mgmt, auth_index=index, method="GET", url=upstream.url + "/v1",
                header={"Authorization": "Bearer $TOKEN$"})


@pytest.mark.parametrize("expiry", [ago(hours=1), later(seconds=5)], ids=["expired", "within-margin"])
def test_expired_token_is_refreshed_in_memory_only(app, mgmt, upstream, google, expiry):
    index, raw = write(app, gemini_file("stale-token", expiry))
    status, body = bearer_call(mgmt, upstream, index)
    assert status == 200 and body["status_code"] == 200, body
    assert upstream.seen[-1][2]["Authorization"] == "Bearer fresh-token"
    (sent,) = google.requests_to("/token")
    assert sent.form() == {"grant_type": "refresh_token", "refresh_token": "refresh-1",
                           "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert on_disk(app) == raw  # never written back, as upstream
    # The refreshed token is remembered: the next call needs no refresh.
    bearer_call(mgmt, upstream, index)
    assert upstream.seen[-1][2]["Authorization"] == "Bearer fresh-token"
    assert len(google.requests_to("/token")) == 1


def test_fresh_token_is_used_without_a_refresh(app, mgmt, upstream, google):
    index, _ = write(app, gemini_file("live-token", later(hours=1)))
    status, _ = bearer_call(mgmt, upstream, index)
    assert status == 200
    assert upstream.seen[-1][2]["Authorization"] == "Bearer live-token"
    assert google.seen == []


def test_a_new_refresh_token_in_the_file_is_not_shadowed(app, mgmt, upstream, google):
    index, _ = write(app, gemini_file("stale-token", ago(hours=1)))
    bearer_call(mgmt, upstream, index)
    write(app, gemini_file("stale-2", ago(hours=1), refresh="refresh-2"))
    bearer_call(mgmt, upstream, index)
    assert [r.form()["refresh_token"] for r in google.requests_to("/token")] == ["refresh-1", "refresh-2"]


@pytest.mark.parametrize("answer", [
    (500, {"error": "backend_error"}),
    (400, {"error": "invalid_grant"}),
    (200, {"token_type": "Bearer"}),  # no access_token
], ids=["500", "invalid-grant", "no-access-token"])
def test_failed_refresh_is_a_400(app, mgmt, upstream, google, answer):
    google.route("/token", reply(*answer), "POST")
    index, raw = write(app, gemini_file("stale-token", ago(minutes=5)))
    assert bearer_call(mgmt, upstream, index) == (400, {"error": "auth token refresh failed"})
    assert upstream.seen == [] and on_disk(app) == raw


def test_expired_token_without_refresh_token(app, mgmt, upstream, google):
    index, _ = write(app, gemini_file("stale-token", ago(minutes=5), refresh=""))
    assert bearer_call(mgmt, upstream, index) == (400, {"error": "auth token refresh failed"})
    assert google.seen == []


def test_refresh_goes_through_the_credential_proxy(make_app, upstream):
    app = make_app(extra_yaml='oauth-endpoints:\n  gemini:\n    token: "http://token.example.invalid/t"\n')
    index, _ = write(app, gemini_file("stale-token", ago(hours=1), proxy_url=upstream.url))
    # The recording upstream is the proxy: it sees the refresh and answers it with no token.
    answer = bearer_call(ManagementClient(app.test_client()), upstream, index)
    assert answer == (400, {"error": "auth token refresh failed"})
    assert [(m, p) for m, p, *_ in upstream.seen] == [("POST", "http://token.example.invalid/t")]


def test_other_types_keep_the_stored_token(app, mgmt, upstream, google):
    folder = app.extensions["cliproxy_mgmt"].store.get("auth-dir")
    with open(f"{folder}/claude-a@example.test.json", "w") as f:
        json.dump({"type": "claude", "access_token": "as-is", "expired": "2000-01-01T00:00:00Z"}, f)
    bearer_call(mgmt, upstream, auth_index("claude-a@example.test.json"))
    assert upstream.seen[-1][2]["Authorization"] == "Bearer as-is"
    assert google.seen == []


# -- antigravity: upstream's other refreshed credential ------------------------------------------------

AG_NAME = "antigravity-user@example.test.json"


@pytest.mark.parametrize("fields", [
    {"expired": ago(hours=1).isoformat(timespec="seconds")},
    {"expired": later(seconds=10).isoformat(timespec="seconds")},
    {"timestamp": int(ago(hours=2).timestamp() * 1000), "expires_in": 3599},
    {},
], ids=["expired", "within-skew", "timestamp-plus-expires-in", "no-expiry"])
def test_antigravity_token_is_refreshed_with_its_client_in_memory_only(make_app, upstream, google, fields):
    from plugins.antigravity.login import CLIENT_ID as AG_ID, CLIENT_SECRET as AG_SECRET
    app = make_app(extra_yaml=google.endpoints_yaml({"antigravity": {"token": "/token"}}))
    mgmt = ManagementClient(app.test_client())
    folder = app.extensions["cliproxy_mgmt"].store.get("auth-dir")
    raw = json.dumps({"type": "antigravity", "access_token": "stale", "refresh_token": "ag-rt",
                      "email": "user@example.test", **fields}).encode()
    with open(f"{folder}/{AG_NAME}", "wb") as f:
        f.write(raw)
    status, body = bearer_call(mgmt, upstream, auth_index(AG_NAME))
    assert status == 200 and body["status_code"] == 200, body
    assert upstream.seen[-1][2]["Authorization"] == "Bearer fresh-token"
    (sent,) = google.requests_to("/token")
    assert sent.form() == {"client_id": AG_ID, "client_secret": AG_SECRET, "grant_type": "refresh_token",
                           "refresh_token": "ag-rt"}
    with open(f"{folder}/{AG_NAME}", "rb") as f:
        assert f.read() == raw
    bearer_call(mgmt, upstream, auth_index(AG_NAME))
    assert len(google.requests_to("/token")) == 1  # remembered until it is due


def test_a_live_antigravity_token_is_used_as_it_is(make_app, upstream, google):
    app = make_app(extra_yaml=google.endpoints_yaml({"antigravity": {"token": "/token"}}))
    folder = app.extensions["cliproxy_mgmt"].store.get("auth-dir")
    with open(f"{folder}/{AG_NAME}", "w") as f:
        json.dump({"type": "antigravity", "access_token": "live", "refresh_token": "r",
                   "expired": later(hours=1).isoformat(timespec="seconds")}, f)
    bearer_call(ManagementClient(app.test_client()), upstream, auth_index(AG_NAME))
    assert upstream.seen[-1][2]["Authorization"] == "Bearer live" and google.seen == []


def test_token_memory_is_bounded_and_forgets_the_oldest_refresh():
    from cliproxy_mgmt.records import TokenMemory

    memory = TokenMemory(limit=3)
    for n in range(4):
        memory.put(("f.json", f"r{n}"), {"access_token": f"a{n}"})
    memory.put(("f.json", "r1"), {"access_token": "a1-again"})  # refreshed again: now the newest
    memory.put(("f.json", "r4"), {"access_token": "a4"})
    assert memory.get(("f.json", "r0")) is None and memory.get(("f.json", "r2")) is None
    assert memory.get(("f.json", "r1")) == {"access_token": "a1-again"}
    assert memory.get(("f.json", "r3")) and memory.get(("f.json", "r4"))
