"""GET /healthz: liveness without a key, and nothing but liveness."""

from __future__ import annotations

from cliproxy_mgmt.testing import config_text


def test_healthz_needs_no_key_and_reveals_nothing(client):
    with client.get("/healthz") as r:
        assert r.status_code == 200 and r.get_json() == {"status": "ok"}
        assert r.headers["Cache-Control"] == "no-store"
        assert not any(h.lower().startswith("x-cpa") for h in r.headers.keys())
    with client.get("/healthz", headers={"Authorization": "Bearer wrong"}) as r:
        assert r.get_json() == {"status": "ok"}  # a key, right or wrong, changes nothing


def test_healthz_answers_when_the_management_api_is_off(make_app, tmp_path, monkeypatch):
    monkeypatch.delenv("MANAGEMENT_PASSWORD", raising=False)
    app = make_app(config_text(tmp_path / "auths", key=""))
    client = app.test_client()
    assert client.get("/v0/management/config").status_code == 404
    assert client.get("/healthz").get_json() == {"status": "ok"}
