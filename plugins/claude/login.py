"""Claude: the anthropic OAuth login and its token files."""

from __future__ import annotations

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.oauth import Credential, LoginError, OAuthStarter, now_rfc3339, pkce_pair, rfc3339_in
from cliproxy_mgmt.records import AuthFileType

CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
SCOPE = "org:create_api_key user:profile user:inference"
EXCHANGE_FAILED = "Failed to exchange authorization code for tokens"


class AnthropicLogin(OAuthStarter):
    provider = "claude"
    name = "anthropic"
    aliases = ("claude",)
    route = "/anthropic-auth-url"
    callback_route = "/anthropic/callback"
    endpoints = {
        "authorize": "https://claude.ai/oauth/authorize",
        "token": "https://console.anthropic.com/v1/oauth/token",
        "redirect-uri": "http://localhost:54545/callback",
    }

    def authorize(self, flow) -> str:
        verifier, challenge = pkce_pair(96)
        flow.values["verifier"] = verifier
        params = {
            "client_id": CLIENT_ID, "code": "true", "code_challenge": challenge,
            "code_challenge_method": "S256", "redirect_uri": flow.endpoint("redirect-uri"),
            "response_type": "code", "scope": SCOPE, "state": flow.state,
        }
        return flow.authorize_url(params)

    def complete(self, flow) -> Credential:
        callback = flow.wait_callback()
        if callback.error:
            raise LoginError("Bad request")
        if callback.state != flow.state:
            raise LoginError("State code error")
        body = {
            "code": callback.code.split("#", 1)[0], "state": flow.state,
            "grant_type": "authorization_code", "client_id": CLIENT_ID,
            "redirect_uri": flow.endpoint("redirect-uri"), "code_verifier": flow.values["verifier"],
        }
        tokens = flow.post_json("token", json=body)
        if tokens is None:
            raise LoginError(EXCHANGE_FAILED)
        account = tokens.get("account") if isinstance(tokens.get("account"), dict) else {}
        email = str(account.get("email_address") or "")
        return Credential(f"claude-{email}.json", {
            "id_token": "",
            "access_token": str(tokens.get("access_token") or ""),
            "refresh_token": str(tokens.get("refresh_token") or ""),
            "last_refresh": now_rfc3339(),
            "email": email,
            "type": "claude",
            "expired": rfc3339_in(tokens.get("expires_in")),
        })


@hookimpl
def register_oauth_starters():
    return [AnthropicLogin()]


@hookimpl
def register_auth_file_types():
    return [AuthFileType(type="claude", provider="claude")]
