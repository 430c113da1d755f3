"""GET /management.html: the Management Center's single-file build, without a management key.

Served from `panel.panel_path` (the operator's `remote-management.panel-file`, else
`static/management.html`), and only when that is a regular file that starts as an HTML
document: whatever the setting names, nothing else (a key file, config.yaml) is ever sent
to an anonymous client. The setting itself cannot be changed through the API
(`config_api.SERVER_ONLY_KEYS`). 404 when `remote-management.disable-control-panel` is true
or there is no panel: this server never downloads it by itself (`cliproxy-mgmt panel fetch`).
"""

from __future__ import annotations

import os
import stat

from flask import Response, abort, current_app, request

from .panel import PANEL_NAME, looks_like_html, panel_path


def _nonblocking(path, flags):
    return os.open(path, flags | os.O_NONBLOCK)  # a FIFO named by the setting must not hang


def management_html():
    config = current_app.extensions["cliproxy_mgmt"].store
    config.refresh()
    if config.get("remote-management", "disable-control-panel") is True:
        abort(404)
    try:
        with open(panel_path(config.data, config.path), "rb", opener=_nonblocking) as f:
            info = os.fstat(f.fileno())
            body = f.read() if stat.S_ISREG(info.st_mode) else b""
    except OSError:  # missing, a folder, unreadable
        abort(404)
    if not looks_like_html(body[:1024]):
        abort(404)
    response = Response(body, mimetype="text/html")
    response.last_modified = info.st_mtime
    response.headers["Cache-Control"] = "no-cache"  # a new build is picked up at once
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.add_etag()
    return response.make_conditional(request)


def init_app(app) -> None:
    """Serve the panel at /management.html (outside /v0/management: no management key)."""
    app.add_url_rule("/" + PANEL_NAME, "management_html", management_html, methods=["GET"])
