"""Per-credential request counts for GET /auth-files: `success`, `failed`, `recent_requests`.

`auth_file_usage(state)` answers, for each `auth_index`, the successful and failed requests
recorded against it and the last 20 ten-minute buckets (oldest first, the current one last;
`time` is the bucket's start and end, local time, `HH:MM-HH:MM`), upstream's shape.

Interim implementation: computed with two grouped queries over the per-request details the
usage store keeps, and reused until a request is recorded or the current bucket moves on
(so a warm listing costs one `counts()` query). Running aggregates will replace it; the
listing only relies on `UsageFragments.key` and `UsageFragments.fragment(auth_index)`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime

BUCKETS = 20
BUCKET_SECONDS = 600
NS = 1_000_000_000
EXTRA_KEY = "credential_usage"


def _bucket_labels(current: int) -> list[str]:
    labels = []
    for index in range(current - BUCKETS + 1, current + 1):
        start = datetime.fromtimestamp(index * BUCKET_SECONDS).astimezone()
        end = datetime.fromtimestamp((index + 1) * BUCKET_SECONDS).astimezone()
        labels.append(f"{start:%H:%M}-{end:%H:%M}")
    return labels


def _fragment(labels: list, success: int, failed: int, buckets: dict) -> bytes:
    recent = [{"failed": buckets.get(i, (0, 0))[1], "success": buckets.get(i, (0, 0))[0], "time": label}
              for i, label in enumerate(labels)]
    return json.dumps({"failed": failed, "recent_requests": recent, "success": success},
                      separators=(",", ":"))[1:-1].encode("utf-8")


@dataclass
class UsageFragments:
    """The listing's view of the counts: a cache key and one JSON fragment per auth_index."""

    key: tuple
    fragments: dict = field(default_factory=dict)  # auth_index -> b'"failed":..,"success":..'
    empty: bytes = b""

    def fragment(self, auth_index: str) -> bytes:
        return self.fragments.get(auth_index, self.empty)


def _compute(store, current: int, key: tuple) -> UsageFragments:
    since_ns = (current - BUCKETS + 1) * BUCKET_SECONDS * NS
    bucket_ns = BUCKET_SECONDS * NS
    # The interim reads the store's connection directly, under its lock (see module doc).
    with store._lock:
        totals = store._conn.execute(
            "SELECT auth_index, SUM(failed = 0), SUM(failed) FROM details WHERE auth_index != '' "
            "GROUP BY auth_index").fetchall()
        recent = store._conn.execute(
            "SELECT auth_index, (ts_ns - ?) / ?, SUM(failed = 0), SUM(failed) FROM details "
            "WHERE auth_index != '' AND ts_ns >= ? GROUP BY auth_index, (ts_ns - ?) / ?",
            (since_ns, bucket_ns, since_ns, since_ns, bucket_ns)).fetchall()
    labels = _bucket_labels(current)
    buckets: dict = {}
    for index, bucket, ok, failed in recent:
        if 0 <= bucket < BUCKETS:
            buckets.setdefault(index, {})[bucket] = (ok, failed)
    fragments = {index: _fragment(labels, ok, failed, buckets.get(index, {})) for index, ok, failed in totals}
    return UsageFragments(key=key, fragments=fragments, empty=_fragment(labels, 0, 0, {}))


def auth_file_usage(state) -> UsageFragments | None:
    """The per-auth_index counts of an app (None when it keeps no usage statistics)."""
    service = state.extras.get("usage")
    if service is None:
        return None
    store = service.store()
    current = int(time.time()) // BUCKET_SECONDS
    key = (id(store), store.counts(), current)
    cached = state.extras.get(EXTRA_KEY)
    if cached is None or cached.key != key:
        cached = state.extras[EXTRA_KEY] = _compute(store, current, key)
    return cached
