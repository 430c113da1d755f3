"""xAI (Grok): the device-code login and its token files (`type: xai`).

Upstream resolves the device and token endpoints by OIDC discovery on auth.x.ai and accepts
only https endpoints on x.ai. Here either endpoint can also be set directly
(`oauth-endpoints.xai.device-code` / `.token`: no discovery for it), and endpoints that a
discovery URL set in config.yaml returns may also sit on that URL's own scheme and host (the
gateway the operator named). The poll interval is the one the provider asks for (5 s when it
names none); `slow_down` adds 5 s, as upstream.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import requests

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.errors import ApiError
from cliproxy_mgmt.oauth import (Credential, DevicePace, LoginError, OAuthStarter, clock_state,
                                 jwt_claims, positive, unix_ms)
from cliproxy_mgmt.records import AuthFileType
from cliproxy_mgmt.safeload import load_json

CLIENT_ID = "b1a00492-073a-47ea-816f-4c329264a828"
SCOPE = "openid profile email offline_access grok-cli:access api:access"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
API_BASE_URL = "https://api.x.ai/v1"
DISCOVERY = "https://auth.x.ai/.well-known/openid-configuration"
START_FAILED = "failed to start device authorization flow"
FAILED = "Authentication failed"


class DeviceError(Exception):
    """Why the device flow failed; the session error is `Authentication failed: <why>`."""


def utc_rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_name(email: str, subject: str) -> str:
    """Upstream's `xai-<email>.json`, else `xai-<sub>.json`, else `xai-<unix ms>.json`; other
    characters than letters, digits and `@._-` become `-`."""
    for value in (email, subject):
        segment = re.sub(r"[^A-Za-z0-9@._-]", "-", value.strip()).strip("-")
        if segment:
            return f"xai-{segment}.json"
    return f"xai-{unix_ms()}.json"


class XAILogin(OAuthStarter):
    provider = "xai"
    name = "xai"
    aliases = ("x-ai", "x.ai", "grok")
    route = "/xai-auth-url"
    complete_all = False          # only this session ends (upstream)
    default_interval, slow_down_step = 5.0, 5.0
    max_wait = 1800.0             # upstream's MaxPollDuration: 30 minutes
    endpoints = {"discovery": DISCOVERY, "device-code": "", "token": ""}
    extra_fields = {"flow": {"type": "string"}, "user_code": {"type": "string"}, "expires_in": {"type": "integer"}}

    def new_state(self) -> str:
        return clock_state("xai")

    def _discover(self, flow) -> dict:
        """The device and token endpoints named by OIDC discovery, checked (DeviceError)."""
        url = flow.endpoint("discovery")
        try:
            resp = flow.http.get(url, headers={"Accept": "application/json"})
            body = load_json(resp.content) if resp.status_code == 200 else None
        except (requests.RequestException, ValueError) as exc:
            raise DeviceError(f"xai discovery: request failed: {exc}") from None
        if not isinstance(body, dict):
            raise DeviceError("xai discovery failed")
        trusted = urlsplit(url) if url != DISCOVERY else None
        found = {}
        for field, name in (("device_authorization_endpoint", "device-code"), ("token_endpoint", "token")):
            value = body.get(field)
            found[name] = _checked(value.strip() if isinstance(value, str) else "", field, trusted)
        return found

    def authorize(self, flow) -> str:
        device_url, token_url = flow.endpoint("device-code"), flow.endpoint("token")
        try:
            if not (device_url and token_url):
                found = self._discover(flow)
                device_url, token_url = device_url or found["device-code"], token_url or found["token"]
        except DeviceError:
            raise ApiError(500, START_FAILED) from None
        device = flow.json_object("POST", device_url, data={"client_id": CLIENT_ID, "scope": SCOPE}) or {}
        text = {k: str(device.get(k) or "").strip() for k in
                ("device_code", "user_code", "verification_uri", "verification_uri_complete")}
        if not text["device_code"] or not text["user_code"] or not (
                text["verification_uri"] or text["verification_uri_complete"]):
            raise ApiError(500, START_FAILED)
        expires = device.get("expires_in")
        flow.values.update(
            device_code=text["device_code"], user_code=text["user_code"], token_url=token_url,
            pace=DevicePace.of(device, default_interval=self.default_interval, max_wait=self.max_wait),
            expires_in=int(expires) if positive(expires) else int(self.max_wait))
        return text["verification_uri_complete"] or text["verification_uri"]

    def start_extras(self, flow) -> dict:
        return {"flow": "device", "user_code": flow.values["user_code"], "expires_in": flow.values["expires_in"]}

    def complete(self, flow) -> Credential:
        try:
            tokens = self._poll(flow)
        except DeviceError as exc:
            raise LoginError(f"{FAILED}: {exc}") from None
        claims = jwt_claims(tokens["id_token"])
        email, subject = (claims.get(k).strip() if isinstance(claims.get(k), str) else "" for k in ("email", "sub"))
        expires_in = tokens["expires_in"]
        data = {
            "access_token": tokens["access_token"], "auth_kind": "oauth", "base_url": API_BASE_URL,
            "disabled": False, "email": email,
            "expired": utc_rfc3339(datetime.now() + timedelta(seconds=expires_in)) if expires_in > 0 else "",
            "expires_in": expires_in, "id_token": tokens["id_token"], "last_refresh": utc_rfc3339(datetime.now()),
            "refresh_token": tokens["refresh_token"], "sub": subject, "token_endpoint": flow.values["token_url"],
            "token_type": tokens["token_type"], "type": "xai",
        }
        if not email:
            del data["email"]
        if not subject:
            del data["sub"]
        return Credential(file_name(email, subject), data, indent=True)

    def _poll(self, flow) -> dict:
        """Poll the token endpoint (at once, then every interval) until the user decides."""
        form = {"grant_type": DEVICE_GRANT, "device_code": flow.values["device_code"], "client_id": CLIENT_ID}
        pace, first = flow.values["pace"], True
        while True:
            if not first:
                pace.wait(flow, DeviceError("xai device code expired"))
            first = False
            try:
                resp = flow.http.post(flow.values["token_url"], data=form, headers={"Accept": "application/json"})
                body = load_json(resp.content)
            except requests.RequestException as exc:
                raise DeviceError(f"xai device token request failed: {exc}") from None
            except ValueError:
                raise DeviceError("xai device token: parse response") from None
            body = body if isinstance(body, dict) else {}
            error = str(body.get("error") or "")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                pace.interval += self.slow_down_step
                continue
            if error == "expired_token":
                raise DeviceError("xai device code expired")
            if error == "access_denied":
                raise DeviceError("xai device authorization denied")
            if error:
                detail = str(body.get("error_description") or "").strip()
                raise DeviceError(f"xai device token error: {error}" + (f": {detail}" if detail else ""))
            if resp.status_code != 200:
                raise DeviceError(f"xai device token request failed with status {resp.status_code}")
            access = str(body.get("access_token") or "").strip()
            if not access:
                raise DeviceError("xai device token response missing access_token")
            expires = body.get("expires_in")
            return {"access_token": access, "refresh_token": str(body.get("refresh_token") or "").strip(),
                    "id_token": str(body.get("id_token") or "").strip(),
                    "token_type": str(body.get("token_type") or "").strip(),
                    "expires_in": int(expires) if positive(expires) else 0}


def _checked(url: str, field: str, trusted) -> str:
    """A discovered endpoint: https on x.ai (upstream), or on the configured discovery URL's
    own scheme and host."""
    if not url:
        raise DeviceError(f"xai discovery {field} is empty")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and (host == "x.ai" or host.endswith(".x.ai")):
        return url
    if trusted is not None and (parts.scheme, parts.netloc) == (trusted.scheme, trusted.netloc):
        return url
    raise DeviceError(f"xai discovery {field} is not an https endpoint on x.ai")


@hookimpl
def register_oauth_starters():
    return [XAILogin()]


@hookimpl
def register_auth_file_types():
    return [AuthFileType(type="xai", provider="xai")]
