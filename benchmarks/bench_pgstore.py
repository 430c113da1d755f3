"""Benchmark of the PostgreSQL storage backend, measured in one run against the file backend.

1. cross-instance propagation: a change PUT on instance A, polled on instance B (both on one
   database) until B answers it: median and p99 over 50 changes, on the bundled config and
   on a config of 1,000 keys and 1,000 credentials (goal: p99 <= 1 s for both; B loads the
   data A stored with the text instead of parsing 170 kB of YAML, which alone takes >1 s);
2. latency of one PATCH /api-keys on that big config with the PostgreSQL backend (one
   instance) / with the file backend (goal <= 3: a row lock and a commit cost a few round
   trips, not a rewrite).

Needs PostgreSQL's binaries (initdb, pg_ctl; Debian's postgresql package); as root the
cluster runs as the `postgres` user. Run: .venv/bin/python benchmarks/bench_pgstore.py
(prints the figures; exit 1 if a goal is missed, 2 if no cluster can be started).
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import KEY, Server, free_port, make_config  # noqa: E402
from bench_core import ENTRIES  # noqa: E402

CHANGES = 50
PATCHES = 100


class Cluster:
    """A throw-away PostgreSQL cluster on a free loopback port."""

    def __init__(self):
        found = shutil.which("pg_ctl") or (sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")) or [None])[-1]
        if not found:
            raise RuntimeError("no PostgreSQL binaries (pg_ctl)")
        self.bin = os.path.dirname(found)
        self.user = "postgres" if os.geteuid() == 0 else None
        self.base = tempfile.mkdtemp(prefix="bench-pg-")
        self.port = free_port()
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)

    def run(self, tool, *args):
        cmd = [os.path.join(self.bin, tool), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def __enter__(self):
        data = os.path.join(self.base, "data")
        self.run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self.run("pg_ctl", "-D", data, "-l", os.path.join(self.base, "log"), "-w", "start",
                 "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def __exit__(self, *exc):
        self.run("pg_ctl", "-D", os.path.join(self.base, "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)


def pg_instance(folder: Path, dsn: str, entries: int = 0) -> Server:
    folder.mkdir()
    port = free_port()
    config = make_config(folder, port, entries=entries)
    return Server(config, port, KEY, env={"PGSTORE_DSN": dsn, "PGSTORE_LOCAL_PATH": str(folder)},
                  args=["--port", str(port)])


def propagation(a: Server, b: Server) -> list[float]:
    delays = []
    for n in range(1, CHANGES + 1):
        status, _ = a.request("PUT", "/v0/management/request-retry", json.dumps({"value": n}).encode())
        assert status == 200
        start = time.perf_counter()
        while True:
            _, body = b.request("GET", "/v0/management/request-retry")
            if json.loads(body)["request-retry"] == n:
                break
            if time.perf_counter() - start > 10:
                raise RuntimeError(f"change {n} not seen on B in 10 s")
        delays.append(time.perf_counter() - start)
    return sorted(delays)


def patch_median(server: Server) -> float:
    times = []
    for n in range(PATCHES):
        old = "client-key-00500" if n == 0 else f"patched-{n - 1}"
        body = json.dumps({"old": old, "new": f"patched-{n}"}).encode()
        start = time.perf_counter()
        status, _ = server.request("PATCH", "/v0/management/api-keys", body)
        times.append(time.perf_counter() - start)
        assert status == 200
    return statistics.median(times)


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    try:
        cluster = Cluster()
    except RuntimeError as exc:
        print(f"skipped: {exc}")
        return 2
    with tempfile.TemporaryDirectory() as tmp, cluster as dsn:
        root = Path(tmp)
        with pg_instance(root / "a", dsn) as a, pg_instance(root / "b", dsn) as b:
            delays = propagation(a, b)
        big_dsn = dsn.rsplit("/", 1)[0] + "/big"
        subprocess.run([sys.executable, "-c", "import psycopg, sys; psycopg.connect(sys.argv[1], autocommit=True)"
                        ".execute('CREATE DATABASE big')", dsn], check=True)
        with pg_instance(root / "c", big_dsn, ENTRIES) as a:
            with pg_instance(root / "d", big_dsn, ENTRIES) as b:
                big_delays = propagation(a, b)
            pg_patch = patch_median(a)
        (root / "files").mkdir()
        port = free_port()
        with Server(make_config(root / "files", port, entries=ENTRIES), port, KEY) as files:
            file_patch = patch_median(files)
    median, p99 = statistics.median(delays), percentile(delays, 0.99)
    big_median, big_p99 = statistics.median(big_delays), percentile(big_delays, 0.99)
    rows = [
        ("cross-instance propagation p99, 1,000-entry config (s)", big_p99, "<=", 1.0,
         f"median {big_median * 1000:.1f} ms, p99 {big_p99 * 1000:.1f} ms over {CHANGES} changes"),
        ("cross-instance propagation p99 (s)", p99, "<=", 1.0,
         f"median {median * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms over {CHANGES} changes"),
        ("PATCH /api-keys latency postgres / files", pg_patch / file_patch, "<=", 3.0,
         f"{pg_patch * 1000:.1f} ms vs {file_patch * 1000:.1f} ms (median of {PATCHES})"),
    ]
    failed = False
    for name, value, op, goal, detail in rows:
        ok = value <= goal
        failed |= not ok
        print(f"{'ok  ' if ok else 'MISS'} {name}: {value:.3f} (goal {op} {goal}) - {detail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
