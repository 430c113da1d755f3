"""Whole-list checks done in C.

A config holds lists of tens of thousands of items (client keys, credentials). A write
changes a few of them, yet checks such as "is every item a string?" or "which items
differ?" would cost a Python-level step per item, on every write. These helpers do the
same work through C loops (`map`, set and slice comparison), so a write's remaining cost
follows what it changed.
"""

from __future__ import annotations

STR = frozenset((str,))


def all_exactly(items, kinds: frozenset) -> bool:
    """Is the type of every item exactly one of `kinds` (subclasses do not count)?"""
    return kinds.issuperset(map(type, items))


def common_head(old: list, new: list, limit: int) -> int:
    """How many leading items two lists share (at most `limit`): a binary search over
    slice comparisons (==), each done in C."""
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if old[low:middle] == new[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def common_tail(old: list, new: list, limit: int) -> int:
    """How many trailing items two lists share (at most `limit`), as `common_head` counts."""
    low, high = 0, limit
    a, b = len(old), len(new)
    while low < high:
        middle = (low + high + 1) // 2
        if old[a - middle:a - low] == new[b - middle:b - low]:
            low = middle
        else:
            high = middle - 1
    return low


def changed_span(old: list, new: list) -> tuple[int, int]:
    """(head, tail): how many leading and trailing items two lists share (==); the items of
    `new` in between, new[head:len(new) - tail], are the ones that may differ."""
    head = common_head(old, new, min(len(old), len(new)))
    return head, common_tail(old, new, min(len(old), len(new)) - head)
