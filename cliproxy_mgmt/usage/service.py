"""The app's usage statistics: which store is in force, and how one request gets recorded."""

from __future__ import annotations

import logging
import os
import threading

from flask import current_app

from .. import hookimpl
from .model import Detail, UsageRecord
from .store import DEFAULT_MAX_DETAILS, FileGone, SqliteUsageStore

log = logging.getLogger(__name__)

FILE_KEY = "usage-statistics-file"
DEFAULT_FILE = "usage-statistics.sqlite3"
MAX_DETAILS_KEY = "usage-statistics-max-details"


def store_path(config) -> str:
    """`usage-statistics-file`, relative to the config file's folder (default: beside it)."""
    value = config.get(FILE_KEY)
    value = value.strip() if isinstance(value, str) and value.strip() else DEFAULT_FILE
    path = os.path.expanduser(value)
    return path if os.path.isabs(path) else os.path.join(os.path.dirname(config.path), path)


def max_details(config) -> int:
    value = config.get(MAX_DETAILS_KEY)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else DEFAULT_MAX_DETAILS


class UsageService:
    """Usage statistics of one app, on the store the current config names."""

    def __init__(self, config, shared=None):
        """`shared(max_details)`: a usage store several instances share (the storage backend's),
        used instead of the SQLite file."""
        self.config = config
        self._shared = shared
        self._lock = threading.Lock()
        self._store: SqliteUsageStore | None = None

    def store(self) -> SqliteUsageStore:
        """The store for the current config (re-opened when `usage-statistics-file` changes)."""
        if self._shared is not None:
            with self._lock:
                if self._store is None:
                    self._store = self._shared(max_details(self.config))
                self._store.max_details = max_details(self.config)
                return self._store
        path = store_path(self.config)
        with self._lock:
            if self._store is None or self._store.requested_path != path:
                if self._store is not None:
                    self._store.close()
                self._store = SqliteUsageStore(path, max_details=max_details(self.config))
            self._store.max_details = max_details(self.config)
            return self._store

    def enabled(self) -> bool:
        self.config.refresh()  # pick up an external edit of the toggle
        return self.config.get("usage-statistics-enabled") is True

    def record(self, record: UsageRecord) -> bool:
        """Add one request while statistics are enabled; return whether it was counted."""
        if not self.enabled():
            return False
        try:
            added, _ = self.store().add([record.to_detail()])
        except FileGone:  # the store has said so, once
            return False
        return added == 1

    def credential_usage(self):
        """Per-credential counts for one answer (`CredentialUsage`): `.lookup(auth_index,
        source)` gives `{"success", "failed", "recent_requests"}`, as GET /auth-files and
        GET /api-key-usage show them; a few dict reads per credential, whatever the history."""
        return self.store().credential_usage()

    def merge(self, details: list[Detail]) -> dict:
        """Import details (even while disabled): upstream's answer to POST /usage/import."""
        store = self.store()
        added, skipped = store.add(details)
        total, failed = store.counts()
        return {"added": added, "failed_requests": failed, "skipped": skipped,
                "total_requests": total}

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


class CoreUsagePlugin:
    """The core's implementation of the `record_usage` hook: count the record in this app."""

    def __init__(self, service: UsageService):
        self.service = service

    @hookimpl
    def record_usage(self, record):
        try:
            self.service.record(record)
        except Exception:  # statistics must never break the request that is being counted
            log.exception("usage statistics: could not record a request")


def init_app(app) -> None:
    """Open the app's usage store and register the core's `record_usage` implementation."""
    state = app.extensions["cliproxy_mgmt"]
    service = UsageService(state.store, shared=state.storage.usage)
    service.store()
    state.extras["usage"] = service
    state.pm.register(CoreUsagePlugin(service), name="cliproxy_mgmt.usage")


def usage_service(app=None) -> UsageService:
    app = app or current_app
    return app.extensions["cliproxy_mgmt"].extras["usage"]


def record_usage(record: UsageRecord, app=None) -> None:
    """Report one request to every `record_usage` implementation of `app` (default: current_app).

    The core's implementation counts it while `usage-statistics-enabled` is true; plugins
    may implement the hook to see every record too.
    """
    app = app or current_app
    app.extensions["cliproxy_mgmt"].pm.hook.record_usage(record=record)
