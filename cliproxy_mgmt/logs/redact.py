"""Keeping keys and secrets out of the log: one formatter that every handler uses.

`RedactingFormatter` masks, in the finished line (message, arguments and traceback alike):

* every secret value of the configs in force (`config_secrets`): values of keys named like
  a key, secret, token or password (`api-keys`, every `api-key`, `secret-key`, header
  values such as `Authorization`), the password of any URL with credentials
  (`proxy-url`), and the environment's and command line's management passwords;
* what looks like a credential whatever its value: `Bearer <token>`, `key=`/`token=`/...
  query values, `user:password@` in URLs.

The console handler (`logs.setup`) and main.log (`logging-to-file`, which `GET /logs`
reads) both format through it, so no handler can write a key.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref

from ..fastlists import STR, all_exactly, changed_span

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words; such keys are guessable anyway

# A config key whose string value (or list of strings) is a secret.
_SECRET_NAME = re.compile(r"(?:^|[-_])(?:keys?|secret|token|password|passwd|authorization|cookie)$",
                          re.IGNORECASE)
_URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]*:([^/@\s]+)@", re.IGNORECASE)

# Credentials recognised by their shape, whatever their value.
_SHAPES = (
    (re.compile(r"\b(bearer\s+)[^\s\"',;]+", re.IGNORECASE), r"\1" + MASK),
    (re.compile(r"((?:^|[?&;\s])(?:key|api[-_]?key|token|access[-_]token|refresh[-_]token|"
                r"id[-_]token|secret|password|code|state)=)[^&\s\"'#]+", re.IGNORECASE), r"\1" + MASK),
    (re.compile(r"\b((?:x-management-key|x-api-key|x-goog-api-key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+",
                re.IGNORECASE), r"\1" + MASK),
    (re.compile(r"(://[^/@\s:]*:)[^/@\s]+@"), r"\1" + MASK + "@"),
)


def config_secrets(data) -> set[str]:
    """Every secret value in a config's plain data (see the module docstring)."""
    found: set[str] = set()

    def add(value) -> None:
        if isinstance(value, str) and len(value.strip()) >= MIN_SECRET_LENGTH:
            found.add(value.strip())

    def walk(node, name: str = "") -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, str(key))
        elif isinstance(node, list):
            if all_exactly(node, STR):  # e.g. 10,000 api-keys: no call per item
                if _SECRET_NAME.search(name):
                    found.update(map(str.strip, node))
                joined = "\n".join(node)  # a URL's password never spans a line break
                if "://" in joined:
                    for match in _URL_PASSWORD.finditer(joined):
                        add(match.group(1))
                return
            for item in node:
                walk(item, name)
        elif isinstance(node, str):
            if _SECRET_NAME.search(name):
                add(node)
            for match in _URL_PASSWORD.finditer(node):
                add(match.group(1))

    walk(data)
    found.difference_update([s for s in found if len(s) < MIN_SECRET_LENGTH])
    return found


class SecretRegistry:
    """The secrets to mask, per owner (a config store), process-wide.

    Owners are held weakly: the secrets of an app that is gone stop being masked with it.
    A value once known for an owner stays masked (a key removed from the config may still
    be in a line written later).

    Secrets are looked up, not compiled: a regular expression alternating tens of thousands
    of keys takes a second to compile (at start-up, and again as writes add keys) and tries
    every alternative at every position. Here each secret is filed under its first
    MIN_SECRET_LENGTH characters, so a line costs one dictionary lookup per position (about
    20 µs for a 180-character line, whatever the number of keys; a regular expression is
    faster on short lines with few keys), and a write that adds keys costs what it adds.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._by_owner: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # (every secret, prefix -> the lengths of its secrets, longest first)
        self._table: tuple[set[str], dict[str, tuple[int, ...]]] = (set(), {})
        self._stale = False  # an owner went away: rebuild the index before the next use

    def remember(self, owner, secrets) -> None:
        """Add `secrets` to what `owner` contributes."""
        with self._lock:
            if owner not in self._by_owner:
                weakref.finalize(owner, self._forget)
            known = self._by_owner.setdefault(owner, set())
            new = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH} - known
            if not new:
                return
            known |= new
            if self._stale:
                self._rebuild()
            else:
                _add(self._table, new)

    def _forget(self) -> None:
        self._stale = True  # runs inside garbage collection: no lock taken here

    def _rebuild(self) -> None:
        self._stale = False
        every: set[str] = set()
        for secrets in self._by_owner.values():
            every |= secrets
        table: tuple = (set(), {})
        _add(table, every)
        self._table = table  # swapped in whole and filled: `redact` reads it without the lock

    def redact(self, text: str) -> str:
        if self._stale:
            with self._lock:
                self._rebuild()
        text = self._mask_secrets(text)
        for shape, replacement in _SHAPES:
            text = shape.sub(replacement, text)
        return text

    def _mask_secrets(self, text: str) -> str:
        """`text` with each known secret masked, leftmost first and the longest at a position
        (so a key that contains another is masked whole)."""
        secrets, lengths = self._table
        if not lengths:
            return text
        out = []
        done = i = 0  # text[:done] is in `out`; i: the next position to look at
        last = len(text) - MIN_SECRET_LENGTH
        while i <= last:
            for length in lengths.get(text[i:i + MIN_SECRET_LENGTH], ()):
                if text[i:i + length] in secrets:
                    out += [text[done:i], MASK]
                    done = i = i + length
                    break
            else:
                i += 1
        return "".join(out) + text[done:] if out else text


def _add(table: tuple, secrets: set) -> None:
    """Add `secrets` to a registry's table in place: a reader sees each secret before or
    after, both fine (the set first, so every length it finds has its secret)."""
    known, lengths = table
    added: dict[str, set] = {}
    for secret in secrets - known:
        added.setdefault(secret[:MIN_SECRET_LENGTH], set()).add(len(secret))
    known |= secrets
    for prefix, sizes in added.items():
        lengths[prefix] = tuple(sorted(sizes.union(lengths.get(prefix, ())), reverse=True))


SECRETS = SecretRegistry()


def redact(text: str) -> str:
    """`text` with every known secret and credential-shaped value masked."""
    return SECRETS.redact(text)


def follow_config(store, *extra: str) -> None:
    """Mask the secrets of `store`'s config, now and after every change, plus `extra` values.

    Only what changed is searched, so a write costs what it changed (the secrets of the
    rest are already remembered): the top-level values that are not the very objects seen
    last time, and of a list only the items between the head and tail it shares with the
    list seen last time.
    """
    seen: dict = {}

    def update(s) -> None:
        data = s.data
        changed = {}
        for key, value in data.items():
            before = seen.get(key)
            if before is value:
                continue
            if type(before) is list and type(value) is list:
                head, tail = changed_span(before, value)
                value = value[head:len(value) - tail]
            changed[key] = value
        seen.clear()
        seen.update(data)  # held, so an id is never reused while compared
        SECRETS.remember(s, config_secrets(changed) | {e for e in extra if e})

    update(store)
    store.on_change(update)


class RedactingFormatter(logging.Formatter):
    """A formatter whose finished lines go through `redact`; subclasses override `render`."""

    def render(self, record: logging.LogRecord) -> str:
        return super().format(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.render(record))
