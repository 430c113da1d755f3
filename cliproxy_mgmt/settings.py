"""The core's scalar settings and `/api-keys`."""

from __future__ import annotations

from flask import Blueprint

from .conventions import Scalar, add_scalar, add_string_list
from .errors import ApiError

bp = Blueprint("settings", __name__)

_STRATEGIES = {"": "round-robin", "round-robin": "round-robin", "roundrobin": "round-robin",
               "rr": "round-robin", "fill-first": "fill-first", "fillfirst": "fill-first",
               "ff": "fill-first", "weighted-round-robin": "weighted-round-robin",
               "weightedroundrobin": "weighted-round-robin", "wrr": "weighted-round-robin"}


def normalize_strategy(value: str) -> str | None:
    """Upstream's spellings of its strategies; None for anything else."""
    return _STRATEGIES.get(value.strip().lower())


def read_strategy(value) -> str:
    value = str(value or "")
    return normalize_strategy(value) or value.strip()


def write_strategy(value: str) -> str:
    strategy = normalize_strategy(value)
    if strategy is None:
        raise ApiError(400, "invalid strategy")
    return strategy


SCALARS = (
    Scalar("/debug", ("debug",), bool, False),
    Scalar("/logging-to-file", ("logging-to-file",), bool, False),
    Scalar("/usage-statistics-enabled", ("usage-statistics-enabled",), bool, False),
    Scalar("/request-log", ("request-log",), bool, False),
    Scalar("/ws-auth", ("ws-auth",), bool, False),
    Scalar("/force-model-prefix", ("force-model-prefix",), bool, False),
    Scalar("/quota-exceeded/switch-project", ("quota-exceeded", "switch-project"), bool, False),
    Scalar("/quota-exceeded/switch-preview-model", ("quota-exceeded", "switch-preview-model"), bool, False),
    Scalar("/request-retry", ("request-retry",), int, 0),
    Scalar("/max-retry-interval", ("max-retry-interval",), int, 0),
    Scalar("/max-retry-credentials", ("max-retry-credentials",), int, 0),
    Scalar("/logs-max-total-size-mb", ("logs-max-total-size-mb",), int, 0,
           read=lambda v: max(v, 0), write=lambda v: max(v, 0)),
    Scalar("/error-logs-max-files", ("error-logs-max-files",), int, 10,
           read=lambda v: 10 if v < 0 else v, write=lambda v: 10 if v < 0 else v),
    Scalar("/proxy-url", ("proxy-url",), str, "", deletable=True),  # stored as given, untrimmed
    Scalar("/routing/strategy", ("routing", "strategy"), str, "round-robin", get_key="strategy",
           read=read_strategy, write=write_strategy),
)

for _setting in SCALARS:
    add_scalar(bp, _setting)

add_string_list(bp, "/api-keys", "api-keys")
