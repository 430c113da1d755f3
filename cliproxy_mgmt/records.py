"""The records plugins return through the hooks (see hookspecs.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Provider:
    """A provider a plugin adds: `id` is unique across all plugins (e.g. "acme")."""

    id: str
    label: str = ""


@dataclass(frozen=True)
class ConfigSection:
    """A top-level config.yaml key a plugin owns.

    key       the YAML key, e.g. "gemini-api-key"; unique across all plugins.
    view      view(value, data) -> what GET /config shows for it (value is None when absent).
    validate  validate(value) raises ValueError when a loaded value has the wrong shape; the
              config is then refused (start-up error, 400 on PUT /config.yaml, reload skipped).
    legacy_keys  old top-level keys the section replaces; they are dropped from the file on
              the next write, as upstream does.
    order     position in GET /config among the plugin sections (upstream's field order).
    """

    key: str
    view: Callable[[object, dict], object]
    validate: Callable[[object], None] = lambda value: None
    legacy_keys: tuple = ()
    order: int = 100
    provider: str = ""
    extra: dict = field(default_factory=dict)
