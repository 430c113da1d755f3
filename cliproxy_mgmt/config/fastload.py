"""Reading config text into plain data fast: libyaml's C parser with YAML 1.2 rules.

Start-up and every reload parse the whole file. ruamel's pure-Python safe loader costs
seconds for a config of tens of thousands of entries; PyYAML's `CSafeLoader` parses in C.
PyYAML follows YAML 1.1 (`yes`/`on` are booleans, `017` is octal, `1:20` is 60-based), so
the loader here is given the YAML 1.2 resolution rules ruamel (and the Go proxy) use, and
refuses a repeated key as they do. ruamel's round-trip loader is still what every write
uses, to keep comments and layout. Without libyaml, `load` is None and ruamel is used.
"""

from __future__ import annotations

import re

from ..safeload import MAX_YAML_DEPTH, InvalidYAML, check_aliases, check_integer
from .yamlio import to_plain

try:
    import yaml
    from yaml import CSafeLoader
except ImportError:  # no PyYAML or no libyaml: the caller falls back to ruamel
    yaml = CSafeLoader = None

_INT = re.compile(r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0o?[0-7_]+
    |[-+]?[0-9_]+
    |[-+]?0x[0-9a-fA-F_]+)$""", re.X)
_FLOAT = re.compile(r"""^(?:
     [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)
# Where an anchor (`&name`) can stand: where a node starts, after a space, a line break or a
# flow indicator. A text without one has no aliases either (libyaml refuses an alias to an
# unknown anchor), so the alias check's pass over every node is skipped for it.
_MAY_ANCHOR = re.compile(r"(?:^|[\s\[{,:])&")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_TIMESTAMP = re.compile(r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
    (?:[Tt]|[ \t]+)[0-9][0-9]?
    :[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
    (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", re.X)

if CSafeLoader is not None:

    class Loader(CSafeLoader):
        """CSafeLoader with the YAML 1.2 core schema and no repeated keys."""

        yaml_implicit_resolvers: dict = {}

        def construct_yaml_int(self, node):
            check_integer(node.value, node.start_mark)
            text = self.construct_scalar(node).replace("_", "")
            sign = -1 if text.startswith("-") else 1
            text = text.lstrip("+-")
            for prefix, base in (("0b", 2), ("0x", 16), ("0o", 8)):
                if text.startswith(prefix):
                    return sign * int(text[2:], base)
            return sign * int(text)

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        repeated = key in seen
                        seen.add(key)
                    except TypeError:  # an unhashable key: the constructor reports it
                        continue
                    if repeated:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping", node.start_mark,
                            f"found duplicate key {key!r}", key_node.start_mark)
            return super().construct_mapping(node, deep=deep)

    for tag, pattern, first in (
            ("bool", _BOOL, "tTfF"), ("float", _FLOAT, "-+0123456789."),
            ("int", _INT, "-+0123456789"), ("merge", re.compile(r"^(?:<<)$"), "<"),
            ("null", _NULL, ["~", "n", "N", ""]), ("timestamp", _TIMESTAMP, "0123456789"),
            ("value", re.compile(r"^(?:=)$"), "=")):
        Loader.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", pattern, list(first))
    Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)

    Error = yaml.YAMLError

    def load(text: str):
        """The document in `text` as Python data (YAML 1.2 rules); `Error` when it is not YAML.

        None for a text with a `%YAML` directive (it may ask for YAML 1.1 rules): the caller
        reads such a file with ruamel, which follows the directive."""
        if text.startswith("%") or "\n%" in text:
            return None
        return yaml.load(text, Loader=Loader)  # noqa: S506 (a safe loader)

    class _Unusual(Exception):
        """A node the direct walk leaves to the full constructor (merge keys, explicit tags)."""

    _STR, _MAP, _SEQ = ("tag:yaml.org,2002:str", "tag:yaml.org,2002:map",
                        "tag:yaml.org,2002:seq")
    _SCALARS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
                "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp"}

    def load_plain(text: str):
        """Like `yamlio.to_plain(load(text))`, but walking libyaml's node tree directly, which
        is several times faster than PyYAML's generic constructor for the common tags.

        The limits of `safeload.load_yaml` hold here too: InvalidYAML for aliases that expand
        too much and for nesting deeper than MAX_YAML_DEPTH (libyaml itself stops at 1000)."""
        if text.startswith("%") or "\n%" in text:
            return None
        loader = Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if _MAY_ANCHOR.search(text):
                check_aliases(node)
            try:
                return _walk(loader, node, 0)
            except _Unusual:
                try:
                    return _plain(loader.construct_document(node))
                except RecursionError:  # deep nesting behind a merge key: ruamel's loader says why
                    return None
        finally:
            loader.dispose()

    def _walk(loader, node, depth):
        """Plain data of a node; an alias is walked again, so it is a copy (as `to_plain` makes)."""
        tag = node.tag
        if depth >= MAX_YAML_DEPTH and tag in (_MAP, _SEQ):
            raise InvalidYAML(f"nested deeper than {MAX_YAML_DEPTH} levels")
        if tag == _STR:
            return node.value
        if tag == _MAP:
            out = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Unusual
                key = _walk(loader, key_node, depth + 1)
                if not isinstance(key, (str, int, float, bool)):
                    if isinstance(key, (dict, list)):
                        raise _Unusual
                    key = str(key)
                if key in out:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r}", key_node.start_mark)
                out[key] = _walk(loader, value_node, depth + 1)
            return out
        if tag == _SEQ:
            return [_walk(loader, item, depth + 1) for item in node.value]
        if tag in _SCALARS:
            value = loader.construct_object(node)
            return value if value is None or isinstance(value, (bool, int, float)) else str(value)
        raise _Unusual

    def _plain(value):
        return to_plain(value)

else:
    Error = ()  # matches nothing
    load = load_plain = None
