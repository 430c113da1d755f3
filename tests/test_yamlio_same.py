"""`yamlio.same`: equal values of equal JSON types, whatever shortcut a list takes."""

import pytest

from cliproxy_mgmt.config.yamlio import same


@pytest.mark.parametrize("a,b,expected", [
    ([1], [1.0], True), ({"a": [1]}, {"a": [1.0]}, True), ([1, [2]], [1.0, [2]], True), (1, 1.0, True),
    ([True], [1], False), ([1], [True], False), (["1"], [1], False), ([None], [None], True),
    (["a", "b"], ["a", "b"], True), (["a", "b"], ["a", "c"], False), ([1, 2], [1], False),
    ({"a": [True, 1]}, {"a": [True, 1.0]}, True), ({"a": [0]}, {"a": [False]}, False),
])
def test_lists_of_scalars_compare_as_item_by_item(a, b, expected):
    assert same(a, b) is expected
    assert same(b, a) is expected


def test_a_value_is_plain_when_to_plain_would_only_copy_it():
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    from cliproxy_mgmt.config.yamlio import is_plain, to_plain

    for value in ["a", 1, 1.5, True, None, [], {}, [1, {"a": [None, "b"]}], {"a": {"b": [1.0]}}, {1: "a"}]:
        assert is_plain(value) and to_plain(value) == value
    for value in [{None: "a"}, (1, 2), {"a": (1,)}, [DoubleQuotedScalarString("x")], CommentedMap(a=1),
                  {"a": [DoubleQuotedScalarString("x")]}]:
        assert not is_plain(value)
        assert is_plain(to_plain(value))
