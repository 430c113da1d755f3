"""The parsed config stored beside the PostgreSQL row is encoded key by key, reusing the JSON of
values a write left alone: whatever the sequence of writes, it reads back as the data."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("psycopg")

from cliproxy_mgmt.storage.postgres import _Snapshot  # noqa: E402


def test_each_snapshot_reads_back_as_its_data():
    snapshot = _Snapshot()
    keys = [f"key-{i}" for i in range(1000)]
    data = {"debug": False, "api-keys": keys, "gemini-api-key": [{"api-key": "g", "models": []}]}
    assert json.loads(snapshot.text(data)) == data
    changed = {**data, "api-keys": keys[:500] + ["new"] + keys[501:]}  # one value swapped in
    assert json.loads(snapshot.text(changed)) == changed
    removed = {k: v for k, v in changed.items() if k != "debug"}
    assert json.loads(snapshot.text(removed)) == removed
    added = {**removed, "request-retry": 3}
    assert list(json.loads(snapshot.text(added))) == ["api-keys", "gemini-api-key", "request-retry"]


def test_data_json_would_change_has_no_snapshot():
    snapshot = _Snapshot()
    assert snapshot.text({"a": {1: "x"}}) is None  # an int key would come back as "1"
    assert snapshot.text({"a": float("nan")}) is None
    assert snapshot.text({1: "x"}) is None
    assert snapshot.text(None) is None
    assert json.loads(snapshot.text({"a": {"1": "x"}})) == {"a": {"1": "x"}}


def test_a_value_is_encoded_again_when_it_is_another_object():
    snapshot = _Snapshot()
    first = {"a": [1, 2]}
    snapshot.text(first)
    second = {"a": [1, 2, 3]}  # equal key, a new object: encoded afresh
    assert json.loads(snapshot.text(second)) == second
