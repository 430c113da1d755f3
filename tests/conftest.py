"""The fixtures make_app, app and mgmt come from cliproxy-mgmt's opt-in pytest plugin; the
log tests share `folder`, the time-zone tests `zone`."""

import os
import time

import pytest

pytest_plugins = ["cliproxy_mgmt.testing"]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """$WRITABLE_PATH/logs, which every app in the test uses as its log folder."""
    monkeypatch.setenv("WRITABLE_PATH", str(tmp_path / "writable"))
    monkeypatch.delenv("writable_path", raising=False)
    path = tmp_path / "writable" / "logs"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def zone():
    """set_zone(name): the process's time zone (TZ, tzset) until the test ends."""
    before = os.environ.get("TZ")

    def set_zone(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    yield set_zone
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()
