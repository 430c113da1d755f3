"""A writer's copy of the config that copies only what the writer touches.

`ConfigStore.edit(change)` hands `change` a draft of the data in force. Deep-copying the
whole config for every write costs the whole config (tens of thousands of entries), when
a write changes one key. A `Draft` copies a top-level value the first time it is read
(so nested mutation never reaches the data in force) and remembers which keys were read,
set or removed: only those can differ, so only those are compared, converted, validated
and spliced into the file.

Within a key, a long list that a write rebuilds from items it did not change (one entry
edited among 10,000) is read with `peek` and put back with `share`: its unchanged items
stay the very objects in force. Those are plain and never changed in place, so `result`
keeps them as they are, and what compares, validates and splices the list can skip them
by identity.
"""

from __future__ import annotations

import pickle

from ..fastlists import all_exactly, identical_span
from . import yamlio

_MISSING = object()


def _copy(value):
    """A deep copy of plain data (pickle's C code: several times faster than copy.deepcopy);
    a list of scalars, such as 10,000 client keys, is copied shallowly (its items cannot be
    changed in place)."""
    if type(value) is list and all_exactly(value, yamlio.PLAIN_SCALARS):
        return list(value)
    if isinstance(value, (dict, list)):
        return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
    return value


def _plain(value, before):
    """`yamlio.to_plain(value)`, keeping as they are the leading and trailing items of a list
    that are the very objects of the list `before` (in force: plain already, and never
    changed in place), and the items in between that are plain already (a write's new
    entries, which the next write then finds as the very objects it stored)."""
    if type(value) is list and type(before) is list and not all_exactly(value, yamlio.PLAIN_SCALARS):
        head, tail = identical_span(before, value)
        end = len(value) - tail
        middle = [item if yamlio.is_plain(item) else yamlio.to_plain(item) for item in value[head:end]]
        return value[:head] + middle + value[end:]
    return yamlio.to_plain(value)


class Draft(dict):
    """A dict over the data in force; reading a top-level value gives (and keeps) a copy."""

    def __init__(self, data: dict):
        super().__init__(data)
        self.touched: set = set()
        self._shared: set = set()  # touched keys whose values hold objects of the data in force
        self._base = data

    def checkpoint(self):
        """What `restore` needs to undo what is done to the draft after this call."""
        # A shared value is never changed in place (reading it through the draft copies it).
        return (set(self.touched), set(self._shared), list(dict.keys(self)),
                {k: dict.__getitem__(self, k) if k in self._shared else _copy(dict.__getitem__(self, k))
                 for k in dict.keys(self) if k in self.touched})

    def restore(self, point) -> None:
        """Back to the state of `checkpoint()` (a change that failed is undone)."""
        touched, shared, order, values = point
        dict.clear(self)
        for key in order:
            dict.__setitem__(self, key, values[key] if key in values else self._base[key])
        self.touched, self._shared = touched, shared

    def peek(self) -> dict:
        """The draft's values as they stand, without copying them: for reading only."""
        return dict.copy(self)

    def owns(self, key) -> bool:
        """Does the draft hold its own copy of `key`'s value (one a change may alter in place)?"""
        return key in self.touched and key not in self._shared and dict.__contains__(self, key)

    def share(self, key, value) -> None:
        """Set `key` to `value`, a value that may hold objects of the data in force (items of
        `peek()`). It counts as changed; reading it through the draft copies it first."""
        self.touched.add(key)
        self._shared.add(key)
        dict.__setitem__(self, key, value)

    def _own(self, key):
        """The draft's own copy of `key`'s value (copied on first access)."""
        if key not in self.touched or key in self._shared:
            self.touched.add(key)
            self._shared.discard(key)
            if dict.__contains__(self, key):
                dict.__setitem__(self, key, _copy(dict.__getitem__(self, key)))
        return dict.__getitem__(self, key)

    def __getitem__(self, key):
        if not dict.__contains__(self, key):
            raise KeyError(key)
        return self._own(key)

    def get(self, key, default=None):
        return self._own(key) if dict.__contains__(self, key) else default

    def __setitem__(self, key, value):
        self.touched.add(key)
        self._shared.discard(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key):
        self.touched.add(key)
        self._shared.discard(key)
        dict.__delitem__(self, key)

    def pop(self, key, default=_MISSING):
        if dict.__contains__(self, key):
            value = self._own(key)
            del self[key]
            return value
        if default is _MISSING:
            raise KeyError(key)
        return default

    def setdefault(self, key, default=None):
        if dict.__contains__(self, key):
            return self._own(key)
        self[key] = default
        return default

    def update(self, *args, **kw):
        for key, value in dict(*args, **kw).items():
            self[key] = value

    def values(self):
        return [self._own(k) for k in dict.keys(self)]

    def items(self):
        return [(k, self._own(k)) for k in dict.keys(self)]

    def copy(self):
        return {k: self._own(k) for k in dict.keys(self)}

    def popitem(self):
        key = next(reversed(dict.keys(self)))
        return key, self.pop(key)

    def clear(self):
        self.touched.update(dict.keys(self))
        self._shared.clear()
        dict.clear(self)

    def __reduce_ex__(self, protocol):  # deepcopy/pickle: a plain dict of (copied) values
        return dict, (self.copy(),)

    def result(self, old: dict) -> tuple[dict, list]:
        """(the new plain data, the keys whose values differ from `old`), in the draft's
        key order; values never touched are the very objects of `old`, and so are the items
        of a list that are the very objects of its list in `old`."""
        new = {}
        changed = []
        for key in dict.keys(self):
            value = dict.__getitem__(self, key)
            if key in self.touched:
                value = _plain(value, old.get(key))
                if key not in old or not yamlio.same(old[key], value):
                    changed.append(key)
            new[key] = value
        changed += [k for k in old if k not in new]
        return new, changed
