"""`GET /usage-queue?count=N`: hand queued usage records to an external collector.

Upstream keeps a queue of request records (while `usage-statistics-enabled` is true) for
`redis-usage-queue-retention-seconds` (default 60, at most 3600); the route pops up to
`count` (default 1) of the oldest. Here every record reported through the `record_usage`
hook is queued the same way, in memory, next to the persistent statistics.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import datetime

from flask import Blueprint, current_app, jsonify, request

from . import hookimpl
from .conventions import go_atoi, go_trim_space
from .errors import ApiError
from .openapi import describe

bp = Blueprint("usage_queue", __name__)

EXTRA_KEY = "usage_queue"
DEFAULT_RETENTION = 60
MAX_RETENTION = 3600
MAX_RECORDS = 100_000  # memory bound, whatever the traffic


def retention(config) -> int:
    value = config.get("redis-usage-queue-retention-seconds", default=None)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return DEFAULT_RETENTION
    return min(value, MAX_RETENTION)


def as_record(record) -> dict:
    """A usage record as upstream queues it."""
    when = record.requested_at or datetime.now().astimezone()
    return {
        "timestamp": when.isoformat(), "latency_ms": 0, "provider": record.provider,
        "model": record.model, "alias": "", "endpoint": f"{record.method.upper()} {record.path}".strip(),
        "auth_type": "", "api_key": record.api_key, "auth_index": record.auth_index,
        "source": record.source, "request_id": "", "failed": bool(record.failed or record.status >= 400),
        "token_breakdown": {"input_tokens": record.input_tokens, "output_tokens": record.output_tokens,
                            "reasoning_tokens": record.reasoning_tokens, "cached_tokens": record.cached_tokens,
                            "total_tokens": record.total_tokens},
    }


class UsageQueue:
    """The queue of one app: (monotonic time queued, record), oldest first."""

    def __init__(self, config):
        self.config = config
        self._lock = threading.Lock()
        self._items: deque = deque(maxlen=MAX_RECORDS)

    def _expire(self, now: float) -> None:
        keep = retention(self.config)
        while self._items and now - self._items[0][0] > keep:
            self._items.popleft()

    @hookimpl
    def record_usage(self, record):
        if self.config.get("usage-statistics-enabled") is not True:
            return
        try:
            item = as_record(record)
        except Exception:  # a malformed record must not break the request being counted
            return
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            self._items.append((now, item))

    def pop(self, count: int) -> list:
        with self._lock:
            self._expire(time.monotonic())
            return [self._items.popleft()[1] for _ in range(min(count, len(self._items)))]


def init_app(app) -> None:
    state = app.extensions["cliproxy_mgmt"]
    queue = state.extras[EXTRA_KEY] = UsageQueue(state.store)
    state.pm.register(queue, name="cliproxy_mgmt.usage_queue")


@bp.get("/usage-queue")
@describe("Pop the oldest queued usage records", query=[("count", "integer", "how many (default 1)")],
          ok={"type": "array", "items": {"type": "object"}})
def get_usage_queue():
    raw = go_trim_space(request.args.get("count", ""))
    count = go_atoi(raw) if raw else 1  # (upstream: trimmed, empty is 1, Go's Atoi)
    if count is None or count <= 0:
        raise ApiError(400, "count must be a positive integer")
    return jsonify(current_app.extensions["cliproxy_mgmt"].extras[EXTRA_KEY].pop(count))
