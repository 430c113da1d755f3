"""Writes to long lists of credential objects cost the entries they change: the entries a
write leaves alone stay the very objects in force (never cleaned, copied, checked or
compared again), and nothing of that sharing may let a change reach the data in force."""

from __future__ import annotations

import importlib
import operator
import pkgutil
import random
from operator import itemgetter

import pytest
import yaml

import cliproxy_mgmt.providers
from cliproxy_mgmt.config.draft import Draft
from cliproxy_mgmt.config.store import ConfigError
from cliproxy_mgmt.conventions import (ObjectList, _FirstOfEach, dict_items, first_of_each, positions_where, text,
                                      without)
from cliproxy_mgmt.testing import ManagementClient

KEY = "gemini-api-key"


def gemini_yaml(count: int, *, messy: int | None = None) -> str:
    lines = [f"{KEY}:"]
    for n in range(count):
        key = f"  AIza-{n}  " if n == messy else f"AIza-{n}"
        lines += [f'  - api-key: "{key}"', f'    base-url: "https://g{n}.example.test"']
    return "\n".join(lines) + "\n"


def object_lists() -> list:
    """Every ObjectList the bundled provider plugins declare (the very ones the app uses)."""
    found = {}
    providers = cliproxy_mgmt.providers
    for info in pkgutil.walk_packages(providers.__path__, providers.__name__ + "."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, ObjectList):
                found[value.key] = value
    return [found[key] for key in sorted(found)]


@pytest.fixture
def gemini(make_app):
    """(store, client) of an app started on 40 gemini entries, the fourth written with
    spaces to trim."""
    app = make_app(extra_yaml=gemini_yaml(40, messy=3))
    return app.extensions["cliproxy_mgmt"].store, ManagementClient(app.test_client())


def file_entries(store) -> list:
    with open(store.path) as f:
        return dict_items(yaml.safe_load(f), KEY)


def test_a_patch_keeps_the_entries_it_did_not_change(gemini):
    store, mgmt = gemini
    assert mgmt.patch("/gemini-api-key", json={"index": 5, "value": {"prefix": "team"}}).status_code == 200
    before = store.data[KEY]
    r = mgmt.patch("/gemini-api-key", json={"index": 20, "value": {"api-key": "AIza-new"}})
    assert r.status_code == 200
    after = store.data[KEY]
    assert after[20] == {"api-key": "AIza-new", "base-url": "https://g20.example.test"}
    assert all(after[n] is before[n] for n in range(40) if n != 20)
    assert file_entries(store) == after
    assert mgmt.get("/gemini-api-key").get_json()[KEY] == after
    spec = next(s for s in object_lists() if s.key == KEY)
    assert all(a is b for a, b in zip(spec.entries(store.data), after))  # stored clean: kept as is


def test_an_entry_held_unclean_is_cleaned_and_written_cleaned(gemini):
    store, mgmt = gemini
    assert store.data[KEY][3]["api-key"] == "  AIza-3  "
    assert mgmt.get("/gemini-api-key").get_json()[KEY][3]["api-key"] == "AIza-3"
    assert mgmt.delete("/gemini-api-key?index=30").status_code == 200
    assert store.data[KEY][3]["api-key"] == "AIza-3"   # the whole list is written cleaned
    assert file_entries(store)[3]["api-key"] == "AIza-3"
    assert len(store.data[KEY]) == 39


def test_a_refused_patch_leaves_the_entries_in_force_as_they_were(gemini):
    store, mgmt = gemini
    before = store.data[KEY]
    snapshot = [dict(item) for item in before]
    r = mgmt.patch("/gemini-api-key", json={"index": 7, "value": {"weight": 2_000_000}})
    assert r.status_code == 400
    assert store.data[KEY] is before and before == snapshot


def test_a_change_after_store_entries_never_reaches_the_data_in_force(gemini):
    """The list `store_entries` puts into a draft shares its items with the data in force:
    reading it back through the draft hands out a copy, and a failed change is undone."""
    store, _ = gemini
    spec = next(s for s in object_lists() if s.key == KEY)
    before = store.data[KEY]
    snapshot = [dict(item) for item in before]

    def edit_after_storing(draft):
        spec.store_entries(draft, spec.entries(draft)[:-1])
        draft[KEY][0]["api-key"] = "changed-in-place"

    def edit_then_fail(draft):
        edit_after_storing(draft)
        raise ValueError("refused")

    with pytest.raises(ValueError):
        store.edit(edit_then_fail)
    assert store.data[KEY] is before and before == snapshot
    store.edit(edit_after_storing)
    assert before == snapshot
    assert store.data[KEY][0]["api-key"] == "changed-in-place"
    assert len(store.data[KEY]) == 39
    assert spec.entries(store.data)[0]["api-key"] == "changed-in-place"


def test_random_writes_leave_what_a_clean_read_of_the_file_gives(gemini):
    """Whatever the remembered cleaning keeps, every write stores the list cleaned, and the
    entries shown are always those of the file cleaned from scratch."""
    store, mgmt = gemini
    spec = next(s for s in object_lists() if s.key == KEY)
    rng = random.Random(7)
    for step in range(40):
        count = len(spec.entries(store.data))
        kind = rng.choice(["patch", "patch", "delete", "put-one-more", "duplicate"])
        if kind == "patch":
            body = {"index": rng.randrange(count), "value": {"api-key": f" k{step} ", "prefix": "/p/"}}
            assert mgmt.patch("/gemini-api-key", json=body).status_code == 200
        elif kind == "delete":
            assert mgmt.delete(f"/gemini-api-key?index={rng.randrange(count)}").status_code == 200
        elif kind == "duplicate":  # takes the key of another entry: the sanitiser drops it
            other = spec.entries(store.data)[0]["api-key"]
            body = {"index": count - 1, "value": {"api-key": other}}
            assert mgmt.patch("/gemini-api-key", json=body).status_code == 200
        else:
            items = mgmt.get("/gemini-api-key").get_json()[KEY] + [{"api-key": f"  put-{step} "}]
            assert mgmt.put("/gemini-api-key", json=items).status_code == 200
        fresh = spec.clean(file_entries(store))
        assert file_entries(store) == fresh  # a write stores the list cleaned
        assert mgmt.get("/gemini-api-key").get_json()[KEY] == fresh
        assert spec.entries(store.data) == fresh


@pytest.mark.parametrize("spec", [s for s in object_lists() if s.unique_by], ids=lambda s: s.key)
def test_random_repeats_are_dropped_as_a_fresh_read_drops_them(spec, make_app):
    """`unique_by` checks only what a write changed: whatever repeats writes make, move and
    undo (a PATCH copying another entry, a PUT, a DELETE of the first of two), the list
    stored and shown is the file cleaned from scratch."""
    lines = [f"{spec.key}:"]
    for n in range(30):
        lines += [f'  - api-key: "k{n % 12}"', f'    base-url: "https://b{n % 5}.example.test"']
    app = make_app(extra_yaml="\n".join(lines) + "\n")
    store, mgmt = app.extensions["cliproxy_mgmt"].store, ManagementClient(app.test_client())

    def stored():
        with open(store.path) as f:
            return dict_items(yaml.safe_load(f), spec.key)

    rng = random.Random(11)
    for step in range(60):
        shown = spec.entries(store.data)
        kind = rng.choice(["copy", "copy", "patch", "delete", "put"])
        if kind == "copy":  # one entry takes another's identity: the later one is dropped
            source = dict(rng.choice(shown))
            body = {"index": rng.randrange(len(shown)), "value": source}
            assert mgmt.patch(spec.route, json=body).status_code == 200
        elif kind == "patch":
            body = {"index": rng.randrange(len(shown)), "value": {"api-key": f"k{rng.randrange(12)}"}}
            assert mgmt.patch(spec.route, json=body).status_code == 200
        elif kind == "delete" and len(shown) > 1:
            assert mgmt.delete(f"{spec.route}?index={rng.randrange(len(shown))}").status_code == 200
        else:
            extra = {"api-key": f"k{rng.randrange(12)}", "base-url": f"https://b{rng.randrange(5)}.example.test"}
            assert mgmt.put(spec.route, json=mgmt.get(spec.route).get_json()[spec.key] + [extra]).status_code == 200
        fresh = spec.clean(stored())
        assert stored() == fresh, step  # stored without repeats
        assert mgmt.get(spec.route).get_json()[spec.key] == fresh, step
        assert len({spec.unique_by(item) for item in fresh}) == len(fresh)


@pytest.mark.parametrize("spec", object_lists(), ids=lambda s: s.key)
def test_every_object_list_cleans_a_cleaned_entry_to_itself(spec):
    """The write path trusts an entry it cleaned once: cleaning must not change it again."""
    messy = [
        {spec.key_field: "  a  ", "base-url": " https://x.test/ ", "prefix": "/team/", "proxy-url": " ",
         "headers": {" X-A ": " 1 ", "X-B": " "}, "excluded-models": [" M-1 ", "m-1", ""],
         "models": [{"name": " n ", "alias": " a "}, {"name": "", "alias": ""}],
         "api-key-entries": [{"api-key": " k ", "weight": 3}, {"api-key": ""}], "weight": 5},
        {spec.key_field: "b", "base-url": "https://y.test", "unknown-field": [1, {"x": None}]},
        {spec.key_field: 12, "base-url": "https://z.test", "prefix": "a/b"},
        {"base-url": "https://only-url.test"},
        {spec.key_field: "c"},
    ]
    cleaned = spec.clean(messy)
    assert cleaned
    assert spec.clean(cleaned) == cleaned
    assert spec.clean(yaml.safe_load(yaml.safe_dump(cleaned))) == cleaned


def test_lists_declared_from_another_remember_their_own_cleaning():
    lists = {spec.key: spec for spec in object_lists()}
    assert lists["xai-api-key"]._cleaned is not lists["codex-api-key"]._cleaned


def test_a_written_list_is_checked_for_the_entries_it_changed():
    """`validate(value, before)`: the entries that are the very objects of the list in force
    were checked when they came in; the others are checked, with their position."""
    spec = next(s for s in object_lists() if s.key == KEY)
    in_force = [{"api-key": "a"}, {"api-key": "b", "weight": 2_000_000}]  # as if let in earlier
    spec.validate(in_force + [{"api-key": "c"}], in_force)
    with pytest.raises(ValueError, match=r"gemini-api-key\[2\]\.weight"):
        spec.validate(in_force + [{"api-key": "c", "weight": 2_000_000}], in_force)
    with pytest.raises(ValueError, match=r"gemini-api-key\[1\]\.weight"):
        spec.validate(in_force)
    with pytest.raises(ValueError, match="correctly typed"):
        spec.validate([in_force[0], {"api-key": ["not", "a", "string"]}], in_force)


def test_a_config_loaded_with_an_entry_over_the_weight_limit_is_refused(make_app):
    with pytest.raises(ConfigError, match=r"gemini-api-key\[1\]\.weight"):
        make_app(extra_yaml=f"{KEY}:\n  - api-key: a\n  - api-key: b\n    weight: 2000000\n")


def test_a_shared_value_is_copied_when_read_through_the_draft():
    data = {"list": [{"a": 1}, {"a": 2}], "other": 1}
    draft = Draft(data)
    items = draft.peek()["list"]
    assert items is data["list"] and not draft.owns("list")
    draft.share("list", items[:1])
    assert not draft.owns("list")
    point = draft.checkpoint()
    draft["list"][0]["a"] = 9         # a read through the draft: its own copy
    assert draft.owns("list") and data["list"][0] == {"a": 1}
    draft.restore(point)
    assert draft.peek()["list"][0] is data["list"][0]
    new, changed = draft.result(data)
    assert changed == ["list"] and new["list"][0] is data["list"][0]


def test_first_of_each_keeps_the_first_item_per_identity():
    items = [{"k": "a", "u": 1}, {"k": "b", "u": 1}, {"k": "a", "u": 2}, {"k": "a", "u": 1}]
    assert first_of_each(items, itemgetter("k")) == [items[0], items[1]]
    assert first_of_each(items, itemgetter("k", "u")) == items[:3]
    assert first_of_each(items[:2], itemgetter("k")) == items[:2]


def test_the_remembered_de_duplication_answers_as_a_fresh_one():
    """`unique_by` checks only the items between the head and the tail a list shares with the
    last one it gave: after any chain of edits (repeats made, moved and undone, lists it never
    saw), its answer is first_of_each of the whole list, item for item."""
    rng = random.Random(7)
    unique = _FirstOfEach()
    identity = itemgetter("k", "u")
    given = [{"k": f"k{n}", "u": n % 3} for n in range(60)]
    for step in range(300):
        items = list(given)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(items) + 1)
            kind = rng.choice(("change", "insert", "delete", "repeat"))
            if kind == "delete" and items:
                del items[min(at, len(items) - 1)]
            elif kind == "repeat" and items:  # a new object with an identity already listed
                items.insert(at, dict(rng.choice(items)))
            else:
                fresh = {"k": f"k{rng.randrange(90)}", "u": rng.randrange(3)}
                if kind == "insert" or not items:
                    items.insert(at, fresh)
                else:
                    items[min(at, len(items) - 1)] = fresh
        if step % 50 == 49:
            items = [dict(item) for item in items]  # no object in common with the last list
        got = unique(items, identity)
        expected = first_of_each(items, identity)
        assert len(got) == len(expected) and all(map(operator.is_, got, expected)), step
        given = got


def test_writers_committed_together_each_keep_their_change(gemini):
    """Writers that queue behind a write are applied to one draft one after the other: each
    reads the list the one before it shared into the draft, and none loses another's entry."""
    import threading

    store, mgmt = gemini
    spec = next(s for s in object_lists() if s.key == KEY)
    done = []

    def writer(n):
        for round_ in range(5):
            body = {"index": n, "value": {"api-key": f"w{n}-r{round_}", "prefix": f"p{n}"}}
            assert mgmt.patch("/gemini-api-key", json=body).status_code == 200
        done.append(n)

    def reader():
        while len(done) < 4:
            assert len(mgmt.get("/gemini-api-key").get_json()[KEY]) == 40

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=reader))
    with store._lock:  # the first writers queue up: they are committed in one batch
        for t in threads:
            t.start()
        while len(store._queue) < 4:
            threading.Event().wait(0.001)
    for t in threads:
        t.join()
    entries = spec.entries(store.data)
    assert [entries[n]["api-key"] for n in range(4)] == [f"w{n}-r4" for n in range(4)]
    assert [entries[n]["prefix"] for n in range(4)] == [f"p{n}" for n in range(4)]
    assert file_entries(store) == entries == spec.clean(file_entries(store))


@pytest.mark.parametrize("strip", [False, True])
def test_positions_where_reads_each_field_as_text(strip):
    rng = random.Random(5)
    values = ["a", " a ", "b", None, 1, True, "1", "true", " 1", "", 2.5]
    items = [{"k": rng.choice(values)} if rng.random() < 0.9 else {} for _ in range(300)]
    strings = [{"k": rng.choice(["a", " a", "b"])} for _ in range(300)]  # the path done in C
    for entries in (items, strings):
        for wanted in ["a", "1", "true", "b", "", "2.5", "x"]:
            expected = [i for i, item in enumerate(entries)
                        if (text(item.get("k")).strip() if strip else text(item.get("k"))) == wanted]
            found = positions_where(entries, "k", wanted, strip=strip)
            assert found == expected
            assert without(entries, found) == [item for i, item in enumerate(entries) if i not in expected]
