"""A local HTTP server playing the OAuth providers, for end-to-end login tests.

It is a real server on 127.0.0.1 (no mock of `requests`): the app under test reaches it
through the `oauth-endpoints` overrides (`FakeProvider.endpoints_yaml()`). Each route is a
function `(request) -> (status, body[, headers])`; every request is recorded. The
`authorize` route plays a user who consents: it redirects the browser to the redirect URI
with a code and the state, as a provider does.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class Seen:
    """One request the fake received."""

    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    at: float = 0.0  # time.monotonic() when it arrived

    def json(self):
        return json.loads(self.body or b"null")

    def form(self) -> dict:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


def authorize_redirect(redirect_param: str = "redirect_uri", code: str = "fake-code"):
    """A consenting user: 302 to the redirect URI with `code` and the request's `state`."""

    def route(req: Seen):
        target = req.query[redirect_param][0]
        query = urlencode({"code": code, "state": req.query.get("state", [""])[0]})
        return 302, b"", {"Location": f"{target}?{query}"}

    return route


def reply(status: int, body, headers=None):
    """A route that always answers the same."""
    return lambda req: (status, body, headers or {})


def sequence(*answers):
    """A route answering each call with the next of `answers` (the last one repeats)."""
    answers = list(answers)
    state = {"i": 0}

    def route(req: Seen):
        answer = answers[min(state["i"], len(answers) - 1)]
        state["i"] += 1
        return answer

    return route


class FakeProvider:
    """The fake, running in a thread; a context manager."""

    def __init__(self):
        self.routes: dict[str, object] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                req = Seen(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                           dict(self.headers.items()), self.rfile.read(length) if length else b"",
                           time.monotonic())
                with fake._lock:
                    fake.seen.append(req)
                    route = fake.routes.get((self.command, parts.path)) or fake.routes.get(parts.path)
                status, body, *extra = route(req) if route else (404, {"error": "not_found"})
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                headers = {"Content-Type": "application/json", **(extra[0] if extra else {})}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def route(self, path: str, handler, method: str | None = None) -> None:
        """Answer `path` (one method, or any) with `handler`."""
        with self._lock:
            self.routes[(method, path) if method else path] = handler

    def requests_to(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.seen if r.path == path]

    def endpoints_yaml(self, overrides: dict[str, dict[str, str]]) -> str:
        """`oauth-endpoints` YAML: {login: {endpoint: path on the fake or absolute URL}}."""
        lines = ["oauth-endpoints:"]
        for login, endpoints in overrides.items():
            lines.append(f"  {login}:")
            for name, target in endpoints.items():
                url = target if "://" in target else self.base + target
                lines.append(f'    {name}: "{url}"')
        return "\n".join(lines) + "\n"
