"""Client addresses are normalised in one place: one address, one spelling (issue 11, item 7).

A port, brackets, quotes, an IPv6 zone id, another IPv6 notation or the IPv4-mapped form
never make one client several, for the ban or the trusted-proxy rules. Property tests
over spellings, then a real waitress process behind a "proxy" at 127.0.0.1 that puts a new
port into `Forwarded` on every try: the client is banned after 5 wrong keys all the same.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cliproxy_mgmt.security.address import client_address, is_local, normalise, parse_networks
from realserver import KEY, RealServer, session

TRUSTED = parse_networks(["127.0.0.1", "10.0.0.0/8"])

ports = st.integers(min_value=0, max_value=65535)
v4 = st.ip_addresses(v=4)
v6 = st.ip_addresses(v=6).filter(lambda ip: ip.ipv4_mapped is None)


def v6_spellings(ip: ipaddress.IPv6Address) -> list[str]:
    """Ways to write one IPv6 address: compressed, exploded, upper case, leading zeros dropped."""
    exploded = ip.exploded
    return [str(ip), exploded, exploded.upper(), ":".join(part.lstrip("0") or "0" for part in exploded.split(":")),
            str(ip).upper()]


@given(ip=v4, port=ports)
def test_ipv4_with_or_without_port_is_one_address(ip, port):
    canonical = str(ip)
    for spelling in (canonical, f"{ip}:{port}", f'"{ip}:{port}"', f" {ip} ", f"::ffff:{ip}",
                     f"[::ffff:{ip}]:{port}", f"::FFFF:{ip}"):
        assert normalise(spelling) == canonical, spelling


@given(ip=v6, port=ports, zone=st.sampled_from(["", "%eth0", "%1", "%en0"]))
def test_ipv6_spellings_are_one_address(ip, port, zone):
    canonical = str(ip)
    for text in v6_spellings(ip):
        for spelling in (text, f"{text}{zone}", f"[{text}{zone}]", f"[{text}]:{port}", f'"[{text}]:{port}"'):
            assert normalise(spelling) == canonical, spelling


@given(text=st.text(max_size=40))
@settings(max_examples=300)
def test_normalise_is_idempotent_and_never_fails(text):
    once = normalise(text)
    assert normalise(once) == once


@given(ip=v4, port=ports)
def test_forwarded_for_with_a_port_names_the_address(ip, port):
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": f'for="{ip}:{port}";proto=https'}
    assert client_address(environ, TRUSTED) == normalise(str(ip))


@given(ip=v6, port=ports)
def test_forwarded_for_ipv6_with_a_port(ip, port):
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": f'for="[{ip.exploded}]:{port}"'}
    assert client_address(environ, TRUSTED) == str(ip)


@pytest.mark.parametrize("environ, expected", [
    # the peer itself, in any spelling
    ({"REMOTE_ADDR": "::ffff:203.0.113.5"}, "203.0.113.5"),
    ({"REMOTE_ADDR": "2001:DB8:0:0:0:0:0:1"}, "2001:db8::1"),
    # a trusted peer spelled differently is still trusted
    ({"REMOTE_ADDR": "::ffff:127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}, "203.0.113.9"),
    # trusted proxies with ports in the chain are skipped; the client loses its port
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9:5555, 10.1.1.1:80"}, "203.0.113.9"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": 'for=198.51.100.8:4711, for="[::ffff:10.0.0.1]:1"'},
     "198.51.100.8"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "For=unknown"}, "unknown"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": "[2001:db8::7]:8080"}, "2001:db8::7"),
])
def test_client_address_spellings(environ, expected):
    assert client_address(environ, TRUSTED) == expected


def test_a_zone_id_or_mapped_loopback_is_still_local():
    assert is_local(normalise("[::1%lo]:1234"))
    assert is_local(normalise("::ffff:127.0.0.1"))


@pytest.fixture
def proxied_server(tmp_path):
    server = RealServer(tmp_path, allow_remote=True, trusted=["127.0.0.1"], threads=2).start()
    yield server
    server.stop()


def test_rotating_forwarded_ports_are_banned_after_five_wrong_keys(proxied_server):
    """The real server behind a trusted "proxy" (this test, at 127.0.0.1) sending a new port each time."""
    url = proxied_server.url("/debug")
    with session(key="wrong-key") as wrong:
        for n in range(5):
            r = wrong.get(url, headers={"Forwarded": f'for="198.51.100.8:{40000 + n}"'}, timeout=10)
            assert r.status_code == 401, r.text
        r = wrong.get(url, headers={"Forwarded": 'for="198.51.100.8:50000"'}, timeout=10)
        assert r.status_code == 403 and "IP banned" in r.json()["error"]
    with session(KEY) as right:
        # banned in every spelling, even with the right key ...
        for spelling in ('for="[::ffff:198.51.100.8]:1"', "for=198.51.100.8"):
            r = right.get(url, headers={"Forwarded": spelling}, timeout=10)
            assert r.status_code == 403, spelling
        r = right.get(url, headers={"X-Forwarded-For": "198.51.100.8:9"}, timeout=10)
        assert r.status_code == 403
        # ... while another client is not
        assert right.get(url, headers={"Forwarded": 'for="198.51.100.9:1"'}, timeout=10).status_code == 200
    assert "banned" in proxied_server.log()  # the audit line
