"""Benchmark of the core against the real server (waitress), ratios measured in one run.

1. authenticated GET /debug throughput / the same GET's no-key 401 throughput (goal >= 0.9;
   upstream's bcrypt-per-request design gives about 0.01);
2. latency of one PATCH /api-keys on a 1,000-entry config / a naive ruamel load + modify +
   dump of the same file (goal <= 0.3);
3. GET /config throughput / GET /debug throughput on that config (goal >= 0.5).

Run: .venv/bin/python benchmarks/bench_core.py   (prints the figures; exit 1 if a goal is missed)
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import KEY, Server, free_port, make_config  # noqa: E402

from cliproxy_mgmt.config.yamlio import make_yaml  # noqa: E402

ENTRIES = 1000


def naive_patch_seconds(path: Path) -> float:
    """What a write costs when it loads and dumps the whole document (the median of 3)."""
    yaml = make_yaml()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        doc = yaml.load(path.read_text())
        doc["api-keys"][500] = "patched"
        out = io.StringIO()
        yaml.dump(doc, out)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def patch_seconds(server: Server) -> float:
    times = []
    for n in range(9):
        body = json.dumps({"index": 500, "value": f"client-key-new-{n}"}).encode()
        start = time.perf_counter()
        status, _ = server.request("PATCH", "/v0/management/api-keys", body)
        times.append(time.perf_counter() - start)
        assert status == 200
    return statistics.median(times)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        config = make_config(Path(tmp), port, entries=ENTRIES)
        with Server(config, port, KEY) as server:
            server.throughput("/v0/management/debug", requests=400)  # warm up (bcrypt once)
            turns = {"authed": [], "unauth": [], "config": [], "debug": []}
            for _ in range(3):  # turns, so that a slow moment of the machine falls on both sides
                turns["authed"].append(server.throughput("/v0/management/debug", requests=1000))
                turns["unauth"].append(server.throughput("/v0/management/debug", key=None, expect=401,
                                                         requests=1000))
                turns["config"].append(server.throughput("/v0/management/config", requests=500))
                turns["debug"].append(server.throughput("/v0/management/debug", requests=500))
            authed, unauth, get_config, get_debug = (statistics.median(runs) for runs in turns.values())
            patch = patch_seconds(server)
        naive = naive_patch_seconds(config)
    results = [
        ("authenticated GET / no-key 401 GET throughput", authed / unauth, ">=", 0.9,
         f"{authed:.0f} vs {unauth:.0f} req/s"),
        ("PATCH /api-keys latency / naive load+modify+dump", patch / naive, "<=", 0.3,
         f"{patch * 1000:.1f} ms vs {naive * 1000:.1f} ms"),
        ("GET /config / GET /debug throughput", get_config / get_debug, ">=", 0.5,
         f"{get_config:.0f} vs {get_debug:.0f} req/s"),
    ]
    failed = False
    for name, ratio, op, goal, figures in results:
        met = ratio >= goal if op == ">=" else ratio <= goal
        failed |= not met
        print(f"{name}: {ratio:.3f} (goal {op} {goal}) {'ok' if met else 'MISSED'}  [{figures}]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
