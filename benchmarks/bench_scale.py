"""Benchmarks of cost at scale: each answer or write should cost what it returns or changes,
not what was ever stored. Ratios are measured side by side in one run, against the real
server (waitress) where the route is measured.

Sub-commands (default: all of them, in this order):

  usage    GET /usage with 100,000 kept details / an in-process naive SELECT + json.dumps of
           the same rows (goal <= 1.5);
  apikey   GET /api-key-usage with 1,000,000 recorded requests / with 10,000 (goal <= 1.5);
           both stores are filled (and flushed to disk) first, then the two servers run
           together and take five turns of seven requests;
  logs     GET /logs?after=<now-60s> over 1,000,000 log lines / over 10,000 (goal <= 3);
           GET /logs?limit=100 the same (goal <= 3); a cursor poll the same (goal <= 3); the
           two servers run together and take five turns of three requests of each kind;
  startup  start-up to the first answer, 10,000 entries / 1,000 entries (goal <= 2);
           GET /config on 1,000 entries / GET /debug, 8 client threads (goal >= 0.9);
           GET /config.yaml on 1,000 entries / GET /debug, 8 client threads (goal >= 0.9); the
           three routes take three turns of 800 requests each;
  listing  the first GET /auth-files over 5,000 token files (median of five fresh servers) / a
           naive in-process read and parse of every file, run just before each server (goal
           <= 1.5);
  writes   one PATCH /api-keys at 10,000 entries / at 1,000 (goal <= 3); PATCH of a 10-item
           list inside a 10,000-entry config / inside a 1,000-entry one (goal <= 1.5); p99
           latency of 8 concurrent writers / p50 of one writer (goal <= 10); one PATCH of an
           object in /gemini-api-key at 10,000 entries / at 1,000 (goal <= 3); server RSS after
           20 writes at 50,000 entries / after start (its first write and GET) (goal <= 1.2).
           The 1,000- and 10,000-entry servers run together and take turns: three turns of an
           untimed PATCH (it pays what the other server's last write left) and five timed ones.

Run: .venv/bin/python benchmarks/bench_scale.py [usage|apikey|logs|startup ...]
(prints each figure; exit 1 if a goal is missed). On a shared machine timings are noisy:
each point is a median of several runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import KEY, Server, free_port, make_config, median_seconds  # noqa: E402

from cliproxy_mgmt.usage.model import Detail, Tokens  # noqa: E402
from cliproxy_mgmt.usage.store import SqliteUsageStore  # noqa: E402
from cliproxy_mgmt.usage.timestamps import NS, Stamp  # noqa: E402

def get_ok(server: Server, path: str) -> bytes:
    status, body = server.request("GET", path)
    assert status == 200, (path, status, body[:200])
    return body


def get_times(server: Server, path: str, each: int) -> list[float]:
    """The times of `each` GETs of `path` (each answered 200)."""
    times = []
    for _ in range(each):
        started = time.perf_counter()
        get_ok(server, path)
        times.append(time.perf_counter() - started)
    return times


def api_key_index(key: str) -> str:
    """The auth_index upstream gives a config API key."""
    return hashlib.sha256(f"api_key:{key}".encode()).hexdigest()[:16]


# -- usage ---------------------------------------------------------------------------------------

def fill_usage(path: Path, requests: int, *, keys: list[str], batch: int = 20_000) -> None:
    """Record `requests` requests through the store, spread over `keys`, ten per second
    until now (the details as `UsageRecord.to_detail` makes them, in UTC)."""
    store = SqliteUsageStore(str(path))
    start = time.time_ns() - requests * NS // 10
    indexes = [api_key_index(k) for k in keys]
    try:
        for first in range(0, requests, batch):
            store.add([Detail(
                api=f"client-key-{n % 10}", model=f"model-{n % 5}", stamp=Stamp(start + n * NS // 10),
                source=keys[n % len(keys)], auth_index=indexes[n % len(keys)], failed=n % 17 == 0,
                tokens=Tokens(n % 1000, 7, 0, 0, n % 1000 + 7))
                for n in range(first, min(first + batch, requests))])
    finally:
        store.close()


def naive_usage_seconds(path: Path) -> float:
    """SELECT every kept detail and json.dumps them in upstream's nesting (in process, no HTTP)."""
    def run():
        conn = sqlite3.connect(str(path))
        apis: dict = {}
        for (api, model, ns, offset, source, index, failed, inp, out, rsn, cached, total) in conn.execute(
                "SELECT api, model, ts_ns, tz_offset, source, auth_index, failed, input_tokens, "
                "output_tokens, reasoning_tokens, cached_tokens, total_tokens FROM details"):
            apis.setdefault(api, {}).setdefault(model, []).append({
                "timestamp": Stamp(ns, offset).text(), "source": source, "auth_index": index,
                "tokens": {"input_tokens": inp, "output_tokens": out, "reasoning_tokens": rsn,
                           "cached_tokens": cached, "total_tokens": total}, "failed": bool(failed)})
        conn.close()
        return json.dumps({"apis": apis})
    return median_seconds(run, 3)


def bench_usage(tmp: Path) -> list:
    port = free_port()
    config = make_config(tmp / "usage", port, settings=("usage-statistics-enabled: true",))
    fill_usage(config.parent / "usage-statistics.sqlite3", 100_000, keys=[f"sk-{i}" for i in range(50)])
    with Server(config, port, KEY) as server:
        body = get_ok(server, "/v0/management/usage")
        assert json.loads(body)["usage"]["total_requests"] == 100_000
        served = median_seconds(lambda: get_ok(server, "/v0/management/usage"), 5)
    naive = naive_usage_seconds(config.parent / "usage-statistics.sqlite3")
    return [("GET /usage, 100k details / naive SELECT + json.dumps", served / naive, "<=", 1.5,
             f"{served * 1000:.0f} ms vs {naive * 1000:.0f} ms, {len(body) >> 20} MiB")]


API_KEYS = 100


def bench_apikey(tmp: Path) -> list:
    keys = [f"sk-bench-{i:03d}" for i in range(API_KEYS)]
    extra = "\ncodex-api-key:\n" + "".join(
        f'  - api-key: "{k}"\n    base-url: "https://codex-{i % 3}.example.test/v1"\n'
        for i, k in enumerate(keys))
    configs = {}
    for requests in (10_000, 1_000_000):
        port = free_port()
        config = make_config(tmp / f"apikey-{requests}", port, extra=extra,
                             settings=("usage-statistics-enabled: true",))
        started = time.perf_counter()
        fill_usage(config.parent / "usage-statistics.sqlite3", requests, keys=keys, batch=50_000)
        print(f"  (recorded {requests} requests in {time.perf_counter() - started:.0f} s)")
        configs[requests] = (config, port)
    os.sync()  # the million rows just written must not be flushed to disk while one side is timed
    times: dict = {10_000: [], 1_000_000: []}
    with contextlib.ExitStack() as stack:
        servers = {n: stack.enter_context(Server(config, port, KEY)) for n, (config, port) in configs.items()}
        for requests, server in servers.items():
            body = json.loads(get_ok(server, "/v0/management/api-key-usage"))
            counted = sum(e["success"] + e["failed"] for e in body["codex"].values())
            assert counted == requests, counted
        for _ in range(5):  # turns, so that a slow moment of the machine falls on both sides
            for requests, server in servers.items():
                times[requests] += get_times(server, "/v0/management/api-key-usage", 7)
    small, large = (statistics.median(times[n]) for n in (10_000, 1_000_000))
    return [("GET /api-key-usage, 1M recorded requests / 10k", large / small, "<=", 1.5,
             f"{large * 1000:.1f} ms vs {small * 1000:.1f} ms, {API_KEYS} keys")]


# -- logs ----------------------------------------------------------------------------------------

LINES_PER_FILE = 100_000


def write_logs(folder: Path, lines: int, end: int) -> None:
    """`lines` log lines, one a second until `end` (unix seconds), in rotated files of
    LINES_PER_FILE lines."""
    folder.mkdir(parents=True)
    first = end - lines + 1
    for start in range(0, lines, LINES_PER_FILE):
        count = min(LINES_PER_FILE, lines - start)
        text = "".join(
            f"[{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(first + n))}] [--------] "
            f"[info ] [bench.py:1] request {n} served in 12 ms\n" for n in range(start, start + count))
        last = start + count >= lines
        stamp = time.strftime("%Y-%m-%dT%H-%M-%S.000", time.gmtime(first + start + count))
        (folder / ("main.log" if last else f"main-{stamp}.log")).write_text(text)


def bench_logs(tmp: Path) -> list:
    configs = {}
    end = int(time.time())  # both logs end at the same second: both answers hold the same lines
    for lines in (10_000, 1_000_000):
        port = free_port()
        config = make_config(tmp / f"logs-{lines}", port, settings=("logging-to-file: true",))
        write_logs(config.parent / "writable" / "logs", lines, end)
        configs[lines] = (config, port)
    os.sync()  # the log files just written must not be flushed to disk while one side is timed
    after = end - 60
    paths = {lines: [f"/v0/management/logs?after={after}", "/v0/management/logs?limit=100"]
             for lines in configs}
    firsts, times = {}, {lines: ([], [], []) for lines in configs}
    with contextlib.ExitStack() as stack:
        servers = {lines: stack.enter_context(Server(config, port, KEY, env={
            "WRITABLE_PATH": str(config.parent / "writable")})) for lines, (config, port) in configs.items()}
        for lines, server in servers.items():
            started = time.perf_counter()
            body = json.loads(get_ok(server, paths[lines][0]))
            firsts[lines] = time.perf_counter() - started
            assert 50 <= len(body["lines"]) <= 200 and body["line-count"] >= lines, \
                (len(body["lines"]), body["line-count"])
            tail = json.loads(get_ok(server, paths[lines][1]))
            assert len(tail["lines"]) == 100
            paths[lines].append(f"/v0/management/logs?limit=1000&cursor={tail['next-cursor']}")
        for _ in range(5):  # turns, so that a slow moment of the machine falls on both sides
            for lines, server in servers.items():
                for path, timed in zip(paths[lines], times[lines]):
                    timed += get_times(server, path, 3)
    small, large = ([statistics.median(t) for t in times[lines]] for lines in (10_000, 1_000_000))
    names = ("GET /logs?after=now-60s", "GET /logs?limit=100", "GET /logs?cursor=<end>&limit=1000")
    return [(f"{name}, 1M lines / 10k lines", large[i] / small[i], "<=", 3.0,
             f"{large[i] * 1000:.1f} ms vs {small[i] * 1000:.1f} ms"
             + (f"; first call, which counts the lines once: {firsts[1_000_000] * 1000:.0f} ms vs "
                f"{firsts[10_000] * 1000:.0f} ms" if i == 0 else ""))
            for i, name in enumerate(names)]


# -- start-up and cached reads ---------------------------------------------------------------------

def startup_seconds(config: Path, port: int) -> float:
    """From spawning `cliproxy-mgmt serve` to its first answer (the median of 3)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        with Server(config, port, KEY, poll=0.01):
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_startup(tmp: Path) -> list:
    port = free_port()
    small = startup_seconds(make_config(tmp / "start-1k", port, entries=1_000), port)
    large = startup_seconds(make_config(tmp / "start-10k", port, entries=10_000), port)
    config = make_config(tmp / "reads-1k", port, entries=1_000)
    paths, turns, each = ("/v0/management/debug", "/v0/management/config", "/v0/management/config.yaml"), 3, 800
    with Server(config, port, KEY) as server:
        server.throughput("/v0/management/debug", requests=400, threads=8)  # warm up
        # The routes take turns, so that the machine's speed drifting during the run falls on
        # every route alike (measured one after the other, a slowdown fell on the last one).
        seconds = dict.fromkeys(paths, 0.0)
        for _ in range(turns):
            for path in paths:
                seconds[path] += each / server.throughput(path, requests=each, threads=8)
        rates = {path: turns * each / seconds[path] for path in paths}
    debug = rates["/v0/management/debug"]
    return [("start-up, 10,000 entries / 1,000 entries", large / small, "<=", 2.0,
             f"{large * 1000:.0f} ms vs {small * 1000:.0f} ms"),
            ("GET /config, 1,000 entries / GET /debug, 8 threads", rates["/v0/management/config"] / debug,
             ">=", 0.9, f"{rates['/v0/management/config']:.0f} vs {debug:.0f} req/s"),
            ("GET /config.yaml, 1,000 entries / GET /debug, 8 threads",
             rates["/v0/management/config.yaml"] / debug, ">=", 0.9,
             f"{rates['/v0/management/config.yaml']:.0f} vs {debug:.0f} req/s")]


# -- auth-file listing ---------------------------------------------------------------------------

def bench_listing(tmp: Path) -> list:
    from bench_auth_files import FILES, make_auth_dir, naive_listing

    port = free_port()
    config = make_config(tmp / "listing", port)  # its auth-dir is "auths", beside it
    make_auth_dir(config.parent / "auths")
    os.sync()  # the files just written must not be flushed to disk while one side is timed
    naives, colds = [], []
    # A listing is cold once per server: the median of five fresh servers, each timed right
    # after a naive scan, so that a slow moment of the machine falls on both sides.
    for _ in range(5):
        started = time.perf_counter()
        naive_listing(config.parent / "auths")
        naives.append(time.perf_counter() - started)
        with Server(config, port, KEY) as server:
            started = time.perf_counter()
            body = get_ok(server, "/v0/management/auth-files")
            colds.append(time.perf_counter() - started)
            assert len(json.loads(body)["files"]) == FILES
    cold, naive = statistics.median(colds), statistics.median(naives)
    return [(f"cold GET /auth-files, {FILES} files / naive scan-and-parse", cold / naive, "<=", 1.5,
             f"{cold * 1000:.0f} ms (of {min(colds) * 1000:.0f}-{max(colds) * 1000:.0f}) vs {naive * 1000:.0f} ms")]


# -- config writes --------------------------------------------------------------------------------

SMALL_LIST = "\nclaude-api-key:\n" + "".join(f'  - api-key: "claude-{i}"\n' for i in range(10))


def patch_seconds(server: Server, path: str, body, runs: int = 9) -> float:
    return statistics.median(patch_times({"": server}, path, body, rounds=1, each=runs)[""])


def patch_times(servers: dict, path: str, body, *, rounds: int, each: int) -> dict:
    """The times of `each` PATCHes on each of `servers`, in `rounds` turns, so that a slow
    moment of the disk or the machine falls on both sides of a ratio. A turn starts with an
    untimed PATCH: a write leaves work for the next one (the journal commit, the freeing of
    the replaced file's blocks), and a timed write must pay its own server's, not the other's."""
    times = {name: [] for name in servers}
    n = 0
    for _ in range(rounds):
        for name, server in servers.items():
            for timed in [False] + [True] * each:
                data = json.dumps(body(n)).encode()
                n += 1
                started = time.perf_counter()
                status, answer = server.request("PATCH", path, data)
                if timed:
                    times[name].append(time.perf_counter() - started)
                assert status == 200, answer
    return times


def client_key(n):
    return {"index": 500, "value": f"client-key-new-{n}"}


def claude_key(n):
    return {"index": 3, "value": {"api-key": f"claude-new-{n}"}}


def gemini_key(n):
    return {"index": 500, "value": {"api-key": f"AIza-new-{n}", "base-url": f"https://gemini-new-{n}.example.test"}}


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def concurrent_latencies(server: Server, writers: int, each: int) -> list[float]:
    import threading

    latencies: list[float] = []
    lock = threading.Lock()

    def writer(w):
        for n in range(each):
            data = json.dumps({"index": w, "value": f"writer-{w}-{n}"}).encode()
            started = time.perf_counter()
            status, answer = server.request("PATCH", "/v0/management/api-keys", data)
            elapsed = time.perf_counter() - started
            assert status == 200, answer
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(latencies)


def bench_writes(tmp: Path) -> list:
    results = []
    with contextlib.ExitStack() as stack:
        servers = {}
        for entries in (1_000, 10_000):
            port = free_port()
            config = make_config(tmp / f"writes-{entries}", port, entries=entries, extra=SMALL_LIST)
            servers[entries] = stack.enter_context(Server(config, port, KEY))
        patch_times(servers, "/v0/management/api-keys", client_key, rounds=1, each=2)  # warm up
        one = patch_times(servers, "/v0/management/api-keys", client_key, rounds=3, each=5)
        small_list = patch_times(servers, "/v0/management/claude-api-key", claude_key, rounds=3, each=5)
        single = concurrent_latencies(servers[1_000], 1, 40)
        many = concurrent_latencies(servers[1_000], 8, 15)
        objects = patch_times(servers, "/v0/management/gemini-api-key", gemini_key, rounds=3, each=5)
    (big_small, big_large), (list_small, list_large), (obj_small, obj_large) = (
        (statistics.median(times[1_000]), statistics.median(times[10_000])) for times in (one, small_list, objects))
    results.append(("one PATCH /api-keys, 10,000 entries / 1,000 entries", big_large / big_small,
                    "<=", 3.0, f"{big_large * 1000:.1f} ms vs {big_small * 1000:.1f} ms"))
    results.append(("PATCH of a 10-item list, in 10,000 entries / in 1,000", list_large / list_small,
                    "<=", 1.5, f"{list_large * 1000:.1f} ms vs {list_small * 1000:.1f} ms"))
    p50 = statistics.median(single)
    p99 = many[min(len(many) - 1, int(len(many) * 0.99))]
    results.append(("p99 of 8 concurrent writers / p50 of one writer", p99 / p50, "<=", 10.0,
                    f"{p99 * 1000:.1f} ms vs {p50 * 1000:.1f} ms"))
    results.append(("one PATCH /gemini-api-key, 10,000 entries / 1,000 entries", obj_large / obj_small,
                    "<=", 3.0, f"{obj_large * 1000:.1f} ms vs {obj_small * 1000:.1f} ms"))

    port = free_port()
    config = make_config(tmp / "writes-50k", port, entries=50_000)
    with Server(config, port, KEY) as server:
        patch_seconds(server, "/v0/management/api-keys", client_key, runs=1)
        get_ok(server, "/v0/management/config")
        started = rss_kib(server.proc.pid)
        patch_seconds(server, "/v0/management/api-keys", client_key, runs=20)
        get_ok(server, "/v0/management/config")
        after = rss_kib(server.proc.pid)
    results.append(("RSS after 20 writes at 50,000 entries / RSS after start", after / started,
                    "<=", 1.2, f"{after >> 10} MiB vs {started >> 10} MiB"))
    return results


COMMANDS = {"usage": bench_usage, "apikey": bench_apikey, "logs": bench_logs,
            "startup": bench_startup, "listing": bench_listing, "writes": bench_writes}


def main(argv: list[str]) -> int:
    names = argv or list(COMMANDS)
    unknown = [n for n in names if n not in COMMANDS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(COMMANDS)}")
        return 2
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            print(f"[{name}]")
            for title, ratio, op, goal, figures in COMMANDS[name](Path(tmp)):
                met = ratio >= goal if op == ">=" else ratio <= goal
                failed |= not met
                print(f"{title}: {ratio:.3f} (goal {op} {goal}) {'ok' if met else 'MISSED'}  [{figures}]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
