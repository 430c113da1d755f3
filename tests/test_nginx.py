"""cliproxy-mgmt behind a real nginx, with the site config shipped in deploy/nginx/.

The set-up, and why it is an honest test of "who is the client":

* nginx (the Debian package; `scripts/ensure-nginx` installs it) runs as a non-daemon child
  of the test, with its prefix, pid, logs and temp folders in tmp_path, on loopback ports.
  Its site is `deploy/nginx/cliproxy-mgmt.conf` with only the listen addresses, the
  certificate paths, the upstream port and the snippet path replaced (each replacement must
  match, so the test follows the shipped file). The sub-path variant is
  `deploy/nginx/cliproxy-mgmt-subpath.conf` inside a plain-HTTP server block.
* The real server process listens on 127.0.0.1 with `trusted-proxies: ["127.0.0.1"]`:
  nginx connects from there.
* Clients must reach nginx from addresses that are not loopback, or they would be local
  whatever nginx does. So the test adds two addresses from 198.18.0.0/15 (the
  benchmarking range, never routed) to `lo` for the duration of the module (root has
  CAP_NET_ADMIN; removed at teardown), and binds each client socket to one of them.
  nginx sees a genuine TCP peer address, exactly as in production, and its unmodified
  proxy settings decide what the server sees. Without CAP_NET_ADMIN the host's own
  non-loopback addresses are used; tests that need two clients skip if there is only one.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from realserver import KEY, RealServer, free_port

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "nginx"
BANNED = re.compile(r"^IP banned due to too many failed attempts\. Try again in (29m\d+s|30m0s)$")


def nginx_binary() -> str | None:
    for candidate in (os.environ.get("NGINX"), shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


NGINX = nginx_binary()
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed: install it, set NGINX=/path/to/nginx, or run "
                          "CLIPROXY_MGMT_TEST_INSTALL=1 ./scripts/test (installs Debian's nginx)")


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def replace_each(text: str, replacements: dict) -> str:
    """Exact replacements that must all match: the shipped file, not a copy, is under test."""
    for old, new in replacements.items():
        assert old in text, f"deploy/nginx changed: {old!r} not found"
        text = text.replace(old, new)
    return text


# -- client addresses ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def client_addresses():
    """Two non-loopback addresses of this host that a client socket can bind to."""
    rng = random.Random()
    added: list[str] = []
    for _ in range(2):
        address = f"198.18.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if _run(["ip", "addr", "add", f"{address}/32", "dev", "lo"]).returncode != 0:
            break
        added.append(address)
    addresses = list(added)
    if len(addresses) < 2:  # no CAP_NET_ADMIN: the host's own addresses, if any
        found = _run(["ip", "-4", "-o", "addr", "show", "scope", "global"]).stdout
        addresses += [a for a in re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", found) if a not in addresses]
    yield addresses
    for address in added:
        _run(["ip", "addr", "del", f"{address}/32", "dev", "lo"])


def remote(addresses, n: int) -> str:
    if len(addresses) <= n:
        pytest.skip(f"needs {n + 1} non-loopback client addresses, this host has {addresses} "
                    "(adding some to lo needs CAP_NET_ADMIN)")
    return addresses[n]


class SourceAddress(HTTPAdapter):
    """Connect from a chosen local address."""

    def __init__(self, address: str, **kw):
        self.address = address
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kw)


def client(address: str, key: str | None = KEY, **headers) -> requests.Session:
    """A session from `address`, sending `key` and any extra headers (X_Forwarded_For=...)."""
    s = requests.Session()
    s.trust_env = False
    s.mount("http://", SourceAddress(address))
    s.mount("https://", SourceAddress(address))
    if key is not None:
        s.headers["Authorization"] = f"Bearer {key}"
    s.headers.update({name.replace("_", "-"): value for name, value in headers.items()})
    return s


# -- nginx ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (openssl), for the site's TLS server."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    done = _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                 "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", key, "-out", cert])
    if done.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {done.stderr.strip()}")
    return cert, key


class Nginx:
    """nginx in the foreground (`daemon off`), everything under its own prefix."""

    def __init__(self, prefix: Path, upstream_port: int, certificate):
        self.prefix = prefix
        for sub in ("logs", "tmp"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        self.http_port, self.https_port, self.subpath_port = free_port(), free_port(), free_port()
        snippet = f"include {DEPLOY / 'cliproxy-mgmt-proxy.conf'};"
        site = replace_each((DEPLOY / "cliproxy-mgmt.conf").read_text(), {
            "server 127.0.0.1:8317;": f"server 127.0.0.1:{upstream_port};",
            "listen 80;": f"listen 127.0.0.1:{self.http_port};",
            "    listen [::]:80;\n": "",
            "listen 443 ssl;": f"listen 127.0.0.1:{self.https_port} ssl;",
            "    listen [::]:443 ssl;\n": "",
            "/etc/letsencrypt/live/mgmt.example.com/fullchain.pem": str(certificate[0]),
            "/etc/letsencrypt/live/mgmt.example.com/privkey.pem": str(certificate[1]),
            "include snippets/cliproxy-mgmt-proxy.conf;": snippet,
        })
        subpath = replace_each((DEPLOY / "cliproxy-mgmt-subpath.conf").read_text(), {
            "proxy_pass http://127.0.0.1:8317/;": f"proxy_pass http://127.0.0.1:{upstream_port}/;",
            "include snippets/cliproxy-mgmt-proxy.conf;": snippet,
        })
        (prefix / "site.conf").write_text(site)
        (prefix / "subpath.conf").write_text(subpath)
        tmp = prefix / "tmp"
        (prefix / "nginx.conf").write_text(f"""\
daemon off;
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log info;
events {{ worker_connections 128; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {prefix}/site.conf;
    server {{
        listen 127.0.0.1:{self.subpath_port};
        include {prefix}/subpath.conf;
    }}
}}
""")
        self.cert = str(certificate[0])
        self.proc: subprocess.Popen | None = None

    def command(self, *extra) -> list[str]:
        return [NGINX, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"),
                "-e", str(self.prefix / "logs" / "error.log"), *extra]

    def start(self) -> "Nginx":
        checked = _run(self.command("-t"))
        assert checked.returncode == 0, checked.stderr
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            assert self.proc.poll() is None, f"nginx exited:\n{self.error_log()}"
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                    return self
            except OSError:
                assert time.monotonic() < deadline, f"nginx did not listen:\n{self.error_log()}"
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # fast shutdown of master and worker
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def error_log(self) -> str:
        try:
            return (self.prefix / "logs" / "error.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.https_port}{path}"


@pytest.fixture
def stack(tmp_path, certificate):
    """stack(allow_remote=...): the real server behind nginx; both stopped at teardown."""
    running = []

    def make(*, allow_remote: bool, **config) -> tuple[RealServer, Nginx]:
        server = RealServer(tmp_path / "server", allow_remote=allow_remote, trusted=["127.0.0.1"], **config)
        running.append(server)
        server.start()
        nginx = Nginx(tmp_path / "nginx", server.port, certificate)
        running.append(nginx)
        return server, nginx.start()

    yield make
    for process in reversed(running):
        process.stop()


def get(nginx: Nginx, session: requests.Session, path: str = "/v0/management/debug", **kw):
    with session:
        return session.get(nginx.url(path), verify=nginx.cert, timeout=30, **kw)


# -- the tests -----------------------------------------------------------------------------------

def test_clients_through_nginx_are_remote(stack, client_addresses):
    server, nginx = stack(allow_remote=False)
    outside = remote(client_addresses, 0)
    r = get(nginx, client(outside))
    assert (r.status_code, r.json()) == (403, {"error": "remote management disabled"})
    # A client on the nginx host itself is local, through nginx or not.
    r = get(nginx, client("127.0.0.1"))
    assert (r.status_code, r.json()) == (200, {"debug": False})


@pytest.mark.parametrize("headers", [
    {"X_Forwarded_For": "127.0.0.1"},
    {"X_Forwarded_For": "127.0.0.1, ::1"},
    {"X_Forwarded_For": "::1"},
    {"X_Real_IP": "127.0.0.1"},
    {"Forwarded": "for=127.0.0.1"},
    {"X_Forwarded_For": "127.0.0.1", "X_Real_IP": "127.0.0.1", "Forwarded": 'for="[::1]"'},
], ids=["xff", "xff-chain", "xff-v6", "x-real-ip", "forwarded", "all"])
def test_forwarding_headers_sent_by_the_client_cannot_make_it_local(stack, client_addresses, headers):
    server, nginx = stack(allow_remote=False)
    r = get(nginx, client(remote(client_addresses, 0), **headers))
    assert (r.status_code, r.json()) == (403, {"error": "remote management disabled"})


def test_ban_hits_the_clients_real_address(stack, client_addresses):
    server, nginx = stack(allow_remote=True)
    attacker, bystander = remote(client_addresses, 0), remote(client_addresses, 1)
    for n in range(5):  # a new forged address on every attempt does not spread the failures
        r = get(nginx, client(attacker, key="wrong-key", X_Forwarded_For=f"10.9.8.{n}"))
        assert (r.status_code, r.json()) == (401, {"error": "invalid management key"})
    for headers in ({}, {"X_Forwarded_For": "127.0.0.1"}, {"X_Forwarded_For": "10.9.8.77"},
                    {"X_Real_IP": "127.0.0.1"}):
        r = get(nginx, client(attacker, **headers))  # even the right key
        assert r.status_code == 403 and BANNED.match(r.json()["error"]), (headers, r.text)
    # another client, through the same nginx, is not affected
    r = get(nginx, client(bystander))
    assert (r.status_code, r.json()) == (200, {"debug": False})
    r = get(nginx, client(bystander, key="wrong-key"))
    assert (r.status_code, r.json()) == (401, {"error": "invalid management key"})
    # and the ban is on the attacker's address, not on nginx's (127.0.0.1 is local: never banned)
    assert get(nginx, client("127.0.0.1")).status_code == 200


def test_writes_and_bodies_through_nginx(stack, client_addresses):
    server, nginx = stack(allow_remote=True)
    outside = remote(client_addresses, 0)
    with client(outside) as s:
        r = s.put(nginx.url("/v0/management/debug"), json={"value": True}, verify=nginx.cert, timeout=30)
        assert (r.status_code, r.json()) == (200, {"status": "ok"})
        # A config.yaml of 2 MiB: over nginx's default 1 MiB limit, within the site's.
        text = server.config_path.read_text() + "# " + "x" * (2 << 20) + "\n"
        r = s.put(nginx.url("/v0/management/config.yaml"), data=text.encode(), verify=nginx.cert,
                  timeout=60)
        assert (r.status_code, r.json()) == (200, {"ok": True, "changed": ["config"]})
        assert server.config_path.read_text() == text
        # Beyond client_max_body_size nginx refuses before waitress sees anything.
        r = s.put(nginx.url("/v0/management/config.yaml"), data=b"#" * (12 << 20), verify=nginx.cert,
                  timeout=60)
        assert r.status_code == 413
    assert server.config_path.read_text() == text


def test_plain_http_redirects_to_https(stack, client_addresses):
    server, nginx = stack(allow_remote=True)
    with client(remote(client_addresses, 0)) as s:
        r = s.get(f"http://127.0.0.1:{nginx.http_port}/v0/management/config", allow_redirects=False,
                  timeout=30)
    assert r.status_code == 301
    assert r.headers["Location"] == "https://127.0.0.1/v0/management/config"


def test_only_cliproxy_mgmt_routes_are_proxied(stack, client_addresses):
    server, nginx = stack(allow_remote=True)
    outside = remote(client_addresses, 0)
    r = get(nginx, client(outside), "/v1/models")  # nginx's own 404 page
    assert r.status_code == 404 and "nginx" in r.text
    r = get(nginx, client(outside), "/management.html")  # the app's 404: no panel file here
    assert (r.status_code, r.json()) == (404, {"error": "not found"})


def test_sub_path_variant(stack, client_addresses):
    server, nginx = stack(allow_remote=False)
    base = f"http://127.0.0.1:{nginx.subpath_port}/cliproxy"
    with client(remote(client_addresses, 0)) as s:  # remote through the sub-path, too
        r = s.get(base + "/v0/management/debug", timeout=30)
        assert (r.status_code, r.json()) == (403, {"error": "remote management disabled"})
    with client("127.0.0.1") as s:
        assert s.get(base + "/v0/management/debug", timeout=30).json() == {"debug": False}
        r = s.put(base + "/v0/management/debug", json={"value": True}, timeout=30)
        assert (r.status_code, r.json()) == (200, {"status": "ok"})
        assert s.get(base + "/v0/management/debug", timeout=30).json() == {"debug": True}
        r = s.get(base, allow_redirects=False, timeout=30)
        assert (r.status_code, r.headers["Location"].endswith("/cliproxy/")) == (301, True)


def test_the_management_index_through_nginx(stack, client_addresses):
    server, nginx = stack(allow_remote=True)
    r = get(nginx, client(remote(client_addresses, 0)), "/v0/management")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = get(nginx, client(remote(client_addresses, 0), key=None), "/v0/management")
    assert (r.status_code, r.json()) == (401, {"error": "missing management key"})
