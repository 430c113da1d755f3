"""The one reader of untrusted JSON and YAML: request bodies, auth files, config.yaml.

Both refuse, quickly and with a ValueError, what would later break the server:

* nesting deeper than `MAX_JSON_DEPTH` / `MAX_YAML_DEPTH` (Python's recursion limit is
  reached by every later walk over such a value: copies, comparisons, the YAML writer);
* JSON that RFC 8259 does not allow and Go's reader refuses: NaN, Infinity, a number out of
  float64 range, a byte-order mark, UTF-16 or invalid UTF-8, lone UTF-16 surrogates (no
  UTF-8 file can hold them);
* YAML whose aliases expand to far more nodes than the text holds (a "billion laughs"), by
  go-yaml v3's own rule (`allowedAliasRatio`), and an alias to a node that contains it;
* YAML integers of more than `MAX_INT_DIGITS` digits (Python cannot even print some of them).

The YAML depth limit is larger than the JSON one so that a JSON value of the deepest
accepted kind still loads once it is written into config.yaml under a few levels of keys.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate, count
from operator import sub

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scanner import Scanner

# Go's int (64-bit platforms) and int64: the range of every integer that goes into config.yaml.
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

MAX_JSON_DEPTH = 100
MAX_YAML_DEPTH = 128  # MAX_JSON_DEPTH plus room for the config's own levels
# Digits of a YAML integer, in any base: far beyond any setting, and far below what Python
# refuses to convert to or from decimal text (4,300 digits; 1,000 hex digits are 1,205).
MAX_INT_DIGITS = 1000

# go-yaml v3 (decode.go): small documents may owe 99% of their nodes to aliases, large
# ones 10%, scaled in between; below 1,000 nodes or 100 aliased ones anything goes.
_ALIAS_LOW, _ALIAS_HIGH = 400_000, 4_000_000


class InvalidJSON(ValueError):
    """The bytes are not a JSON text we accept (the message says why)."""


class InvalidYAML(ValueError):
    """The text is not YAML we accept: a syntax error or a limit (the message says why)."""


# -- JSON ---------------------------------------------------------------------------------

# A string, or an unterminated one running to the end: every attempt matches, so the scan is
# linear even for `"\"\"\"...` (a pattern that could fail would retry at each quote).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\(?:.|\Z)[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_NOT_MARK = bytes(b for b in range(256) if b not in b"[{\\")  # keeps opening brackets and `\`
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # \ud800-\udfff
_OPEN_AS_2 = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped), C speed."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    # An opening bracket counts 2, a closing one 0: the running sum minus the position is
    # the depth after each bracket.
    return max(map(sub, accumulate(brackets.translate(_OPEN_AS_2)), count(1)), default=0)


def _no_constant(name: str):
    raise InvalidJSON(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise InvalidJSON(f"number {text} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)  # built once: cheaper
_SCAN = _DECODER.scan_once
_JSON_SPACE = " \t\n\r"


def _decode(text: str):
    """`_DECODER.decode(text)`. A text that starts with its value is handed to the C scanner
    itself: decode() adds two regex matches and two Python frames, a tenth of the cost of
    a small file (a cold auth-file listing parses thousands). Any other text, and every
    invalid one, goes through decode(), which raises its own error."""
    if text[:1] not in _JSON_SPACE:  # ("" is in it: an empty text is decode()'s error)
        try:
            value, end = _SCAN(text, 0)
        except StopIteration:  # no value at the start
            return _DECODER.decode(text)
        if end == len(text) or not text[end:].strip(_JSON_SPACE):
            return value
    return _DECODER.decode(text)


def load_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH):
    """Parse a JSON text strictly (see the module docstring); InvalidJSON otherwise."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if raw.startswith(b"\xef\xbb\xbf"):
        raise InvalidJSON("a byte-order mark is not allowed")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJSON("not UTF-8 text") from None
    # One C pass finds the opening brackets and the escapes. Fewer opening brackets than the
    # limit cannot nest deeper than it (the usual case), and a text without a backslash
    # holds no escaped surrogate: most texts need neither of the slower checks.
    marks = raw.translate(None, _NOT_MARK)
    escapes = marks.count(b"\\")
    if len(marks) - escapes > max_depth and json_depth(raw) > max_depth:
        raise InvalidJSON(f"nested deeper than {max_depth} levels")
    try:
        value = _decode(text)
        if escapes and _SURROGATE_ESCAPE.search(raw):  # then check that every escape pairs up
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except InvalidJSON:
        raise
    except UnicodeEncodeError:
        raise InvalidJSON("a lone UTF-16 surrogate (\\ud800-\\udfff) is not text") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidJSON(str(exc)) from None
    return value


# -- YAML ---------------------------------------------------------------------------------

def allowed_alias_ratio(decoded: int) -> float:
    """go-yaml v3's share of nodes that may come from alias expansion, for `decoded` nodes."""
    if decoded <= _ALIAS_LOW:
        return 0.99
    if decoded >= _ALIAS_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decoded - _ALIAS_LOW) / (_ALIAS_HIGH - _ALIAS_LOW)


def _children(node):
    # By the node's `id`, so the node graphs of ruamel and of PyYAML (libyaml) both qualify.
    kind = getattr(node, "id", None)
    if kind == "sequence":
        return node.value
    if kind == "mapping":
        return [n for pair in node.value for n in pair]
    return ()


def check_aliases(root) -> None:
    """Refuse a node graph whose aliases expand too much, or loop; costs one pass over it.

    Aliases share nodes, so the graph is small; the expanded tree (what a copy, a JSON
    answer or the YAML writer would walk) can be exponentially larger.
    """
    sizes: dict[int, int] = {}  # id(node) -> nodes in its expanded tree
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            continue
        if key in sizes:
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise InvalidYAML("an alias refers to a node that contains it")
            if id(child) not in sizes:
                stack.append((child, False))
    decoded = sizes[id(root)]
    aliased = decoded - len(sizes)
    if aliased > 100 and decoded > 1000 and aliased / decoded > allowed_alias_ratio(decoded):
        raise InvalidYAML(f"excessive aliasing: the aliases expand to {decoded} nodes")


def check_integer(text: str, mark=None) -> None:
    """Refuse the text of a YAML integer with more than MAX_INT_DIGITS digits; `mark` (a
    ruamel or libyaml node's start) says where it is."""
    if len(text) <= MAX_INT_DIGITS:
        return
    digits = text.lstrip("+-")
    if digits[:2].lower() in ("0x", "0o", "0b"):
        digits = digits[2:]
    if len(digits) - digits.count("_") - digits.count(":") > MAX_INT_DIGITS:  # 1:20 is YAML 1.1's 80
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise InvalidYAML(f"an integer of more than {MAX_INT_DIGITS} digits{where}")


class LimitedComposer(Composer):
    """ruamel's composer, refusing deep nesting while it reads, alias bombs once read, and
    integers too long (`check_integer`) before a constructor converts them.

    Only sequences and mappings are counted (scalars, the bulk of a config, cost nothing
    extra): the depth counts them as JSON's counts `[` and `{`.
    """

    def __init__(self, loader=None):
        super().__init__(loader)
        self._level = 0
        # ruamel calls return_alias() for every alias; without that hook, check every document
        self._aliased = not hasattr(Composer, "return_alias")

    def return_alias(self, node):
        self._aliased = True
        return super().return_alias(node)

    def _deeper(self, compose, anchor):
        self._level += 1
        try:
            if self._level > MAX_YAML_DEPTH:
                raise InvalidYAML(f"nested deeper than {MAX_YAML_DEPTH} levels")
            return compose(anchor)
        finally:
            self._level -= 1

    def compose_sequence_node(self, anchor):
        return self._deeper(super().compose_sequence_node, anchor)

    def compose_mapping_node(self, anchor):
        return self._deeper(super().compose_mapping_node, anchor)

    def compose_scalar_node(self, anchor):
        node = super().compose_scalar_node(anchor)
        if len(node.value) > MAX_INT_DIGITS and node.tag == "tag:yaml.org,2002:int":
            check_integer(node.value, node.start_mark)
        return node

    def compose_document(self):
        node = super().compose_document()
        if self._aliased and node is not None:
            check_aliases(node)
        return node


_SCANNERS: dict[type, type] = {}


def _limited_scanner(base: type) -> type:
    """`base` (ruamel's scanner class in use) refusing flow nesting beyond the depth limit.

    The composer would refuse it too, but the scanner reads ahead and its cost grows with
    the square of the open `[`/`{` it holds: stop it at the limit.
    """
    if base not in _SCANNERS:
        class LimitedScanner(base):
            def _check_flow_level(self):
                if self.flow_level >= MAX_YAML_DEPTH:
                    raise InvalidYAML(f"nested deeper than {MAX_YAML_DEPTH} levels")

            def fetch_flow_sequence_start(self):
                self._check_flow_level()
                super().fetch_flow_sequence_start()

            def fetch_flow_mapping_start(self):
                self._check_flow_level()
                super().fetch_flow_mapping_start()

        _SCANNERS[base] = LimitedScanner
    return _SCANNERS[base]


def limited(yaml: YAML) -> YAML:
    """`yaml` with the limits of this module (for a round-trip YAML() as well as a safe one)."""
    yaml.Scanner = _limited_scanner(yaml.Scanner or Scanner)
    yaml.Composer = LimitedComposer
    return yaml


def load_yaml(text: str):
    """Load one YAML document with the safe loader and the limits; InvalidYAML otherwise."""
    try:
        return limited(YAML(typ="safe", pure=True)).load(text)
    except InvalidYAML:
        raise
    except YAMLError as exc:
        raise InvalidYAML(yaml_error_message(exc)) from None
    except RecursionError:
        raise InvalidYAML(f"nested deeper than {MAX_YAML_DEPTH} levels") from None


def yaml_error_message(exc: YAMLError) -> str:
    """The parser's problem and where it is (line, column): never its snippet of the text,
    which can show a key to the log or to the client."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or "invalid YAML"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"YAML syntax error: {problem}{where}"
