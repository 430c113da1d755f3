"""The one reader of untrusted JSON and YAML (cliproxy_mgmt/safeload.py), class by class.

Each class of hostile input is a property over its dimension: nesting depth, alias
fan-out, number range, encodings. The HTTP-layer consequences are in test_hostile_input.py.
"""

from __future__ import annotations

import codecs
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cliproxy_mgmt.config.store import ConfigError, ConfigStore, parse
from cliproxy_mgmt.config.yamlio import to_plain
from cliproxy_mgmt.safeload import (MAX_INT_DIGITS, MAX_JSON_DEPTH, MAX_YAML_DEPTH, InvalidJSON,
                                    InvalidYAML, allowed_alias_ratio, json_depth, load_json,
                                    load_yaml)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def nested_json(depth: int, leaf: str = "1") -> str:
    """`depth` levels, alternating arrays and objects."""
    text = leaf
    for level in range(depth):
        text = f"[{text}]" if level % 2 else f'{{"k{level}":{text}}}'
    return text


def nested_yaml(depth: int) -> str:
    """A mapping `deep:` holding `depth - 1` more levels, in block style (indented)."""
    lines, indent = [], ""
    for level in range(depth - 1):
        lines.append(f"{indent}k{level}:")
        indent += "  "
    lines.append(f"{indent}leaf: 1")
    return "\n".join(lines) + "\n"


# -- JSON ------------------------------------------------------------------------------------

@FAST
@given(st.integers(min_value=1, max_value=MAX_JSON_DEPTH + 60))
def test_json_nesting_is_accepted_up_to_the_limit_only(depth):
    text = nested_json(depth)
    assert json_depth(text.encode()) == depth
    if depth <= MAX_JSON_DEPTH:
        assert load_json(text.encode()) == json.loads(text)
    else:
        with pytest.raises(InvalidJSON, match="nested deeper"):
            load_json(text.encode())


@pytest.mark.parametrize("depth", [10_000, 100_000, 1_000_000])
def test_json_nested_far_too_deep_is_refused(depth):
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth, "[" * depth):
        with pytest.raises(InvalidJSON):
            load_json(text.encode())


@pytest.mark.parametrize("raw", [b"[" * 200 + b'"' + b'\\"' * 200_000,
                                 b"[" * 200 + b'"' + b'\\"' * 200_000 + b"\\",
                                 b'{"a":' * 150 + b'"' * 99_999])
def test_the_depth_scan_is_linear_on_unterminated_strings(raw):
    """A string pattern that could fail would be retried at every quote: quadratic, a hang."""
    with pytest.raises(InvalidJSON):
        load_json(raw)


@FAST
@given(st.text(alphabet='[]{}"\\ ax', max_size=300))
def test_brackets_inside_strings_do_not_count(inner):
    text = json.dumps({"s": inner, "t": [inner]})
    assert json_depth(text.encode()) == 2
    assert load_json(text.encode()) == json.loads(text)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", '{"a": NaN}', "[1, Infinity]",
                                  "1e400", "-1e400", '{"x": 1e999}'])
def test_json_numbers_go_cannot_read_are_refused(text):
    with pytest.raises(InvalidJSON):
        load_json(text.encode())


@pytest.mark.parametrize("encode", [
    lambda t: codecs.BOM_UTF8 + t.encode(), lambda t: t.encode("utf-16"),
    lambda t: t.encode("utf-16-le"), lambda t: t.encode("utf-16-be"), lambda t: t.encode("utf-32"),
    lambda t: t.encode("latin-1"), lambda t: t.encode("utf-8")[:-3] + b"\xff\"}"])
def test_json_must_be_utf8_without_a_bom(encode):
    with pytest.raises(InvalidJSON):
        load_json(encode('{"name": "caf\u00e9"}'))


@pytest.mark.parametrize("escapes", [1, MAX_JSON_DEPTH, 5 * MAX_JSON_DEPTH])
def test_escapes_do_not_count_as_nesting_and_are_still_checked(escapes):
    """The depth check counts opening brackets only, though the same pass finds escapes."""
    leaf = json.dumps("\\" * escapes + "[{")
    assert load_json(nested_json(MAX_JSON_DEPTH, leaf).encode()) == json.loads(nested_json(MAX_JSON_DEPTH, leaf))
    with pytest.raises(InvalidJSON, match="nested deeper"):
        load_json(nested_json(MAX_JSON_DEPTH + 1, leaf).encode())
    with pytest.raises(InvalidJSON, match="surrogate"):
        load_json(nested_json(MAX_JSON_DEPTH, leaf[:-1] + '\\udc00"').encode())


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\udc00x", "a\\ud83d"])
def test_lone_surrogates_are_refused_pairs_are_text(escape):
    with pytest.raises(InvalidJSON, match="surrogate"):
        load_json(f'{{"a": "{escape}"}}'.encode())
    assert load_json(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001F600"}


@FAST
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text()
                    | st.floats(allow_nan=False, allow_infinity=False),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                    max_leaves=30))
def test_ordinary_json_reads_as_the_standard_library_does(value):
    text = json.dumps(value, ensure_ascii=False)
    assert load_json(text.encode()) == json.loads(text)
    assert load_json(text) == json.loads(text)


@FAST
@given(st.sampled_from(['{"a": 1}', "[1, 2]", '"text"', "12", "null", "{}", "", "x", "{", '{"a": }',
                        '{"a": 1} {"b": 2}', "[1] x", "1 2", '"open']),
       st.text(" \t\n\r", max_size=3), st.text(" \t\n\r", max_size=3),
       st.sampled_from(["", "x", "1", "{}"]))
def test_any_text_reads_or_fails_as_the_standard_library_says(core, before, after, extra):
    """load_json hands a text that starts with its value to the C scanner itself: around it,
    white space, trailing data and invalid texts still answer as json.loads does, with the
    same error message."""
    text = before + core + after + extra
    try:
        expected = json.loads(text)
    except json.JSONDecodeError as exc:
        with pytest.raises(InvalidJSON) as refused:
            load_json(text.encode())
        assert str(refused.value) == str(exc)
    else:
        assert load_json(text.encode()) == expected


# -- YAML ------------------------------------------------------------------------------------

@FAST
@given(st.integers(min_value=1, max_value=MAX_YAML_DEPTH + 40), st.booleans())
def test_yaml_nesting_is_accepted_up_to_the_limit_only(depth, flow):
    text = ("[" * (depth - 1) + "1" + "]" * (depth - 1) + "\n") if flow else nested_yaml(depth)
    if flow:
        text = "a: " + text  # the root mapping is one level
    if depth <= MAX_YAML_DEPTH:
        assert load_yaml(text) is not None
    else:
        with pytest.raises(InvalidYAML, match="nested deeper"):
            load_yaml(text)


@pytest.mark.parametrize("text", ["a: " + "[" * 100_000, "a: " + "{b: " * 50_000,
                                  "- " * 20_000 + "x\n"])
def test_yaml_nested_far_too_deep_is_refused(text):
    with pytest.raises(InvalidYAML):
        load_yaml(text)


def laughs(levels: int, fan_out: int) -> str:
    """A billion-laughs document: each level an anchored list of `fan_out` aliases of the last."""
    text = "l0: &l0 [" + ", ".join(["x"] * fan_out) + "]\n"
    for n in range(1, levels + 1):
        text += f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * fan_out) + "]\n"
    return text


def expanded_nodes(levels: int, fan_out: int) -> tuple[int, int]:
    """(nodes a full expansion decodes, of which through aliases) for `laughs()`."""
    sizes = [1 + fan_out]  # l0: the list and its scalars
    for _ in range(levels):
        sizes.append(1 + fan_out * sizes[-1])
    decoded = 1 + sum(1 + s for s in sizes)  # the root; each key and its value's tree
    unique = 1 + (levels + 1) + (1 + fan_out) + levels  # root, keys, l0 and its scalars, lists
    return decoded, decoded - unique


@FAST
@given(st.integers(min_value=1, max_value=9), st.integers(min_value=2, max_value=12))
def test_alias_expansion_follows_go_yamls_rule(levels, fan_out):
    decoded, aliased = expanded_nodes(levels, fan_out)
    refused = aliased > 100 and decoded > 1000 and aliased / decoded > allowed_alias_ratio(decoded)
    if refused:
        with pytest.raises(InvalidYAML, match="excessive aliasing"):
            load_yaml(laughs(levels, fan_out))
    else:
        assert load_yaml(laughs(levels, fan_out))[f"l{levels}"][0] is not None


def test_a_small_document_of_ten_million_nodes_is_refused():
    text = laughs(7, 10)
    assert len(text) < 1000
    with pytest.raises(InvalidYAML, match="excessive aliasing"):
        load_yaml(text)


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a [1, [2, *a]]\n"])
def test_an_alias_inside_its_own_anchor_is_refused(text):
    with pytest.raises(InvalidYAML, match="contains it"):
        load_yaml(text)


def test_ordinary_anchors_and_merge_keys_load():
    text = "base: &b {x: 1}\nc: {<<: *b, y: 2}\nd: *b\nlist: &l [1, 2]\ne: *l\n"
    assert load_yaml(text) == {"base": {"x": 1}, "c": {"x": 1, "y": 2}, "d": {"x": 1},
                               "list": [1, 2], "e": [1, 2]}


def test_the_deepest_accepted_config_round_trips_through_the_writer(tmp_path):
    """Anything accepted must stay writable: edits next to it, inside it, and of the whole file."""
    deep = nested_yaml(MAX_YAML_DEPTH - 1)
    path = tmp_path / "config.yaml"
    path.write_text("debug: false\nextra:\n" + "".join("  " + line + "\n" for line in deep.splitlines()))
    store = ConfigStore(str(path))
    store.edit(lambda d: d.__setitem__("debug", True))
    node = store.data["extra"]
    while "leaf" not in node:
        node = next(iter(node.values()))
    assert node == {"leaf": 1}

    def change_leaf(d):
        node = d["extra"]
        while "leaf" not in node:
            node = next(iter(node.values()))
        node["leaf"] = 2
    store.edit(change_leaf)
    assert ConfigStore(str(path)).data == store.data
    with pytest.raises(ConfigError):
        path.write_text("extra:\n  x: " + "[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH + "\n")
        ConfigStore(str(path))


LONG = MAX_INT_DIGITS + 1


@pytest.mark.parametrize("number", [
    "9" * 5000, "-" + "9" * LONG, "0x" + "f" * 5000, "0x" + "f" * LONG, "0" + "7" * LONG,
    "0b" + "1" * LONG, "1_" * LONG])
@pytest.mark.parametrize("directive", ["", "%YAML 1.1\n---\n"], ids=["yaml-1.2", "yaml-1.1"])
def test_integers_of_too_many_digits_are_refused_by_every_loader(number, directive):
    """ruamel's loader, libyaml's (parse) and the writer's round trip (it loads only what
    parse accepted): never Python's own `Exceeds the limit` error, never the digits."""
    text = f"{directive}a: 1\nx: {number}\n"
    line = text.count("\n")
    with pytest.raises(InvalidYAML) as refused:
        load_yaml(text)
    with pytest.raises(ConfigError) as parsed:
        parse(text)
    for exc in (refused.value, parsed.value):
        assert str(exc) == f"an integer of more than {MAX_INT_DIGITS} digits (line {line}, column 4)"


@pytest.mark.parametrize("number", ["9" * MAX_INT_DIGITS, "-0x" + "f" * MAX_INT_DIGITS, "1_" * 999 + "1",
                                    '"' + "9" * 5000 + '"', "9" * 5000 + ".5"])
def test_integers_up_to_the_limit_and_long_strings_or_floats_load(number):
    text = f"x: {number}\n"
    assert parse(text) == to_plain(load_yaml(text))
