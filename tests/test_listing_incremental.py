"""The auth-file listing applies notified changes in place and ends up where a full listing does."""

from __future__ import annotations

import json
import os

from cliproxy_mgmt.authfiles.listing import ListingCache
from cliproxy_mgmt.authfiles.store import AuthDir


def test_changes_applied_in_place_match_a_full_listing(tmp_path):
    folder = tmp_path / "auths"
    folder.mkdir()
    for i in range(60):
        (folder / f"{'AB'[i % 2]}-user{i:03d}.json").write_text(
            json.dumps({"type": "claude", "email": f"u{i}@example.com"}))
    auth_dir = AuthDir(str(folder))
    cache = ListingCache(watch=True)
    cache.body(auth_dir, {})
    for step in range(12):
        name = f"{'AB'[step % 2]}-user{step * 5:03d}.json"
        if step % 3 == 0:
            os.remove(folder / name)
        elif step % 3 == 1:
            (folder / f"new-{step}.json").write_text(json.dumps({"type": "codex", "email": f"n{step}@x"}))
        else:
            (folder / name).write_text(json.dumps({"type": "gemini", "email": f"changed{step}@x"}))
        body = cache.body(auth_dir, {})
        assert body == ListingCache(watch=False).body(auth_dir, {}), step
    names = [e["name"] for e in json.loads(body)["files"]]
    assert names == sorted(names, key=lambda n: (n.lower(), n))
