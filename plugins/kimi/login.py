"""Kimi: the device-code login (RFC 8628, as upstream's Kimi Code client) and its token files
(`type: kimi`, `kimi-<unix ms>.json`).

Every request carries upstream's `X-Msh-*` device headers with a device id made for the
login, which the token file keeps. The poll interval is the one the provider asks for
(5 s when it names none); the first poll comes one interval after the start, as upstream.
`slow_down` adds 5 s to the interval, as RFC 8628 asks (upstream polls on at the same pace).
"""

from __future__ import annotations

import platform
import socket
import uuid
from datetime import datetime, timedelta, timezone

import requests

from cliproxy_mgmt import __version__, hookimpl
from cliproxy_mgmt.errors import ApiError
from cliproxy_mgmt.oauth import (Credential, DevicePace, LoginError, OAuthStarter, clock_state,
                                 positive, unix_ms)
from cliproxy_mgmt.records import AuthFileType
from cliproxy_mgmt.safeload import load_json

CLIENT_ID = "17e5f671-d194-4dfb-9706-5516cb48c098"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FAILED = "Authentication failed"
_OS_NAMES = {"Darwin": "macOS", "Windows": "Windows", "Linux": "Linux"}
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class DeviceError(Exception):
    """Why the device flow failed; the session error is `Authentication failed: <why>`."""


def device_headers(device_id: str) -> dict:
    """Upstream's `X-Msh-*` headers: platform, version, host name, OS and architecture, device id."""
    system = platform.system()
    machine = platform.machine()
    model = f"{_OS_NAMES.get(system, system.lower())} {_ARCHES.get(machine.lower(), machine.lower())}"
    return {"X-Msh-Platform": "CLIProxyAPI", "X-Msh-Version": __version__,
            "X-Msh-Device-Name": socket.gethostname() or "unknown", "X-Msh-Device-Model": model,
            "X-Msh-Device-Id": device_id, "Accept": "application/json"}


class KimiLogin(OAuthStarter):
    provider = "kimi"
    name = "kimi"
    route = "/kimi-auth-url"
    complete_all = False          # only this session ends (upstream)
    default_interval, slow_down_step = 5.0, 5.0
    max_wait = 900.0              # upstream: 15 minutes
    endpoints = {
        "device-code": "https://auth.kimi.com/api/oauth/device_authorization",
        "token": "https://auth.kimi.com/api/oauth/token",
    }
    extra_fields = {"flow": {"type": "string"}, "user_code": {"type": "string"}, "expires_in": {"type": "integer"}}

    def new_state(self) -> str:
        return clock_state("kmi")

    def authorize(self, flow) -> str:
        device_id = str(uuid.uuid4())
        headers = device_headers(device_id)
        device = flow.post_json("device-code", data={"client_id": CLIENT_ID}, headers=headers)
        if device is None or not str(device.get("device_code") or "").strip():
            raise ApiError(500, "failed to generate authorization url")
        expires = device.get("expires_in")
        flow.values.update(
            device_id=device_id, headers=headers, device_code=str(device["device_code"]).strip(),
            user_code=str(device.get("user_code") or "").strip(),
            expires_in=int(expires) if positive(expires) else 0,
            pace=DevicePace.of(device, default_interval=self.default_interval, max_wait=self.max_wait))
        return str(device.get("verification_uri_complete") or device.get("verification_uri") or "")

    def start_extras(self, flow) -> dict:
        extras = {"flow": "device"}
        if flow.values["user_code"]:
            extras["user_code"] = flow.values["user_code"]
        if flow.values["expires_in"]:
            extras["expires_in"] = flow.values["expires_in"]
        return extras

    def complete(self, flow) -> Credential:
        try:
            tokens = self._poll(flow)
        except DeviceError as exc:
            raise LoginError(f"{FAILED}: {exc}") from None
        data = {"access_token": tokens["access_token"], "device_id": flow.values["device_id"], "disabled": False}
        expires = tokens.get("expires_in")
        if positive(expires):
            moment = datetime.now(timezone.utc) + timedelta(seconds=int(expires))
            data["expired"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        now = unix_ms()  # the file's name and its `timestamp` are the same moment
        data.update({"refresh_token": str(tokens.get("refresh_token") or ""), "scope": str(tokens.get("scope") or ""),
                     "timestamp": now, "token_type": str(tokens.get("token_type") or ""), "type": "kimi"})
        return Credential(f"kimi-{now}.json", data, indent=True)

    def _poll(self, flow) -> dict:
        """Poll every interval until the user decides; Kimi answers 200 for pending too."""
        form = {"client_id": CLIENT_ID, "device_code": flow.values["device_code"], "grant_type": DEVICE_GRANT}
        pace = flow.values["pace"]
        while True:
            pace.wait(flow, DeviceError("kimi: device code expired"))
            try:
                resp = flow.http.post(flow.endpoint("token"), data=form, headers=flow.values["headers"])
                body = load_json(resp.content)
            except requests.RequestException as exc:
                raise DeviceError(f"kimi: token request failed: {exc}") from None
            except ValueError:
                raise DeviceError("kimi: failed to parse token response") from None
            body = body if isinstance(body, dict) else {}
            error = str(body.get("error") or "")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                pace.interval += self.slow_down_step
                continue
            if error == "expired_token":
                raise DeviceError("kimi: device code expired")
            if error == "access_denied":
                raise DeviceError("kimi: access denied by user")
            if error:
                raise DeviceError(f"kimi: OAuth error: {error} - {body.get('error_description') or ''}")
            if not body.get("access_token"):
                raise DeviceError("kimi: empty access token in response")
            return body


@hookimpl
def register_oauth_starters():
    return [KimiLogin()]


@hookimpl
def register_auth_file_types():
    return [AuthFileType(type="kimi", provider="kimi")]
