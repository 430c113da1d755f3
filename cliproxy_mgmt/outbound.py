"""Outgoing HTTP from the server (api-call, latest-version): sessions with an explicit proxy.

Upstream picks a proxy from its settings and ignores the environment's proxy variables; a
session here does the same. `socks5://` resolves names through the proxy, as Go's SOCKS5
dialer does (PySocks' `socks5h`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def usable_proxy(value) -> str | None:
    """`value` as a proxy URL requests understands, or None when it is empty or unusable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    if parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
        return None
    if parts.scheme.lower() == "socks5":
        text = "socks5h" + text[len(parts.scheme):]
    return text


def session(proxy: str | None) -> requests.Session:
    """A session that uses `proxy` (None: a direct connection), never the environment's."""
    s = requests.Session()
    s.trust_env = False
    s.headers.clear()  # send what the caller asked for, not requests' defaults
    if proxy:
        s.proxies = {"http": proxy, "https": proxy}
    return s


def first_proxy(*candidates) -> str | None:
    """The first usable proxy URL among `candidates` (upstream skips ones that don't parse)."""
    for candidate in candidates:
        proxy = usable_proxy(candidate)
        if proxy:
            return proxy
    return None
