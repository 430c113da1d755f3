"""The auth-file listing applies notified changes in place and ends up where a full listing does."""

from __future__ import annotations

import io
import json
import os
import random
import re

import pytest

from cliproxy_mgmt.authfiles.listing import ListingCache, ListingReader, auth_index
from cliproxy_mgmt.authfiles.store import AuthDir
from cliproxy_mgmt.usage.credential_stats import UsageFragments
from cliproxy_mgmt.usage.credentials import CredentialCounts, CredentialUsage, aggregate_key


def test_changes_applied_in_place_match_a_full_listing(tmp_path):
    folder = tmp_path / "auths"
    folder.mkdir()
    # (Mixed case: sorted without case, `a-` comes before `B-`, and both before `N`/`n`.)
    for i in range(60):
        (folder / f"{'aB'[i % 2]}-user{i:03d}.json").write_text(
            json.dumps({"type": "claude", "email": f"u{i}@example.com"}))
    auth_dir = AuthDir(str(folder))
    cache = ListingCache(watch=True)
    cache.body(auth_dir, {})
    for step in range(12):
        name = f"{'aB'[step % 2]}-user{step * 5:03d}.json"
        if step % 3 == 0:
            os.remove(folder / name)
        elif step % 3 == 1:
            (folder / f"{'nN'[step % 2]}ew-{step}.json").write_text(
                json.dumps({"type": "codex", "email": f"n{step}@x"}))
        else:
            (folder / name).write_text(json.dumps({"type": "gemini", "email": f"changed{step}@x"}))
        body = bytes(cache.body(auth_dir, {}))
        assert body == bytes(ListingCache(watch=False).body(auth_dir, {})), step
    names = [e["name"] for e in json.loads(body)["files"]]
    assert names == sorted(names, key=lambda n: (n.lower(), n))


def read_as_waitress(listing, rng: random.Random) -> bytes:
    """What waitress sends from a file: look at up to n bytes (tell, read, seek back), send
    some of them, skip past what was sent; until a read comes back empty."""
    reader, sent = listing.reader(), []
    while True:
        at = reader.tell()
        chunk = reader.read(rng.randrange(1, 3000))
        reader.seek(at)
        if not chunk:
            return b"".join(sent)
        taken = rng.randrange(1, len(chunk) + 1)
        sent.append(chunk[:taken])
        reader.seek(taken, io.SEEK_CUR)


@pytest.mark.parametrize("block", [ListingReader.BLOCK, 1, 700])
def test_a_listing_changed_part_by_part_is_the_fresh_listing_and_stays_as_handed_out(tmp_path, monkeypatch, block):
    """Files added in front, at the end and between, changed and removed (down to none), with
    usage counts for some of them: after each step the kept listing equals a fresh one, a
    reader reads it whole in any pieces (whatever the size of the blocks it joins), and every
    listing handed out earlier is unchanged."""
    monkeypatch.setattr(ListingReader, "BLOCK", block)
    rng = random.Random(14)
    folder = tmp_path / "auths"
    folder.mkdir()
    auth_dir = AuthDir(str(folder))
    counts = CredentialCounts()
    usage = UsageFragments(("test", 1), CredentialUsage(counts))
    cache, handed_out = ListingCache(watch=True), []

    def write(name: str) -> None:
        (folder / name).write_text(json.dumps({"type": "claude", "email": f"{rng.random()}@example.com"}))
        if rng.random() < 0.5:  # a file with requests on record: its own counts, not the shared ones
            counts.totals[aggregate_key(auth_index(name), "")] = [rng.randrange(9), rng.randrange(9)]

    for i in range(8):
        write(f"m-{i}.json")
    for step in range(80):
        names = sorted(p.name for p in folder.iterdir())
        action = rng.choice(["front", "end", "between", "change", "remove", "remove"] if names else ["front"])
        if step == 40:
            for name in names:
                os.remove(folder / name)
        elif action == "front":
            write(f"0-{step:03d}.json")
        elif action == "end":
            write(f"z-{step:03d}.json")
        elif action == "between":
            write(f"m-{step:03d}-x.json")
        elif action == "change":
            write(rng.choice(names))
        else:
            os.remove(folder / rng.choice([names[0], names[-1], rng.choice(names)]))
        listing = cache.body(auth_dir, {}, usage=usage)
        body = bytes(listing)
        assert body == bytes(ListingCache(watch=False).body(auth_dir, {}, usage=usage)), step
        assert listing.length == len(body)
        assert read_as_waitress(listing, rng) == body
        reader = listing.reader()
        assert reader.seek(0, io.SEEK_END) == len(body) and reader.read() == b""
        assert reader.seek(0) == 0 and reader.read() == body
        handed_out.append((listing, body))
    assert all(bytes(listing) == body for listing, body in handed_out)
    assert any(re.search(rb'"success":[1-9]', body) for _, body in handed_out)  # counts were shown


def test_a_path_that_leads_to_another_folder_is_listed_at_once(tmp_path):
    """The watch is on the folder the path led to: after a symlink is pointed elsewhere, or a
    parent folder is moved and made again, the next listing shows the new folder's files
    (it used to show the old ones until the next full check, up to 10 s later)."""
    def names(cache, folder):
        return [e["name"] for e in json.loads(bytes(cache.body(AuthDir(str(folder)), {})))["files"]]

    for kind in ("symlink", "parent"):
        base = tmp_path / kind
        for sub in ("A", "B"):
            (base / sub).mkdir(parents=True)
            (base / sub / f"{sub.lower()}.json").write_text(json.dumps({"type": "claude"}))
        if kind == "symlink":
            path = base / "auths"
            path.symlink_to(base / "A")
        else:
            path = base / "P" / "auths"
            path.parent.mkdir()
            os.rename(base / "A", path)
        cache = ListingCache(watch=True)
        assert names(cache, path) == ["a.json"]
        if kind == "symlink":
            (base / "new").symlink_to(base / "B")
            os.replace(base / "new", path)
        else:
            os.rename(base / "P", base / "P.old")
            path.parent.mkdir()
            os.rename(base / "B", path)
        assert names(cache, path) == ["b.json"], kind
