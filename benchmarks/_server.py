"""Helpers for benchmarks: run the real server (waitress) as a process, and load it over HTTP."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-management-key"


def make_config(folder: Path, port: int, *, entries: int = 0, extra: str = "",
                settings: tuple = ()) -> Path:
    """The bundled config with the secret set, `entries` client keys and gemini credentials,
    `settings` (top-level `key: value` lines already in the file) replaced, `extra` appended."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "config.yaml").read_text()
    text = text.replace("port: 8317", f"port: {port}").replace('secret-key: ""', f'secret-key: "{KEY}"')
    if entries:
        keys = "".join(f'  - "client-key-{i:05d}" # client {i}\n' for i in range(entries))
        text = text.replace("api-keys: []\n", "api-keys:\n" + keys)
        text += "\n# Gemini credentials\ngemini-api-key:\n" + "".join(
            f'  - api-key: "AIza-{i:05d}"\n    base-url: "https://gemini-{i}.example.test"\n'
            f'    prefix: "team-{i % 7}"\n    excluded-models:\n      - "gemini-1.5-*"\n'
            for i in range(entries))
    for setting in settings:
        key = setting.split(":")[0]
        start = text.index(f"\n{key}:") + 1
        text = text[:start] + setting + text[text.index("\n", start):]
    text += extra
    path = folder / "config.yaml"
    path.write_text(text)
    return path


def median_seconds(fn, runs: int) -> float:
    """The median of `runs` timings of fn()."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(config: Path) -> list[str]:
    exe = shutil.which("cliproxy-mgmt", path=str(Path(sys.executable).parent)) or shutil.which("cliproxy-mgmt")
    return [exe, "serve", "--config", str(config)] if exe else [sys.executable, "-m", "cliproxy_mgmt", "serve", "--config", str(config)]


class Server:
    """A `cliproxy-mgmt serve` process on a config file; a context manager."""

    def __init__(self, config: Path, port: int, key: str, *, env: dict | None = None, args=(),
                 poll: float = 0.1):
        self.config, self.port, self.key = config, port, key
        self.extra_env, self.args = env or {}, list(args)  # e.g. PGSTORE_DSN; --port
        self.poll = poll  # seconds between two checks whether it answers yet
        self.proc = None

    def __enter__(self):
        env = {k: v for k, v in os.environ.items() if k != "MANAGEMENT_PASSWORD"}
        env.update(self.extra_env)
        self.log = open(self.config.parent / "server.log", "wb")
        self.proc = subprocess.Popen(server_command(self.config) + self.args, cwd=self.config.parent, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, _ = self.request("GET", "/v0/management/debug")
                if status == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError((self.config.parent / "server.log").read_text())
            time.sleep(self.poll)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.log.close()

    def request(self, method: str, path: str, body: bytes | None = None, key: str | None = "default"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Content-Type": "application/json"}
            if key is not None:
                headers["Authorization"] = f"Bearer {self.key if key == 'default' else key}"
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def throughput(self, path: str, *, key: str | None = "default", expect: int = 200,
                   requests: int = 2000, threads: int = 4) -> float:
        """Requests per second for `requests` GETs over `threads` keep-alive connections."""
        headers = {} if key is None else {"Authorization": f"Bearer {self.key if key == 'default' else key}"}
        per_thread = requests // threads
        errors = []

        def worker():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                for _ in range(per_thread):
                    conn.request("GET", path, headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status != expect:
                        errors.append(resp.status)
            finally:
                conn.close()

        workers = [threading.Thread(target=worker) for _ in range(threads)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - start
        if errors:
            raise RuntimeError(f"{path}: unexpected statuses {sorted(set(errors))}")
        return per_thread * threads / elapsed
