"""Client address, ban, key verification, and the management guard (docs/decisions.md, "Security")."""

from __future__ import annotations

import pytest

from cliproxy_mgmt.security.address import client_address, is_local, parse_networks
from cliproxy_mgmt.security.ban import BAN_SECONDS, BanList, go_duration
from cliproxy_mgmt.security.keys import KeyVerifier, SecretTooLong, hash_secret, is_hashed
from cliproxy_mgmt.testing import KEY, config_text, key_hash

TRUSTED = parse_networks(["127.0.0.1", "10.0.0.0/8"])


@pytest.mark.parametrize("environ, expected", [
    ({"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "127.0.0.1"}, "192.0.2.1"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}, "203.0.113.9"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "127.0.0.1, 203.0.113.9, 10.1.1.1"}, "203.0.113.9"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "10.1.1.1"}, "10.1.1.1"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": 'for="[2001:db8::1]:443";proto=https'}, "2001:db8::1"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": "203.0.113.7"}, "203.0.113.7"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "not-an-ip"}, "not-an-ip"),
    ({"REMOTE_ADDR": "127.0.0.1"}, "127.0.0.1"),
])
def test_client_address(environ, expected):
    assert client_address(environ, TRUSTED) == expected


def test_headers_ignored_without_trusted_proxies():
    assert client_address({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}, ()) == "127.0.0.1"


@pytest.mark.parametrize("address, local", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("203.0.113.9", False), ("not-an-ip", False), ("", False),
])
def test_is_local(address, local):
    assert is_local(address) is local


@pytest.mark.parametrize("seconds, text", [(1799.6, "30m0s"), (45, "45s"), (60, "1m0s"), (3600, "1h0m0s")])
def test_go_duration(seconds, text):
    assert go_duration(seconds) == text


def test_ban_after_five_failures_and_expiry():
    now = [1000.0]
    bans = BanList(clock=lambda: now[0])
    for _ in range(4):
        bans.failure("a")
    assert bans.remaining("a") == 0
    bans.success("a")
    for _ in range(5):
        bans.failure("a")
    assert bans.remaining("a") == BAN_SECONDS
    assert bans.remaining("b") == 0
    now[0] += BAN_SECONDS + 1
    assert bans.remaining("a") == 0


def test_idle_entries_are_purged():
    now = [0.0]
    bans = BanList(clock=lambda: now[0])
    bans.failure("idle")
    now[0] += 3 * 3600
    bans.failure("fresh")
    assert "idle" not in bans._entries and "fresh" in bans._entries


def test_verifier_caches_matches_only():
    stored = key_hash("secret")
    verifier = KeyVerifier()
    assert verifier.verify(stored, "secret")
    assert len(verifier._good) == 1
    assert verifier.verify(stored, "secret")
    assert not verifier.verify(stored, "wrong")
    assert len(verifier._good) == 1
    assert not verifier.verify(key_hash("other"), "secret")  # another hash: no stale hit


def test_long_keys_compare_on_72_bytes():
    stored = key_hash("k" * 72)
    verifier = KeyVerifier()
    assert verifier.verify(stored, "k" * 100)
    assert not verifier.verify(stored, "k" * 71)
    assert not verifier.verify("not-a-hash", "x")


def test_hash_secret():
    hashed = hash_secret("abc")
    assert is_hashed(hashed)
    with pytest.raises(SecretTooLong):
        hash_secret("s" * 73)


# -- the guard, through the app ------------------------------------------------------------

def test_missing_and_wrong_keys(mgmt):
    assert mgmt.get("/config", key=None).get_json() == {"error": "missing management key"}
    r = mgmt.get("/config", key="wrong")
    assert r.status_code == 401 and r.get_json() == {"error": "invalid management key"}
    assert r.headers["X-CPA-VERSION"]


def test_x_management_key_header(mgmt):
    assert mgmt.get("/config", key=None, headers={"X-Management-Key": KEY}).status_code == 200


def test_no_secret_means_404(make_app, tmp_path):
    app = make_app(config_text(tmp_path / "auths", key=""))
    r = app.test_client().get("/v0/management/config", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 404


def test_local_password_works_without_secret(make_app, tmp_path):
    app = make_app(config_text(tmp_path / "auths", key=""), local_password="lp")
    client = app.test_client()
    assert client.get("/v0/management/config", headers={"Authorization": "Bearer lp"}).status_code == 200
    remote = client.get("/v0/management/config", headers={"Authorization": "Bearer lp"},
                        environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert remote.status_code == 403


def test_management_password_env(make_app, monkeypatch):
    monkeypatch.setenv("MANAGEMENT_PASSWORD", " envpw ")
    client = make_app().test_client()
    r = client.get("/v0/management/config", headers={"Authorization": "Bearer envpw"},
                   environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert r.status_code == 200  # MANAGEMENT_PASSWORD turns remote access on


def test_remote_ban_through_the_app(make_app):
    app = make_app(extra_yaml="")
    app.extensions["cliproxy_mgmt"].store.edit(
        lambda d: d["remote-management"].__setitem__("allow-remote", True))
    client = app.test_client()
    remote = {"REMOTE_ADDR": "203.0.113.5"}
    for _ in range(5):
        r = client.get("/v0/management/config", headers={"Authorization": "Bearer bad"}, environ_base=remote)
        assert r.status_code == 401
    r = client.get("/v0/management/config", headers={"Authorization": f"Bearer {KEY}"}, environ_base=remote)
    assert r.status_code == 403 and r.get_json()["error"].startswith("IP banned")
    assert client.get("/v0/management/config", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_plaintext_secret_is_hashed_at_start(make_app, tmp_path):
    app = make_app(config_text(tmp_path / "auths", key="").replace('secret-key: ""', 'secret-key: "plain"'))
    store = app.extensions["cliproxy_mgmt"].store
    assert is_hashed(store.data["remote-management"]["secret-key"])
    assert '"plain"' not in store.text
    r = app.test_client().get("/v0/management/debug", headers={"Authorization": "Bearer plain"})
    assert r.status_code == 200
