"""Benchmark of GET /auth-files over a large auth-dir, against the real server (waitress).

5,000 token files of 1-3 KB. Measured in one run:

1. naive: read and parse every file, the least any listing without a cache must do
   (in this process, no HTTP: the cheapest possible naive listing);
2. cold: the server's first GET /auth-files (reads, parses and describes every file);
3. warm: later GETs, served from the cache: inotify says nothing changed, so no file is
   stat()ed or read;
4. for information, the cache's fallback without change notification (another OS, or the
   periodic full check): every file stat()ed, none read (in process, no HTTP).

Goal: warm <= 0.2 x naive. Run: .venv/bin/python benchmarks/bench_auth_files.py
(prints the figures; exit 1 if the goal is missed).
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import KEY, Server, free_port, make_config, median_seconds  # noqa: E402

from cliproxy_mgmt.authfiles.listing import ListingCache  # noqa: E402
from cliproxy_mgmt.authfiles.store import AuthDir  # noqa: E402

FILES = 5000
GOAL = 0.2
RUNS = 15


def make_auth_dir(folder: Path) -> None:
    """5,000 plausible token files of 1-3 KB (claude, codex, gemini, qwen, iflow)."""
    rng = random.Random(5000)
    folder.mkdir()
    for i in range(FILES):
        kind = ("claude", "codex", "gemini", "qwen", "iflow")[i % 5]
        email = f"user{i:05d}@example.com"
        data = {"type": kind, "email": email, "access_token": "at-" + "x" * rng.randint(850, 2600),
                "refresh_token": f"rt-{i}", "last_refresh": "2026-01-15T07:08:24+08:00",
                "expired": "2026-01-15T08:08:24+08:00"}
        if kind == "gemini":
            data = {"token": {"access_token": data.pop("access_token"), "token_type": "Bearer"},
                    "project_id": f"proj-{i}", **data}
        (folder / f"{kind}-{email}.json").write_text(json.dumps(data))


def naive_listing(folder: Path) -> list:
    """What a listing without a cache does at the least: open, read and parse every file."""
    entries = []
    for entry in os.scandir(folder):
        if not entry.name.endswith(".json"):
            continue
        with open(entry.path, "rb") as f:
            data = json.loads(f.read())
        st = entry.stat()
        entries.append({"name": entry.name, "size": st.st_size, "modtime": st.st_mtime,
                        "type": data.get("type", ""), "email": data.get("email", "")})
    return entries


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_auth_dir(folder / "auths")
        sizes = [p.stat().st_size for p in (folder / "auths").iterdir()]
        port = free_port()
        make_config(folder, port)

        assert len(naive_listing(folder / "auths")) == FILES
        naive = median_seconds(lambda: naive_listing(folder / "auths"), RUNS)
        stat_only = ListingCache(watch=False)
        auth_dir = AuthDir(str(folder / "auths"))
        stat_only.body(auth_dir, {})
        fallback = median_seconds(lambda: stat_only.body(auth_dir, {}), RUNS)

        with Server(folder / "config.yaml", port, KEY) as server:
            def listing():
                status, body = server.request("GET", "/v0/management/auth-files")
                assert status == 200, body[:200]
                return body

            start = time.perf_counter()
            body = listing()
            cold = time.perf_counter() - start
            assert len(json.loads(body)["files"]) == FILES
            warm = median_seconds(listing, RUNS)

    ratio = warm / naive
    print(f"auth-dir: {FILES} files, {min(sizes)}-{max(sizes)} bytes, response {len(body) / 1e6:.1f} MB")
    print(f"naive read+parse of every file (in process): {naive * 1000:7.1f} ms")
    print(f"cold GET /auth-files (first, over HTTP):      {cold * 1000:7.1f} ms")
    print(f"warm GET /auth-files (median of {RUNS}, HTTP):   {warm * 1000:7.1f} ms")
    print(f"fallback: stat every file (in process):      {fallback * 1000:7.1f} ms")
    print(f"warm / naive = {ratio:.3f} (goal <= {GOAL}); fallback / naive = {fallback / naive:.3f}")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
