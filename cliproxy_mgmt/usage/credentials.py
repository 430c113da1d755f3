"""Running per-credential counts: what GET /api-key-usage and the auth-file listing show.

Upstream keeps, per credential, `success` and `failed` since start and 20 ten-minute buckets
of recent requests (`recent_requests`, oldest first, the current bucket last). Here they are
running aggregates kept beside the usage details (and persisted with them), so an answer
costs the same whatever number of requests was ever recorded.

A request is filed under its credential's `auth_index` when it has one, else under its
`source` (an embedding proxy may know only the key or the account); `lookup(auth_index,
source)` adds both, so no request is counted twice.
"""

from __future__ import annotations

import time
from typing import Iterable

from .timestamps import NS

BUCKET_SECONDS = 10 * 60
BUCKETS = 20


def aggregate_key(auth_index: str, source: str) -> str | None:
    """The aggregate a request is counted in: `i:<auth_index>`, else `s:<source>`, else none."""
    if auth_index:
        return "i:" + auth_index
    if source:
        return "s:" + source
    return None


def bucket_of(ns: int) -> int:
    """The ten-minute bucket of an instant (unix seconds // 600, as upstream numbers them)."""
    return ns // NS // BUCKET_SECONDS


def current_bucket() -> int:
    return int(time.time()) // BUCKET_SECONDS


class CredentialCounts:
    """Totals and recent buckets per aggregate key, in memory (the store persists them)."""

    def __init__(self):
        self.totals: dict[str, list[int]] = {}              # key -> [success, failed]
        self.recent: dict[str, dict[int, list[int]]] = {}   # key -> bucket -> [success, failed]

    def load(self, totals: Iterable[tuple], buckets: Iterable[tuple]) -> None:
        for key, success, failed in totals:
            self.totals[key] = [success, failed]
        for key, bucket, success, failed in buckets:
            self.recent.setdefault(key, {})[bucket] = [success, failed]

    def apply(self, totals: dict, buckets: dict) -> None:
        """Add the deltas of one committed write (`key -> [s, f]`, `(key, bucket) -> [s, f]`)."""
        oldest = current_bucket() - BUCKETS + 1
        for key, (s, f) in totals.items():
            entry = self.totals.setdefault(key, [0, 0])
            entry[0] += s
            entry[1] += f
        for (key, bucket), (s, f) in buckets.items():
            kept = self.recent.setdefault(key, {})
            entry = kept.setdefault(bucket, [0, 0])
            entry[0] += s
            entry[1] += f
            if len(kept) > 2 * BUCKETS:  # drop buckets too old to be shown again
                for old in [b for b in kept if b < oldest]:
                    del kept[old]


def _label(bucket: int) -> str:
    start = time.localtime(bucket * BUCKET_SECONDS)
    end = time.localtime((bucket + 1) * BUCKET_SECONDS)
    return f"{start.tm_hour:02d}:{start.tm_min:02d}-{end.tm_hour:02d}:{end.tm_min:02d}"


class CredentialUsage:
    """One answer's view of the per-credential counts: `lookup` is a few dict reads.

    Take one per request (the bucket labels are computed once, for "now").
    """

    def __init__(self, counts: CredentialCounts, now_bucket: int | None = None):
        self._counts = counts
        last = current_bucket() if now_bucket is None else now_bucket
        self._buckets = [(b, _label(b)) for b in range(last - BUCKETS + 1, last + 1)]

    def recorded(self, auth_index: str) -> bool:
        """Whether any request is filed under `auth_index` (else `lookup(auth_index)` gives zeros)."""
        return aggregate_key(auth_index, "") in self._counts.totals

    def lookup(self, auth_index: str = "", source: str = "") -> dict:
        """`{"success", "failed", "recent_requests": [20 x {"time", "success", "failed"}]}`
        of the requests filed under `auth_index` plus those filed under `source` alone."""
        keys = [k for k in (aggregate_key(auth_index, ""), aggregate_key("", source)) if k]
        success = failed = 0
        recent = [[0, 0] for _ in self._buckets]
        for key in keys:
            totals = self._counts.totals.get(key)
            if totals is None:
                continue
            success += totals[0]
            failed += totals[1]
            kept = self._counts.recent.get(key) or {}
            for i, (bucket, _) in enumerate(self._buckets):
                counts = kept.get(bucket)
                if counts:
                    recent[i][0] += counts[0]
                    recent[i][1] += counts[1]
        return {"success": success, "failed": failed, "recent_requests": [
            {"time": label, "success": s, "failed": f}
            for (_, label), (s, f) in zip(self._buckets, recent)]}
