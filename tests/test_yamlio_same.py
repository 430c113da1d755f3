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
