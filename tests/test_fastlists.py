"""The whole-list helpers answer as the obvious Python loops do."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from cliproxy_mgmt.fastlists import STR, all_exactly, changed_span, identical_span

ITEMS = st.lists(st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(0, 2), st.booleans()), max_size=12)


@settings(max_examples=300, deadline=None)
@given(ITEMS, ITEMS)
def test_changed_span_is_the_longest_shared_head_and_tail(old, new):
    head, tail = changed_span(old, new)
    limit = min(len(old), len(new))
    assert head + tail <= limit
    assert old[:head] == new[:head] and old[len(old) - tail:] == new[len(new) - tail:]
    assert head == limit or old[head] != new[head]  # the head cannot grow
    assert head + tail == limit or old[len(old) - tail - 1] != new[len(new) - tail - 1]  # nor the tail


OBJECTS = [{"n": 0}, {"n": 0}, {"n": 1}]  # two equal objects that are not the same object


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(range(3)), max_size=12), st.lists(st.sampled_from(range(3)), max_size=12))
def test_identical_span_is_the_longest_head_and_tail_of_the_same_objects(old_picks, new_picks):
    old, new = [OBJECTS[i] for i in old_picks], [OBJECTS[i] for i in new_picks]
    head, tail = identical_span(old, new)
    limit = min(len(old), len(new))
    assert head + tail <= limit
    assert all(a is b for a, b in zip(old[:head], new[:head]))
    assert all(a is b for a, b in zip(old[len(old) - tail:], new[len(new) - tail:]))
    assert head == limit or old[head] is not new[head]
    assert head + tail == limit or old[len(old) - tail - 1] is not new[len(new) - tail - 1]


def test_changed_span_of_a_long_list_finds_the_one_change():
    old = [f"key-{i}" for i in range(10_000)]
    new = old[:4_321] + ["changed"] + old[4_322:]
    assert changed_span(old, new) == (4_321, 10_000 - 4_322)
    assert changed_span(old, old[:500] + ["added"] + old[500:]) == (500, 9_500)


@given(ITEMS)
def test_all_exactly_is_every_items_own_type(items):
    assert all_exactly(items, STR) == all(type(v) is str for v in items)


def test_all_exactly_does_not_take_subclasses():
    class Tagged(str):
        pass

    assert all_exactly([], STR) and all_exactly(["x"], STR) and not all_exactly(["x", Tagged("y")], STR)
