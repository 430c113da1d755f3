"""Antigravity: the Google OAuth login with Code Assist project discovery (upstream's
`RequestAntigravityToken`) and its token files (`type: antigravity`).

Browser flow: the provider redirects to `http://localhost:51121/oauth-callback` (the
`is_webui` listener forwards it to `/antigravity/callback`), or the user pastes that URL
into `POST /oauth-callback`. The code is exchanged with the public client secret, the
account's email read from Google's user info, and the Code Assist project looked up
(loadCodeAssist, else onboardUser); a project that cannot be found is left out of the file,
as upstream does.
"""

from __future__ import annotations

import logging

import requests

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.oauth import Credential, LoginError, OAuthStarter, rfc3339_in, unix_ms
from cliproxy_mgmt.records import AuthFileType
from cliproxy_mgmt.safeload import load_json

log = logging.getLogger(__name__)

# The public Antigravity OAuth client (an installed app: the secret is not a secret).
CLIENT_ID = "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com"
CLIENT_SECRET = "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"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform",
          "https://www.googleapis.com/auth/userinfo.email",
          "https://www.googleapis.com/auth/userinfo.profile",
          "https://www.googleapis.com/auth/cclog",
          "https://www.googleapis.com/auth/experimentsandconfigs"]
VERSION = "2.9.1"   # upstream's fallback Antigravity version (it is not fetched here)
USER_AGENT = f"antigravity/hub/{VERSION} darwin/arm64"
ONBOARD_HEADERS = {"User-Agent": f"{USER_AGENT} google-api-nodejs-client/10.3.0",
                   "X-Goog-Api-Client": "gl-node/22.21.1"}
EXCHANGE_FAILED = "Failed to exchange token"
USER_INFO_FAILED = "Failed to fetch user info"


class NoProject(Exception):
    """The Code Assist project could not be found (the login goes on without one)."""


def project_of(data) -> str:
    """`cloudaicompanionProject`, `projectId` or `project`: a string or an object's `id`."""
    if not isinstance(data, dict):
        return ""
    for key in ("cloudaicompanionProject", "projectId", "project"):
        value = data.get(key)
        if isinstance(value, dict):
            value = value.get("id")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def default_tier(loaded: dict) -> str:
    """The allowed tier marked default, else the current tier, else `free-tier`."""
    for tier in loaded.get("allowedTiers") or ():
        if isinstance(tier, dict) and tier.get("isDefault") is True and str(tier.get("id") or "").strip():
            return str(tier["id"]).strip()
    current = loaded.get("currentTier")
    if isinstance(current, dict) and str(current.get("id") or "").strip():
        return str(current["id"]).strip()
    return "free-tier"


class AntigravityLogin(OAuthStarter):
    provider = "antigravity"
    name = "antigravity"
    aliases = ("anti-gravity",)
    route = "/antigravity-auth-url"
    callback_route = "/antigravity/callback"
    complete_all = False          # only this session ends (upstream)
    timeout_error = "OAuth flow timed out"
    save_error = "Failed to save token to file"
    onboard_interval, onboard_attempts = 2.0, 5
    endpoints = {
        "authorize": "https://accounts.google.com/o/oauth2/v2/auth",
        "token": "https://oauth2.googleapis.com/token",
        "userinfo": "https://www.googleapis.com/oauth2/v2/userinfo?alt=json",
        "code-assist": "https://cloudcode-pa.googleapis.com/v1internal",
        "onboard": "https://daily-cloudcode-pa.googleapis.com/v1internal",
        "redirect-uri": "http://localhost:51121/oauth-callback",
    }

    def authorize(self, flow) -> str:
        params = {
            "access_type": "offline", "client_id": CLIENT_ID, "prompt": "consent",
            "redirect_uri": flow.endpoint("redirect-uri"), "response_type": "code",
            "scope": " ".join(SCOPES), "state": flow.state,
        }
        return flow.authorize_url(params)

    def complete(self, flow) -> Credential:
        callback = flow.wait_callback()
        if callback.error.strip():
            raise LoginError("Authentication failed")
        if callback.state.strip() and callback.state.strip() != flow.state:
            raise LoginError("Authentication failed: state mismatch")
        code = callback.code.strip()
        if not code:
            raise LoginError("Authentication failed: code not found")
        tokens = self._exchange(flow, code)
        access = str(tokens.get("access_token") or "").strip()
        if not access:
            raise LoginError(EXCHANGE_FAILED)
        email = self._email(flow, access)
        try:
            project = self._project(flow, access)
        except NoProject as exc:
            log.warning("antigravity: failed to fetch project ID: %s", exc)
            project = ""
        expires_in = tokens.get("expires_in")
        expires_in = expires_in if isinstance(expires_in, int) and not isinstance(expires_in, bool) else 0
        data = {"access_token": str(tokens.get("access_token")), "disabled": False, "email": email,
                "expired": rfc3339_in(expires_in), "expires_in": expires_in}
        if project:
            data["project_id"] = project
        data.update({"refresh_token": str(tokens.get("refresh_token") or ""), "timestamp": unix_ms(),
                     "type": "antigravity"})
        return Credential(f"antigravity-{email}.json", data)

    def _exchange(self, flow, code: str) -> dict:
        form = {"code": code, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "redirect_uri": flow.endpoint("redirect-uri"), "grant_type": "authorization_code"}
        try:
            resp = flow.http.post(flow.endpoint("token"), data=form)
            body = load_json(resp.content) if 200 <= resp.status_code < 300 else None
        except (requests.RequestException, ValueError):
            body = None
        if not isinstance(body, dict):
            raise LoginError(EXCHANGE_FAILED)
        return body

    def _email(self, flow, access: str) -> str:
        headers = {"Authorization": f"Bearer {access}", "User-Agent": USER_AGENT}
        try:
            resp = flow.http.get(flow.endpoint("userinfo"), headers=headers)
            body = load_json(resp.content) if 200 <= resp.status_code < 300 else None
        except (requests.RequestException, ValueError):
            body = None
        email = body.get("email") if isinstance(body, dict) else None
        if not isinstance(email, str) or not email.strip():
            raise LoginError(USER_INFO_FAILED)
        return email.strip()

    def _call(self, flow, url: str, body: dict, headers: dict) -> tuple[int, object]:
        try:
            resp = flow.http.post(url, json=body, headers={"Accept": "*/*", **headers})
        except requests.RequestException as exc:
            raise NoProject(f"execute request: {exc}") from None
        try:
            return resp.status_code, load_json(resp.content)
        except ValueError:
            if 200 <= resp.status_code < 300:
                raise NoProject("decode response") from None
            return resp.status_code, None

    def _project(self, flow, access: str) -> str:
        """loadCodeAssist; without a project there, onboardUser until it is done."""
        auth = {"Authorization": f"Bearer {access}"}
        status, loaded = self._call(flow, flow.endpoint("code-assist") + ":loadCodeAssist",
                                    {"metadata": {"ideType": "ANTIGRAVITY"}}, {**auth, "User-Agent": USER_AGENT})
        if not 200 <= status < 300 or not isinstance(loaded, dict):
            raise NoProject(f"loadCodeAssist: status {status}")
        project = project_of(loaded)
        if project:
            return project
        body = {"tier_id": default_tier(loaded),
                "metadata": {"ide_type": "ANTIGRAVITY", "ide_version": VERSION, "ide_name": "antigravity"}}
        for attempt in range(self.onboard_attempts):
            if attempt:
                flow.sleep(self.onboard_interval)
            status, result = self._call(flow, flow.endpoint("onboard") + ":onboardUser", body,
                                        {**auth, **ONBOARD_HEADERS})
            if status != 200:
                raise NoProject(f"onboardUser: http {status}")
            if isinstance(result, dict) and result.get("done") is True:
                project = project_of(result.get("response"))
                if not project:
                    raise NoProject("no project_id in response")
                return project
        raise NoProject(f"onboard user did not complete after {self.onboard_attempts} attempts")


@hookimpl
def register_oauth_starters():
    return [AntigravityLogin()]


@hookimpl
def register_auth_file_types():
    from .refresh import access_token  # refresh.py imports this module's client
    return [AuthFileType(type="antigravity", provider="antigravity", access_token=access_token)]
