"""The plugin contract: every hook works, is tested and documented; the host checks what plugins return."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Blueprint, jsonify

from cliproxy_mgmt import ConfigSection, Provider, hookimpl
from cliproxy_mgmt.plugin_manager import DEFAULT_PLUGINS, get_plugin_manager
from cliproxy_mgmt.registry import PluginError

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(name for name in dir(get_plugin_manager(load_entrypoints=False).hook) if not name.startswith("_"))


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    sources = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    assert f"def test_hook_{hook}(" in sources, f"write a test_hook_{hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_signature(hook):
    from cliproxy_mgmt import hookspecs
    spec = getattr(hookspecs, hook)
    assert spec.__doc__ and len(spec.__doc__.strip()) > 40
    args = ", ".join(spec.__code__.co_varnames[: spec.__code__.co_argcount])
    docs = (ROOT / "docs" / "plugins.md").read_text()
    assert f"{hook}({args})" in docs, f"docs/plugins.md lacks a section for {hook}({args})"


def test_built_ins_are_registered_by_dotted_name():
    pm = get_plugin_manager(load_entrypoints=False)
    for name in DEFAULT_PLUGINS:
        assert pm.get_plugin(name) is not None


def test_a_misspelt_hook_is_refused():
    class Typo:
        @hookimpl
        def register_bluprints(self):
            return []
    from pluggy import PluginValidationError
    with pytest.raises(PluginValidationError):
        get_plugin_manager(load_entrypoints=False, extra=[Typo()])


def test_blocked_plugin_is_not_loaded():
    pm = get_plugin_manager(load_entrypoints=False, blocked=[DEFAULT_PLUGINS[0]])
    assert pm.get_plugin(DEFAULT_PLUGINS[0]) is None


class Acme:
    """A whole provider in one class: what a third party writes."""

    __name__ = "acme-test-plugin"

    @hookimpl
    def register_providers(self, config):
        assert config.data is not None  # the live ConfigStore
        return [Provider(id="acme", label="Acme")]

    @hookimpl
    def register_config_sections(self):
        return [ConfigSection(key="acme-api-key", order=999,
                              view=lambda value, data: list(value or []),
                              validate=self._validate)]

    @staticmethod
    def _validate(value):
        if not isinstance(value, list):
            raise ValueError("a list is expected")

    @hookimpl
    def register_blueprints(self):
        bp = Blueprint("acme", __name__)

        @bp.get("/acme-ping")
        def ping():
            return jsonify({"pong": True})
        return [bp]


def test_hook_register_providers(make_app):
    app = make_app(plugins=[Acme()])
    assert "acme" in app.extensions["cliproxy_mgmt"].registry.providers


def test_hook_register_config_sections(make_app, mgmt):
    app = make_app(extra_yaml="acme-api-key:\n  - k1\n", plugins=[Acme()])
    client = app.test_client()
    from cliproxy_mgmt.testing import ManagementClient
    cfg = ManagementClient(client).get("/config").get_json()
    assert cfg["acme-api-key"] == ["k1"]
    from cliproxy_mgmt.config.store import ConfigError
    with pytest.raises(ConfigError, match="acme-api-key"):
        make_app(extra_yaml="acme-api-key: nope\n", plugins=[Acme()])


def test_hook_register_blueprints(make_app):
    from cliproxy_mgmt.testing import ManagementClient
    client = make_app(plugins=[Acme()]).test_client()
    mgmt = ManagementClient(client)
    assert mgmt.get("/acme-ping").get_json() == {"pong": True}
    assert mgmt.get("/acme-ping", key=None).status_code == 401  # the guard covers plugin routes


def test_duplicate_provider_names_both_plugins(make_app):
    class Twin:
        __name__ = "twin-plugin"

        @hookimpl
        def register_providers(self):
            return [Provider(id="acme")]
    with pytest.raises(PluginError, match=re.escape("'acme-test-plugin'") + ".*" + re.escape("'twin-plugin'")):
        make_app(plugins=[Acme(), Twin()])


def test_plugin_cannot_take_a_core_key(make_app):
    class Greedy:
        @hookimpl
        def register_config_sections(self):
            return [ConfigSection(key="debug", view=lambda v, d: v)]
    with pytest.raises(PluginError, match="core key"):
        make_app(plugins=[Greedy()])


def test_each_app_gets_its_own_manager(make_app):
    first, second = make_app(plugins=[Acme()]), make_app()
    assert "acme" not in second.extensions["cliproxy_mgmt"].registry.providers
    assert first.extensions["cliproxy_mgmt"].pm is not second.extensions["cliproxy_mgmt"].pm


def test_two_sections_cannot_claim_one_legacy_key(make_app):
    class Renamer:
        @hookimpl
        def register_config_sections(self):
            return [ConfigSection(key="x-new", view=lambda v, d: v, legacy_keys=("x-old",)),
                    ConfigSection(key="x-newer", view=lambda v, d: v, legacy_keys=("x-old",))]
    with pytest.raises(PluginError, match="x-old"):
        make_app(plugins=[Renamer()])


def test_a_section_names_a_registered_provider(make_app):
    class Orphan:
        @hookimpl
        def register_config_sections(self):
            return [ConfigSection(key="x-orphan", view=lambda v, d: v, provider="nobody")]
    with pytest.raises(PluginError, match="nobody"):
        make_app(plugins=[Orphan()])
