"""Qwen: the device-code login and its token files."""

from __future__ import annotations


import requests

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.errors import ApiError
from cliproxy_mgmt.oauth import (Credential, DevicePace, LoginError, OAuthStarter, clock_state, now_rfc3339,
                                 pkce_pair, rfc3339_in, unix_ms)
from cliproxy_mgmt.records import AuthFileType
from cliproxy_mgmt.safeload import load_json

CLIENT_ID = "f0304373b74a44d2b584a3fb70ca9e56"
SCOPE = "openid profile email model.completion"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FAILED = "Authentication failed"


class QwenLogin(OAuthStarter):
    provider = "qwen"
    name = "qwen"
    route = "/qwen-auth-url"
    complete_all = False          # only this session ends (upstream)
    timeout_error = FAILED
    default_interval, max_interval = 5.0, 10.0
    max_wait = 300.0              # upstream: 60 polls, 5 s apart
    endpoints = {
        "device-code": "https://chat.qwen.ai/api/v1/oauth2/device/code",
        "token": "https://chat.qwen.ai/api/v1/oauth2/token",
    }

    def new_state(self) -> str:
        return clock_state("gem")  # sic: upstream's qwen states use gemini's prefix

    def authorize(self, flow) -> str:
        verifier, challenge = pkce_pair(32)
        form = {"client_id": CLIENT_ID, "scope": SCOPE, "code_challenge": challenge,
                "code_challenge_method": "S256"}
        device = flow.post_json("device-code", data=form)
        if not device or not device.get("device_code"):
            raise ApiError(500, "failed to generate authorization url")
        flow.values.update(
            verifier=verifier, device_code=device["device_code"],
            pace=DevicePace.of(device, default_interval=self.default_interval, max_wait=self.max_wait))
        return str(device.get("verification_uri_complete") or device.get("verification_uri") or "")

    def complete(self, flow) -> Credential:
        form = {"grant_type": DEVICE_GRANT, "client_id": CLIENT_ID,
                "device_code": flow.values["device_code"], "code_verifier": flow.values["verifier"]}
        pace = flow.values["pace"]
        while True:
            pace.wait(flow, LoginError(FAILED))
            try:
                resp = flow.http.post(flow.endpoint("token"), data=form, headers={"Accept": "application/json"})
                body = load_json(resp.content)
            except (requests.RequestException, ValueError):
                raise LoginError(FAILED) from None
            body = body if isinstance(body, dict) else {}
            if resp.status_code == 200 and body.get("access_token"):
                break
            error = body.get("error")
            if resp.status_code == 400 and error == "authorization_pending":
                continue
            if resp.status_code in (400, 429) and error == "slow_down":
                pace.interval = min(pace.interval * 1.5, self.max_interval)
                continue
            raise LoginError(FAILED)  # expired_token, access_denied or anything else
        stamp = str(unix_ms())
        return Credential(f"qwen-{stamp}.json", {
            "access_token": str(body.get("access_token") or ""),
            "refresh_token": str(body.get("refresh_token") or ""),
            "last_refresh": now_rfc3339(),
            "resource_url": str(body.get("resource_url") or ""),
            "email": stamp,
            "type": "qwen",
            "expired": rfc3339_in(body.get("expires_in")),
        })


@hookimpl
def register_oauth_starters():
    return [QwenLogin()]


@hookimpl
def register_auth_file_types():
    return [AuthFileType(type="qwen", provider="qwen")]
