"""GET /management.html: the Management Center's single-file build (reference §1.1, delta §14).

Served from `remote-management.panel-file` (relative to the config file's folder); by
default from where upstream keeps its downloaded copy, `static/management.html` under
$WRITABLE_PATH or beside the config, so an existing upstream installation's panel is found.
404 when `remote-management.disable-control-panel` is true or the file is missing: this
server never downloads the panel.
"""

from __future__ import annotations

import os

from flask import abort, current_app, send_file

PANEL_NAME = "management.html"


def panel_path(config) -> str:
    remote = config.get("remote-management", default={}) or {}
    value = remote.get("panel-file") if isinstance(remote, dict) else None
    if isinstance(value, str) and value.strip():
        path = os.path.expanduser(value.strip())
        return path if os.path.isabs(path) else os.path.join(os.path.dirname(config.path), path)
    writable = (os.environ.get("WRITABLE_PATH") or os.environ.get("writable_path") or "").strip()
    base = writable or os.path.dirname(config.path)
    return os.path.join(base, "static", PANEL_NAME)


def management_html():
    config = current_app.extensions["cliproxy_mgmt"].store
    config.refresh()
    if config.get("remote-management", "disable-control-panel") is True:
        abort(404)
    path = panel_path(config)
    if not os.path.isfile(path):
        abort(404)
    response = send_file(path, mimetype="text/html", conditional=True)
    response.headers["Cache-Control"] = "no-cache"  # a new build is picked up at once
    return response


def init_app(app) -> None:
    """Serve the panel at /management.html (outside /v0/management: no management key)."""
    app.add_url_rule("/" + PANEL_NAME, "management_html", management_html, methods=["GET"])
