"""iFlow: the OAuth login, the cookie login on the same route (`cookie.py`) and the token files."""

from __future__ import annotations

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.oauth import (Credential, LoginError, OAuthStarter, clock_state, now_rfc3339, rfc3339_in,
                                 unix_ms)
from cliproxy_mgmt.records import AuthFileType

from .cookie import cookie_login

CLIENT_ID = "10009311001"
CLIENT_SECRET = "4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW"  # iFlow's public CLI client
FAILED = "Authentication failed"  # upstream reports every failure of this flow so


class IFlowLogin(OAuthStarter):
    provider = "iflow"
    name = "iflow"
    aliases = ("i-flow",)
    route = "/iflow-auth-url"
    callback_route = "/iflow/callback"
    error_status = True
    timeout_error = FAILED
    endpoints = {
        "authorize": "https://iflow.cn/oauth",
        "token": "https://iflow.cn/oauth/token",
        "user-info": "https://iflow.cn/api/oauth/getUserInfo",
        "api-key": "https://platform.iflow.cn/api/openapi/apikey",
        "redirect-uri": "http://localhost:11451/oauth2callback",
    }

    def new_state(self) -> str:
        return clock_state("ifl")

    def authorize(self, flow) -> str:
        params = {"client_id": CLIENT_ID, "loginMethod": "phone", "redirect": flow.endpoint("redirect-uri"),
                  "state": flow.state, "type": "phone"}
        return flow.authorize_url(params)

    def routes(self):
        return [(self.route, ["POST"], cookie_login(self))]

    def complete(self, flow) -> Credential:
        callback = flow.wait_callback()
        if callback.error or callback.state != flow.state or not callback.code:
            raise LoginError(FAILED)
        tokens = self._exchange(flow, callback.code)
        info = flow.json_object("GET", flow.endpoint("user-info"),
                                params={"accessToken": tokens["access_token"]}) or {}
        data = info.get("data") if info.get("success") else None
        if not isinstance(data, dict) or not data.get("apiKey"):
            raise LoginError(FAILED)
        who = str(data.get("email") or data.get("phone") or "").strip()
        return Credential(f"iflow-{who or unix_ms()}.json", {
            "access_token": tokens["access_token"],
            "refresh_token": str(tokens.get("refresh_token") or ""),
            "last_refresh": now_rfc3339(),
            "expired": rfc3339_in(tokens.get("expires_in")),
            "api_key": str(data["apiKey"]),
            "email": who,
            "token_type": str(tokens.get("token_type") or ""),
            "scope": str(tokens.get("scope") or ""),
            "cookie": "",
            "type": "iflow",
        })

    def _exchange(self, flow, code: str) -> dict:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": flow.endpoint("redirect-uri"),
                "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        tokens = flow.post_json("token", data=form, auth=(CLIENT_ID, CLIENT_SECRET))
        if not tokens or not tokens.get("access_token"):
            raise LoginError(FAILED)
        return tokens


@hookimpl
def register_oauth_starters():
    return [IFlowLogin()]


@hookimpl
def register_auth_file_types():
    return [AuthFileType(type="iflow", provider="iflow")]
