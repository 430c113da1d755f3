"""A real `cliproxy-mgmt serve` process for black-box tests (nginx, reliability).

Not a fixture module: tests build a `RealServer` on a folder of their own and stop it in
their fixture's teardown. The server runs in its own session (process group), so `kill()`
reaches it and nothing it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import bcrypt
import requests

MGMT = "/v0/management"
KEY = "reliability-key-1"
# Hashed once per test session: a hashed secret-key means start-up writes nothing.
KEY_HASH = bcrypt.hashpw(KEY.encode(), bcrypt.gensalt(10)).decode()

# Variables that change what the server does; never inherited from the runner's shell.
ISOLATED_ENV = ("MANAGEMENT_PASSWORD", "WRITABLE_PATH", "writable_path", "CLIPROXY_MGMT_CONFIG",
                "PGSTORE_DSN", "pgstore_dsn", "PGSTORE_SCHEMA", "pgstore_schema", "PGSTORE_LOCAL_PATH",
                "pgstore_local_path", "CLIPROXY_MGMT_STORAGE")

CONFIG = """\
# Server address
host: "127.0.0.1"
port: {port}

# Management API settings
remote-management:
  allow-remote: {allow_remote}
  secret-key: "{key_hash}"
  trusted-proxies: {trusted}

# Keys that clients of the proxy use
api-keys:
{api_keys}

debug: false
request-retry: 3
{extra}"""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


SEED_KEYS = ("seed-key-1", "seed-key-2")


def config_text(port: int, *, allow_remote: bool = False, trusted=(), api_keys=SEED_KEYS,
                extra: str = "") -> str:
    """The test config: comments and order as a user writes them (the first key has a comment)."""
    trusted_yaml = "[" + ", ".join(f'"{t}"' for t in trusted) + "]"
    items = "\n".join(f'  - "{k}"' + (" # first client" if n == 0 else "")
                      for n, k in enumerate(api_keys))
    return CONFIG.format(port=port, allow_remote="true" if allow_remote else "false",
                         key_hash=KEY_HASH, trusted=trusted_yaml, api_keys=items, extra=extra)


def session(key: str | None = KEY) -> requests.Session:
    """A client session that sends `key` and ignores proxy settings of the environment."""
    s = requests.Session()
    s.trust_env = False
    if key is not None:
        s.headers["Authorization"] = f"Bearer {key}"
    return s


HANG = 20  # seconds: a request that takes longer is a hang


def call(srv, method: str, path: str, **kw) -> requests.Response:
    """`method path` on `srv` through its `http` session, at most HANG seconds unless told."""
    kw.setdefault("timeout", HANG)
    return srv.http.request(method, srv.url(path), **kw)


class RealServer:
    """One server process on `root/config.yaml`."""

    def __init__(self, root: Path, *, config_dir: str = "", threads: int = 8,
                 args: list[str] | None = None, **config):
        self.root = Path(root)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.config_path = self.root / config_dir / "config.yaml"
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(config_text(self.port, **config))
        self.threads = threads
        self.args = list(args or [])  # appended to the serve command, e.g. --local-password
        self.log_path = self.root / "server.log"
        self.env = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.proc: subprocess.Popen | None = None

    def url(self, path: str) -> str:
        return self.base_url + MGMT + path

    def start(self, timeout: float = 30.0) -> "RealServer":
        cmd = [sys.executable, "-m", "cliproxy_mgmt", "serve", "--config", str(self.config_path),
               "--threads", str(self.threads)] + self.args
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        with session() as probe:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
                try:
                    probe.get(self.url("/debug"), timeout=2)
                    return self
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"server did not answer in {timeout}s:\n{self.log()}")
                    time.sleep(0.02)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the server's process group and reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""
