"""Golden byte tests: a write changes exactly the lines it must (docs/decisions.md).

Run on upstream's config.example.yaml (a copy in tests/data) and on our bundled config.yaml.
"""

from __future__ import annotations

import difflib
import random
import shutil
from pathlib import Path

import pytest

from cliproxy_mgmt.config.store import ConfigStore, parse

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = [ROOT / "tests" / "data" / "config.example.yaml", ROOT / "config.yaml"]


@pytest.fixture(params=GOLDEN, ids=lambda p: p.name)
def golden(request, tmp_path) -> Path:
    path = tmp_path / "config.yaml"
    shutil.copyfile(request.param, path)
    return path


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_no_op_save_is_byte_identical(golden):
    before = golden.read_bytes()
    store = ConfigStore(str(golden))
    store.edit(lambda d: d.__setitem__("debug", d.get("debug")))
    store.edit(lambda d: d.__setitem__("api-keys", list(d.get("api-keys") or [])))
    assert golden.read_bytes() == before


def test_one_value_change_is_a_one_line_diff(golden):
    before = golden.read_text()
    store = ConfigStore(str(golden))
    store.edit(lambda d: d.__setitem__("request-retry", 7))
    assert changed_lines(before, golden.read_text()) == ["-request-retry: 3", "+request-retry: 7"]
    store.edit(lambda d: d["quota-exceeded"].__setitem__("switch-project", False))
    diff = changed_lines(before, golden.read_text())
    assert len(diff) == 4 and diff[2].startswith("-  switch-project: true")
    assert diff[3].startswith("+  switch-project: false")


def test_nested_string_keeps_its_quotes(golden):
    before = golden.read_text()
    store = ConfigStore(str(golden))
    store.edit(lambda d: d["remote-management"].__setitem__("secret-key", "$2b$10$abc"))
    assert changed_lines(before, golden.read_text()) == ['-  secret-key: ""', '+  secret-key: "$2b$10$abc"']


def test_deleting_a_list_item_keeps_neighbours_and_next_header(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "# Keys\n"
        "api-keys:\n"
        '  - "one" # first\n'
        "  # about two\n"
        '  - "two"\n'
        '  - "three" # third\n'
        "\n"
        "# Next section\n"
        "debug: false\n")
    store = ConfigStore(str(path))
    store.edit(lambda d: d["api-keys"].remove("three"))
    assert path.read_text() == (
        "# Keys\n"
        "api-keys:\n"
        '  - "one" # first\n'
        "  # about two\n"
        '  - "two"\n'
        "\n"
        "# Next section\n"
        "debug: false\n")
    store.edit(lambda d: d["api-keys"].remove("one"))
    assert path.read_text() == (
        "# Keys\n"
        "api-keys:\n"
        "  # about two\n"
        '  - "two"\n'
        "\n"
        "# Next section\n"
        "debug: false\n")


def test_replacing_an_item_keeps_its_comment_and_style(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text('api-keys:\n  - "one" # first\n  - "two"\n')
    store = ConfigStore(str(path))
    store.edit(lambda d: d["api-keys"].__setitem__(0, "uno"))
    store.edit(lambda d: d["api-keys"].append("three"))
    assert path.read_text() == 'api-keys:\n  - "uno" # first\n  - "two"\n  - "three"\n'


def test_unknown_fields_inside_items_survive(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "claude-api-key:\n"
        "  - api-key: \"k1\" # the key\n"
        "    streaming:\n"
        "      keepalive: 5\n"
        "    base-url: \"https://a.example\"\n")
    store = ConfigStore(str(path))

    def change(d):
        d["claude-api-key"][0]["base-url"] = "https://b.example"
    store.edit(change)
    assert path.read_text() == (
        "claude-api-key:\n"
        "  - api-key: \"k1\" # the key\n"
        "    streaming:\n"
        "      keepalive: 5\n"
        "    base-url: \"https://b.example\"\n")


def test_new_key_is_appended_and_removed_key_goes(golden):
    before = golden.read_text()
    store = ConfigStore(str(golden))
    store.edit(lambda d: d.__setitem__("x-new-setting", {"a": [1, 2]}))
    assert golden.read_text().startswith(before)
    store.edit(lambda d: d.pop("x-new-setting"))
    assert golden.read_text() == before


@pytest.mark.parametrize("seed", range(20))
def test_random_edits_keep_text_and_memory_in_step(golden, seed):
    """Random list and scalar edits: the file always parses to exactly what memory holds."""
    rng = random.Random(seed)
    store = ConfigStore(str(golden))
    for step in range(15):
        def change(d):
            keys = list(d.get("api-keys") or [])
            op = rng.choice(["add", "drop", "swap", "set", "scalar", "nested", "clear"])
            if op == "add":
                keys.insert(rng.randint(0, len(keys)), f"k-{seed}-{step}")
            elif op == "drop" and keys:
                keys.pop(rng.randrange(len(keys)))
            elif op == "swap" and len(keys) > 1:
                i, j = rng.sample(range(len(keys)), 2)
                keys[i], keys[j] = keys[j], keys[i]
            elif op == "set" and keys:
                keys[rng.randrange(len(keys))] = f"s-{step}"
            elif op == "scalar":
                d["request-retry"] = rng.randint(0, 9)
            elif op == "nested":
                d.setdefault("quota-exceeded", {})["switch-project"] = rng.choice([True, False])
            elif op == "clear":
                keys = []
            d["api-keys"] = keys
        store.edit(change)
        assert parse(golden.read_text()) == store.data
