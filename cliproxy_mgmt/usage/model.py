"""What usage statistics are made of: one request's record, and the detail rows kept for it.

Upstream's rules live here: the bucketing key of a
request, token totals, and the de-duplication key of an imported detail.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from . import timestamps
from .timestamps import Stamp


@dataclass(frozen=True)
class Tokens:
    input: int = 0
    output: int = 0
    reasoning: int = 0
    cached: int = 0
    total: int = 0

    def normalized(self) -> "Tokens":
        """A zero total becomes input+output+reasoning, and if still zero, plus cached."""
        total = self.total
        if total == 0:
            total = self.input + self.output + self.reasoning
        if total == 0:
            total = self.input + self.output + self.reasoning + self.cached
        return Tokens(self.input, self.output, self.reasoning, self.cached, total)

    def as_json(self) -> dict:
        return {"input_tokens": self.input, "output_tokens": self.output,
                "reasoning_tokens": self.reasoning, "cached_tokens": self.cached,
                "total_tokens": self.total}


@dataclass(frozen=True)
class Detail:
    """One request as the statistics keep it, filed under `api` and `model`."""

    api: str
    model: str
    stamp: Stamp
    source: str = ""
    auth_index: str = ""
    failed: bool = False
    tokens: Tokens = field(default_factory=Tokens)

    def fingerprint(self) -> bytes:
        """Identity for de-duplication: api, model, UTC time, source, index, failed, tokens."""
        t = self.tokens
        key = "|".join((self.api, self.model, self.stamp.utc_text(), self.source, self.auth_index,
                        "true" if self.failed else "false",
                        *(str(n) for n in (t.input, t.output, t.reasoning, t.cached, t.total))))
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:16]

    def as_json(self) -> dict:
        return {"timestamp": self.stamp.text(), "source": self.source,
                "auth_index": self.auth_index, "tokens": self.tokens.as_json(),
                "failed": self.failed}


@dataclass(frozen=True)
class UsageRecord:
    """One upstream request attempt, as an embedding proxy or a plugin reports it.

    Only `model` is usually needed; everything else refines how upstream files it:

    * the statistics key ("api") is `api_key` (the client's proxy key); without one,
      `"<METHOD> <path>"`; then `provider`; then `"unknown"`;
    * the request failed when `failed` is true or `status` is 400 or more;
    * `source` is the credential's label (an email, a project); it defaults to `api_key`;
    * a zero `total_tokens` is computed from the other counts;
    * `requested_at` is when the request started (default: now, local time).
    """

    model: str = ""
    api_key: str = ""
    method: str = ""
    path: str = ""
    provider: str = ""
    source: str = ""
    auth_index: str = ""
    failed: bool = False
    status: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    total_tokens: int = 0
    requested_at: datetime | None = None

    def api_name(self) -> str:
        if self.api_key:
            return self.api_key
        if self.method and self.path:
            return f"{self.method.upper()} {self.path}"
        return self.provider or "unknown"

    def to_detail(self) -> Detail:
        stamp = timestamps.from_datetime(self.requested_at) if self.requested_at else timestamps.now()
        tokens = Tokens(self.input_tokens, self.output_tokens, self.reasoning_tokens,
                        self.cached_tokens, self.total_tokens).normalized()
        return Detail(api=self.api_name(), model=self.model or "unknown", stamp=stamp,
                      source=self.source or self.api_key, auth_index=self.auth_index,
                      failed=self.failed or self.status >= 400, tokens=tokens)
