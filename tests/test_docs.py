"""docs/config-keys.md documents every config key the server reads (issue 6)."""

from __future__ import annotations

from pathlib import Path

from cliproxy_mgmt.config.schema import CoreConfig

DOC = (Path(__file__).resolve().parent.parent / "docs" / "config-keys.md").read_text()


def schema_keys(schema, prefix=""):
    for name, field in schema.fields.items():
        key = prefix + (field.data_key or name)
        yield key
        nested = getattr(field, "nested", None)
        if nested is not None:
            yield from schema_keys(nested() if isinstance(nested, type) else nested, key + ".")


def test_every_core_key_is_documented():
    def documented(key: str) -> bool:
        # by its dotted name, by its own name in its section's table, or (a parent) through a child
        return key in DOC or f"`{key.rsplit('.', 1)[-1]}`" in DOC or f"`{key}." in DOC
    missing = [key for key in schema_keys(CoreConfig()) if not documented(key)]
    assert missing == []


def test_every_plugin_section_is_documented(app):
    sections = app.extensions["cliproxy_mgmt"].registry.config_sections
    missing = [key for key, section in sections.items()
               for name in (key, *section.legacy_keys) if f"`{name}`" not in DOC]
    assert missing == []
