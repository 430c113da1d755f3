"""Every login end to end: the app served over HTTP, the provider played by a local server.

The provider's endpoints are overridden in config.yaml (`oauth-endpoints`);
the browser is a `requests` session following redirects. Token files must carry upstream's
fields and names (docs/decisions.md, "Token files upstream can read").
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from werkzeug.serving import make_server

from cliproxy_mgmt.testing import KEY, config_text
from fake_provider import FakeProvider, authorize_redirect, reply, sequence

EMAIL = "user@example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def challenge_of(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def fake_jwt(claims: dict) -> str:
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class Live:
    """The app served by a real HTTP server in a thread."""

    def __init__(self, app, port: int, auth_dir):
        self.app, self.port, self.auth_dir = app, port, auth_dir
        self.base = f"http://127.0.0.1:{port}"
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"Bearer {KEY}"
        self._server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def call(self, method: str, path: str, **kw) -> requests.Response:
        return self.http.request(method, self.base + "/v0/management" + path, timeout=30, **kw)

    def start(self, route: str, **params) -> dict:
        r = self.call("GET", route, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def settled(self, state: str, timeout: float = 15) -> dict:
        """GET /get-auth-status until the login is no longer pending."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.call("GET", "/get-auth-status", params={"state": state}).json()
            if status != {"status": "wait"}:
                return status
            time.sleep(0.05)
        raise AssertionError(f"login {state} still pending")

    def token_file(self, name: str) -> dict:
        return json.loads((self.auth_dir / name).read_text())

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fake():
    with FakeProvider() as provider:
        yield provider


@pytest.fixture
def live(make_app, tmp_path):
    """live(extra_yaml) -> a served app whose config has `extra_yaml` and its real port."""
    started = []

    def start(extra_yaml: str = "") -> Live:
        port = free_port()
        auth_dir = tmp_path / "auths"
        text = config_text(auth_dir, extra_yaml=extra_yaml).replace("port: 8317", f"port: {port}")
        server = Live(make_app(text), port, auth_dir)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def browser() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def wait_until(check, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


# =====================================================================================
# anthropic: PKCE, JSON token exchange, the is_webui listener
# =====================================================================================

def anthropic_tokens(email=EMAIL):
    return {"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600,
            "account": {"email_address": email}, "organization": {"uuid": "org"}}


def test_anthropic_login_through_the_local_callback_listener(fake, live):
    listen = free_port()
    fake.route("/claude/authorize", authorize_redirect(code="code-1#ignored-fragment"))
    fake.route("/claude/token", reply(200, anthropic_tokens()))
    server = live(fake.endpoints_yaml({"anthropic": {
        "authorize": "/claude/authorize", "token": "/claude/token",
        "redirect-uri": f"http://localhost:{listen}/callback"}}))

    started = server.start("/anthropic-auth-url", is_webui="true")
    query = query_of(started["url"])
    assert query["redirect_uri"] == f"http://localhost:{listen}/callback"

    # The user's browser: the provider's consent page redirects to the local listener,
    # which sends it on to this server's /anthropic/callback.
    page = browser().get(started["url"], timeout=10)
    assert page.status_code == 200
    assert page.url.startswith(f"{server.base}/anthropic/callback?")
    assert "Authentication successful" in page.text
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"

    assert server.settled(started["state"]) == {"status": "ok"}
    [exchange] = fake.requests_to("/claude/token")
    sent = exchange.json()
    assert sent["code"] == "code-1"  # the part before '#'
    assert sent["state"] == started["state"]
    assert sent["redirect_uri"] == f"http://localhost:{listen}/callback"
    assert challenge_of(sent["code_verifier"]) == query["code_challenge"]
    assert len(sent["code_verifier"]) == 128

    data = server.token_file(f"claude-{EMAIL}.json")
    assert list(data) == ["id_token", "access_token", "refresh_token", "last_refresh", "email", "type", "expired"]
    assert (data["access_token"], data["refresh_token"], data["email"], data["type"]) == \
        ("at-1", "rt-1", EMAIL, "claude")
    raw = (server.auth_dir / f"claude-{EMAIL}.json").read_bytes()
    assert raw.endswith(b"}\n") and b": " not in raw  # compact JSON and a newline, as upstream
    assert (server.auth_dir / f"claude-{EMAIL}.json").stat().st_mode & 0o777 == 0o600
    wait_until(lambda: refused(listen))  # the listener stops with the login
    assert not list(server.auth_dir.glob(".oauth-*"))


def test_anthropic_exchange_failure_and_state_mismatch(fake, live):
    fake.route("/claude/token", reply(500, {"error": "boom"}))
    server = live(fake.endpoints_yaml({"anthropic": {"token": "/claude/token"}}))
    state = server.start("/anthropic-auth-url")["state"]
    assert server.call("POST", "/oauth-callback", json={"provider": "anthropic", "state": state,
                                                         "code": "c"}).json() == {"status": "ok"}
    assert server.settled(state) == {"status": "error",
                                     "error": "Failed to exchange authorization code for tokens"}


def test_a_second_login_of_the_same_provider_ends_the_first(fake, live):
    fake.route("/claude/token", reply(200, anthropic_tokens()))
    server = live(fake.endpoints_yaml({"anthropic": {"token": "/claude/token"}}))
    first = server.start("/anthropic-auth-url")["state"]
    second = server.start("/anthropic-auth-url")["state"]
    server.call("POST", "/oauth-callback", json={"provider": "claude", "state": second, "code": "c"})
    assert server.settled(second) == {"status": "ok"}
    assert server.settled(first) == {"status": "ok"}  # completed with its provider (upstream)
    assert len(fake.requests_to("/claude/token")) == 1


def test_the_listener_port_in_use_is_a_500(fake, live):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = live(fake.endpoints_yaml({"iflow": {"redirect-uri": f"http://localhost:{port}/cb"},
                                           "codex": {"redirect-uri": f"http://localhost:{port}/cb"}}))
        r = server.call("GET", "/iflow-auth-url", params={"is_webui": "1"})
        assert (r.status_code, r.json()) == (500, {"status": "error", "error": "failed to start callback server"})
        r = server.call("GET", "/codex-auth-url", params={"is_webui": "yes"})
        assert (r.status_code, r.json()) == (500, {"error": "failed to start callback server"})


# =====================================================================================
# codex: form exchange, id_token claims, file names by plan
# =====================================================================================

@pytest.mark.parametrize("plan,name", [
    (None, f"codex-{EMAIL}.json"),
    ("Plus", f"codex-{EMAIL}-plus.json"),
    ("team", f"codex-{hashlib.sha256(b'acct-9').hexdigest()[:8]}-{EMAIL}-team.json"),
])
def test_codex_login_by_pasted_redirect_url(fake, live, plan, name):
    auth = {"chatgpt_account_id": "acct-9", **({"chatgpt_plan_type": plan} if plan else {})}
    id_token = fake_jwt({"email": EMAIL, "https://api.openai.com/auth": auth})
    fake.route("/codex/token", reply(200, {"access_token": "at", "refresh_token": "rt", "id_token": id_token,
                                           "expires_in": 60}))
    server = live(fake.endpoints_yaml({"codex": {"token": "/codex/token"}}))
    started = server.start("/codex-auth-url")
    redirect = f"http://localhost:1455/auth/callback?code=pasted&state={started['state']}"
    r = server.call("POST", "/oauth-callback", json={"provider": "openai", "redirect_url": redirect})
    assert r.json() == {"status": "ok"}
    assert server.settled(started["state"]) == {"status": "ok"}

    form = fake.requests_to("/codex/token")[0].form()
    assert form["code"] == "pasted" and form["grant_type"] == "authorization_code"
    assert challenge_of(form["code_verifier"]) == query_of(started["url"])["code_challenge"]
    data = server.token_file(name)
    assert list(data) == ["id_token", "access_token", "refresh_token", "account_id", "last_refresh",
                          "email", "type", "expired"]
    assert (data["account_id"], data["email"], data["id_token"]) == ("acct-9", EMAIL, id_token)

    [entry] = server.call("GET", "/auth-files").json()["files"]
    assert entry["id_token"] == {"chatgpt_account_id": "acct-9", **({"plan_type": plan} if plan else {})}


# =====================================================================================
# gemini-cli: token + user info + Code Assist onboarding + Cloud AI API check
# =====================================================================================

GEMINI_PATHS = {"token": "/g/token", "userinfo": "/g/userinfo", "projects": "/g/projects",
                "code-assist": "/g/v1internal", "service-usage": "/g/su"}


def gemini_fake(fake, *, projects=("proj-a",), onboard_project="proj-a", api_state="ENABLED",
                tier="standard-tier", enable_status=200):
    fake.route("/g/token", reply(200, {"access_token": "g-at", "refresh_token": "g-rt", "expires_in": 3599,
                                       "token_type": "Bearer"}))
    fake.route("/g/userinfo", reply(200, {"email": EMAIL}))
    fake.route("/g/projects", reply(200, {"projects": [{"projectId": p} for p in projects]}))
    fake.route("/g/v1internal:loadCodeAssist", reply(200, {"allowedTiers": [{"id": tier, "isDefault": True}]}))
    fake.route("/g/v1internal:onboardUser", sequence(
        (200, {"done": False}),
        (200, {"done": True, "response": {"cloudaicompanionProject": {"id": onboard_project}}})))
    for project in {*projects, onboard_project}:
        base = f"/g/su/projects/{project}/services/cloudaicompanion.googleapis.com"
        fake.route(base, reply(200, {"state": api_state}), method="GET")
        fake.route(base + ":enable", reply(enable_status, {}), method="POST")


def gemini_login(fake, live, project_id=None):
    server = live(fake.endpoints_yaml({"gemini": GEMINI_PATHS}))
    for login in server.app.extensions["cliproxy_mgmt"].registry.oauth_starters:
        if login.name == "gemini":
            login.onboard_interval = login.google_one_interval = 0.01  # don't wait 5 s / 2 s for a fake
    started = server.start("/gemini-cli-auth-url", **({"project_id": project_id} if project_id else {}))
    # the browser lands on the main server's own callback route (what the listener forwards to)
    page = browser().get(f"{server.base}/google/callback", params={"code": "g-code", "state": started["state"]})
    assert page.status_code == 200
    return server, started


def test_gemini_login_with_an_explicit_project(fake, live):
    gemini_fake(fake, api_state="DISABLED")
    server, started = gemini_login(fake, live, "proj-a")
    assert server.settled(started["state"]) == {"status": "ok"}

    form = fake.requests_to("/g/token")[0].form()
    assert form["client_secret"] == "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" and form["code"] == "g-code"
    assert fake.requests_to("/g/userinfo")[0].headers["Authorization"] == "Bearer g-at"
    onboard = fake.requests_to("/g/v1internal:onboardUser")
    assert len(onboard) == 2  # polled until done
    assert onboard[0].json() == {"tierId": "standard-tier", "cloudaicompanionProject": "proj-a",
                                 "metadata": {"ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED",
                                              "pluginType": "GEMINI"}}
    assert onboard[0].headers["User-Agent"] == "google-api-nodejs-client/9.15.1"
    assert fake.requests_to("/g/su/projects/proj-a/services/cloudaicompanion.googleapis.com:enable")

    data = server.token_file(f"gemini-{EMAIL}-proj-a.json")
    assert list(data) == ["token", "project_id", "email", "auto", "checked", "type"]
    assert (data["project_id"], data["email"], data["auto"], data["checked"], data["type"]) == \
        ("proj-a", EMAIL, False, True, "gemini")
    token = data["token"]
    assert (token["access_token"], token["refresh_token"], token["token_type"], token["expires_in"]) == \
        ("g-at", "g-rt", "Bearer", 3599)
    assert token["client_id"].startswith("681255809395-") and token["universe_domain"] == "googleapis.com"
    assert len(token["scopes"]) == 3

    [entry] = server.call("GET", "/auth-files").json()["files"]
    assert (entry["type"], entry["provider"], entry["account"]) == ("gemini-cli", "gemini-cli", f"{EMAIL} (proj-a)")


def test_gemini_login_without_project_takes_the_first_listed(fake, live):
    gemini_fake(fake, projects=("first-p", "second-p"), onboard_project="first-p")
    server, started = gemini_login(fake, live)
    assert server.settled(started["state"]) == {"status": "ok"}
    data = server.token_file(f"gemini-{EMAIL}-first-p.json")
    assert (data["project_id"], data["auto"]) == ("first-p", True)


def test_gemini_login_for_all_projects(fake, live):
    gemini_fake(fake, projects=("p1", "p2", "p1"), onboard_project="p1")
    server, started = gemini_login(fake, live, "all")
    assert server.settled(started["state"]) == {"status": "ok"}
    data = server.token_file(f"gemini-{EMAIL}-all.json")
    assert (data["project_id"], data["auto"], data["checked"]) == ("p1,p2", False, True)


def test_gemini_google_one_discovers_the_project(fake, live):
    gemini_fake(fake, projects=(), onboard_project="gen-lang-client-42", tier="free-tier")
    server, started = gemini_login(fake, live, "GOOGLE_ONE")
    assert server.settled(started["state"]) == {"status": "ok"}
    assert "cloudaicompanionProject" not in fake.requests_to("/g/v1internal:onboardUser")[0].json()
    assert server.token_file(f"gemini-{EMAIL}-gen-lang-client-42.json")["project_id"] == "gen-lang-client-42"


def test_gemini_free_user_takes_the_backend_project(fake, live):
    gemini_fake(fake, projects=("asked",), onboard_project="backend-p", tier="free-tier")
    server, started = gemini_login(fake, live, "asked")
    assert server.settled(started["state"]) == {"status": "ok"}
    assert server.token_file(f"gemini-{EMAIL}-backend-p.json")["project_id"] == "backend-p"


@pytest.mark.parametrize("breakage,error", [
    ("token", "Failed to exchange token"),
    ("userinfo", "Get user info request failed with status 401"),
    ("api", "Cloud AI API not enabled"),
    ("onboarding", "Failed to complete Gemini CLI onboarding"),
])
def test_gemini_failures_are_reported(fake, live, breakage, error):
    gemini_fake(fake, api_state="DISABLED", enable_status=403)
    if breakage != "api":
        fake.route("/g/su/projects/proj-a/services/cloudaicompanion.googleapis.com", reply(200, {"state": "ENABLED"}))
    broken = {"token": "/g/token", "userinfo": "/g/userinfo", "onboarding": "/g/v1internal:loadCodeAssist"}
    if breakage in broken:
        fake.route(broken[breakage], reply(401, {"error": "nope"}))
    server, started = gemini_login(fake, live, "proj-a")
    assert server.settled(started["state"]) == {"status": "error", "error": error}
    assert not list(server.auth_dir.glob("gemini-*.json"))


# =====================================================================================
# qwen: device flow polled in the background
# =====================================================================================

def qwen_fake(fake, *token_answers, interval=0.05):
    fake.route("/q/device", reply(200, {"device_code": "dev-1", "user_code": "U-1",
                                        "verification_uri": "https://chat.qwen.ai/authorize",
                                        "verification_uri_complete": "https://chat.qwen.ai/authorize?user_code=U-1",
                                        "expires_in": 600, "interval": interval}))
    fake.route("/q/token", sequence(*token_answers))
    return fake.endpoints_yaml({"qwen": {"device-code": "/q/device", "token": "/q/token"}})


def test_qwen_device_login_polls_until_the_user_approves(fake, live):
    server = live(qwen_fake(
        fake,
        (400, {"error": "authorization_pending"}),
        (400, {"error": "slow_down"}),
        (200, {"access_token": "q-at", "refresh_token": "q-rt", "resource_url": "portal.qwen.ai",
               "expires_in": 7200})))
    started = server.start("/qwen-auth-url")
    assert started["url"] == "https://chat.qwen.ai/authorize?user_code=U-1"
    assert started["state"].startswith("gem-")
    assert server.settled(started["state"]) == {"status": "ok"}

    device = fake.requests_to("/q/device")[0].form()
    polls = [r.form() for r in fake.requests_to("/q/token")]
    assert len(polls) == 3
    assert polls[0]["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code"
    assert polls[0]["device_code"] == "dev-1"
    assert challenge_of(polls[0]["code_verifier"]) == device["code_challenge"]
    [path] = server.auth_dir.glob("qwen-*.json")
    data = json.loads(path.read_text())
    stamp = path.name[len("qwen-"):-len(".json")]
    assert stamp.isdigit() and data["email"] == stamp
    assert list(data) == ["access_token", "refresh_token", "last_refresh", "resource_url", "email", "type", "expired"]
    assert (data["access_token"], data["resource_url"], data["type"]) == ("q-at", "portal.qwen.ai", "qwen")


def test_qwen_denied_login_fails(fake, live):
    server = live(qwen_fake(fake, (400, {"error": "access_denied"})))
    state = server.start("/qwen-auth-url")["state"]
    assert server.settled(state) == {"status": "error", "error": "Authentication failed"}


# =====================================================================================
# iflow: OAuth with Basic client auth and user info; the cookie login
# =====================================================================================

IFLOW_PATHS = {"authorize": "/i/oauth", "token": "/i/token", "user-info": "/i/user", "api-key": "/i/apikey"}


def test_iflow_oauth_login_names_the_file_after_the_phone(fake, live):
    fake.route("/i/oauth", authorize_redirect("redirect", code="i-code"))
    fake.route("/i/token", reply(200, {"access_token": "i-at", "refresh_token": "i-rt", "expires_in": 100,
                                       "token_type": "bearer", "scope": "read"}))
    fake.route("/i/user", reply(200, {"success": True, "data": {"apiKey": "sk-i", "email": "", "phone": "13800000000"}}))
    server = live(fake.endpoints_yaml({"iflow": IFLOW_PATHS}))
    started = server.start("/iflow-auth-url")
    assert started["state"].startswith("ifl-")
    # no listener (no is_webui): the user pastes the URL the provider redirected to
    location = browser().get(started["url"], allow_redirects=False).headers["Location"]
    assert location.startswith("http://localhost:11451/oauth2callback?")
    server.call("POST", "/oauth-callback", json={"provider": "iflow", "redirect_url": location})
    assert server.settled(started["state"]) == {"status": "ok"}

    exchange = fake.requests_to("/i/token")[0]
    expected = base64.b64encode(b"10009311001:4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW").decode()
    assert exchange.headers["Authorization"] == f"Basic {expected}"
    assert exchange.form()["redirect_uri"] == "http://localhost:11451/oauth2callback"
    assert fake.requests_to("/i/user")[0].query == {"accessToken": ["i-at"]}
    data = server.token_file("iflow-13800000000.json")
    assert list(data) == ["access_token", "refresh_token", "last_refresh", "expired", "api_key", "email",
                          "token_type", "scope", "cookie", "type"]
    assert (data["api_key"], data["email"], data["cookie"], data["type"]) == ("sk-i", "13800000000", "", "iflow")


def test_iflow_cookie_login_buys_an_api_key(fake, live):
    info = {"name": "key*one", "apiKey": "sk-old", "apiKeyMask": "sk-***", "expireTime": "2027-01-01 00:00",
            "hasExpired": False}
    fake.route("/i/apikey", reply(200, {"success": True, "data": info}), method="GET")
    fake.route("/i/apikey", reply(200, {"success": True, "data": {**info, "apiKey": "sk-new"}}), method="POST")
    server = live(fake.endpoints_yaml({"iflow": IFLOW_PATHS}))
    r = server.call("POST", "/iflow-auth-url", json={"cookie": " a=1;\n BXAuth=tok-9; b=2 "})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["email"], body["expired"], body["type"]) == \
        ("ok", "key*one", "2027-01-01 00:00", "iflow")
    saved = body["saved_path"]
    assert saved.startswith(str(server.auth_dir) + "/iflow-keyxone-") and saved.endswith(".json")
    data = json.loads(Path(saved).read_text())
    assert (data["api_key"], data["cookie"], data["email"], data["expired"]) == \
        ("sk-new", "BXAuth=tok-9;", "key*one", "2027-01-01 00:00")
    get, post = fake.requests_to("/i/apikey")
    assert get.headers["Cookie"] == "a=1; BXAuth=tok-9; b=2;"
    assert post.json() == {"name": "key*one"} and post.headers["Origin"] == fake.base

    again = server.call("POST", "/iflow-auth-url", json={"cookie": "BXAuth=tok-9"})
    assert again.status_code == 409
    assert again.json()["existing_file"] == saved.rsplit("/", 1)[1]


def test_iflow_cookie_login_reports_the_platform_refusal(fake, live):
    fake.route("/i/apikey", reply(200, {"success": False, "message": "cookie expired"}))
    server = live(fake.endpoints_yaml({"iflow": IFLOW_PATHS}))
    r = server.call("POST", "/iflow-auth-url", json={"cookie": "BXAuth=old"})
    assert r.status_code == 400
    assert r.json() == {"status": "error", "error": "get API key info failed: cookie expired"}
    assert not list(server.auth_dir.glob("*.json"))


# =====================================================================================
# the configured proxy is used for provider calls
# =====================================================================================

def test_provider_calls_go_through_proxy_url(fake, live):
    """The fake doubles as an HTTP proxy: a proxied request arrives with an absolute URL."""
    fake.route("/claude/token", reply(200, anthropic_tokens()))
    server = live(f'proxy-url: "{fake.base}"\n' + fake.endpoints_yaml(
        {"anthropic": {"token": "http://provider.invalid/claude/token"}}))
    state = server.start("/anthropic-auth-url")["state"]
    server.call("POST", "/oauth-callback", json={"provider": "anthropic", "state": state, "code": "c"})
    assert server.settled(state) == {"status": "ok"}
    [proxied] = [r for r in fake.seen if r.method == "POST"]
    assert proxied.path == "/claude/token" and proxied.headers["Host"] == "provider.invalid"


# =====================================================================================
# xai: device flow with OIDC discovery
# =====================================================================================

XAI_EMAIL = "grok.user@example.com"


def xai_fake(fake, *token_answers, interval=0.05, discovery=None):
    fake.route("/x/.well-known/openid-configuration", reply(200, discovery or {
        "device_authorization_endpoint": f"{fake.base}/x/device", "token_endpoint": f"{fake.base}/x/token"}))
    fake.route("/x/device", reply(200, {"device_code": "x-dev-1", "user_code": "XAI-1",
                                        "verification_uri": "https://accounts.x.ai/device",
                                        "verification_uri_complete": "https://accounts.x.ai/device?code=XAI-1",
                                        "expires_in": 600, "interval": interval}))
    fake.route("/x/token", sequence(*token_answers))
    return fake.endpoints_yaml({"xai": {"discovery": "/x/.well-known/openid-configuration"}})


def test_xai_device_login_discovers_polls_and_saves_upstreams_file(fake, live):
    id_token = fake_jwt({"email": XAI_EMAIL, "sub": "user-42"})
    server = live(xai_fake(
        fake,
        (400, {"error": "authorization_pending"}),
        (200, {"access_token": "x-at", "refresh_token": "x-rt", "id_token": id_token, "token_type": "Bearer",
               "expires_in": 3600})))
    started = server.start("/xai-auth-url", is_webui="true")  # is_webui means nothing to a device flow
    assert started == {"expires_in": 600, "flow": "device", "state": started["state"], "status": "ok",
                       "url": "https://accounts.x.ai/device?code=XAI-1", "user_code": "XAI-1"}
    assert list(started) == sorted(started)
    assert started["state"].startswith("xai-") and started["state"][4:].isdigit()
    assert server.settled(started["state"]) == {"status": "ok"}

    assert fake.requests_to("/x/device")[0].form() == {
        "client_id": "b1a00492-073a-47ea-816f-4c329264a828",
        "scope": "openid profile email offline_access grok-cli:access api:access"}
    polls = [r.form() for r in fake.requests_to("/x/token")]
    assert len(polls) == 2 and polls[0] == {"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                                            "device_code": "x-dev-1",
                                            "client_id": "b1a00492-073a-47ea-816f-4c329264a828"}
    raw = (server.auth_dir / f"xai-{XAI_EMAIL}.json").read_text()
    assert raw.startswith('{\n  "access_token": "x-at",\n')  # indented, keys sorted: upstream's encoder
    data = json.loads(raw)
    assert list(data) == sorted(data)
    assert {k: data[k] for k in ("type", "access_token", "refresh_token", "id_token", "token_type", "expires_in",
                                 "base_url", "token_endpoint", "auth_kind", "email", "sub", "disabled")} == {
        "type": "xai", "access_token": "x-at", "refresh_token": "x-rt", "id_token": id_token,
        "token_type": "Bearer", "expires_in": 3600, "base_url": "https://api.x.ai/v1",
        "token_endpoint": f"{fake.base}/x/token", "auth_kind": "oauth", "email": XAI_EMAIL, "sub": "user-42",
        "disabled": False}
    assert data["expired"].endswith("Z") and data["last_refresh"].endswith("Z")
    [entry] = server.call("GET", "/auth-files").json()["files"]
    assert (entry["type"], entry["email"]) == ("xai", XAI_EMAIL)


def test_xai_file_is_named_after_the_subject_without_an_email(fake, live):
    server = live(fake.endpoints_yaml({"xai": {"device-code": "/x/device", "token": "/x/token"}}))
    fake.route("/x/device", reply(200, {"device_code": "d", "user_code": "U", "verification_uri": "https://v",
                                        "interval": 0.05}))
    fake.route("/x/token", reply(200, {"access_token": "x-at", "id_token": fake_jwt({"sub": "a b/c"})}))
    started = server.start("/xai-auth-url")
    assert (started["url"], started["expires_in"]) == ("https://v", 1800)  # no expires_in: the poll limit
    assert server.settled(started["state"]) == {"status": "ok"}
    data = server.token_file("xai-a-b-c.json")
    assert "email" not in data and data["sub"] == "a b/c" and data["token_endpoint"] == f"{fake.base}/x/token"
    assert not fake.requests_to("/x/.well-known/openid-configuration")  # both endpoints given: no discovery


@pytest.mark.parametrize("discovery", [
    {"device_authorization_endpoint": "http://evil.example/device", "token_endpoint": "https://auth.x.ai/t"},
    {"device_authorization_endpoint": "", "token_endpoint": "https://auth.x.ai/t"},
], ids=["foreign-host", "missing"])
def test_xai_discovery_must_name_endpoints_it_may_trust(fake, live, discovery):
    server = live(xai_fake(fake, (200, {}), discovery=discovery))
    r = server.call("GET", "/xai-auth-url")
    assert (r.status_code, r.json()) == (500, {"error": "failed to start device authorization flow"})
    assert not fake.requests_to("/x/device")


@pytest.mark.parametrize("answer,error", [
    ((400, {"error": "access_denied"}), "Authentication failed: xai device authorization denied"),
    ((400, {"error": "expired_token"}), "Authentication failed: xai device code expired"),
    ((400, {"error": "invalid_grant", "error_description": "bad code"}),
     "Authentication failed: xai device token error: invalid_grant: bad code"),
    ((200, {"token_type": "Bearer"}), "Authentication failed: xai device token response missing access_token"),
    ((200, b"[" * 100_000), "Authentication failed: xai device token: parse response"),  # read with limits
], ids=["denied", "expired", "other", "no-token", "nested-too-deep"])
def test_xai_failures_carry_their_cause(fake, live, answer, error):
    server = live(xai_fake(fake, answer))
    state = server.start("/xai-auth-url")["state"]
    assert server.settled(state) == {"status": "error", "error": error}
    assert not list(server.auth_dir.glob("xai-*.json"))


# =====================================================================================
# kimi: device flow with the X-Msh device headers
# =====================================================================================

def kimi_fake(fake, *token_answers, device=None):
    fake.route("/k/device", reply(200, device or {
        "device_code": "k-dev-1", "user_code": "KIMI-1", "verification_uri": "https://www.kimi.com/code/authorize",
        "verification_uri_complete": "https://www.kimi.com/code/authorize?user_code=KIMI-1",
        "expires_in": 900, "interval": 0.05}))
    fake.route("/k/token", sequence(*token_answers))
    return fake.endpoints_yaml({"kimi": {"device-code": "/k/device", "token": "/k/token"}})


def test_kimi_device_login_polls_and_saves_upstreams_file(fake, live):
    server = live(kimi_fake(
        fake,
        (200, {"error": "authorization_pending"}),
        (200, {"error": "slow_down"}),
        (200, {"access_token": "k-at", "refresh_token": "k-rt", "token_type": "Bearer", "expires_in": 3600,
               "scope": "kimi-code"})))
    started = server.start("/kimi-auth-url")
    assert started == {"expires_in": 900, "flow": "device", "state": started["state"], "status": "ok",
                       "url": "https://www.kimi.com/code/authorize?user_code=KIMI-1", "user_code": "KIMI-1"}
    assert started["state"].startswith("kmi-") and started["state"][4:].isdigit()
    assert server.settled(started["state"]) == {"status": "ok"}

    [device] = fake.requests_to("/k/device")
    assert device.form() == {"client_id": "17e5f671-d194-4dfb-9706-5516cb48c098"}
    device_id = device.headers["X-Msh-Device-Id"]
    assert device.headers["X-Msh-Platform"] == "CLIProxyAPI" and device.headers["X-Msh-Device-Model"]
    polls = fake.requests_to("/k/token")
    assert len(polls) == 3 and all(p.headers["X-Msh-Device-Id"] == device_id for p in polls)
    assert polls[0].form() == {"client_id": "17e5f671-d194-4dfb-9706-5516cb48c098", "device_code": "k-dev-1",
                               "grant_type": "urn:ietf:params:oauth:grant-type:device_code"}
    [path] = server.auth_dir.glob("kimi-*.json")
    assert path.name[len("kimi-"):-len(".json")].isdigit()
    data = json.loads(path.read_text())
    assert list(data) == ["access_token", "device_id", "disabled", "expired", "refresh_token", "scope",
                          "timestamp", "token_type", "type"]
    assert {k: data[k] for k in ("access_token", "refresh_token", "token_type", "scope", "device_id", "type")} == {
        "access_token": "k-at", "refresh_token": "k-rt", "token_type": "Bearer", "scope": "kimi-code",
        "device_id": device_id, "type": "kimi"}
    assert data["expired"].endswith("Z") and isinstance(data["timestamp"], int)
    [entry] = server.call("GET", "/auth-files").json()["files"]
    assert entry["type"] == "kimi"


@pytest.mark.parametrize("provider", ["kimi", "xai"])
def test_a_device_login_told_to_slow_down_polls_less_often(fake, live, monkeypatch, provider):
    """RFC 8628: `slow_down` adds 5 s to the interval for the rest of the login (here 0.4 s,
    so that the test is quick); `authorization_pending` keeps it."""
    from cliproxy_mgmt.providers.kimi.login import KimiLogin
    from cliproxy_mgmt.providers.xai.login import XAILogin

    starter, make, path = {"kimi": (KimiLogin, kimi_fake, "/k/token"),
                           "xai": (XAILogin, xai_fake, "/x/token")}[provider]
    monkeypatch.setattr(starter, "slow_down_step", 0.4)
    server = live(make(fake, (200, {"error": "authorization_pending"}), (400, {"error": "slow_down"}),
                       (400, {"error": "authorization_pending"}), (400, {"error": "access_denied"})))
    assert server.settled(server.start(f"/{provider}-auth-url")["state"])["status"] == "error"
    at = [r.at for r in fake.requests_to(path)]
    assert len(at) == 4
    assert at[1] - at[0] < 0.3          # the interval asked for: 0.05 s
    assert at[2] - at[1] >= 0.45        # slowed down: 0.05 + 0.4 s
    assert at[3] - at[2] >= 0.45        # and it stays slower


def test_kimi_without_user_code_or_expiry_answers_only_what_it_knows(fake, live):
    server = live(kimi_fake(fake, (200, {"error": "access_denied"}),
                            device={"device_code": "d", "verification_uri": "https://v", "interval": 0.05}))
    started = server.start("/kimi-auth-url")
    assert set(started) == {"flow", "state", "status", "url"}
    assert server.settled(started["state"]) == {"status": "error",
                                                "error": "Authentication failed: kimi: access denied by user"}


@pytest.mark.parametrize("status,body", [(500, {"error": "down"}), (200, {"user_code": "no-device-code"})],
                         ids=["upstream-500", "no-device-code"])
def test_kimi_device_code_failure_is_500(fake, live, status, body):
    fake.route("/k/device", reply(status, body))
    server = live(fake.endpoints_yaml({"kimi": {"device-code": "/k/device", "token": "/k/token"}}))
    r = server.call("GET", "/kimi-auth-url")
    assert (r.status_code, r.json()) == (500, {"error": "failed to generate authorization url"})


# =====================================================================================
# antigravity: Google OAuth, user info, Code Assist project (loadCodeAssist / onboardUser)
# =====================================================================================

AG_PATHS = {"authorize": "/ag/auth", "token": "/ag/token", "userinfo": "/ag/userinfo",
            "code-assist": "/ag/v1internal", "onboard": "/ag-daily/v1internal"}


def antigravity_fake(fake, *, load=None, onboard=None, userinfo=(200, {"email": EMAIL})):
    fake.route("/ag/auth", authorize_redirect(code="ag-code"))
    fake.route("/ag/token", reply(200, {"access_token": "ag-at", "refresh_token": "ag-rt", "expires_in": 3599,
                                        "token_type": "Bearer"}))
    fake.route("/ag/userinfo", reply(*userinfo))
    fake.route("/ag/v1internal:loadCodeAssist", reply(200, load if load is not None else {
        "cloudaicompanionProject": "ag-proj-1"}))
    fake.route("/ag-daily/v1internal:onboardUser", sequence(*(onboard or [(500, {})])))


def test_antigravity_login_through_the_local_callback_listener(fake, live):
    listen = free_port()
    antigravity_fake(fake)
    server = live(fake.endpoints_yaml({"antigravity": {**AG_PATHS,
                                                       "redirect-uri": f"http://localhost:{listen}/oauth-callback"}}))
    started = server.start("/antigravity-auth-url", is_webui="true")
    query = query_of(started["url"])
    assert query == {"access_type": "offline", "prompt": "consent", "response_type": "code",
                     "client_id": "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com",
                     "redirect_uri": f"http://localhost:{listen}/oauth-callback", "state": started["state"],
                     "scope": "https://www.googleapis.com/auth/cloud-platform "
                              "https://www.googleapis.com/auth/userinfo.email "
                              "https://www.googleapis.com/auth/userinfo.profile "
                              "https://www.googleapis.com/auth/cclog "
                              "https://www.googleapis.com/auth/experimentsandconfigs"}
    page = browser().get(started["url"], timeout=10)
    assert page.url.startswith(f"{server.base}/antigravity/callback?") and "Authentication successful" in page.text
    assert server.settled(started["state"]) == {"status": "ok"}

    form = fake.requests_to("/ag/token")[0].form()
    assert form == {"code": "ag-code", "client_id": query["client_id"],
                    "client_secret": "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",
                    "redirect_uri": f"http://localhost:{listen}/oauth-callback", "grant_type": "authorization_code"}
    info = fake.requests_to("/ag/userinfo")[0]
    assert info.headers["Authorization"] == "Bearer ag-at" and info.headers["User-Agent"].startswith("antigravity/")
    assert fake.requests_to("/ag/v1internal:loadCodeAssist")[0].json() == {"metadata": {"ideType": "ANTIGRAVITY"}}
    raw = (server.auth_dir / f"antigravity-{EMAIL}.json").read_bytes()
    assert raw.endswith(b"}\n") and b": " not in raw
    data = json.loads(raw)
    assert list(data) == ["access_token", "disabled", "email", "expired", "expires_in", "project_id",
                          "refresh_token", "timestamp", "type"]
    assert {k: data[k] for k in ("access_token", "refresh_token", "email", "project_id", "expires_in", "type")} == {
        "access_token": "ag-at", "refresh_token": "ag-rt", "email": EMAIL, "project_id": "ag-proj-1",
        "expires_in": 3599, "type": "antigravity"}
    wait_until(lambda: refused(listen))
    [entry] = server.call("GET", "/auth-files").json()["files"]
    assert (entry["type"], entry["email"]) == ("antigravity", EMAIL)


def test_antigravity_onboards_when_code_assist_names_no_project(fake, live):
    antigravity_fake(fake, load={"allowedTiers": [{"id": "legacy-tier"}, {"id": "std-tier", "isDefault": True}]},
                     onboard=[(200, {"done": True, "response": {"cloudaicompanionProject": {"id": "ag-onb"}}})])
    server = live(fake.endpoints_yaml({"antigravity": AG_PATHS}))
    state = server.start("/antigravity-auth-url")["state"]
    r = server.call("POST", "/oauth-callback", json={"provider": "anti-gravity", "state": state, "code": "c"})
    assert r.json() == {"status": "ok"}
    assert server.settled(state) == {"status": "ok"}
    [onboard] = fake.requests_to("/ag-daily/v1internal:onboardUser")
    assert onboard.json() == {"tier_id": "std-tier", "metadata": {"ide_type": "ANTIGRAVITY", "ide_version": "2.9.1",
                                                                  "ide_name": "antigravity"}}
    assert onboard.headers["X-Goog-Api-Client"] == "gl-node/22.21.1"
    assert server.token_file(f"antigravity-{EMAIL}.json")["project_id"] == "ag-onb"


def test_antigravity_without_a_project_still_saves_the_login(fake, live):
    antigravity_fake(fake, load={}, onboard=[(403, {"error": "denied"})])
    server = live(fake.endpoints_yaml({"antigravity": AG_PATHS}))
    state = server.start("/antigravity-auth-url")["state"]
    server.call("POST", "/oauth-callback", json={"provider": "antigravity", "state": state, "code": "c"})
    assert server.settled(state) == {"status": "ok"}
    assert "project_id" not in server.token_file(f"antigravity-{EMAIL}.json")


@pytest.mark.parametrize("callback,userinfo,error", [
    ({"error": "access_denied"}, (200, {"email": EMAIL}), "Authentication failed"),
    ({"code": "c"}, (401, {"error": "no"}), "Failed to fetch user info"),
    ({"code": "c"}, (200, {"email": " "}), "Failed to fetch user info"),
], ids=["denied", "userinfo-refused", "no-email"])
def test_antigravity_failures(fake, live, callback, userinfo, error):
    antigravity_fake(fake, userinfo=userinfo)
    server = live(fake.endpoints_yaml({"antigravity": AG_PATHS}))
    state = server.start("/antigravity-auth-url")["state"]
    server.call("POST", "/oauth-callback", json={"provider": "antigravity", "state": state, **callback})
    assert server.settled(state) == {"status": "error", "error": error}
    assert not list(server.auth_dir.glob("antigravity-*.json"))


# =====================================================================================
# sessions as upstream keeps them now: status, cancel, the keyless callback
# =====================================================================================

@pytest.mark.parametrize("login,polls,error", [
    ("kimi", 0, "Authentication failed: kimi: device code expired"),
    ("qwen", 0, "Authentication failed"),
    ("xai", 1, "Authentication failed: xai device code expired"),  # xai asks once at once
])
def test_a_device_login_ends_when_its_code_would_expire_before_the_next_poll(fake, live, login, polls, error):
    """The code expires in 0.2 s, the provider asks for 5 s between polls: the login fails at
    once (the user has no time left), instead of sleeping past the code's end."""
    pending = (400, {"error": "authorization_pending"})
    device = {"device_code": "d", "user_code": "U", "verification_uri": "https://v", "expires_in": 0.2,
              "interval": 5}
    fake.route(f"/{login}/device", reply(200, device))
    fake.route(f"/{login}/token", sequence(pending))
    server = live(fake.endpoints_yaml({login: {"device-code": f"/{login}/device", "token": f"/{login}/token"}}))
    started = time.monotonic()
    state = server.start(f"/{login}-auth-url")["state"]
    assert server.settled(state) == {"status": "error", "error": error}
    assert time.monotonic() - started < 5
    assert len(fake.requests_to(f"/{login}/token")) == polls
    assert not list(server.auth_dir.glob(f"{login}-*.json"))


def test_a_cancelled_device_login_stops_and_saves_nothing(fake, live):
    server = live(kimi_fake(fake, (200, {"error": "authorization_pending"})))
    state = server.start("/kimi-auth-url")["state"]
    wait_until(lambda: len(fake.requests_to("/k/token")) >= 2)
    r = server.call("DELETE", "/oauth-session", params={"state": state})
    assert (r.status_code, r.json()) == (200, {"status": "ok", "cancelled": True})
    assert server.call("GET", "/get-auth-status", params={"state": state}).json() == {
        "status": "error", "error": "unknown or expired state"}
    fake.route("/k/token", reply(200, {"access_token": "too-late"}))  # the user approves after all
    polls = len(fake.requests_to("/k/token"))
    time.sleep(0.3)
    assert len(fake.requests_to("/k/token")) <= polls + 1  # the flow stopped
    assert not list(server.auth_dir.glob("kimi-*.json"))
    assert server.call("DELETE", "/oauth-session", params={"state": state}).json() == {
        "status": "ok", "cancelled": False}


@pytest.mark.parametrize("params,error", [({}, "missing state"), ({"state": " "}, "missing state"),
                                          ({"state": "a/b"}, "invalid state")])
def test_cancel_needs_a_valid_state(live, params, error):
    r = live().call("DELETE", "/oauth-session", params=params)
    assert (r.status_code, r.json()) == (400, {"status": "error", "error": error})


def test_the_redirect_itself_completes_a_login_without_the_management_key(fake, live):
    fake.route("/claude/token", reply(200, anthropic_tokens()))
    server = live(fake.endpoints_yaml({"anthropic": {"token": "/claude/token"}}))
    state = server.start("/anthropic-auth-url")["state"]
    keyless = browser().get(f"{server.base}/v0/management/oauth-callback",
                            params={"state": state, "code": "c"}, timeout=10)  # provider taken from the session
    assert (keyless.status_code, keyless.json()) == (200, {"status": "ok"})
    assert "X-CPA-VERSION" not in keyless.headers
    assert server.settled(state) == {"status": "ok"}
    assert server.settled(state) == {"status": "ok"}  # completed logins keep answering ok
    again = browser().post(f"{server.base}/v0/management/oauth-callback",
                           json={"state": state, "code": "c"}, timeout=10)
    assert (again.status_code, again.json()) == (409, {"status": "error", "error": "oauth flow is already completed"})
    unknown = browser().get(f"{server.base}/v0/management/oauth-callback",
                            params={"state": "f" * 32, "error_description": "denied"}, timeout=10)
    assert (unknown.status_code, unknown.json()) == (404, {"status": "error", "error": "unknown or expired state"})


def test_the_keyless_callback_is_404_while_the_management_api_is_off(make_app, tmp_path):
    app = make_app(config_text(tmp_path / "auths", key=""))
    r = app.test_client().get("/v0/management/oauth-callback", query_string={"state": "s", "code": "c"})
    assert r.status_code == 404
