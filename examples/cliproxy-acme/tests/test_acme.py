"""The Acme plugin inside a cliproxy-mgmt app, through the management API."""

from pathlib import Path

OK = {"status": "ok"}


def test_keys_are_normalised_and_shown_in_config(mgmt):
    assert mgmt.get("/acme-api-key").get_json() == {"acme-api-key": []}
    assert mgmt.put("/acme-api-key", json=[
        {"api-key": " a1 ", "prefix": " /team/ ", "headers": {"X-Blank": " "}}, {"api-key": "  "}]).get_json() == OK
    assert mgmt.get("/acme-api-key").get_json() == {"acme-api-key": [{"api-key": "a1", "prefix": "team"}]}
    assert mgmt.get("/config").get_json()["acme-api-key"] == [{"api-key": "a1", "prefix": "team"}]


def test_patch_and_delete_follow_upstream_conventions(mgmt):
    mgmt.put("/acme-api-key", json=[{"api-key": "a1"}, {"api-key": "a2"}])
    assert mgmt.patch("/acme-api-key", json={"match": "a2", "value": {"base-url": " https://acme.test "}}).get_json() == OK
    assert mgmt.delete("/acme-api-key?api-key=nope").status_code == 404
    assert mgmt.delete("/acme-api-key?index=0").get_json() == OK
    assert mgmt.get("/acme-api-key").get_json() == {"acme-api-key": [{"api-key": "a2", "base-url": "https://acme.test"}]}


def test_token_files_are_listed_with_their_type(mgmt, app):
    auth_dir = Path(app.extensions["cliproxy_mgmt"].store.get("auth-dir"))
    (auth_dir / "acme-user.json").write_text('{"type": "acme", "email": "user@acme.test"}')
    [entry] = mgmt.get("/auth-files").get_json()["files"]
    assert (entry["name"], entry["type"], entry["provider"], entry["email"]) == (
        "acme-user.json", "acme", "acme", "user@acme.test")


def test_model_catalogue(mgmt):
    body = mgmt.get("/model-definitions/ACME").get_json()
    assert body["channel"] == "acme"
    assert [m["id"] for m in body["models"]] == ["acme-large", "acme-small"]
