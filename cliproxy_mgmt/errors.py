"""The one error shape: upstream's `{"error": "<text>"}` JSON, plus optional extra keys.

Every failure leaves through here: `ApiError` raised by a view, a failed config save,
Flask's HTTP exceptions (404, 405, 413, ...) and anything unexpected (a 500 that never
shows a traceback to the client).
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from .config.store import ConfigError, SaveError, StoreUnavailable, Unrepresentable
from .storage.base import Unavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Answer `status` with `{"error": error, **extra}`."""

    def __init__(self, status: int, error: str, **extra):
        super().__init__(error)
        self.status = status
        self.error = error
        self.extra = extra

    def response(self):
        body = {"error": self.error, **self.extra}
        resp = jsonify(body)
        resp.status_code = self.status
        return resp


def invalid_body() -> ApiError:
    """The most common refusal of a request body (upstream's exact text)."""
    return ApiError(400, "invalid body")


def save_failed(exc: Exception) -> ApiError:
    """A config write failed: upstream answers 500 with this text."""
    return ApiError(500, f"failed to save config: {exc}")


def storage_unavailable(exc: OSError) -> ApiError:
    """The storage backend takes no writes now (its database is down): 503, nothing changed."""
    return ApiError(503, f"storage unavailable: {exc.strerror or exc}")


_HTTP_TEXT = {
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
}


def register_error_handlers(app: Flask) -> None:
    """Install the JSON error handlers on `app`."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return exc.response()

    @app.errorhandler(SaveError)
    def _save_error(exc: SaveError):
        log.error("failed to save config: %s", exc)
        return save_failed(exc).response()

    @app.errorhandler(StoreUnavailable)
    @app.errorhandler(Unavailable)
    def _unavailable(exc: OSError):
        # The database is down: nothing was changed, and reads still answer from memory.
        log.error("storage unavailable: %s", exc)
        return storage_unavailable(exc).response()

    @app.errorhandler(Unrepresentable)
    def _unrepresentable(exc: Unrepresentable):
        return ApiError(400, "invalid body", message=str(exc)).response()

    @app.errorhandler(ConfigError)
    def _config_error(exc: ConfigError):
        return ApiError(400, "invalid config", message=str(exc)).response()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        return ApiError(status, _HTTP_TEXT.get(status, (exc.name or "error").lower())).response()

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return ApiError(500, "internal server error").response()
