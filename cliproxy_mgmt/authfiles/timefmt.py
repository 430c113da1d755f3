"""Timestamps as Go writes them: RFC 3339 in the local zone, `Z` for UTC."""

from __future__ import annotations

import time
from datetime import datetime, timedelta


def rfc3339(dt: datetime) -> str:
    """`time.RFC3339`: seconds, no fraction (what token files carry)."""
    dt = dt.astimezone()
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + _zone_of(int(dt.utcoffset().total_seconds()))


_ZONES: dict[int, str] = {}  # tm_gmtoff -> `Z` or `+hh:mm` (a listing formats two per file)


def _zone_of(gmtoff: int) -> str:
    """`Z`, or `+hh:mm` / `-hh:mm`, for an offset of `gmtoff` seconds east of UTC."""
    zone = _ZONES.get(gmtoff)
    if zone is None:
        offset = gmtoff // 60
        zone = _ZONES[gmtoff] = "Z" if not offset else \
            f"{'+' if offset >= 0 else '-'}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    return zone


# whole seconds -> (their text, zone). Files written together share their second, and a
# listing formats two times per file: a repeated second costs one lookup. Emptied when the
# process's zone changes (time.tzset() makes a new tzname tuple) or it grows large.
_SECONDS: dict[int, tuple[str, str]] = {}
_SECONDS_ZONE: list = [time.tzname]
_SECONDS_MAX = 4096


def _second(seconds: int) -> tuple[str, str]:
    if _SECONDS_ZONE[0] is not time.tzname or len(_SECONDS) >= _SECONDS_MAX:
        _SECONDS.clear()
        _SECONDS_ZONE[0] = time.tzname
    found = _SECONDS.get(seconds)
    if found is None:
        t = time.localtime(seconds)  # (no datetime objects: cheaper)
        if 1000 <= t.tm_year <= 9999:  # strftime pads no other year to four digits
            text = time.strftime("%Y-%m-%dT%H:%M:%S", t)
        else:
            text = (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
                    f"{t.tm_sec:02d}")
        found = _SECONDS[seconds] = (text, _zone_of(t.tm_gmtoff))
    return found


# Go's zero time.Time: shown for a time the platform can't convert (a file's mtime may be
# anything the file system holds, years beyond what localtime() takes included).
NO_TIME = "0001-01-01T00:00:00Z"


def rfc3339_nano(ns: int) -> str:
    """`time.RFC3339Nano` of a unix time in nanoseconds (what `time.Time` JSON looks like);
    NO_TIME for one out of the platform's range."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    try:
        text, zone = _second(seconds)
    except (OverflowError, OSError, ValueError):
        return NO_TIME
    if fraction:
        text = f"{text}.{fraction:09d}".rstrip("0")
    return text + zone


def now_rfc3339() -> str:
    return rfc3339(datetime.now())


def rfc3339_in(seconds) -> str:
    """The moment `seconds` from now (a token's expiry); anything but a number counts as 0."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        seconds = 0
    return rfc3339(datetime.now() + timedelta(seconds=seconds))


def unix_ms() -> int:
    return time.time_ns() // 1_000_000
