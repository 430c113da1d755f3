"""The v1.22 web UI's auth-file and plugin calls against a real server (waitress): a
multi-file upload, a batch delete with a JSON body, and a plugin switched off that stays
off across a restart (and comes back, its config section intact)."""

from __future__ import annotations

import pytest

from realserver import RealServer, session


@pytest.fixture
def server(tmp_path):
    started = RealServer(tmp_path, extra='auth-dir: "auths"\ngemini-api-key:\n  - api-key: "g-1" # mine\n')
    (tmp_path / "auths").mkdir()
    yield started.start()
    started.kill()


def test_upload_delete_and_plugin_switch_across_a_restart(server, tmp_path):
    with session() as s:
        files = [("file", ("a.json", b'{"type":"claude"}', "application/json")),
                 ("file", ("b.json", b'{"type":"codex"}', "application/json")),
                 ("file", ("c.txt", b"{}", "text/plain"))]
        r = s.post(server.url("/auth-files"), files=files)
        assert r.status_code == 207, r.text
        assert r.json()["files"] == ["a.json", "b.json"] and r.json()["failed"][0]["name"] == "c.txt"
        listed = s.get(server.url("/auth-files")).json()["files"]
        assert [f["name"] for f in listed] == ["a.json", "b.json"]
        assert all(len(f["recent_requests"]) == 20 for f in listed)

        r = s.delete(server.url("/auth-files"), json={"names": ["a.json", "b.json"]})
        assert r.json() == {"status": "ok", "deleted": 2, "files": ["a.json", "b.json"]}
        assert list((tmp_path / "auths").iterdir()) == []

        r = s.patch(server.url("/plugins/gemini/enabled"), json={"enabled": False})
        assert r.json() == {"status": "ok"}
        assert r.headers["X-CPA-SUPPORT-PLUGIN"] == "1" and r.headers["X-CPA-BUILD-DATE"][:2] == "20"

    server.stop()
    server.start()
    with session() as s:
        gemini = {p["id"]: p for p in s.get(server.url("/plugins")).json()["plugins"]}["gemini"]
        assert (gemini["enabled"], gemini["effective_enabled"]) == (False, False)
        r = s.get(server.url("/gemini-api-key"))
        assert (r.status_code, r.json()["error"]) == (409, "plugin_disabled")
        assert s.patch(server.url("/plugins/gemini/enabled"), json={"enabled": True}).status_code == 200
        assert s.get(server.url("/gemini-api-key")).json() == {"gemini-api-key": [{"api-key": "g-1"}]}
    assert '"g-1" # mine' in server.config_path.read_text()
