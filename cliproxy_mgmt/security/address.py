"""The client address of a request (docs/decisions.md, "Client address" and "Local clients").

The socket peer is the client. Forwarding headers (`X-Forwarded-For`, `Forwarded`,
`X-Real-IP`) count only when the peer is a trusted proxy; then the client is the
right-most forwarded address that is not itself a trusted proxy, so entries a client
prepends itself can neither make it local nor rotate it out of a ban.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

_FORWARDED_FOR = re.compile(r'for="?\[?([^\]";,]+)\]?(?::\d+)?"?', re.IGNORECASE)


def parse_networks(entries) -> tuple:
    """Turn `trusted-proxies` (IPs and CIDRs) into networks; unparsable entries raise ValueError."""
    return tuple(ipaddress.ip_network(str(e).strip(), strict=False) for e in entries or ())


@lru_cache(maxsize=4096)
def _ip(text: str):
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip


def _trusted(text: str, networks) -> bool:
    ip = _ip(text)
    return ip is not None and any(ip in net for net in networks)


def _forwarded_chain(environ) -> list[str]:
    xff = environ.get("HTTP_X_FORWARDED_FOR")
    if xff:
        return [part.strip() for part in xff.split(",") if part.strip()]
    forwarded = environ.get("HTTP_FORWARDED")
    if forwarded:
        return _FORWARDED_FOR.findall(forwarded)
    real = environ.get("HTTP_X_REAL_IP")
    return [real.strip()] if real and real.strip() else []


def client_address(environ, trusted_networks) -> str:
    """The client's address as a string (an unparsable forwarded entry is kept as it is)."""
    peer = environ.get("REMOTE_ADDR", "") or ""
    if not trusted_networks or not _trusted(peer, trusted_networks):
        return peer
    chain = _forwarded_chain(environ)
    for entry in reversed(chain):
        if not _trusted(entry, trusted_networks):
            return entry
    return chain[0] if chain else peer


def is_local(address: str) -> bool:
    """Loopback (127.0.0.0/8, ::1, and IPv4-mapped loopback) is local."""
    ip = _ip(address)
    return ip is not None and ip.is_loopback
