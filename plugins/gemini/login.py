"""Gemini CLI: the Google OAuth login with Code Assist onboarding and its token files
(`type: gemini`, listed as `gemini-cli`)."""

from __future__ import annotations

import time
from urllib.parse import quote

import requests

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.oauth import Credential, LoginError, OAuthStarter, clock_state, rfc3339_in
from cliproxy_mgmt.records import AuthFileType
from cliproxy_mgmt.safeload import load_json

# The public gemini-cli OAuth client (an installed app: the secret is not a secret).
CLIENT_ID = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
CLIENT_SECRET = "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"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform",
          "https://www.googleapis.com/auth/userinfo.email",
          "https://www.googleapis.com/auth/userinfo.profile"]
METADATA = {"ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}
CODE_ASSIST_HEADERS = {
    "User-Agent": "google-api-nodejs-client/9.15.1",
    "X-Goog-Api-Client": "gl-node/22.17.0",
    "Client-Metadata": "ideType=IDE_UNSPECIFIED,platform=PLATFORM_UNSPECIFIED,pluginType=GEMINI",
}
CLOUD_AI_API = "cloudaicompanion.googleapis.com"
FREE_TIERS = ("free-tier", "legacy-tier")
ONBOARDING = "Failed to complete Gemini CLI onboarding"


class Step(Exception):
    """A failed setup step (mapped to the session error of the phase it happened in)."""


class GeminiCLILogin(OAuthStarter):
    provider = "gemini"
    name = "gemini"
    aliases = ("google", "gemini-cli")  # gemini-cli: the start route's key (the UI's card name)
    route = "/gemini-cli-auth-url"
    callback_route = "/google/callback"
    timeout_error = "OAuth flow timed out"
    save_error = "Failed to save token to file"
    params = (("project_id", "string", "a Google Cloud project, ALL, GOOGLE_ONE, or empty: the first one"),)
    onboard_interval, onboard_attempts = 5.0, 30          # onboardUser until done
    google_one_interval, google_one_timeout = 2.0, 30.0   # GOOGLE_ONE auto-discovery
    endpoints = {
        "authorize": "https://accounts.google.com/o/oauth2/auth",
        "token": "https://oauth2.googleapis.com/token",
        "userinfo": "https://www.googleapis.com/oauth2/v1/userinfo?alt=json",
        "projects": "https://cloudresourcemanager.googleapis.com/v1/projects",
        "code-assist": "https://cloudcode-pa.googleapis.com/v1internal",
        "service-usage": "https://serviceusage.googleapis.com/v1",
        "redirect-uri": "http://localhost:8085/oauth2callback",
    }

    def new_state(self) -> str:
        return clock_state("gem")

    def authorize(self, flow) -> str:
        flow.values["project"] = flow.query.get("project_id", "").strip()
        params = {
            "access_type": "offline", "client_id": CLIENT_ID, "prompt": "consent",
            "redirect_uri": flow.endpoint("redirect-uri"), "response_type": "code",
            "scope": " ".join(SCOPES), "state": flow.state,
        }
        return flow.authorize_url(params)

    def complete(self, flow) -> Credential:
        callback = flow.wait_callback()  # upstream does not compare the state here
        if callback.error:
            raise LoginError("Authentication failed")
        if not callback.code:
            raise LoginError("Authentication failed: code not found")
        token = self._exchange(flow, callback.code)
        flow.http.headers["Authorization"] = f"Bearer {token['access_token']}"
        email = self._email(flow)
        project, auto, checked = self._setup(flow, flow.values["project"])
        many = "," in project
        return Credential(f"gemini-{email}-{'all' if many else project}.json", {
            "token": token, "project_id": project, "email": email,
            "auto": auto, "checked": checked, "type": "gemini",
        })

    # -- steps --------------------------------------------------------------------
    def _exchange(self, flow, code: str) -> dict:
        form = {"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET, "redirect_uri": flow.endpoint("redirect-uri")}
        got = flow.post_json("token", data=form)
        if not got or not got.get("access_token"):
            raise LoginError("Failed to exchange token")
        token = {"access_token": got["access_token"], "token_type": got.get("token_type") or "Bearer",
                 "refresh_token": got.get("refresh_token") or "",
                 "expiry": rfc3339_in(got.get("expires_in"))}
        if got.get("expires_in") is not None:
            token["expires_in"] = got["expires_in"]
        token.update(token_uri=flow.endpoint("token"), client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                     scopes=list(SCOPES), universe_domain="googleapis.com")
        return token

    def _email(self, flow) -> str:
        try:
            resp = flow.http.get(flow.endpoint("userinfo"))
        except requests.RequestException:
            raise LoginError("Failed to execute request") from None
        if resp.status_code != 200:
            raise LoginError(f"Get user info request failed with status {resp.status_code}")
        try:
            email = load_json(resp.content).get("email")
        except (ValueError, AttributeError):
            email = None
        if not isinstance(email, str) or not email:
            raise LoginError("Could not get user info")
        return email

    def _setup(self, flow, requested: str) -> tuple[str, bool, bool]:
        """(project_id, auto, checked) for the requested project (empty, ALL, GOOGLE_ONE or an id)."""
        if requested.upper() == "GOOGLE_ONE":
            try:
                project = self._onboard(flow, "", interval=self.google_one_interval,
                                        deadline=time.monotonic() + self.google_one_timeout)
            except Step:
                raise LoginError("Google One auto-discovery failed") from None
            if not project:
                raise LoginError("Google One auto-discovery returned empty project ID")
            return project, False, self._check_api(flow, project)
        if requested.upper() == "ALL":
            try:
                listed = list(dict.fromkeys(self._projects(flow)))
                if not listed:
                    raise Step("no projects")
                done = list(dict.fromkeys(self._onboard(flow, p) for p in listed))
            except Step:
                raise LoginError(ONBOARDING) from None
            for project in done:
                self._check_api(flow, project)
            return ",".join(done), False, True
        auto = not requested
        try:
            if auto:
                listed = self._projects(flow)
                requested = listed[0] if listed else ""  # none: let onboarding pick one
            project = self._onboard(flow, requested)
        except Step:
            raise LoginError(ONBOARDING) from None
        if not project:
            raise LoginError("Failed to resolve project ID")
        return project, auto, self._check_api(flow, project)

    def _call(self, flow, method: str, url: str, body=None, headers=None) -> dict:
        try:
            resp = flow.http.request(method, url, json=body, headers=headers)
            data = load_json(resp.content) if resp.content else {}
        except (requests.RequestException, ValueError) as exc:
            raise Step(str(exc)) from None
        if resp.status_code not in (200, 201):
            raise Step(f"{url}: status {resp.status_code}")
        return data if isinstance(data, dict) else {}

    def _projects(self, flow) -> list[str]:
        data = self._call(flow, "GET", flow.endpoint("projects"))
        return [p["projectId"] for p in data.get("projects") or []
                if isinstance(p, dict) and isinstance(p.get("projectId"), str) and p["projectId"]]

    def _onboard(self, flow, requested: str, *, interval: float | None = None, deadline: float | None = None) -> str:
        """loadCodeAssist, then onboardUser until done; the project the account ends up on."""
        base = flow.endpoint("code-assist")
        load_body = {"metadata": METADATA}
        if requested:
            load_body["cloudaicompanionProject"] = requested
        loaded = self._call(flow, "POST", f"{base}:loadCodeAssist", load_body, CODE_ASSIST_HEADERS)
        tiers = [t for t in loaded.get("allowedTiers") or [] if isinstance(t, dict)]
        tier = next((t.get("id") for t in tiers if t.get("isDefault") and t.get("id")), "legacy-tier")
        project = requested or _project_id(loaded.get("cloudaicompanionProject"))
        body = {"tierId": tier, "metadata": METADATA}
        if project:
            body["cloudaicompanionProject"] = project
        interval = self.onboard_interval if interval is None else interval
        for attempt in range(self.onboard_attempts):
            result = self._call(flow, "POST", f"{base}:onboardUser", body, CODE_ASSIST_HEADERS)
            if result.get("done"):
                returned = _project_id((result.get("response") or {}).get("cloudaicompanionProject"))
                free = tier in FREE_TIERS or requested.startswith("gen-lang-client-")
                # An explicit project is kept unless the backend moved a free user elsewhere.
                if returned and (not requested or free):
                    return returned
                if project:
                    return project
                raise Step("project selection required")
            if deadline is not None and time.monotonic() + interval > deadline:
                break
            flow.sleep(interval)
        raise Step("onboarding did not finish")

    def _check_api(self, flow, project: str) -> bool:
        """Make sure the Cloud AI Companion API is enabled for `project`."""
        url = f"{flow.endpoint('service-usage')}/projects/{quote(project, safe='')}/services/{CLOUD_AI_API}"
        try:
            resp = flow.http.get(url)
            state = load_json(resp.content).get("state") if resp.status_code == 200 else None
        except (requests.RequestException, ValueError, AttributeError):
            raise LoginError("Failed to verify Cloud AI API status") from None
        if resp.status_code != 200:
            raise LoginError("Failed to verify Cloud AI API status")
        if state == "ENABLED":
            return True
        try:
            enabled = flow.http.post(f"{url}:enable", json={})
        except requests.RequestException:
            raise LoginError("Failed to verify Cloud AI API status") from None
        if enabled.status_code in (200, 201) or (
                enabled.status_code == 400 and "already enabled" in enabled.text.lower()):
            return True
        raise LoginError("Cloud AI API not enabled")


def _project_id(value) -> str:
    """`cloudaicompanionProject` is a string or `{"id": ...}`."""
    if isinstance(value, dict):
        value = value.get("id")
    return value.strip() if isinstance(value, str) else ""


def describe(data: dict, email: str) -> dict:
    """gemini-cli accounts read `email (project_id)`."""
    project = data.get("project_id")
    if email and isinstance(project, str) and project:
        return {"account": f"{email} ({project})"}
    return {}


@hookimpl
def register_oauth_starters():
    return [GeminiCLILogin()]


@hookimpl
def register_auth_file_types():
    from .refresh import access_token  # refresh.py imports this module's client

    return [AuthFileType(type="gemini", provider="gemini", listed_as="gemini-cli", describe=describe,
                         access_token=access_token)]
