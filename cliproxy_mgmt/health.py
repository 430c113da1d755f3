"""GET /healthz: liveness for container and service managers, without a management key.

It answers `{"status": "ok"}` whenever the server can answer at all, and says nothing
else: no version, no config, no client address (anyone may ask it).
"""

from __future__ import annotations

from flask import jsonify


def healthz():
    response = jsonify({"status": "ok"})
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app) -> None:
    """Serve /healthz (outside /v0/management: not behind the guard, not banned, no key)."""
    app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
