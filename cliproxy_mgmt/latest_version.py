"""GET /latest-version: the newest release, from a GitHub-style release API.

Asked at `remote-management.latest-release-url` (default: upstream's releases), through
`proxy-url` when set. The answer always comes within DEADLINE seconds, also when DNS or the
network hangs: the request runs in a worker thread the view stops waiting for.
"""

from __future__ import annotations

import threading

import requests
from flask import Blueprint, jsonify

from .conventions import store
from .errors import ApiError
from .openapi import describe
from .outbound import session, usable_proxy
from .safeload import load_json

bp = Blueprint("latest_version", __name__)

RELEASE_URL = "https://api.github.com/repos/router-for-me/CLIProxyAPI/releases/latest"
DEADLINE = 12.0              # seconds for the whole exchange
TIMEOUT = (5.0, 10.0)        # connect, read
HEADERS = {"Accept": "application/vnd.github+json", "User-Agent": "CLIProxyAPI"}


def release_url(config) -> str:
    value = config.get("remote-management", "latest-release-url")
    return value.strip() if isinstance(value, str) and value.strip() else RELEASE_URL


def _fetch(url: str, proxy: str | None) -> tuple[int, bytes]:
    with session(proxy) as s:
        if not proxy:
            s.trust_env = True  # without proxy-url, upstream's default client honours the environment
        response = s.get(url, headers=HEADERS, timeout=TIMEOUT)
        return response.status_code, response.content


def _within_deadline(url: str, proxy: str | None) -> tuple[int, bytes]:
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = _fetch(url, proxy)
        except Exception as exc:  # handed to the waiting view
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="latest-version", daemon=True)
    worker.start()
    worker.join(DEADLINE)
    if worker.is_alive():
        raise TimeoutError(f"no answer from {url} within {DEADLINE:g}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@bp.get("/latest-version")
@describe("The newest release of the proxy", ok={"type": "object", "properties": {
    "latest-version": {"type": "string"}}})
def latest_version():
    url = release_url(store())
    try:
        requests.Request("GET", url).prepare()
    except (requests.RequestException, ValueError) as exc:
        raise ApiError(500, "request_create_failed", message=str(exc)) from None
    try:
        status, body = _within_deadline(url, usable_proxy(store().get("proxy-url")))
    except (requests.RequestException, OSError) as exc:  # TimeoutError is an OSError
        raise ApiError(502, "request_failed", message=str(exc)) from None
    if status != 200:
        text = body[:1024].decode("utf-8", "replace").strip()
        raise ApiError(502, "unexpected_status", message=f"status {status}: {text}")
    try:
        release = load_json(body)
        version = (release.get("tag_name") or "").strip() or (release.get("name") or "").strip()
    except (ValueError, AttributeError, TypeError) as exc:
        raise ApiError(502, "decode_failed", message=str(exc)) from None
    if not version:
        raise ApiError(502, "invalid_response", message="missing release version")
    return jsonify({"latest-version": version})
