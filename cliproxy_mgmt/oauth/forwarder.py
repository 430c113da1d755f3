"""The local callback listener of `is_webui` logins.

Providers only redirect to the `http://localhost:<port>/...` URI registered for their
public client. When the web UI starts a login in a browser on the server's own machine,
a throw-away HTTP server on `127.0.0.1:<port>` answers any path with a 302 to this
server's `/<provider>/callback` route, query string untouched, which then hands the
callback to the waiting login. It stops when that login ends.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Forwarder:
    """One listener: every request is redirected to `target` + the request's query."""

    def __init__(self, port: int, target: str):
        self.port = port
        self.target = target

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                query = self.path.partition("?")[2]
                self.send_response(302)
                self.send_header("Location", target + ("?" + query if query else ""))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_HEAD = do_GET

            def log_message(self, fmt, *args):
                log.debug("callback forwarder :%s: " + fmt, port, *args)

        self._server = _Server(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True,
                                        name=f"oauth-forwarder-{port}")
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Forwarders:
    """The running listeners by port: a new one on a port replaces the old (as upstream)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: dict[int, Forwarder] = {}

    def start(self, port: int, target: str) -> Forwarder:
        """Start a listener (raises OSError when the port can't be bound)."""
        with self._lock:
            old = self._running.pop(port, None)
            if old is not None:
                old.stop()
            forwarder = Forwarder(port, target)
            self._running[port] = forwarder
            return forwarder

    def release(self, forwarder: Forwarder) -> None:
        """Stop `forwarder` if it is still the one on its port."""
        with self._lock:
            if self._running.get(forwarder.port) is forwarder:
                del self._running[forwarder.port]
            else:
                return
        forwarder.stop()
