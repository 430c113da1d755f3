"""Writes that cost the change: the copy-on-read draft, and the splice that edits only the
changed blocks (checked against the line-by-line splice it replaces)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cliproxy_mgmt.config import yamlio
from cliproxy_mgmt.config.draft import Draft
from cliproxy_mgmt.config.store import ConfigStore, parse

ROOT = Path(__file__).resolve().parent.parent
TEXTS = [ROOT / "config.yaml", ROOT / "tests" / "data" / "config.example.yaml"]


def lines_of(text: str, where: dict) -> dict:
    """Character ranges as line ranges."""
    return {k: (text.count("\n", 0, s), text.count("\n", 0, e)) for k, (s, e) in where.items()}


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: p.name)
def test_blocks_from_the_text_match_blocks_from_lines(path):
    text = path.read_text()
    assert lines_of(text, yamlio.text_blocks(text)) == yamlio.blocks(text.splitlines(keepends=True))


def edits(data: dict, rng: random.Random):
    """A few changes of each kind, on copies of `data`."""
    for key in list(data)[:: max(len(data) // 12, 1)]:
        value = data[key]
        new = dict(data)
        if isinstance(value, list) and value:
            items = list(value)
            items[rng.randrange(len(items))] = items[0] if isinstance(items[0], str) else dict(items[0])
            items.append(items[-1])
            new[key] = items
        elif isinstance(value, bool):
            new[key] = not value
        elif isinstance(value, dict):
            new[key] = {**value, "added-field": 1}
        else:
            new[key] = "changed"
        yield new, [key]
        removed = {k: v for k, v in data.items() if k != key}
        yield removed, [key]
    yield {**data, "brand-new": [1, 2]}, ["brand-new"]


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: p.name)
@pytest.mark.parametrize("ending", ["\n", "", "\r\n"], ids=["lf", "no-final-lf", "crlf"])
def test_splice_by_blocks_writes_what_the_line_splice_wrote(path, ending):
    text = path.read_text()
    text = text.rstrip("\n") + ending if ending != "\r\n" else text.replace("\n", "\r\n")
    old = parse(text)
    yaml = yamlio.make_yaml(yamlio.guess_indent(text))
    for new, keys in edits(old, random.Random(3)):
        expected = yamlio._splice_lines(yaml, text, old, new)
        assert yamlio.splice(yaml, text, old, new, keys=keys) == expected
        assert yamlio.splice(yaml, text, old, new) == expected


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: p.name)
def test_the_block_index_kept_after_a_splice_is_the_one_the_text_has(path):
    """The next write starts from the index the splice kept (shifted, not found again): it must
    be what text_blocks finds in the new text, item lists edited in place included."""
    text = path.read_text()
    old = parse(text)
    yaml = yamlio.make_yaml(yamlio.guess_indent(text))
    kept = 0
    for new, keys in edits(old, random.Random(5)):
        result = yamlio.splice(yaml, text, old, new, keys=keys)
        known, where, items = yamlio._last_blocks
        if known is result:
            kept += 1
            assert where == yamlio.text_blocks(result)
            assert_items_are_the_texts(result, where, items)
    assert kept


def assert_items_are_the_texts(text: str, where: dict, spliced: dict) -> None:
    """The blocks remembered for `text` are its lines there, and their item ranges what
    `_item_ranges` finds in them."""
    for key, lines in spliced.items():
        start, end = where[key]
        assert lines == text[start:end].splitlines(keepends=True), key
        assert lines.items == yamlio._item_ranges(lines), key


CHAINED = """\
# credentials
gemini-api-key:
  - api-key: "k0"   # the first
    base-url: "https://a.example.test"
  # between items
  - api-key: "k1"
    models:
      - name: m
        alias: a

  - api-key: "k2"
    headers:
      X-A: "1"
  - api-key: "k3"
api-keys:
  - one
  - two
  # the last
  - three
debug: false
"""


def test_a_chain_of_writes_follows_the_items_of_the_lists_it_edits():
    """Writes that start from the text the last one wrote use the item ranges it remembered:
    after every kind of edit (change, insert, delete, several at once; comments and a blank
    line between items), the text is what the line-by-line splice writes and the ranges are
    the text's."""
    rng = random.Random(11)
    text = CHAINED
    data = parse(text)
    yaml = yamlio.make_yaml(yamlio.guess_indent(text))
    followed = 0
    for step in range(60):
        new = dict(data)
        key = rng.choice(["gemini-api-key", "api-keys"])
        items = list(new[key])
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(items) + 1)
            kind = rng.choice(["change", "insert", "delete"]) if items else "insert"
            fresh = {"api-key": f"n{step}-{at}"} if key == "gemini-api-key" else f"n{step}-{at}"
            if kind == "insert":
                items.insert(at, fresh)
            elif kind == "delete" and len(items) > 1:
                del items[min(at, len(items) - 1)]
            else:
                items[min(at, len(items) - 1)] = fresh
        new[key] = items
        expected = yamlio._splice_lines(yaml, text, data, new)
        result = yamlio.splice(yaml, text, data, new, keys=[key])
        assert result == expected
        known, where, remembered = yamlio._last_blocks
        assert known is result
        assert_items_are_the_texts(result, where, remembered)
        followed += key in remembered
        text, data = result, parse(result)
        assert data == new
    assert followed > 40


def test_a_draft_copies_only_what_is_read():
    data = {"a": [1, 2], "b": {"c": 1}, "d": "x"}
    draft = Draft(data)
    draft["a"].append(3)          # nested mutation stays in the draft
    draft.get("b")["c"] = 2
    draft["e"] = 5
    draft.pop("d")
    assert data == {"a": [1, 2], "b": {"c": 1}, "d": "x"}
    new, changed = draft.result(data)
    assert new == {"a": [1, 2, 3], "b": {"c": 2}, "e": 5}
    assert sorted(changed) == ["a", "b", "d", "e"]
    untouched = Draft(data)
    untouched.get("a")  # read, not changed
    assert untouched.result(data) == (data, [])
    assert untouched.result(data)[0]["b"] is data["b"]  # never copied


def test_a_write_validates_what_changed(tmp_path):
    seen = []
    path = tmp_path / "config.yaml"
    path.write_text("a: 1\nb: [x]\n")

    def validate(data, changed=None):
        seen.append(sorted(changed) if changed is not None else None)

    store = ConfigStore(str(path), validate=validate)
    store.edit(lambda d: d.__setitem__("a", 2))
    assert seen == [None, ["a"]]
    assert path.read_text() == "a: 2\nb: [x]\n"


def test_writers_waiting_together_are_committed_together(tmp_path):
    import threading
    import time

    from cliproxy_mgmt.config.store import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text("# keys\nkeys: [a]\ncount: 0\n")

    def validate(data, changed=None):
        if not isinstance(data.get("count", 0), int):
            raise ConfigError("count must be an int")

    store = ConfigStore(str(path), validate=validate)
    writes = []
    real_write = store._write
    store._write = lambda text, *rest: (writes.append(text), real_write(text, *rest))[1]
    outcomes = {}

    def append(key):
        def change(d):
            d["keys"].append(key)
            return key
        return change

    def broken(d):
        d["keys"].append("never")
        raise KeyError("boom")

    def invalid(d):
        d["keys"].append("never-either")
        d["count"] = "x"

    def run(name, change):
        try:
            outcomes[name] = ("ok", store.edit(change))
        except Exception as exc:  # noqa: BLE001
            outcomes[name] = ("error", type(exc).__name__)

    changes = {"b": append("b"), "broken": broken, "c": append("c"), "invalid": invalid,
               "d": append("d")}
    with store._lock:  # a write in progress: everyone else queues behind it
        threads = []
        for name, change in changes.items():
            threads.append(threading.Thread(target=run, args=(name, change)))
            threads[-1].start()
            while len(store._queue) < len(threads):
                time.sleep(0.001)
    for t in threads:
        t.join()
    assert outcomes == {"b": ("ok", "b"), "broken": ("error", "KeyError"), "c": ("ok", "c"),
                        "invalid": ("error", "ConfigError"), "d": ("ok", "d")}
    assert len(writes) == 1  # one file write for the whole queue
    assert store.data == {"keys": ["a", "b", "c", "d"], "count": 0}
    assert path.read_text() == "# keys\nkeys: [a, b, c, d]\ncount: 0\n"
