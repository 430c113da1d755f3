"""The OpenAPI description: every management route is described, and the document is valid."""

from __future__ import annotations

from cliproxy_mgmt.openapi import undescribed


def test_every_route_is_described(app):
    assert undescribed(app) == []


def test_served_behind_the_key(mgmt):
    assert mgmt.get("/openapi.json", key=None).status_code == 401
    spec = mgmt.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/debug" in spec["paths"] and set(spec["paths"]["/debug"]) == {"get", "put", "patch"}
    put = spec["paths"]["/debug"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/BoolValue"}
    assert spec["components"]["schemas"]["BoolValue"]["properties"]["value"]["type"] == "boolean"

