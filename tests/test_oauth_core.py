"""The OAuth mechanics the core owns: sessions, states, callbacks, and the starter contract."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cliproxy_mgmt import Provider, hookimpl
from cliproxy_mgmt.oauth import Credential, LoginError, OAuthStarter
from cliproxy_mgmt.oauth.callbacks import valid_state
from cliproxy_mgmt.oauth.sessions import SessionStore
from cliproxy_mgmt.records import AuthFileType
from cliproxy_mgmt.registry import PluginError
from cliproxy_mgmt.testing import ManagementClient


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_sessions_expire_after_thirty_minutes_and_an_error_rearms_them():
    clock = Clock()
    sessions = SessionStore(clock=clock)
    sessions.register("s1", "anthropic")
    assert sessions.is_pending("s1", "anthropic") and not sessions.is_pending("s1", "codex")
    clock.now += 1799
    sessions.set_error("s1", "Bad request")
    clock.now += 1799  # 3598 s after start, but the error re-armed the TTL
    assert sessions.get("s1").status == "Bad request"
    clock.now += 2
    assert sessions.get("s1") is None


def test_a_completed_session_reads_completed_for_one_minute():
    clock = Clock()
    sessions = SessionStore(clock=clock)
    sessions.register("s1", "kimi")
    sessions.complete("s1")
    session = sessions.get("s1")
    assert session.completed and not session.pending and session.status == ""
    sessions.set_error("s1", "late failure")  # a completed login stays completed
    assert sessions.get("s1").status == ""
    clock.now += 59
    assert sessions.get("s1").completed
    clock.now += 2
    assert sessions.get("s1") is None


def test_completing_a_provider_completes_all_its_sessions():
    sessions = SessionStore()
    for state, provider in (("a", "codex"), ("b", "codex"), ("c", "qwen")):
        sessions.register(state, provider)
    sessions.set_error("b", "failed")
    sessions.complete_provider("codex")
    assert sessions.get("a").completed and sessions.get("b").completed
    assert sessions.is_pending("c")


def test_cancel_deletes_only_a_pending_session():
    sessions = SessionStore()
    for state in ("p", "f", "d"):
        sessions.register(state, "xai")
    sessions.set_error("f", "failed")
    sessions.complete("d")
    assert [sessions.cancel(s) for s in ("p", "f", "d", "unknown")] == [True, False, False, False]
    assert sessions.get("p") is None and sessions.get("f").status == "failed" and sessions.get("d").completed


@pytest.mark.parametrize("state,ok", [
    ("gem-1700000000", True), ("a.b_c-D9", True), (" padded ", True), ("x" * 128, True),
    ("", False), ("   ", False), ("x" * 129, False), ("a..b", False), ("a/b", False), ("a\\b", False),
    ("a b", False), ("ä", False),
])
def test_state_validation(state, ok):
    assert valid_state(state) is ok


# -- the starter contract, through a third-party plugin --------------------------------------

class AcmeLogin(OAuthStarter):
    provider = "acme"
    name = "acme"
    aliases = ("acme-corp",)
    route = "/acme-auth-url"
    callback_route = "/acme/callback"
    endpoints = {"authorize": "https://login.acme.example/authorize",
                 "redirect-uri": "http://localhost:1/callback"}

    def authorize(self, flow) -> str:
        flow.values["asked"] = flow.query.get("team", "")
        return f"{flow.endpoint('authorize')}?state={flow.state}"

    def complete(self, flow) -> Credential:
        callback = flow.wait_callback()
        if callback.error:
            raise LoginError(f"acme says {callback.error}")
        return Credential(f"acme-{callback.code}.json",
                          {"type": "acme", "email": "ops@acme.example", "team": flow.values["asked"]})


class AcmePlugin:
    __name__ = "acme-oauth-test-plugin"

    @hookimpl
    def register_providers(self):
        return [Provider(id="acme")]

    @hookimpl
    def register_oauth_starters(self, config):
        assert config.data is not None
        return [AcmeLogin()]

    @hookimpl
    def register_auth_file_types(self):
        return [AuthFileType(type="acme", provider="acme", listed_as="acme-cloud",
                             describe=lambda data, email: {"account": f"{email} [{data.get('team')}]"})]


def auth_dir(app) -> Path:
    return Path(app.extensions["cliproxy_mgmt"].store.path).parent / "auths"


def settled(mgmt, state: str) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = mgmt.get("/get-auth-status", query_string={"state": state}).get_json()
        if status != {"status": "wait"}:
            return status
        time.sleep(0.02)
    raise AssertionError("still pending")


@pytest.fixture
def acme(make_app):
    return make_app(extra_yaml='oauth-endpoints:\n  acme:\n    authorize: "https://sso.acme.example/a"\n',
                    plugins=[AcmePlugin()])


def test_hook_register_oauth_starters(acme):
    """A plugin's starter gets a route, sessions, a browser callback and its file saved."""
    client = acme.test_client()
    mgmt = ManagementClient(client)
    started = mgmt.get("/acme-auth-url", query_string={"team": "blue"}).get_json()
    assert started["url"] == f"https://sso.acme.example/a?state={started['state']}"  # oauth-endpoints wins
    assert mgmt.get("/get-auth-status", query_string={"state": started["state"]}).get_json() == {"status": "wait"}

    page = client.get("/acme/callback", query_string={"code": "c0de", "state": started["state"]})  # no key
    assert page.status_code == 200 and b"Authentication successful!" in page.data
    assert settled(mgmt, started["state"]) == {"status": "ok"}

    saved = auth_dir(acme) / "acme-c0de.json"
    assert json.loads(saved.read_text()) == \
        {"type": "acme", "email": "ops@acme.example", "team": "blue"}

    failing = mgmt.get("/acme-auth-url").get_json()["state"]
    r = mgmt.post("/oauth-callback", json={"provider": "ACME-corp", "state": failing, "error": "no"})
    assert r.get_json() == {"status": "ok"}
    assert settled(mgmt, failing) == {"status": "error", "error": "acme says no"}


def test_hook_register_auth_file_types(acme):
    """A plugin's auth-file type decides what the listing shows for its files."""
    mgmt = ManagementClient(acme.test_client())
    body = json.dumps({"type": "ACME", "email": "ops@acme.example", "team": "red"}).encode()
    assert mgmt.post("/auth-files", query_string={"name": "acme-1.json"}, data=body).status_code == 200
    [entry] = mgmt.get("/auth-files").get_json()["files"]
    assert (entry["type"], entry["provider"], entry["email"], entry["account"]) == \
        ("acme-cloud", "acme-cloud", "ops@acme.example", "ops@acme.example [red]")


def test_browser_callback_for_an_unknown_state_changes_nothing(acme):
    client = acme.test_client()
    page = client.get("/acme/callback", query_string={"code": "c", "state": "0123456789abcdef"})
    assert page.status_code == 200 and page.content_type == "text/html; charset=utf-8"
    assert not list(auth_dir(acme).glob(".oauth-*"))


def test_two_logins_claiming_one_name_refuse_to_start(make_app):
    class Twin(AcmePlugin):
        __name__ = "acme-twin"

        @hookimpl
        def register_providers(self):
            return []

    with pytest.raises(PluginError, match="'acme'"):
        make_app(plugins=[AcmePlugin(), Twin()])


def test_a_login_for_an_unregistered_provider_is_refused(make_app):
    class Orphan:
        @hookimpl
        def register_oauth_starters(self):
            return [AcmeLogin()]

    with pytest.raises(PluginError, match="acme"):
        make_app(plugins=[Orphan()])


def test_every_built_in_login_is_reachable_by_its_client_key(make_app):
    """The key of `/<key>-auth-url` (what the web UI's OAuth cards and the `/plugins` listing
    use) also names the login in POST /oauth-callback."""
    state = make_app().extensions["cliproxy_mgmt"]
    logins = [s for s in state.registry.oauth_starters if isinstance(s, OAuthStarter)]
    keys = {login.oauth_provider: login for login in logins}
    assert set(keys) == {"anthropic", "codex", "gemini-cli", "qwen", "iflow", "xai", "kimi", "antigravity"}
    starters = state.extras["oauth"].starters
    assert all(starters[key] is login for key, login in keys.items())
