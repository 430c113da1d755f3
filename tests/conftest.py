"""The fixtures make_app, app and mgmt come from cliproxy-mgmt's opt-in pytest plugin; the
log tests share `folder`."""

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
