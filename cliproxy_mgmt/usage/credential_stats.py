"""Per-credential request counts for GET /auth-files: `success`, `failed`, `recent_requests`.

`auth_file_usage(state)` gives the listing, for each `auth_index`, the JSON fragment
`"failed":..,"recent_requests":[..],"success":..` (upstream's keys, sorted as the entry's).
The counts come from the usage store's running per-credential aggregates
(`UsageService.credential_usage()`); the fragments are reused until a request is recorded
or the current ten-minute bucket moves on, so a warm listing costs one `counts()` look.
"""

from __future__ import annotations

import json

from .credentials import current_bucket

EXTRA_KEY = "credential_usage"


class UsageFragments:
    """The listing's view of the counts: a cache `key` and one JSON fragment per auth_index."""

    def __init__(self, key: tuple, usage):
        self.key = key
        self._usage = usage          # a `credentials.CredentialUsage`
        self._fragments: dict = {}   # auth_index -> bytes
        self._unused: bytes | None = None  # the one fragment of every credential without requests

    def fragment(self, auth_index: str) -> bytes:
        found = self._fragments.get(auth_index)
        if found is None:
            if self._usage.recorded(auth_index):
                found = _encode(self._usage.lookup(auth_index))
            else:  # most files of a large auth-dir: encoded once, not once per file
                if self._unused is None:
                    self._unused = _encode(self._usage.lookup(""))
                found = self._unused
            self._fragments[auth_index] = found
        return found


def _encode(counts: dict) -> bytes:
    return json.dumps(counts, sort_keys=True, separators=(",", ":"))[1:-1].encode("utf-8")


def auth_file_usage(state) -> UsageFragments | None:
    """The per-auth_index counts of an app (None when it keeps no usage statistics)."""
    service = state.extras.get("usage")
    if service is None:
        return None
    cached = state.extras.get(EXTRA_KEY)
    store = service.store()
    try:
        key = (id(store), store.counts(), current_bucket())
        if cached is None or cached.key != key:
            cached = state.extras[EXTRA_KEY] = UsageFragments(key, service.credential_usage())
    except OSError:  # a shared store that is unreachable: the listing shows the last counts
        pass
    return cached
