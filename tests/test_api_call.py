"""POST /api-call and GET /latest-version against real local servers: an upstream that
records what it receives (and doubles as an HTTP proxy), and a small SOCKS5 proxy."""

from __future__ import annotations

import gzip
import json
import select
import socket
import socketserver
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest

from cliproxy_mgmt import latest_version
from cliproxy_mgmt.api_call import canonical, file_token
from cliproxy_mgmt.authfiles import auth_index

CLAUDE = "claude-user@example.test.json"


class Upstream:
    """Records each request; answers per path: /gzip, /cookies, /bytes, /status/<n>,
    /json/<text> (the text as the body), /redirect (to /json/landed)."""

    def __init__(self):
        self.seen: list = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.seen.append((self.command, self.path, self.headers, body))
                status, headers, payload = 200, [("Content-Type", "text/plain")], b"ok"
                if self.path.endswith("/gzip") and "gzip" in self.headers.get("Accept-Encoding", ""):
                    payload = gzip.compress(b"unzipped text")
                    headers.append(("Content-Encoding", "gzip"))
                elif self.path.endswith("/cookies"):
                    headers += [("set-cookie", "a=1"), ("set-cookie", "b=2"), ("x-lower-case", "v")]
                elif self.path.endswith("/bytes"):
                    payload = b"caf\xe9"
                elif "/status/" in self.path:
                    status = int(self.path.rsplit("/", 1)[1])
                elif "/json/" in self.path:
                    payload = unquote(self.path.split("/json/", 1)[1]).encode()
                elif self.path.endswith("/redirect"):
                    status, headers = 302, [("Location", "/json/landed")]
                self.send_response(status)
                for name, value in headers + [("Content-Length", str(len(payload)))]:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = handle_any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Socks5:
    """A SOCKS5 proxy (no auth, CONNECT) that sends every connection to `target_port` on
    localhost, and remembers the host names clients asked for."""

    def __init__(self, target_port: int):
        self.asked: list[str] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                c = self.request
                c.recv(c.recv(2)[1])  # greeting: version, count, methods
                c.sendall(b"\x05\x00")
                header = c.recv(4)
                if header[3] == 3:
                    name = c.recv(c.recv(1)[0]).decode()
                else:
                    name = socket.inet_ntoa(c.recv(4))
                c.recv(2)
                proxy.asked.append(name)
                with socket.create_connection(("127.0.0.1", target_port)) as out:
                    c.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", 0))
                    pipes = [c, out]
                    while True:
                        ready, _, _ = select.select(pipes, [], [], 5)
                        if not ready:
                            return
                        for sock in ready:
                            data = sock.recv(65536)
                            if not data:
                                return
                            (out if sock is c else c).sendall(data)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"socks5://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream():
    up = Upstream()
    yield up
    up.close()


@pytest.fixture
def socks(upstream):
    proxy = Socks5(upstream.port)
    yield proxy
    proxy.close()


def call(mgmt, **body):
    r = mgmt.post("/api-call", json=body)
    return r.status_code, r.get_json()


def write_auth(app, name: str, data: dict) -> str:
    folder = app.extensions["cliproxy_mgmt"].store.get("auth-dir")
    with open(f"{folder}/{name}", "w") as f:
        json.dump(data, f)
    return auth_index(name)


# -- api-call --------------------------------------------------------------------------------

@pytest.mark.parametrize("data, token", [
    ({"accessToken": " a ", "access_token": "b"}, "a"),
    ({"access_token": "b", "token": "c"}, "b"),
    ({"token": {"accessToken": "n"}, "id_token": "d"}, "n"),
    ({"token": {}, "id_token": "d"}, "d"),
    ({"cookie": "e", "api_key": "f"}, "e"),
    ({"api_key": "f"}, "f"),
    ({"access_token": "  ", "email": "x"}, ""),
])
def test_token_preference(data, token):
    assert file_token(data) == token


def test_canonical_header_names():
    assert canonical("x-lower-CASE") == "X-Lower-Case"
    assert canonical("etag") == "Etag"


def test_answer_shape_and_header_lists(mgmt, upstream):
    status, body = call(mgmt, method="get", url=upstream.url + "/cookies")
    assert status == 200 and body["status_code"] == 200
    assert body["header"]["Set-Cookie"] == ["a=1", "b=2"]
    assert body["header"]["X-Lower-Case"] == ["v"]
    assert call(mgmt, method="GET", url=upstream.url + "/bytes")[1]["body"] == "caf\ufffd"


def test_gzip_is_undone_unless_the_caller_asked_for_an_encoding(mgmt, upstream):
    _, body = call(mgmt, method="GET", url=upstream.url + "/gzip")
    assert body["body"] == "unzipped text"
    assert "Content-Encoding" not in body["header"] and "Content-Length" not in body["header"]
    _, body = call(mgmt, method="GET", url=upstream.url + "/gzip", header={"Accept-Encoding": "gzip"})
    assert body["header"]["Content-Encoding"] == ["gzip"]
    assert body["body"] != "unzipped text"


def test_token_and_credential_proxy(app, mgmt, upstream, socks):
    index = write_auth(app, CLAUDE, {"type": "claude", "access_token": "tok-1",
                                     "proxy_url": socks.url})
    status, body = call(mgmt, auth_index=index, method="POST", url="http://api.example.invalid/v1",
                        header={"Authorization": "Bearer $TOKEN$"}, data="payload")
    assert status == 200 and body["status_code"] == 200, body
    method, path, headers, sent = upstream.seen[-1]
    assert (method, path, sent) == ("POST", "/v1", b"payload")
    assert headers["Authorization"] == "Bearer tok-1"
    assert socks.asked == ["api.example.invalid"]  # the name is resolved by the proxy


def test_global_socks5_proxy_and_unusable_credential_proxy(app, mgmt, upstream, socks):
    index = write_auth(app, CLAUDE, {"type": "claude", "access_token": "t", "proxy_url": "ftp://x"})
    assert mgmt.put("/proxy-url", json={"value": socks.url}).status_code == 200
    status, body = call(mgmt, auth_index=index, method="GET", url="http://other.invalid/x")
    assert status == 200 and body["status_code"] == 200
    assert socks.asked == ["other.invalid"]


def test_no_credential_keeps_the_placeholder(mgmt, upstream):
    call(mgmt, authIndex="0000000000000000", method="GET", url=upstream.url + "/x",
         header={"X-T": "$TOKEN$"})
    assert upstream.seen[-1][2]["X-T"] == "$TOKEN$"


def test_redirects_are_followed(mgmt, upstream):
    _, body = call(mgmt, method="GET", url=upstream.url + "/redirect")
    assert (body["status_code"], body["body"]) == (200, "landed")


def test_unsupported_scheme_is_a_failed_request(mgmt):
    assert call(mgmt, method="GET", url="ftp://127.0.0.1/x") == (502, {"error": "request failed"})


# -- latest-version ------------------------------------------------------------------------------

def set_release_url(app, url: str):
    app.extensions["cliproxy_mgmt"].store.edit(
        lambda d: d["remote-management"].__setitem__("latest-release-url", url))


@pytest.mark.parametrize("payload, answer", [
    ('{"tag_name": "v6.7.0", "name": "Release 6.7"}', (200, {"latest-version": "v6.7.0"})),
    ('{"tag_name": "", "name": "Release 6.7"}', (200, {"latest-version": "Release 6.7"})),
    ('{"name": " "}', (502, {"error": "invalid_response", "message": "missing release version"})),
    ('not json', (502, "decode_failed")),
    ('[1]', (502, "decode_failed")),
])
def test_latest_version_answers(app, mgmt, upstream, payload, answer):
    set_release_url(app, f"{upstream.url}/json/{payload}")
    r = mgmt.get("/latest-version")
    body = r.get_json()
    assert r.status_code == answer[0]
    assert body == answer[1] if isinstance(answer[1], dict) else body["error"] == answer[1]
    assert upstream.seen[-1][2]["User-Agent"] == "CLIProxyAPI"


def test_latest_version_errors(app, mgmt, upstream):
    set_release_url(app, f"{upstream.url}/status/404")
    r = mgmt.get("/latest-version")
    assert (r.status_code, r.get_json()) == (502, {"error": "unexpected_status",
                                                   "message": "status 404: ok"})
    set_release_url(app, "not a url")
    r = mgmt.get("/latest-version")
    assert (r.status_code, r.get_json()["error"]) == (500, "request_create_failed")


def test_latest_version_goes_through_proxy_url(app, mgmt, upstream):
    set_release_url(app, "http://releases.example.invalid/json/%7B%22tag_name%22:%22v1%22%7D")
    assert mgmt.put("/proxy-url", json={"value": upstream.url}).status_code == 200
    assert mgmt.get("/latest-version").get_json() == {"latest-version": "v1"}
    assert upstream.seen[-1][1].startswith("http://releases.example.invalid/")  # a proxy request


def test_latest_version_never_hangs(app, mgmt, monkeypatch):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections, never answers
    monkeypatch.setattr(latest_version, "DEADLINE", 0.5)
    try:
        set_release_url(app, f"http://127.0.0.1:{silent.getsockname()[1]}/latest")
        started = time.monotonic()
        r = mgmt.get("/latest-version")
        assert time.monotonic() - started < 3
        assert r.status_code == 502 and r.get_json()["error"] == "request_failed"
    finally:
        silent.close()
