"""The client address of a request (docs/decisions.md, "Client address" and "Local clients").

The socket peer is the client. Forwarding headers (`X-Forwarded-For`, `Forwarded`,
`X-Real-IP`) count only when the peer is a trusted proxy; then the client is the
right-most forwarded address that is not itself a trusted proxy, so entries a client
prepends itself can neither make it local nor rotate it out of a ban.

Every address goes through `normalise` first (the one place): one address has one
spelling, so neither a port nor another IPv6 notation makes it a new client for the ban.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

# `[v6]:port`, `v4:port`: the two spellings that carry a port.
_BRACKETED = re.compile(r"^\[([^\]]*)\](?::\d*)?$")
_V4_PORT = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3}):\d*$")


def parse_networks(entries) -> tuple:
    """Turn `trusted-proxies` (IPs and CIDRs) into networks; unparsable entries raise ValueError."""
    return tuple(ipaddress.ip_network(str(e).strip(), strict=False) for e in entries or ())


@lru_cache(maxsize=4096)
def _parse(text: str):
    """(canonical text, ip address or None) of one address spelling."""
    written = text.strip(' \t"')
    raw = written
    bracketed = _BRACKETED.match(raw)
    if bracketed:
        raw = bracketed.group(1)
    else:
        with_port = _V4_PORT.match(raw)
        if with_port:
            raw = with_port.group(1)
    raw = raw.split("%", 1)[0]  # an IPv6 zone id names the local interface, not the client
    try:
        ip = ipaddress.ip_address(raw)
    except ValueError:
        return written.lower(), None  # e.g. Forwarded's "unknown" or "_hidden": kept as written
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip), ip


def normalise(text: str) -> str:
    """The one spelling of an address: no port, no brackets or quotes, no zone id, IPv6
    compressed and lower-case, IPv4-mapped IPv6 as IPv4. Other text is kept (lower-cased)."""
    return _parse(text or "")[0]


def _ip(text: str):
    return _parse(text or "")[1]


def _trusted(text: str, networks) -> bool:
    ip = _ip(text)
    return ip is not None and any(ip in net for net in networks)


def _forwarded_for(header: str) -> list[str]:
    """The `for=` values of an RFC 7239 `Forwarded` header, in order, quotes removed."""
    found = []
    for element in header.split(","):
        for pair in element.split(";"):
            name, _, value = pair.partition("=")
            if name.strip().lower() == "for" and value.strip():
                found.append(value.strip().strip('"'))
    return found


def _forwarded_chain(environ) -> list[str]:
    xff = environ.get("HTTP_X_FORWARDED_FOR")
    if xff:
        return [part.strip() for part in xff.split(",") if part.strip()]
    forwarded = environ.get("HTTP_FORWARDED")
    if forwarded:
        return _forwarded_for(forwarded)
    real = environ.get("HTTP_X_REAL_IP")
    return [real.strip()] if real and real.strip() else []


def client_address(environ, trusted_networks) -> str:
    """The client's address, normalised (an unparsable forwarded entry is kept as written)."""
    peer = normalise(environ.get("REMOTE_ADDR", "") or "")
    if not trusted_networks or not _trusted(peer, trusted_networks):
        return peer
    chain = [normalise(entry) for entry in _forwarded_chain(environ)]
    chain = [entry for entry in chain if entry]
    for entry in reversed(chain):
        if not _trusted(entry, trusted_networks):
            return entry
    return chain[0] if chain else peer


def is_local(address: str) -> bool:
    """Loopback (127.0.0.0/8, ::1, and IPv4-mapped loopback) is local."""
    ip = _ip(address)
    return ip is not None and ip.is_loopback
