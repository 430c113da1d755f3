"""Unknown top-level config keys: kept (they may be upstream's newer keys), but named in a warning.

A key is known when the core's schema, a plugin's config section (or its legacy keys) or
CLIProxyAPI itself reads it. A misspelling such as `remote-managment:` silently does
nothing, so every load warns about it with the closest known key.
"""

from __future__ import annotations

import difflib
import logging
from functools import lru_cache
from importlib import resources

from .schema import CORE_KEYS

log = logging.getLogger(__name__)

UPSTREAM_KEYS_FILE = "upstream_keys.txt"  # CLIProxyAPI's own top-level keys, one a line


@lru_cache(maxsize=1)
def upstream_keys() -> frozenset:
    """The top-level keys CLIProxyAPI reads (a data file shipped beside this module)."""
    text = resources.files(__package__).joinpath(UPSTREAM_KEYS_FILE).read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def known_keys(sections: dict) -> frozenset:
    """Every top-level key something reads: the core, the plugins' sections, CLIProxyAPI."""
    plugin_keys = {k for key, section in sections.items()
                   for k in (key, *getattr(section, "legacy_keys", ()))}
    return CORE_KEYS | upstream_keys() | plugin_keys


def unknown_key_warnings(data: dict, sections: dict) -> list[str]:
    """One message per unknown top-level key, with the closest known key when there is one."""
    known = known_keys(sections)
    messages = []
    for key in data:
        if not isinstance(key, str) or key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]}?)" if close else ""
        messages.append(f"unknown config key {key}{hint}: kept, but nothing reads it")
    return messages


def warn_unknown_keys(sections: dict):
    """A `ConfigStore.on_load` listener that logs `unknown_key_warnings` for every loaded text."""
    def listener(store) -> None:
        for message in unknown_key_warnings(store.data, sections):
            log.warning("%s", message)

    return listener
