"""Usage statistics: upstream's merge rules, the record hook, retention, the store's file."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.usage import UsageRecord, record_usage, timestamps, usage_service
from cliproxy_mgmt.usage.model import Tokens
from cliproxy_mgmt.testing import ManagementClient
from cliproxy_mgmt.usage.store import SqliteUsageStore

ENABLED = "usage-statistics-enabled: true\n"


def detail(ts, tokens=(1, 1, 0, 0, 2), failed=False, source="src", auth_index="idx"):
    inp, out, reasoning, cached, total = tokens
    return {"timestamp": ts, "source": source, "auth_index": auth_index, "failed": failed,
            "tokens": {"input_tokens": inp, "output_tokens": out, "reasoning_tokens": reasoning,
                       "cached_tokens": cached, "total_tokens": total}}


def snapshot(apis: dict, version=1) -> dict:
    """apis: {api: {model: [details]}} in the export format."""
    return {"version": version, "usage": {"apis": {
        api: {"models": {m: {"details": d} for m, d in models.items()}}
        for api, models in apis.items()}}}


def import_(mgmt, payload):
    data = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    return mgmt.post("/usage/import", data=data, content_type="application/json")


def usage(mgmt) -> dict:
    body = mgmt.get("/usage").get_json()
    assert body["failed_requests"] == body["usage"]["failure_count"]
    return body["usage"]


# -- timestamps and tokens ---------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "2026-01-12T01:30:00+02:00", "2026-01-10T09:15:04.123456789Z",
    "2026-01-10T09:15:04.5-07:30", "0001-01-01T00:00:00Z"])
def test_timestamps_round_trip_with_nanoseconds_and_their_offset(text):
    assert timestamps.parse(text).text() == text


@pytest.mark.parametrize("text", ["2026-01-10", "2026-13-01T00:00:00Z", "2026-01-10T09:15:04",
                                  "2026-01-10 09:15:04Z", "2026-01-10T09:15:04+25:00"])
def test_bad_timestamps_are_refused(text):
    with pytest.raises(ValueError):
        timestamps.parse(text)


def test_day_and_hour_are_in_the_timestamps_own_zone():
    stamp = timestamps.parse("2026-01-12T01:30:00+02:00")
    assert (stamp.day(), stamp.hour()) == ("2026-01-12", "01")
    assert stamp.utc_text() == "2026-01-11T23:30:00Z"


@pytest.mark.parametrize("given, total", [
    ((10, 5, 0, 0, 15), 15), ((3, 4, 1, 0, 0), 8), ((0, 0, 0, 7, 0), 7), ((1, 2, 3, 4, 99), 99)])
def test_token_totals(given, total):
    assert Tokens(*given).normalized().total == total


# -- import: upstream's merge rules -------------------------------------------------------

def test_import_recomputes_everything_from_details(mgmt):
    payload = snapshot({
        " key-a ": {"m1": [detail("2026-01-10T23:30:00-02:00", (2, 3, 0, 0, 0)),
                           detail("2026-01-11T00:10:00Z", (1, 0, 0, 0, 1), failed=True)],
                    "  ": [detail("2026-01-11T00:20:00Z")]},
        "   ": {"ignored": [detail("2026-01-11T00:30:00Z")]}})
    payload["usage"]["total_requests"] = 999  # aggregates in the payload are ignored
    r = import_(mgmt, payload)
    assert r.get_json() == {"added": 3, "failed_requests": 1, "skipped": 0, "total_requests": 3}
    u = usage(mgmt)
    assert list(u["apis"]) == ["key-a"]                          # trimmed; empty api skipped
    assert sorted(u["apis"]["key-a"]["models"]) == ["m1", "unknown"]  # empty model: unknown
    assert u["requests_by_day"] == {"2026-01-10": 1, "2026-01-11": 2}  # detail's own zone
    assert u["requests_by_hour"] == {"00": 2, "23": 1}
    assert u["total_tokens"] == 5 + 1 + 2
    assert (u["success_count"], u["failure_count"]) == (2, 1)


def test_duplicates_are_skipped_within_one_import_and_against_kept_data(mgmt):
    d = detail("2026-01-10T09:00:00Z")
    r = import_(mgmt, snapshot({"k": {"m": [d, d]}}))
    assert r.get_json()["added"] == 1 and r.get_json()["skipped"] == 1
    # The same instant written in another zone is the same detail.
    same = {**d, "timestamp": "2026-01-10T11:00:00+02:00"}
    assert import_(mgmt, snapshot({"k": {"m": [same]}})).get_json()["skipped"] == 1
    # Anything else that differs makes it a new detail.
    for changed in ({**d, "failed": True}, {**d, "source": "other"}, {**d, "auth_index": "x"}):
        assert import_(mgmt, snapshot({"k": {"m": [changed]}})).get_json()["added"] == 1
    assert import_(mgmt, snapshot({"k2": {"m": [d]}})).get_json()["added"] == 1


def test_a_zero_or_missing_timestamp_becomes_now(mgmt):
    zero = detail("0001-01-01T00:00:00Z")
    missing = {k: v for k, v in detail("x").items() if k != "timestamp"}
    assert import_(mgmt, snapshot({"k": {"m": [zero, missing]}})).get_json()["added"] == 2
    now = datetime.now().astimezone()
    for kept in usage(mgmt)["apis"]["k"]["models"]["m"]["details"]:
        stamp = datetime.fromisoformat(kept["timestamp"][:26] + kept["timestamp"][-6:])
        assert abs(stamp - now) < timedelta(minutes=1)


@pytest.mark.parametrize("payload, error", [
    ({"version": 2, "usage": {}}, "unsupported version"),
    ({"version": -1}, "unsupported version"),
    ({"version": "1"}, "invalid json"),
    ({"version": 1.0}, "invalid json"),
    ([], "invalid json"),
    ({"usage": {"apis": {"k": {"models": {"m": {"details": [{"failed": "yes"}]}}}}}}, "invalid json"),
    ({"usage": {"apis": {"k": {"models": {"m": {"details": [{"timestamp": "yesterday"}]}}}}}},
     "invalid json"),
    ({"usage": {"apis": {"k": {"models": {"m": {"details": [
        {"tokens": {"input_tokens": 1 << 63}}]}}}}}}, "invalid json"),
    ('{"version": 1} trailing', "invalid json"),
    (b"\xff\xfe", "invalid json"),
])
def test_import_errors_change_nothing(mgmt, payload, error):
    r = import_(mgmt, payload)
    assert r.status_code == 400 and r.get_json() == {"error": error}
    assert usage(mgmt)["total_requests"] == 0


def test_null_values_are_zero_values(mgmt):
    payload = {"version": None, "usage": {"apis": {"k": {"models": {"m": {"details": [
        {"timestamp": "2026-01-10T09:00:00Z", "source": None, "tokens": None, "failed": None}]}}}}}}
    assert import_(mgmt, payload).get_json()["added"] == 1
    assert import_(mgmt, "null").get_json() == {
        "added": 0, "failed_requests": 0, "skipped": 0, "total_requests": 1}


def test_negative_totals_count_as_zero_in_the_aggregates(mgmt):
    import_(mgmt, snapshot({"k": {"m": [detail("2026-01-10T09:00:00Z", (0, 0, 0, 0, -5))]}}))
    u = usage(mgmt)
    assert u["total_tokens"] == 0
    assert u["apis"]["k"]["models"]["m"]["details"][0]["tokens"]["total_tokens"] == -5


def test_export_is_upstreams_format(mgmt):
    import_(mgmt, snapshot({"k": {"m": [detail("2026-01-10T09:00:00.5+01:00")]}}))
    body = mgmt.get("/usage/export").get_json()
    assert list(body) == ["exported_at", "usage", "version"]
    assert body["exported_at"].endswith("Z") and body["version"] == 1
    kept = body["usage"]["apis"]["k"]["models"]["m"]["details"][0]
    assert list(kept) == ["timestamp", "source", "auth_index", "tokens", "failed"]
    assert kept["timestamp"] == "2026-01-10T09:00:00.5+01:00"


# -- recording ------------------------------------------------------------------------------

def test_record_usage_counts_while_enabled(make_app):
    app = make_app(extra_yaml=ENABLED)
    when = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    record_usage(UsageRecord(model="gpt-x", api_key="client-key-1", input_tokens=10,
                             output_tokens=5, requested_at=when, auth_index="abc"), app=app)
    record_usage(UsageRecord(model="", method="post", path="/v1/messages", status=502,
                             requested_at=when), app=app)
    record_usage(UsageRecord(provider="some-provider", model="m", requested_at=when), app=app)
    with app.test_client() as client:
        u = usage(ManagementClient(client))
    assert set(u["apis"]) == {"client-key-1", "POST /v1/messages", "some-provider"}
    kept = u["apis"]["client-key-1"]["models"]["gpt-x"]["details"][0]
    assert kept["tokens"]["total_tokens"] == 15 and kept["source"] == "client-key-1"
    assert kept["auth_index"] == "abc" and kept["timestamp"] == "2026-03-01T10:00:00Z"
    assert u["apis"]["POST /v1/messages"]["models"]["unknown"]["details"][0]["failed"] is True
    assert (u["total_requests"], u["failure_count"]) == (3, 1)


def test_records_are_dropped_while_disabled(app, mgmt):
    record_usage(UsageRecord(model="m", api_key="k"), app=app)
    assert usage(mgmt)["total_requests"] == 0
    assert mgmt.put("/usage-statistics-enabled", json={"value": True}).status_code == 200
    record_usage(UsageRecord(model="m", api_key="k"), app=app)
    assert usage(mgmt)["total_requests"] == 1


def test_hook_record_usage(make_app):
    """Plugins implementing the hook see every record, even while statistics are off."""
    seen = []

    class Listener:
        @hookimpl
        def record_usage(self, record):
            seen.append(record)

    app = make_app(plugins=[Listener()])
    record = UsageRecord(model="m")
    with app.app_context():
        record_usage(record)  # current_app
    assert seen == [record]


def test_a_failing_store_never_breaks_the_reporter(make_app, monkeypatch, caplog):
    app = make_app(extra_yaml=ENABLED)
    service = usage_service(app)

    def broken(details):
        raise OSError("disk full")

    monkeypatch.setattr(service.store(), "add", broken)
    record_usage(UsageRecord(model="m"), app=app)
    assert "could not record" in caplog.text


# -- the store ----------------------------------------------------------------------------------

def test_store_file_beside_the_config_by_default(app):
    store = usage_service(app).store()
    assert store.path == os.path.join(os.path.dirname(app.extensions["cliproxy_mgmt"].store.path),
                                      "usage-statistics.sqlite3")
    assert os.path.exists(store.path)


@pytest.mark.parametrize("route", ["/usage", "/usage/export"])
@pytest.mark.parametrize("harm", ["removed", "damaged"])
def test_a_store_file_gone_or_damaged_while_running_is_a_json_error(app, mgmt, route, harm):
    """The file removed (or overwritten) under the running server: a JSON 503 that says so,
    not a response cut off after it began, and no new empty file in its place."""
    path = usage_service(app).store().path
    for name in (path, path + "-wal", path + "-shm"):
        if os.path.exists(name):
            os.remove(name)
    if harm == "damaged":
        with open(path, "wb") as f:
            f.write(b"this is not a database" * 100)
    r = mgmt.get(route)
    assert r.status_code == 503
    assert r.get_json()["error"].startswith("storage unavailable: usage statistics: ")
    assert os.path.exists(path) == (harm == "damaged")


def remove_store_file(path: str, suffixes=("", "-wal", "-shm")) -> None:
    """What an operator's `rm usage-statistics.sqlite3*` does under the running server."""
    for name in (path + suffix for suffix in suffixes):
        if os.path.exists(name):
            os.remove(name)


@pytest.mark.parametrize("harm", ["removed", "removed-alone", "replaced"])
def test_records_after_the_store_file_is_gone_are_not_written_into_the_dead_file(
        make_app, caplog, harm):
    """SQLite would go on writing into the unlinked file, where every request counted from then
    on is lost at the next start: the store stops writing and says so once, in one line; the
    reporter sees no error, no traceback is logged, and no file is made in its place."""
    app = make_app(extra_yaml=ENABLED)
    store = usage_service(app).store()
    record_usage(UsageRecord(model="m", api_key="k"), app=app)
    remove_store_file(store.path, ("",) if harm == "removed-alone" else ("", "-wal", "-shm"))
    if harm == "replaced":
        SqliteUsageStore(store.path).close()  # another (empty) database at the path
    caplog.clear()
    for model in ("after-1", "after-2", "after-3"):
        record_usage(UsageRecord(model=model, api_key="k"), app=app)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and len(caplog.records) == 1
    assert store.path in warnings[0].getMessage() and not warnings[0].exc_info
    assert "removed or replaced" in warnings[0].getMessage()
    assert os.path.exists(store.path) == (harm == "replaced")
    assert store.counts() == (1, 0)  # nothing went into the dead file either
    with app.test_client() as client:
        mgmt = ManagementClient(client)
        r = import_(mgmt, snapshot({"k": {"m": [detail("2026-01-10T09:00:00Z")]}}))
        assert r.status_code == 503
        assert r.get_json()["error"].startswith("storage unavailable: usage statistics: ")
        if harm != "replaced":
            assert mgmt.get("/usage").status_code == 503
        else:  # reads show the file that is at the path now
            assert usage(mgmt)["total_requests"] == 0
    assert store.counts() == (1, 0)


def test_store_file_follows_the_setting(tmp_path, mgmt):
    app = mgmt.client.application
    config = app.extensions["cliproxy_mgmt"].store
    config.edit(lambda d: d.__setitem__("usage-statistics-file", "stats/usage.db"))
    assert usage_service(app).store().path == str(tmp_path / "stats" / "usage.db")
    assert (tmp_path / "stats" / "usage.db").exists()


def test_unusable_file_falls_back_to_a_temporary_store(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    store = SqliteUsageStore(str(blocker / "usage.db"))
    try:
        assert store.path != str(blocker / "usage.db") and os.path.exists(store.path)
        assert "until the server stops" in caplog.text
        assert store.add([UsageRecord(model="m").to_detail()]) == (1, 0)
    finally:
        store.close()
    assert not os.path.exists(store.path)


def stream_json(store) -> dict:
    return json.loads("".join(store.stream(lambda failed: '{"usage":', "}")))["usage"]


def test_retention_keeps_the_newest_details_and_every_count(tmp_path):
    store = SqliteUsageStore(str(tmp_path / "u.db"), max_details=3)
    try:
        base = datetime(2026, 1, 1, tzinfo=timezone.utc)
        records = [UsageRecord(model="m", api_key="k", total_tokens=1,
                               requested_at=base + timedelta(minutes=n)) for n in (5, 1, 3, 4, 2)]
        for record in records:
            store.add([record.to_detail()])
        u = stream_json(store)
        stamps = [d["timestamp"] for d in u["apis"]["k"]["models"]["m"]["details"]]
        assert sorted(stamps) == ["2026-01-01T00:03:00Z", "2026-01-01T00:04:00Z",
                                  "2026-01-01T00:05:00Z"]
        assert u["total_requests"] == 5 and u["total_tokens"] == 5
        assert u["apis"]["k"]["models"]["m"]["total_requests"] == 5
    finally:
        store.close()


def test_streamed_snapshot_is_read_from_one_consistent_view(tmp_path):
    store = SqliteUsageStore(str(tmp_path / "u.db"))
    try:
        store.add([UsageRecord(model="m", api_key="k").to_detail()])
        chunks = store.stream(lambda failed: '{"usage":', "}")
        first = next(chunks)
        store.add([UsageRecord(model="m", api_key="k2").to_detail()])  # a writer is not blocked
        u = json.loads(first + "".join(chunks))["usage"]
        assert u["total_requests"] == 1 and list(u["apis"]) == ["k"]
    finally:
        store.close()
