"""The Management Center panel file: where it lives, what may be served, and `panel fetch`.

The panel is the web UI's single-file build, `management.html`, an asset of the UI project's
GitHub releases. This server never downloads it on its own (upstream does, in the
background); the operator runs `cliproxy-mgmt panel fetch [--version vX]`, which

1. asks the release API of `remote-management.panel-github-repository` (default: the
   Management Center's repository) for the latest release, or the release tagged vX;
2. downloads its `management.html` asset, through `proxy-url` when set;
3. checks it: the SHA-256 must equal the release API's `digest` when the API gives one, and
   the file must be a non-empty HTML document in any case;
4. replaces the served file atomically (readers see the old or the new panel, never half).

The API's base URL for `owner/name` repositories is https://api.github.com, or
$CLIPROXY_MGMT_GITHUB_API (a GitHub Enterprise server, or a local stand-in in tests).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from urllib.parse import urlsplit

import requests

from .config.store import ConfigError, parse
from .fileio import replace_file
from .outbound import session, usable_proxy

PANEL_NAME = "management.html"
DEFAULT_REPOSITORY = "router-for-me/Cli-Proxy-API-Management-Center"
API_ENV = "CLIPROXY_MGMT_GITHUB_API"
DEFAULT_API = "https://api.github.com"
MAX_BYTES = 50 << 20  # upstream's limit for the asset
TIMEOUT = (10.0, 60.0)  # connect, read
HEADERS = {"Accept": "application/vnd.github+json", "User-Agent": "cliproxy-mgmt-panel-fetch"}
_OWNER_NAME = re.compile(r"^([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?$")


class PanelError(Exception):
    """`panel fetch` could not install a verified panel; the served file was left as it was."""


def panel_path(data: dict, config_path: str) -> str:
    """Where the panel is served from: `remote-management.panel-file` (relative to the config's
    folder), else `static/management.html` under $WRITABLE_PATH, else beside the config (where
    upstream keeps its downloaded copy, so an existing installation's panel is found)."""
    remote = data.get("remote-management")
    value = remote.get("panel-file") if isinstance(remote, dict) else None
    folder = os.path.dirname(os.path.abspath(config_path))
    if isinstance(value, str) and value.strip():
        return os.path.join(folder, os.path.expanduser(value.strip()))
    writable = (os.environ.get("WRITABLE_PATH") or os.environ.get("writable_path") or "").strip()
    return os.path.join(writable or folder, "static", PANEL_NAME)


def looks_like_html(head: bytes) -> bool:
    """True when `head` (the first bytes of a file) starts an HTML document."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return text.startswith(b"<!doctype html") or text.startswith(b"<html")


def release_api_url(repository: str | None, version: str | None, api_base: str | None = None) -> str:
    """The release API URL for `repository` (`owner/name`, a github.com URL, or an API URL whose
    path holds `/repos/owner/name`, as upstream accepts) and `version` (None: the latest)."""
    repo = (repository or "").strip() or DEFAULT_REPOSITORY
    match = _OWNER_NAME.match(repo)
    if match:
        base = (api_base or os.environ.get(API_ENV) or DEFAULT_API).rstrip("/")
        repo_url = f"{base}/repos/{match[1]}/{match[2]}"
    else:
        parts = urlsplit(repo)
        path = parts.path.rstrip("/")
        owner_name = _OWNER_NAME.match(path.strip("/"))
        if parts.scheme in ("http", "https") and parts.hostname == "github.com" and owner_name:
            return release_api_url(f"{owner_name[1]}/{owner_name[2]}", version, api_base)
        found = re.match(r"^(.*/repos/[^/]+/[^/]+)", path) if parts.scheme in ("http", "https") else None
        if not found or not parts.netloc:
            raise PanelError(f"remote-management.panel-github-repository {repo!r} is neither owner/name, "
                             "a github.com repository URL nor a release API URL")
        repo_url = f"{parts.scheme}://{parts.netloc}{found[1]}"
    return f"{repo_url}/releases/tags/{version}" if version else f"{repo_url}/releases/latest"


def _get(http: requests.Session, url: str, *, headers: dict) -> bytes:
    try:
        with http.get(url, headers=headers, timeout=TIMEOUT, stream=True) as response:
            if response.status_code != 200:
                raise PanelError(f"GET {url}: status {response.status_code}")
            body = response.raw.read(MAX_BYTES + 1, decode_content=True)
    except (requests.RequestException, OSError) as exc:
        raise PanelError(f"GET {url}: {exc}") from None
    if len(body) > MAX_BYTES:
        raise PanelError(f"GET {url}: larger than {MAX_BYTES} bytes")
    return body


def _asset(release_body: bytes, url: str) -> tuple[str, str]:
    """The download URL and the expected SHA-256 ("" when the API gives none) of management.html."""
    try:
        release = json.loads(release_body)
        assets = release["assets"]
        asset = next(a for a in assets if str(a.get("name", "")).lower() == PANEL_NAME)
        download = asset["browser_download_url"]
    except StopIteration:
        raise PanelError(f"the release at {url} has no {PANEL_NAME} asset") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise PanelError(f"{url} did not answer with a release (JSON with assets)") from None
    digest = str(asset.get("digest") or "").strip()
    if digest and not digest.lower().startswith("sha256:"):
        raise PanelError(f"unsupported digest {digest!r} for {PANEL_NAME}")
    return str(download), digest.partition(":")[2].strip().lower()


def fetch_panel(config_path: str, *, version: str | None = None) -> str:
    """Download, verify and install the panel for the config at `config_path`; return a report line."""
    try:
        with open(config_path, encoding="utf-8") as f:
            data = parse(f.read())
    except (OSError, UnicodeDecodeError, ConfigError) as exc:
        raise PanelError(f"cannot read {config_path}: {exc}") from None
    remote = data.get("remote-management") if isinstance(data.get("remote-management"), dict) else {}
    url = release_api_url(remote.get("panel-github-repository"), version)
    with session(usable_proxy(data.get("proxy-url"))) as http:
        download, expected = _asset(_get(http, url, headers=HEADERS), url)
        body = _get(http, download, headers={"User-Agent": HEADERS["User-Agent"]})
    sha256 = hashlib.sha256(body).hexdigest()
    if expected and expected != sha256:
        raise PanelError(f"{download}: SHA-256 {sha256} does not match the release's digest {expected}")
    if not body or not looks_like_html(body[:1024]):
        raise PanelError(f"{download}: not an HTML document; refusing to install it")
    target = os.path.realpath(panel_path(data, config_path))
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        replace_file(target, body, mode=0o644, prefix=".management-", suffix=".html.tmp")
    except OSError as exc:
        raise PanelError(f"cannot write {target}: {exc}") from None
    checked = "matches the release digest" if expected else "no digest in the release; checked it is HTML"
    return f"installed {target} ({len(body)} bytes, sha256 {sha256}: {checked})"


def run_fetch(config_path: str, version: str | None) -> int:
    """`cliproxy-mgmt panel fetch`: one line on stdout when installed, one on stderr when not."""
    try:
        print(fetch_panel(config_path, version=version))
    except PanelError as exc:
        print(f"cliproxy-mgmt: panel fetch: {exc}", file=sys.stderr)
        return 1
    return 0
