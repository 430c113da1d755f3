"""The access log: one line per request, in a common format, never a secret.

`<client> "<METHOD> <path>?<query> <protocol>" <status> <bytes> <ms>ms` on the
`cliproxy_mgmt.access` logger (INFO). The client is the address the app decided
(forwarding headers only from trusted proxies); query values of credential-like
parameters (`key`, `token`, OAuth's `code` and `state`, ...) are masked, and the line goes
through the redacting formatter like every other.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl, quote

from flask import request

from .. import audit
from ..security.guard import request_client
from .redact import MASK

ACCESS_LOGGER = "cliproxy_mgmt.access"
log = logging.getLogger(ACCESS_LOGGER)

SECRET_PARAMS = frozenset({"key", "api-key", "api_key", "apikey", "token", "access_token",
                           "refresh_token", "id_token", "state", "code", "password", "secret",
                           "auth", "authorization"})
_START = "cliproxy_mgmt.started"
_PATH_SAFE = "/:@,;=+!$&'()*~"  # with letters, digits and `-._`: what a path shows as it is


def safe_query(query: str) -> str:
    """The query string with the values of credential-like parameters masked."""
    parts = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        shown = MASK if name.lower() in SECRET_PARAMS and value else quote(value, safe="/:@,")
        parts.append(f"{quote(name, safe='')}={shown}")
    return "&".join(parts)


def _size(response) -> str:
    length = response.calculate_content_length() if not response.is_streamed else response.content_length
    return str(length) if length is not None else "-"


def init_app(app) -> None:
    @app.before_request
    def _start():
        request.environ[_START] = time.perf_counter()
        audit.acting_as(request_client())

    @app.after_request
    def _log(response):
        started = request.environ.get(_START)
        elapsed = (time.perf_counter() - started) * 1000 if started else 0.0
        query = request.query_string.decode("latin-1")
        # The path as it would be sent: a decoded newline or NUL must not start a forged line.
        target = quote(request.path, safe=_PATH_SAFE) + ("?" + safe_query(query) if query else "")
        log.info('%s "%s %s %s" %d %s %.1fms', request_client(), request.method, target,
                 request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"), response.status_code,
                 _size(response), elapsed)
        return response

    @app.teardown_request
    def _done(exc=None):
        audit.acting_as(None)
