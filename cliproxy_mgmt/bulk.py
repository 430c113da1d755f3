"""Building many objects at once without the cyclic garbage collector's repeated passes.

CPython runs a collection every few hundred new container objects, and each older-generation
pass walks every object alive: parsing a 10,000-entry config (hundreds of thousands of
nodes) spends most of its time there, which grows faster than the config. Plain data holds no
reference cycles, so collection can wait until the batch is built.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def no_gc():
    """Pause automatic garbage collection for the block (restored even if it raises)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
