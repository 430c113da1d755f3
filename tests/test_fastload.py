"""The C-accelerated config loader reads every text as ruamel's YAML 1.2 safe loader does."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from cliproxy_mgmt.config import fastload
from cliproxy_mgmt.config.store import ConfigError, parse
from cliproxy_mgmt.config.yamlio import to_plain
from cliproxy_mgmt.safeload import InvalidYAML

pytestmark = pytest.mark.skipif(fastload.load is None, reason="PyYAML with libyaml not installed")

ROOT = Path(__file__).resolve().parent.parent
SCALARS = [
    "017", "0o17", "0x1F", "0b101", "1_000", "_1", "+5", "-0", "08", "09_1", "1e3", "1E3", "1.5",
    ".5", "+.5", "-.inf", ".nan", "+.inf", ".Inf", "1:20", "12:30:45", "yes", "no", "on", "off",
    "y", "n", "True", "FALSE", "Null", "~", "null", "", "<<x", "0.", "1_0.5_", "-0o7", "+0x1f",
    "0b", "0x", "0o", "1__2", "0b2", "0o8", "1e", "-", "'017'", '"x"', "[1, 2]", "{a: 1}",
    "2001-12-14", "2001-12-14T21:59:43.10-05:00", "2001-12-14 21:59:43", "2001-1-1 1:00:00",
    "2001-12-14t21:59:43Z", "!!str 5", "!!int '7'", "'a''b'", "|\n  block\n", ">\n  folded\n"]


def both(text: str):
    """[ruamel, fastload.load, fastload.load_plain] results as comparable text."""
    out = []
    for load in (YAML(typ="safe", pure=True).load, fastload.load, fastload.load_plain):
        try:
            out.append(repr(to_plain(load(text))))  # repr: nan == nan, 1 != True
        except Exception:  # noqa: BLE001 (both must fail alike)
            out.append("error")
    return out


@pytest.mark.parametrize("scalar", SCALARS)
def test_scalars_resolve_as_yaml_1_2(scalar):
    ruamel, fast, plain = both(f"k: {scalar}\n")
    assert fast == plain == ruamel


@pytest.mark.parametrize("text", [
    "a: 1\na: 2\n", "a:\n  b: 1\n  b: 2\n", "1: x\n01: y\n",  # repeated keys are refused
    "a: &x {b: 1}\nc:\n  <<: *x\n  b: 2\n", "a: [1\n", "- 1\n", "", "# only a comment\n",
    "a: =\n", "\ufeffa: 1\n", "a: &x [1, {b: 2}]\nc: *x\n", "? [1]\n: x\n", "null: 1\n2001-01-01: d\n",
    "a: !!binary aGVsbG8=\n", "a: !custom x\n", "a: !!set {x}\n"])
def test_documents_load_alike(text):
    ruamel, fast, plain = both(text)
    assert fast == plain
    assert plain == ruamel or plain in ("None", "error")  # parse() then asks ruamel
    try:
        loaded = YAML(typ="safe", pure=True).load(text)
        expected = repr(to_plain(loaded or {})) if isinstance(loaded or {}, dict) else "error"
    except Exception:  # noqa: BLE001
        expected = "error"
    try:
        got = repr(parse(text))
    except ConfigError:
        got = "error"
    assert got == expected


def test_shipped_configs_load_alike():
    for path in (ROOT / "config.yaml", ROOT / "tests" / "data" / "config.example.yaml"):
        text = path.read_text()
        assert fastload.load(text) is not None
        ruamel, fast, plain = both(text)
        assert fast == plain == ruamel


def test_a_yaml_directive_is_left_to_ruamel():
    assert fastload.load("%YAML 1.1\n---\na: yes\n") is None
    assert parse("%YAML 1.1\n---\na: yes\n") == {"a": True}
    with pytest.raises(ConfigError):
        parse("a: 1\na: 2\n")


def _bomb(anchor_at: str) -> str:
    """A ten-million-node alias bomb whose first anchor stands as `anchor_at` places it."""
    text = anchor_at + "\n"
    for n in range(1, 8):
        text += f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 10) + "]\n"
    return text


@pytest.mark.parametrize("anchor_at", [
    "l0: &l0 [x, x]",                 # a block mapping's value
    "l0:\n  &l0 [x, x]",              # on the next line
    "l0:\n- &l0 x",                   # a block sequence item
    "l0:\t&l0 [x]",                   # after a tab
    "l0: {k: &l0 x}",                 # a flow mapping's value
    'l0: {"k":&l0 x}',                # right after a JSON-like key's colon
    "l0: [a,&l0 x]",                  # right after a flow comma
    "l0: [&l0 x]",                    # right after the bracket
    "l0: {&l0 k: v}",                 # a flow mapping's key
    "l0: !!str &l0 x",                # after a tag
])
def test_the_fast_loader_checks_aliases_wherever_an_anchor_stands(anchor_at):
    with pytest.raises(InvalidYAML, match="excessive aliasing"):
        fastload.load_plain(_bomb(anchor_at))


def test_an_ampersand_inside_values_is_no_anchor():
    text = 'url: "https://x.test/?a=1&b=2"\nplain: a&b\n'
    assert fastload.load_plain(text) == {"url": "https://x.test/?a=1&b=2", "plain": "a&b"}
