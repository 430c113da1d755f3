"""RFC 3339 timestamps as Go's `time.Time` keeps them: nanoseconds plus the zone offset.

Upstream writes usage timestamps with RFC3339Nano in the time's own zone and buckets a
detail by day and hour in that zone, so a timestamp is kept as
(nanoseconds since the epoch, offset in seconds) rather than as a Python datetime, which
would lose the last three digits.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime, timedelta, timezone

_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
                      r"(?:(Z)|([+-])(\d{2}):(\d{2}))$")
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC, _MICROSECOND = _EPOCH.replace(tzinfo=timezone.utc), timedelta(microseconds=1)
NS = 1_000_000_000


@dataclass(frozen=True)
class Stamp:
    """An instant (`ns` since the epoch, UTC) shown in a zone `offset` seconds east of UTC."""

    ns: int
    offset: int = 0

    @cached_property  # a recorded detail asks for it three times (text, day, hour)
    def _walltime(self) -> tuple[datetime, int]:
        local = self.ns + self.offset * NS
        return _EPOCH + timedelta(seconds=local // NS), local % NS

    def _wall(self) -> tuple[datetime, int]:
        return self._walltime

    def text(self) -> str:
        """RFC3339Nano in the stamp's own zone (Go's format: fraction trimmed, `Z` for UTC)."""
        return self._text

    @cached_property
    def _text(self) -> str:
        wall, frac = self._wall()
        out = f"{wall.year:04d}-{wall:%m-%dT%H:%M:%S}"
        if frac:
            out += "." + f"{frac:09d}".rstrip("0")
        if self.offset == 0:
            return out + "Z"
        sign = "+" if self.offset > 0 else "-"
        minutes = abs(self.offset) // 60
        return f"{out}{sign}{minutes // 60:02d}:{minutes % 60:02d}"

    def utc_text(self) -> str:
        return self.text() if self.offset == 0 else Stamp(self.ns, 0).text()

    def day(self) -> str:
        wall = self._wall()[0]
        return f"{wall.year:04d}-{wall:%m-%d}"

    def hour(self) -> str:
        return f"{self._wall()[0].hour:02d}"


ZERO = Stamp(calendar.timegm((1, 1, 1, 0, 0, 0)) * NS)  # Go's zero time.Time


def parse(text: str) -> Stamp:
    """Parse an RFC 3339 timestamp (any number of fraction digits); ValueError otherwise."""
    m = _RFC3339.match(text)
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second, frac, z, sign, oh, om = m.groups()
    datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))  # range check
    if not z and (int(oh) > 23 or int(om) > 59):
        raise ValueError(f"bad zone offset in {text!r}")
    offset = 0 if z else (1 if sign == "+" else -1) * (int(oh) * 3600 + int(om) * 60)
    wall = calendar.timegm((int(year), int(month), int(day), int(hour), int(minute), int(second)))
    ns = (wall - offset) * NS + int(((frac or "") + "000000000")[:9])
    return Stamp(ns, offset)


def now() -> Stamp:
    """The current instant in the server's local zone (upstream stamps records in local time)."""
    ns = time.time_ns()
    return Stamp(ns, time.localtime(ns // NS).tm_gmtoff)


def unix_ns(value: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime: exact (no float), for any year a
    datetime holds (no conversion to UTC that could leave datetime's range)."""
    return (value - _EPOCH_UTC) // _MICROSECOND * 1000


def from_datetime(value: datetime) -> Stamp:
    """An aware datetime as a Stamp (a naive one is taken as local time)."""
    if value.tzinfo is None:
        value = value.astimezone()
    return Stamp(unix_ns(value), int(value.utcoffset().total_seconds()))
