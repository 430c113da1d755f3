"""Listing timestamps read as Go writes time.Time, whatever the per-second cache holds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cliproxy_mgmt.authfiles import timefmt
from cliproxy_mgmt.authfiles.timefmt import rfc3339_nano
from cliproxy_mgmt.usage.timestamps import Stamp, from_datetime, unix_ns

NS = 1_000_000_000


def _reference(ns: int) -> str:
    """The same text through datetime, with no cache."""
    seconds, fraction = divmod(ns, NS)
    dt = datetime.fromtimestamp(seconds).astimezone()
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += f".{fraction:09d}".rstrip("0")
    offset = int(dt.utcoffset().total_seconds() // 60)
    zone = "Z" if not offset else f"{'+' if offset >= 0 else '-'}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    return text + zone


def test_times_of_one_second_keep_their_own_fractions():
    base = 1_767_225_600 * NS  # 2026-01-01
    stamps = [base, base + 1, base + 500_000_000, base + 999_999_999, base + 120 * NS + 7]
    assert [rfc3339_nano(ns) for ns in stamps] == [_reference(ns) for ns in stamps]
    assert [rfc3339_nano(ns) for ns in stamps] == [_reference(ns) for ns in stamps]  # now cached


def test_a_new_zone_is_seen_at_once(zone):
    ns = 1_767_225_600 * NS + 250_000_000
    zone("UTC0")
    assert rfc3339_nano(ns) == "2026-01-01T00:00:00.25Z"
    zone("CST-8")
    assert rfc3339_nano(ns) == "2026-01-01T08:00:00.25+08:00"
    zone("EST5")
    assert rfc3339_nano(ns) == "2025-12-31T19:00:00.25-05:00"


def test_many_distinct_seconds_stay_right(monkeypatch):
    monkeypatch.setattr(timefmt, "_SECONDS_MAX", 8)  # the cache fills and is emptied many times
    stamps = [(1_700_000_000 + 37 * (n % 50)) * NS + n for n in range(1_000)]
    assert all(rfc3339_nano(ns) == _reference(ns) for ns in stamps[::97])
    assert [rfc3339_nano(ns) for ns in stamps] == [_reference(ns) for ns in stamps]
    assert len(timefmt._SECONDS) <= 8


@pytest.mark.parametrize("moment", [
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=8))),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
    datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-8))),
    datetime(2026, 1, 15, 7, 8, 24, 123457, tzinfo=timezone(timedelta(hours=8))),
])
def test_datetimes_become_nanoseconds_exactly_at_any_year(moment):
    wall = (moment.replace(tzinfo=None) - datetime(1970, 1, 1)) // timedelta(microseconds=1)
    offset = moment.utcoffset() // timedelta(microseconds=1)
    assert unix_ns(moment) == (wall - offset) * 1000
    assert from_datetime(moment) == Stamp(unix_ns(moment), int(moment.utcoffset().total_seconds()))


@pytest.mark.parametrize("seconds", [10**17, -10**17, 10**40, -(10**40)])
def test_a_time_beyond_the_platforms_range_is_the_zero_time_not_an_error(seconds):
    """A file's mtime may be anything its file system holds (tmpfs takes 64-bit seconds)."""
    assert rfc3339_nano(seconds * 1_000_000_000 + 5) == timefmt.NO_TIME == "0001-01-01T00:00:00Z"
