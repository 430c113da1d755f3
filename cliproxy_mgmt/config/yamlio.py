"""Comment-preserving YAML text edits.

The config file's text is the truth on disk. A change is expressed as "top-level key K
now has plain value V"; `splice()` turns that into the smallest text edit it can:

* an unchanged key is not touched (a no-op write is byte-identical);
* a changed block sequence is edited item by item: matched items keep their lines,
  a changed item is re-emitted alone, removed items lose only their own lines;
* any other changed key has only its own block re-emitted, through a round-trip load of
  that block, with `apply_diff()` mutating the loaded nodes in place so comments, key order
  and quoting survive;
* a new key is appended, a removed key loses its block.

Why not load and dump the whole document: for a large config one full round-trip load
plus dump costs over a second, and a re-emitted file drifts from what the user wrote.
"""

from __future__ import annotations

import copy
import difflib
import io
import json
import operator
import re
from dataclasses import dataclass
from itertools import compress, repeat

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import ScalarString

from ..fastlists import STR, all_exactly, changed_span, identical_span
from ..safeload import InvalidYAML, load_yaml

_TOP_KEY = re.compile(r"""^(?:"((?:[^"\\]|\\.)*)"|'((?:[^']|'')*)'|([^\s#'"\-?:,\[\]{}][^:#]*?|-[^\s:#][^:#]*?))\s*:(?:\s|$)""")


@dataclass(frozen=True)
class Indent:
    """The file's own block indentation (ruamel's mapping / sequence / offset)."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2


def make_yaml(indent: Indent = Indent()) -> YAML:
    """Return the one configured round-trip YAML(): quotes kept, the file's indentation, no wrapping."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=indent.mapping, sequence=indent.sequence, offset=indent.offset)
    yaml.width = 1 << 16
    return yaml


def _lines_lazily(text: str):
    """The lines of `text` without their ends, one at a time (no copy of the whole text)."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        yield text[start:end]
        start = end + 1


def guess_indent(text: str) -> Indent:
    """Guess the indentation from what follows the first top-level `key:` lines.

    A nested mapping key right under a top-level key gives the mapping indent; a sequence
    item right under one gives the dash offset. Missing evidence keeps ruamel's defaults.
    """
    mapping = offset = None
    prev_opens_block = False
    unusual = _has_other_breaks(text)
    # The evidence is near the top: don't split a whole large file to find it.
    for line in text.splitlines() if unusual else _lines_lazily(text):
        if _is_skippable(line):
            continue
        stripped = line.lstrip(" ")
        width = len(line) - len(stripped)
        if prev_opens_block and width > 0:
            if stripped.startswith("- ") or stripped.rstrip() == "-":
                offset = width if offset is None else offset
            elif mapping is None:
                mapping = width
        prev_opens_block = width == 0 and line.split("#", 1)[0].rstrip().endswith(":")
        if mapping is not None and offset is not None:
            break
    mapping = mapping or 2
    offset = 2 if offset is None else offset
    return Indent(mapping=mapping, sequence=offset + 2, offset=offset)


PLAIN_SCALARS = frozenset((str, int, float, bool, type(None)))


def to_plain(node):
    """Turn a round-trip (or safe) loaded node into plain dict/list/str/int/float/bool/None."""
    kind = type(node)
    if kind in PLAIN_SCALARS:
        return node
    if kind is list and all_exactly(node, PLAIN_SCALARS):
        return list(node)  # a list of plain scalars (e.g. 10,000 keys): one pass in C
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, (str, int, float, bool)) else to_plain(k): to_plain(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if node is None:
        return None
    return str(node)  # timestamps and other tagged scalars: their text


def is_plain(node) -> bool:
    """Is `node` plain data already (what `to_plain` would rebuild as an equal copy)?"""
    kind = type(node)
    if kind in PLAIN_SCALARS:
        return True
    if kind is list:
        return all(map(is_plain, node))
    if kind is dict:
        return all_exactly(node, _PLAIN_KEYS) and all(map(is_plain, node.values()))
    return False


_PLAIN_KEYS = frozenset((str, int, float, bool))  # the keys `to_plain` keeps as they are


def same(a, b) -> bool:
    """Equal values of equal JSON types (Python's True == 1 is not good enough here)."""
    if a is b:
        return True
    if type(a) is list and type(b) is list:  # settled in C where it can be, no step per item
        if a != b:
            return False  # what differs for == differs here too
        if all_exactly(a, PLAIN_SCALARS) and list(map(type, a)) == list(map(type, b)):
            return True  # equal scalars of the same types (else: item by item, 1 is 1.0)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    if isinstance(a, str) != isinstance(b, str):
        return False
    return a == b


def _styled_like(sample, value):
    """A new string written where `sample` stood keeps sample's quote style."""
    if isinstance(sample, ScalarString) and isinstance(value, str) and not isinstance(value, ScalarString):
        return type(sample)(value)
    return value


def _emptied(node, new) -> bool:
    return isinstance(node, (CommentedMap, CommentedSeq)) and len(node) > 0 \
        and isinstance(new, (dict, list)) and not new


def set_child(parent, key, new) -> None:
    """`parent[key] = apply_diff(parent[key], new)`, for a round-trip mapping `parent`.

    A container that becomes empty is written as `[]`/`{}` on the key's line, keeping the
    comment of that line. The comment lines that stood before its first item go with the
    items: ruamel would print them, then the `[]` on a line of its own, which is not YAML.
    """
    if _emptied(parent[key], new):
        slots = parent.ca.items.get(key)
        if slots and len(slots) > 3:
            slots[3] = None
    parent[key] = apply_diff(parent[key], new)


def apply_diff(node, new):
    """Mutate round-trip `node` in place until it equals plain `new`; return the node to store.

    Containers of the same kind are kept (and with them their comments and unknown keys'
    positions); a changed string keeps its quote style. A container that becomes empty
    is replaced by a fresh one: its comments belonged to its items.
    """
    if _emptied(node, new) and isinstance(node, dict) == isinstance(new, dict):
        return type(node)()
    if isinstance(node, CommentedMap) and isinstance(new, dict):
        for key in [k for k in node if k not in new]:
            del node[key]
        for key, value in new.items():
            if key in node:
                set_child(node, key, value)
            else:
                node[key] = value
        return node
    if isinstance(node, CommentedSeq) and isinstance(new, list):
        sample = node[0] if len(node) else None
        for i, value in enumerate(new[: len(node)]):
            node[i] = apply_diff(node[i], value)
        while len(node) > len(new):
            node.pop()
        for value in new[len(node):]:
            node.append(_styled_like(sample, value))
        return node
    if same(to_plain(node), new):
        return node
    return _styled_like(node, new)


# An anchor (`&name`) where YAML allows one: after a space, a line start or a flow indicator.
# A false positive (`"a &b"` in a string) only costs one extra full check of the result.
_ANCHOR = re.compile(r"(?:^|[\s\[{,])&[^\s\[\]{},]")


def has_anchors(text: str) -> bool:
    """Might `text` hold anchors? Then a local edit can change or orphan an alias elsewhere."""
    return "&" in text and _ANCHOR.search(text) is not None


def expand_aliases(node, _seen=None):
    """`node` (round-trip loaded) with every alias spelled out as its own copy and no anchors.

    What the document means stays the same; each former alias is now independent, so
    changing or deleting one place can no longer change or break another.
    """
    seen = set() if _seen is None else _seen
    if isinstance(node, (CommentedMap, CommentedSeq)):
        if id(node) in seen:
            node = copy.deepcopy(node)
        seen.add(id(node))
        keys = list(node.keys()) if isinstance(node, CommentedMap) else range(len(node))
        for key in keys:
            node[key] = expand_aliases(node[key], seen)
    if hasattr(node, "yaml_set_anchor") and getattr(node, "anchor", None) is not None:
        node.yaml_set_anchor(None)
    return node


def _dump(yaml: YAML, data) -> str:
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def reads_back(text: str, expected) -> bool:
    """Does `text` load (safe loader) to exactly the plain value `expected`?"""
    try:
        loaded = load_yaml(text)
    except InvalidYAML:
        return False
    return same(to_plain(loaded if loaded is not None else {}), expected)


def _checked(lines: list[str], key, expected, *, indent: int | None = None) -> list[str]:
    """`lines` if they read back as `{key: expected}`, or with `indent` as the sequence items
    `expected` standing at that indentation among their neighbours.

    Emitted text is checked before it goes into the file: an emitter quirk must never write
    a config that does not load (the caller falls back, or refuses the change).
    """
    if indent is None:
        ok = reads_back("".join(lines), {key: expected})
    else:
        body = [line for line in lines if not _is_skippable(line)]
        ok = (bool(body) and len(body[0]) - len(body[0].lstrip(" ")) == indent
              and body[0][indent:].startswith("-")
              and all(len(line) - len(line.lstrip(" ")) >= indent for line in body)
              and reads_back("k:\n" + "".join(lines), {"k": expected}))
    if not ok:
        raise ValueError(f"re-emitting {key!r} gives text that does not read back")
    return lines


def _is_skippable(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


_NOT_KEY_START = frozenset(("", " ", "\t", "#", "\n", "\r"))


def top_level_key(line: str):
    """The key a column-0 mapping line defines, or None for anything else."""
    if not line or line[0] in " \t#" or line.startswith(("---", "...", "%")):
        return None
    m = _TOP_KEY.match(line)
    if not m:
        return None
    if m.group(1) is not None:
        return json.loads('"' + m.group(1) + '"')
    if m.group(2) is not None:
        return m.group(2).replace("''", "'")
    return m.group(3).strip()


def blocks(lines: list[str]) -> dict:
    """Map each top-level key to its (start, end) line range.

    A block ends before trailing blank lines and column-0 comments: those introduce the
    next section and stay where they are when this block changes.
    """
    starts = [(i, top_level_key(line)) for i, line in enumerate(lines)
              if line[:1] not in _NOT_KEY_START]  # most lines are indented: skip them fast
    starts = [(i, k) for i, k in starts if k is not None]
    found = {}
    for n, (start, key) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
            end -= 1
        found[key] = (start, end)
    return found


def _plain_items(block: list[str]):
    """`_item_ranges` of the common layout, found by a few passes in C instead of a step per
    line: each line after the key's is an item line or a deeper line, none blank or a
    comment. None for any other layout (the line-by-line pass decides)."""
    if len(block) < 2:
        return None
    first = block[1]
    indent = len(first) - len(first.lstrip(" "))
    item = " " * indent + "- "
    if not first.startswith(item):
        return None
    if all(map(str.startswith, block[1:], repeat(item))):  # one line per item (client keys)
        return indent, list(range(1, len(block))), list(range(2, len(block) + 1))
    # Items of several lines: the other lines must be deeper content. (block[0], the key's
    # line, is never an item line: `others` starts after it.)
    is_item = list(map(str.startswith, block, repeat(item)))
    starts = list(compress(range(len(block)), is_item))
    others = list(compress(block, map(operator.not_, is_item)))[1:]
    stripped = list(map(str.lstrip, others))
    if not all(map(str.startswith, others, repeat(" " * (indent + 1)))) or not all(stripped) \
            or any(map(str.startswith, stripped, repeat("#"))):
        return None
    return indent, starts, starts[1:] + [len(block)]


def _item_ranges(block: list[str]):
    """(indent, starts, ends) of the items of the block sequence under a top-level key, with
    `block` its lines (the key's line first): item n is block[starts[n]:ends[n]]; or None.

    An item's range ends after its last line that is not blank or a comment. (Two lists of
    numbers, not a tuple per item: 10,000s of small tuples would wake the garbage collector
    several times per write.)"""
    header = block[0].split("#", 1)[0].rstrip()
    if not header.endswith(":"):
        return None
    plain = _plain_items(block)
    if plain is not None:
        return plain
    indent = None
    item = None  # "<indent spaces>- ": the common line, recognised by one startswith
    starts: list[int] = []
    ends: list[int] = []
    last = 0  # the last line of the current item that is not skippable
    for i in range(1, len(block)):  # one pass, no call per line: blocks have 10,000s of lines
        line = block[i]
        if item is not None and line.startswith(item):
            ends.append(last + 1)
            starts.append(i)
            last = i
            continue
        stripped = line.lstrip(" ")
        if not stripped.strip() or stripped.lstrip().startswith("#"):
            continue
        width = len(line) - len(stripped)
        if indent is None:
            indent = width
            item = " " * indent + "- "
        if width < indent:
            return None
        if width == indent:
            if not (stripped.startswith("- ") or stripped.rstrip() == "-"):
                return None
            ends.append(last + 1)
            starts.append(i)
        last = i
    if indent is None:
        return None
    ends.append(last + 1)
    del ends[0]
    return indent, starts, ends


def _reindent(text: str, shift: int) -> list[str]:
    lines = text.splitlines(keepends=True)
    if shift > 0:
        return [" " * shift + ln if ln.strip() else ln for ln in lines]
    if shift < 0:
        return [ln[-shift:] if ln[: -shift].strip() == "" else ln for ln in lines]
    return lines


def _emit_items(yaml: YAML, key: str, items: list, indent: int, sample=None) -> list[str]:
    """Lines for new sequence items, indented like the file's items."""
    seq = CommentedSeq(_styled_like(sample, v) for v in items)
    text = _dump(yaml, CommentedMap([(key, seq)]))
    body = text.split("\n", 1)[1]
    first = body.splitlines()[0] if body else ""
    have = len(first) - len(first.lstrip(" "))
    return _reindent(body, indent - have)


def _reemit_item(yaml: YAML, key: str, item_lines: list[str], new, indent: int) -> list[str]:
    """Re-emit one sequence item (its comments kept) holding `new`."""
    doc = yaml.load(f"{key}:\n" + "".join(item_lines))
    seq = doc[key]
    seq[0] = apply_diff(seq[0], new)
    body = _dump(yaml, doc).split("\n", 1)[1]
    first = body.splitlines()[0] if body else ""
    have = len(first) - len(first.lstrip(" "))
    return _reindent(body, indent - have)


def _diff_key(value) -> str:
    return json.dumps(value, sort_keys=True)


def _equal_item(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) in PLAIN_SCALARS:
        return a == b
    return _diff_key(a) == _diff_key(b)


def _opcodes(old: list, new: list) -> list:
    """difflib's opcodes over the items' JSON texts, the common head and tail matched first
    (a write usually changes a few items of a long list: the diff then costs those items)."""
    if all_exactly(old, STR) and all_exactly(new, STR):
        head, tail = changed_span(old, new)  # lists of strings: compared in C
    else:
        limit = min(len(old), len(new))
        head, tail = identical_span(old, new)  # the items a write kept (draft.Draft.share), in C
        while head < limit - tail and _equal_item(old[head], new[head]):
            head += 1
        while tail < limit - head and _equal_item(old[-1 - tail], new[-1 - tail]):
            tail += 1
    middle = difflib.SequenceMatcher(None, [_diff_key(v) for v in old[head:len(old) - tail]],
                                     [_diff_key(v) for v in new[head:len(new) - tail]],
                                     autojunk=False).get_opcodes()
    return [(tag, i1 + head, i2 + head, j1 + head, j2 + head) for tag, i1, i2, j1, j2 in middle]


class _Spliced(list):
    """The lines of a block sequence edited item by item: its first line is its key's, left
    as it was, and every other line is an item's (indented, or a "- " line), so no other line
    starts a top-level key. `_shift_blocks` need not scan it for them.

    `items` is its `_item_ranges`, followed through the edit (None when not known)."""

    def __init__(self, lines, items=None):
        super().__init__(lines)
        self.items = items

    def is_whole_block(self) -> bool:
        """Is the block all of these lines? It is when they end with an item's line (a block
        ends before the comments and blank lines that follow its last item)."""
        last = self[-1].lstrip() if self else ""
        return bool(last) and not last.startswith("#")


def _renumber(ranges: tuple | None, header: str, i1: int, i2: int, at: int, removed: int,
              replacement: list[str], count: int):
    """`ranges` (indent, starts, ends) after items i1..i2 (`removed` lines from line `at`)
    were replaced by the `count` items in `replacement`; None when not known. Only the
    replacement is parsed: the items after it only move (a step in C)."""
    if ranges is None:
        return None
    indent, starts, ends = ranges
    inner = _item_ranges([header] + replacement) if replacement else (indent, [], [])
    if inner is None or inner[0] != indent or len(inner[1]) != count:
        return None
    delta = len(replacement) - removed
    starts = starts[:i1] + [at - 1 + s for s in inner[1]] + _moved(starts[i2:], delta)
    ends = ends[:i1] + [at - 1 + e for e in inner[2]] + _moved(ends[i2:], delta)
    return indent, starts, ends


def _moved(lines: list[int], delta: int) -> list[int]:
    """Line numbers `delta` lines on (the usual change of an item keeps its length: none)."""
    return list(map(operator.add, lines, repeat(delta))) if delta else lines


def _splice_sequence(yaml, block: list[str], key, old: list, new: list, known=None):
    """Edit a block sequence (`block`, its lines: edited in place) item by item; return the
    new lines of the block (`block` itself when it is a `_Spliced`), or None (then `block` is
    as it was). `known`: the block's `_item_ranges`, when remembered from the write that
    made it."""
    found = known or _item_ranges(block)
    if found is None:
        return None
    indent, starts, ends = found
    if len(starts) != len(old):
        return None
    ranges = found
    tail_end = len(block)
    sample_doc = None

    def sample():
        nonlocal sample_doc
        if sample_doc is None:
            sample_doc = yaml.load(f"{key}:\n" + "".join(block[starts[0]:ends[0]]))[key][0]
        return sample_doc

    for tag, i1, i2, j1, j2 in reversed(_opcodes(old, new)):
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)
        replacement: list[str] = []
        for k in range(paired):
            s, e = starts[i1 + k], ends[i1 + k]
            replacement += _reemit_item(yaml, key, block[s:e], new[j1 + k], indent)
            if k + 1 < paired:
                # keep the comment lines between two re-emitted items
                replacement += block[e:starts[i1 + k + 1]]
        if j2 - j1 > paired:
            replacement += _emit_items(yaml, key, new[j1 + paired:j2], indent,
                                       sample() if starts else None)
        if j2 > j1:
            _checked(replacement, key, new[j1:j2], indent=indent)
        if i2 > i1:
            at, removed = starts[i1], ends[i2 - 1] - starts[i1]
        else:
            at = starts[i1] if i1 < len(starts) else (ends[-1] if starts else tail_end)
            removed = 0
        block[at:at + removed] = replacement
        ranges = _renumber(ranges, block[0], i1, i2, at, removed, replacement, j2 - j1)
    if isinstance(block, _Spliced):
        block.items = ranges
        return block
    return _Spliced(block, ranges)


# Line breaks other than "\n" (and "\r\n"): `str.splitlines` splits on them, so a text
# holding one is edited line by line over the whole text (the older, slower path).
_OTHER_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_LINE_AT_COLUMN0 = re.compile(r"\n(?=[^ \t#\n])")  # a literal "\n" first: a fast C search


def text_blocks(text: str) -> dict:
    """`blocks` as character offsets, found without splitting the whole text into lines:
    only the lines starting in column 0 are looked at (a few per top-level key)."""
    starts = []
    firsts = ([0] if text[:1] not in ("", " ", "\t", "#", "\n") else []) + \
        [m.end() for m in _LINE_AT_COLUMN0.finditer(text)]
    for pos in firsts:
        eol = text.find("\n", pos)
        key = top_level_key(text[pos:] if eol < 0 else text[pos:eol + 1])
        if key is not None:
            starts.append((pos, key))
    found = {}
    for n, (start, key) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(text)
        first_end = text.find("\n", start) + 1 or len(text)
        while end > first_end:
            line_start = text.rfind("\n", 0, end - 1) + 1
            line = text[line_start:end]
            if line.strip() and not line.startswith("#"):
                break
            end = line_start
        found[key] = (start, end)
    return found


def splice(yaml: YAML, text: str, old: dict, new: dict, keys=None) -> str:
    """Return `text` edited so that its top-level keys hold `new` instead of `old`.

    `keys`, when given, are the only keys that may differ (the others are not compared).
    Only the changed keys' blocks are split into lines and edited, so a write costs its
    blocks, not the file.
    """
    if _has_other_breaks(text):
        return _splice_lines(yaml, text, old, new, keys)
    work = text if text.endswith("\n") or not text else text + "\n"
    where, spliced = _known_blocks(work), _known_spliced(work)
    edits, appended = _plan(yaml, old, new, keys, where,
                            lambda start, end: work[start:end].splitlines(keepends=True), spliced)
    pieces, done = [], 0
    for start, end, replacement in reversed(edits):  # top-down: one join builds the text
        pieces += [work[done:start], "".join(replacement)]
        done = end
    pieces.append(work[done:])
    result = "".join(pieces) if edits else work
    if not appended and result is not text and not any(_has_other_breaks(p) for p in pieces[1::2]):
        _remember_blocks(result, _shift_blocks(where, edits, pieces), _followed(where, spliced, edits))
    return _finish(text, result, appended)


# The block index of the last text `splice` produced (one without unusual line breaks),
# and the lines and `_item_ranges` of its sequence blocks that a write edited item by item
# (`_Spliced`): the next write starts from that text, so its blocks are known without
# scanning it again (a few column-0 lines per key), nor a long list's lines and items (every
# line of the block), and so is the absence of unusual line breaks.
_last_blocks: tuple = (None, None, {})


def _has_other_breaks(text: str) -> bool:
    if text is _last_blocks[0]:
        return False
    return any(mark in text for mark in _OTHER_BREAKS)  # nine C scans: faster than one regex


def _known_blocks(text: str) -> dict:
    known, where, _ = _last_blocks
    return where if known is text else text_blocks(text)


def _known_spliced(text: str) -> dict:
    """{key: its block's lines as a `_Spliced` with their `items`} remembered for `text`."""
    known, _, spliced = _last_blocks
    return spliced if known is text else {}


def _followed(where: dict, spliced: dict, edits: list) -> dict:
    """The blocks known as `_Spliced` after `edits` of the blocks at `where`, given those
    known before: a block left alone is still its lines, and a block edited item by item is
    the lines it was edited into, when they are the whole block and their items are known."""
    key_at = {start: key for key, (start, _) in where.items()}
    followed = {key: lines for key, lines in spliced.items() if key in where}
    for start, _, lines in edits:
        followed.pop(key_at[start], None)
        if isinstance(lines, _Spliced) and lines.items is not None and lines.is_whole_block():
            followed[key_at[start]] = lines
    return followed


def _remember_blocks(text: str, where: dict | None, spliced: dict) -> None:
    global _last_blocks
    _last_blocks = (text, where, spliced) if where is not None else (None, None, {})


def _shift_blocks(where: dict, edits: list, pieces: list) -> dict | None:
    """The block index after `edits` (bottom-up; `pieces` the text between them and their
    replacements, top-down), or None when it must be found again: a block removed, or a
    replacement whose column-0 lines are not just its own key line and comments."""
    starts = {start: key for key, (start, _) in where.items()}
    shifted = {}
    delta = 0
    moves = []  # (old start of an edited block, the shift of what follows it), top-down
    for n, (start, end, lines) in enumerate(reversed(edits)):
        replacement = pieces[2 * n + 1]
        key = starts.get(start)
        if key is None or not replacement:
            return None
        new_start = start + delta
        if isinstance(lines, _Spliced) and lines.is_whole_block():
            bounds = {key: (0, len(replacement))}
        else:
            bounds = text_blocks(replacement)
        if list(bounds) != [key] or bounds[key][0] != 0:
            return None
        shifted[key] = (new_start, new_start + bounds[key][1])
        delta += len(replacement) - (end - start)
        moves.append((start, delta))
    for key, (start, end) in where.items():
        if key in shifted:
            continue
        shift = 0
        for edited, after in moves:
            if edited < start:
                shift = after
        shifted[key] = (start + shift, end + shift)
    return {key: shifted[key] for key in where}


def _plan(yaml: YAML, old: dict, new: dict, keys, where: dict, block_lines,
          spliced: dict) -> tuple[list, list]:
    """The edits (start, end, new lines; bottom-up) of the changed keys' blocks at `where`
    (`block_lines(start, end)` gives a block's lines; `spliced` holds some as `_Spliced`),
    and the text of keys to append."""
    edits = []
    appended: list[str] = []
    for key in _candidates(old, new, keys):
        if key in old and key in new and same(old[key], new[key]):
            continue
        if key not in where:
            if key in old:
                raise ValueError(f"cannot locate {key!r} in the config text")
            appended.append("".join(_checked(
                _dump(yaml, CommentedMap([(key, new[key])])).splitlines(keepends=True), key, new[key])))
            continue
        start, end = where[key]
        if key not in new:
            edits.append((start, end, []))
            continue
        known = spliced.get(key)
        if known is None:
            lines, items = block_lines(start, end), None
        else:
            lines, items = _Spliced(known), known.items  # (a copy: the edit changes it in place)
        edits.append((start, end, _edit_block(yaml, lines, key, old, new, items)))
    return sorted(edits, key=lambda e: e[0], reverse=True), appended


def _candidates(old: dict, new: dict, keys) -> list:
    candidates = list(old) + [k for k in new if k not in old]
    if keys is not None:
        keys = set(keys)
        candidates = [k for k in candidates if k in keys]
    return candidates


def _edit_block(yaml: YAML, block: list[str], key, old: dict, new: dict, items=None) -> list[str]:
    """The lines of one top-level key's block, edited to hold `new[key]` (`items`: the
    block's `_item_ranges`, when known)."""
    if isinstance(old.get(key), list) and isinstance(new[key], list) and new[key]:
        edited = _splice_sequence(yaml, block, key, old[key], new[key], items)
        if edited is not None:
            return edited
    doc = yaml.load("".join(block))
    if not isinstance(doc, CommentedMap) or key not in doc:
        raise ValueError(f"cannot locate {key!r} in the config text")
    set_child(doc, key, new[key])
    return _checked(_dump(yaml, doc).splitlines(keepends=True), key, new[key])


def _finish(text: str, result: str, appended: list[str]) -> str:
    if appended:
        if result and not result.endswith("\n"):
            result += "\n"
        result += "".join(appended)
    if not text.endswith("\n") and result.endswith("\n") and result[:-1] == text:
        return text
    return result


def _splice_lines(yaml: YAML, text: str, old: dict, new: dict, keys=None) -> str:
    """`splice` over the whole text split into lines (for texts with unusual line breaks)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    where = blocks(lines)
    edits, appended = _plan(yaml, old, new, keys, where, lambda start, end: lines[start:end], {})
    for start, end, replacement in edits:
        lines[start:end] = replacement
    return _finish(text, "".join(lines), appended)
