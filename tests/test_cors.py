"""CORS only for configured origins (docs/decisions.md, "Cross-origin access")."""

from __future__ import annotations

import pytest

from cliproxy_mgmt.testing import KEY

ALLOWED = "https://panel.example.test"


@pytest.fixture
def cors_client(make_app):
    app = make_app()
    app.extensions["cliproxy_mgmt"].store.edit(lambda d: d["remote-management"].__setitem__(
        "cors-allowed-origins", [f"{ALLOWED}/", "HTTP://Other.Example.test"]))
    return app.test_client()


def preflight(client, origin, path="/v0/management/config"):
    return client.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization, content-type"})


def test_preflight_of_an_allowed_origin_is_answered_before_the_key_check(cors_client):
    r = preflight(cors_client, ALLOWED)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "PUT" in r.headers["Access-Control-Allow-Methods"]
    assert r.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
    assert "Origin" in r.headers["Vary"]
    # origins are compared without a trailing slash and case
    assert preflight(cors_client, "http://other.example.test").status_code == 204


def test_responses_to_an_allowed_origin(cors_client):
    r = cors_client.get("/v0/management/config",
                        headers={"Origin": ALLOWED, "Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "X-CPA-VERSION" in r.headers["Access-Control-Expose-Headers"]
    # refusals carry the header too, so the page can read the error
    r = cors_client.get("/v0/management/config", headers={"Origin": ALLOWED})
    assert r.status_code == 401 and r.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_other_origins_get_no_cors_headers(cors_client):
    r = preflight(cors_client, "https://evil.example.test")
    assert r.status_code == 401  # an ordinary unauthenticated request
    assert "Access-Control-Allow-Origin" not in r.headers
    r = cors_client.get("/v0/management/config", headers={
        "Origin": "https://evil.example.test", "Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    assert r.headers["Vary"] == "Origin"


def test_nothing_configured_nothing_sent(client):
    r = preflight(client, ALLOWED)
    assert "Access-Control-Allow-Origin" not in r.headers and "Vary" not in r.headers
    r = client.get("/v0/management/config", headers={"Origin": ALLOWED})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_wildcard_allows_any_origin(make_app):
    app = make_app()
    app.extensions["cliproxy_mgmt"].store.edit(
        lambda d: d["remote-management"].__setitem__("cors-allowed-origins", ["*"]))
    r = preflight(app.test_client(), "https://anywhere.example.test")
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "https://anywhere.example.test"
