"""Whole-list checks done in C.

A config holds lists of tens of thousands of items (client keys, credentials). A write
changes a few of them, yet checks such as "is every item a string?" or "which items
differ?" would cost a Python-level step per item, on every write. These helpers do the
same work through C loops (`map`, set and slice comparison), so a write's remaining cost
follows what it changed.
"""

from __future__ import annotations

from itertools import compress, count
from operator import is_not

STR = frozenset((str,))
DICT = frozenset((dict,))


def all_exactly(items, kinds: frozenset) -> bool:
    """Is the type of every item exactly one of `kinds` (subclasses do not count)?"""
    return kinds.issuperset(map(type, items))


def _shared(old: list, new: list, limit: int, *, from_end: bool) -> int:
    """How many leading (or trailing) items two lists share, at most `limit`: a binary search
    over slice comparisons (==), each done in C, without copying either list."""
    a, b = len(old), len(new)
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if from_end:
            same = old[a - middle:a - low] == new[b - middle:b - low]
        else:
            same = old[low:middle] == new[low:middle]
        low, high = (middle, high) if same else (low, middle - 1)
    return low


def changed_span(old: list, new: list) -> tuple[int, int]:
    """(head, tail): how many leading and trailing items two lists share (==); the items of
    `new` in between, new[head:len(new) - tail], are the ones that may differ."""
    limit = min(len(old), len(new))
    head = _shared(old, new, limit, from_end=False)
    return head, _shared(old, new, limit - head, from_end=True)


def identical_head(a: list, b: list) -> int:
    """How many leading items of two lists are the very same objects."""
    return next(compress(count(), map(is_not, a, b)), min(len(a), len(b)))


def identical_span(old: list, new: list) -> tuple[int, int]:
    """(head, tail): how many leading and trailing items two lists share as the very same
    objects (not overlapping); new[head:len(new) - tail] are the items that may be new."""
    head = identical_head(old, new)
    limit = min(len(old), len(new))
    if head == limit:
        return head, 0
    return head, min(identical_head(old[::-1], new[::-1]), limit - head)
