"""GET /logs read from the end and paged with `limit` and `cursor` (upstream's 2026 shape)."""

from __future__ import annotations

import base64
import os
import random
import time

import pytest

from cliproxy_mgmt import logs
from cliproxy_mgmt.logs import backwards, cursor
from cliproxy_mgmt.logs.reader import read_logs
from cliproxy_mgmt.testing import ManagementClient


def line(stamp: float, text: str) -> str:
    return f"[{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(stamp))}] [--------] [info ] [x.py:1] {text}\n"


def texts(body) -> list[str]:
    return [x.split("] ")[-1] for x in body["lines"]]


@pytest.fixture
def mgmt(make_app, folder):
    app = make_app(extra_yaml="logging-to-file: true\n")
    logs.close(app)  # the test writes main.log itself
    yield ManagementClient(app.test_client())


T0 = 1_700_000_000


def seed(folder):
    (folder / "main-2023-11-14T22-00-00.000.log").write_text(
        line(T0, "a") + line(T0 + 1, "b"))
    (folder / "main.log").write_text(line(T0 + 2, "c") + "  c-continued\n" + line(T0 + 3, "d"))


def test_old_calls_keep_their_shape(mgmt, folder):
    seed(folder)
    body = mgmt.get("/logs").get_json()
    assert set(body) == {"lines", "line-count", "latest-timestamp"}
    assert texts(body) == ["a", "b", "c", "  c-continued", "d"]
    body = mgmt.get(f"/logs?after={T0 + 1}").get_json()
    assert set(body) == {"lines", "line-count", "latest-timestamp"}
    assert texts(body) == ["c", "  c-continued", "d"] and body["line-count"] == 5


def test_tail_and_cursor_polling(mgmt, folder):
    seed(folder)
    body = mgmt.get("/logs?limit=4").get_json()
    assert texts(body) == ["b", "c", "  c-continued", "d"]
    assert body["line-count"] == 4 and body["latest-timestamp"] == T0 + 3
    assert "cursor-reset" not in body
    first = body["next-cursor"]

    body = mgmt.get("/logs", query_string={"cursor": first, "limit": 10}).get_json()
    assert body["lines"] == [] and body["next-cursor"] == first and "cursor-reset" not in body

    with open(folder / "main.log", "a") as f:
        f.write(line(T0 + 4, "e") + line(T0 + 5, "f") + "[partial")
    body = mgmt.get("/logs", query_string={"cursor": first, "limit": 1}).get_json()
    assert texts(body) == ["e"] and body["line-count"] == 1
    body = mgmt.get("/logs", query_string={"cursor": body["next-cursor"]}).get_json()
    assert texts(body) == ["f"] and body["latest-timestamp"] == T0 + 5  # not the partial line
    with open(folder / "main.log", "a") as f:
        f.write(" line]\n")
    assert mgmt.get("/logs", query_string={"cursor": body["next-cursor"]}).get_json()["lines"] == [
        "[partial line]"]


def test_a_cursor_follows_a_rotation(mgmt, folder):
    seed(folder)
    start = mgmt.get("/logs?limit=1").get_json()["next-cursor"]
    with open(folder / "main.log", "a") as f:
        f.write(line(T0 + 4, "before-rotation"))
    os.rename(folder / "main.log", folder / "main-2023-11-14T22-30-00.000.log")
    (folder / "main.log").write_text(line(T0 + 5, "after-rotation"))
    body = mgmt.get("/logs", query_string={"cursor": start, "limit": 100}).get_json()
    assert texts(body) == ["before-rotation", "after-rotation"] and "cursor-reset" not in body
    again = mgmt.get("/logs", query_string={"cursor": body["next-cursor"]}).get_json()
    assert again["lines"] == []


@pytest.mark.parametrize("spoil", ["garbage", "deep", "truncate", "replace"])
def test_an_unusable_cursor_resets_to_a_tail(mgmt, folder, spoil):
    seed(folder)
    start = mgmt.get("/logs?limit=1").get_json()["next-cursor"]
    if spoil == "truncate":
        (folder / "main.log").write_text(line(T0 + 9, "new"))
    elif spoil == "replace":
        os.remove(folder / "main.log")
        (folder / "main.log").write_text(line(T0 + 2, "c") + "  c-continued\n" + line(T0 + 3, "x"))
    value = {"garbage": "not-a-cursor!",  # and JSON nested far too deep (it was a RecursionError, 500)
             "deep": base64.urlsafe_b64encode(b"[" * 2000).decode().rstrip("=")}.get(spoil, start)
    body = mgmt.get("/logs", query_string={"cursor": value, "limit": 2}).get_json()
    assert body["cursor-reset"] is True and len(body["lines"]) == 2 and body["next-cursor"]


def test_no_folder(mgmt, folder):
    folder.rmdir()
    assert mgmt.get("/logs?limit=5&after=7").get_json() == {
        "lines": [], "line-count": 0, "latest-timestamp": 7, "next-cursor": ""}
    body = mgmt.get("/logs?cursor=abc").get_json()
    assert body["cursor-reset"] is True and body["next-cursor"] == ""


def test_reading_from_the_end_matches_a_full_scan(folder):
    """Random logs with continuation lines and blank lines over rotated files: the backwards
    read gives what the forward scan gives, for any `after` and `limit`."""
    rng = random.Random(7)
    stamp = T0
    files = []
    for n in range(4):
        chunk = []
        for _ in range(rng.randint(0, 300)):
            roll = rng.random()
            if roll < 0.2:
                chunk.append("  continued\n" if roll < 0.18 else "\n")
            else:
                stamp += rng.choice((0, 0, 1, 3))
                chunk.append(line(stamp, f"n{stamp}"))
        files.append("".join(chunk))
    for n, text in enumerate(files[:-1]):
        (folder / f"main-2023-11-14T22-0{n}-00.000.log").write_text(text)
    (folder / "main.log").write_text(files[-1])
    for after in [T0 - 1, T0, T0 + 5, (T0 + stamp) // 2, stamp - 1, stamp, stamp + 100]:
        for limit in (None, 1, 7, 10_000):
            full = read_logs(str(folder), after, limit)
            assert backwards.newer_than(str(folder), after, limit) == full, (after, limit)
    for limit in (1, 50, 10_000):
        assert backwards.tail(str(folder), limit)["lines"] == read_logs(str(folder), 0, limit)["lines"]


def test_line_counts_follow_appends_and_truncation(folder):
    path = folder / "main.log"
    path.write_text("a\nb")
    counts = backwards.LineCounts()
    assert counts.total([str(path)]) == 2
    with open(path, "a") as f:
        f.write("\nc\n")
    assert counts.total([str(path)]) == 3
    path.write_text("")
    assert counts.total([str(path)]) == 0


def test_cursor_is_opaque_but_checked(folder):
    path = folder / "main.log"
    path.write_text("x\n")
    text = cursor.encode(str(path), 2, 5)
    assert cursor.decode(text)["latestTimestamp"] == 5
    assert cursor.decode("e30") is None  # "{}"
    assert cursor.read_from(str(folder), text, None)["lines"] == []
