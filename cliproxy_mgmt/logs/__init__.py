"""Logs: the server's own log file and the log endpoints.

`log_dir(config)` is the folder every endpoint and the writer use ($WRITABLE_PATH/logs,
./logs, <auth-dir>/logs). `writer.FileLogging` follows `logging-to-file`,
`logs-max-total-size-mb` and `error-logs-max-files`.
"""

from __future__ import annotations

from . import access
from .paths import log_dir
from .redact import follow_config
from .views import bp
from .writer import FileLogging

EXTRA_KEY = "logs"


def init_app(app) -> None:
    """Follow the config's log settings (now and on every config change); tidy the folder now and
    then; mask the config's secrets in every log line; log every request."""
    from ..security.guard import env_password

    state = app.extensions["cliproxy_mgmt"]
    follow_config(state.store, state.local_password, env_password())
    access.init_app(app)
    logging_ = FileLogging(state.store)
    state.extras[EXTRA_KEY] = logging_
    logging_.follow()
    logging_.tick()
    state.store.on_change(logging_.follow)

    @app.after_request
    def _tidy_log_folder(response):
        logging_.tick()
        return response


def close(app) -> None:
    """Stop the app's file logging (tests; a server simply exits)."""
    app.extensions["cliproxy_mgmt"].extras[EXTRA_KEY].close()


__all__ = ["FileLogging", "bp", "close", "init_app", "log_dir"]

