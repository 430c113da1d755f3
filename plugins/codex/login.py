"""Codex: the OpenAI OAuth login and its token files."""

from __future__ import annotations

import hashlib
import re

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.oauth import (Credential, LoginError, OAuthStarter, jwt_claims, now_rfc3339, pkce_pair,
                                 rfc3339_in)
from cliproxy_mgmt.records import AuthFileType

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
SCOPE = "openid email profile offline_access"
AUTH_CLAIM = "https://api.openai.com/auth"
EXCHANGE_FAILED = "Failed to exchange authorization code for tokens"


def auth_claims(id_token: str) -> dict:
    """The ChatGPT claims of an id_token (account, plan, subscription)."""
    claims = jwt_claims(id_token).get(AUTH_CLAIM)
    return claims if isinstance(claims, dict) else {}


def file_name(email: str, plan: str, account_id: str) -> str:
    """Upstream's name at the target: `codex-<email>-<plan>.json`, team plans prefixed by a hash
    of the account, `codex-<email>.json` when the plan is unknown."""
    plan = re.sub(r"[^a-z0-9]+", "-", plan.strip().lower()).strip("-")
    if not plan:
        return f"codex-{email}.json"
    if plan == "team":
        digest = hashlib.sha256(account_id.encode()).hexdigest()[:8]
        return f"codex-{digest}-{email}-team.json"
    return f"codex-{email}-{plan}.json"


class CodexLogin(OAuthStarter):
    provider = "codex"
    name = "codex"
    aliases = ("openai",)
    route = "/codex-auth-url"
    callback_route = "/codex/callback"
    endpoints = {
        "authorize": "https://auth.openai.com/oauth/authorize",
        "token": "https://auth.openai.com/oauth/token",
        "redirect-uri": "http://localhost:1455/auth/callback",
    }

    def authorize(self, flow) -> str:
        verifier, challenge = pkce_pair(96)
        flow.values["verifier"] = verifier
        params = {
            "client_id": CLIENT_ID, "code_challenge": challenge, "code_challenge_method": "S256",
            "codex_cli_simplified_flow": "true", "id_token_add_organizations": "true",
            "prompt": "login", "redirect_uri": flow.endpoint("redirect-uri"), "response_type": "code",
            "scope": SCOPE, "state": flow.state,
        }
        return flow.authorize_url(params)

    def complete(self, flow) -> Credential:
        callback = flow.wait_callback()
        if callback.error:
            raise LoginError("Bad Request")
        if callback.state != flow.state:
            raise LoginError("State code error")
        form = {
            "grant_type": "authorization_code", "client_id": CLIENT_ID, "code": callback.code,
            "redirect_uri": flow.endpoint("redirect-uri"), "code_verifier": flow.values["verifier"],
        }
        tokens = flow.post_json("token", data=form)
        if tokens is None:
            raise LoginError(EXCHANGE_FAILED)
        id_token = str(tokens.get("id_token") or "")
        email = str(jwt_claims(id_token).get("email") or "")
        claims = auth_claims(id_token)
        account_id = str(claims.get("chatgpt_account_id") or "")
        return Credential(file_name(email, str(claims.get("chatgpt_plan_type") or ""), account_id), {
            "id_token": id_token,
            "access_token": str(tokens.get("access_token") or ""),
            "refresh_token": str(tokens.get("refresh_token") or ""),
            "account_id": account_id,
            "last_refresh": now_rfc3339(),
            "email": email,
            "type": "codex",
            "expired": rfc3339_in(tokens.get("expires_in")),
        })


def describe(data: dict, email: str) -> dict:
    """Codex entries carry the id_token's ChatGPT claims."""
    claims = auth_claims(data.get("id_token") if isinstance(data.get("id_token"), str) else "")
    shown = {"chatgpt_account_id": claims.get("chatgpt_account_id"), "plan_type": claims.get("chatgpt_plan_type"),
             "chatgpt_subscription_active_start": claims.get("chatgpt_subscription_active_start"),
             "chatgpt_subscription_active_until": claims.get("chatgpt_subscription_active_until")}
    shown = {k: v for k, v in shown.items() if v not in (None, "")}
    return {"id_token": shown} if shown else {}


@hookimpl
def register_oauth_starters():
    return [CodexLogin()]


@hookimpl
def register_auth_file_types():
    return [AuthFileType(type="codex", provider="codex", describe=describe)]
