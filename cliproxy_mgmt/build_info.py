"""What the `X-CPA-*` response headers say about this server: its version and build date.

The version is the installed distribution's (the package's own `__version__` when it runs
from a source tree). The build date is when the installed distribution was built or
installed: the time its metadata file was written (for a wheel, the moment it was
unpacked), else the package source's modification time. It is always a real date, as an
RFC 3339 UTC timestamp: the web UI parses it with `new Date()` and shows "Invalid Date"
for anything else (upstream answers "unknown" for builds without a date).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata

from . import __version__

DISTRIBUTION = "cliproxy-mgmt"


def _distribution():
    try:
        return metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=None)
def version() -> str:
    dist = _distribution()
    return (dist.version if dist is not None else "") or __version__


@lru_cache(maxsize=None)
def build_date() -> str:
    """The build or install date of the installed package, RFC 3339 in UTC."""
    dist = _distribution()
    candidates = []
    folder = getattr(dist, "_path", None)  # the .dist-info / .egg-info folder
    if folder is not None:
        candidates += [os.path.join(str(folder), name) for name in ("METADATA", "PKG-INFO")]
    candidates.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "__init__.py"))
    for path in candidates:
        try:
            return _rfc3339(os.stat(path).st_mtime)
        except OSError:
            continue
    return _rfc3339(0)


def version_headers() -> dict:
    """The headers every management response carries (upstream sets them in its middleware).

    `X-CPA-SUPPORT-PLUGIN: 1` tells the web UI to show its Plugins pages: our providers are
    plugins the operator can list and switch on and off (GET /plugins).
    """
    return {"X-CPA-VERSION": version(), "X-CPA-COMMIT": "none", "X-CPA-BUILD-DATE": build_date(),
            "X-CPA-SUPPORT-PLUGIN": "1"}
