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
            if all(type(item) is str for item in node):  # e.g. 10,000 api-keys: no call per item
                if _SECRET_NAME.search(name):
                    found.update(s for s in map(str.strip, node) if len(s) >= MIN_SECRET_LENGTH)
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
    return found


class SecretRegistry:
    """The secrets to mask, per owner (a config store), process-wide.

    Owners are held weakly: the secrets of an app that is gone stop being masked with it.
    A value once known for an owner stays masked (a key removed from the config may still
    be in a line written later).

    The secrets are matched by a few patterns, not one: compiling an alternation of tens of
    thousands of keys takes a second, so the secrets a config write adds get a small pattern
    of their own, and patterns of similar size are merged (each secret is compiled about
    log2(n) times in all, and there are at most about log2(n) patterns).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._by_owner: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._chunks: list[tuple[set, re.Pattern]] = []  # (secrets, their pattern), largest first
        self._stale = False  # an owner went away: rebuild the patterns before the next use

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
                self._add_chunk(new)

    def _forget(self) -> None:
        self._stale = True  # runs inside garbage collection: no lock taken here

    def _rebuild(self) -> None:
        self._stale = False
        every: set[str] = set()
        for secrets in self._by_owner.values():
            every |= secrets
        self._chunks = []
        if every:
            self._add_chunk(every)

    def _add_chunk(self, secrets: set) -> None:
        chunks = list(self._chunks)
        while chunks and len(chunks[-1][0]) <= 2 * len(secrets):
            secrets = chunks.pop()[0] | secrets
        # Longest first, so a key that contains another is masked whole.
        alternatives = sorted(secrets, key=len, reverse=True)
        chunks.append((secrets, re.compile("|".join(map(re.escape, alternatives)))))
        self._chunks = chunks  # swapped whole: `redact` reads it without the lock

    def redact(self, text: str) -> str:
        if self._stale:
            with self._lock:
                self._rebuild()
        chunks = self._chunks
        if len(chunks) == 1:
            text = chunks[0][1].sub(MASK, text)
        elif chunks:
            text = _mask_spans(text, [m.span() for _, p in chunks for m in p.finditer(text)])
        for shape, replacement in _SHAPES:
            text = shape.sub(replacement, text)
        return text


def _mask_spans(text: str, spans: list) -> str:
    """`text` with each run of overlapping `spans` replaced by one MASK (a secret that
    contains another, matched by two patterns, is masked whole)."""
    if not spans:
        return text
    out = []
    done = 0  # text[:done] is in `out`
    start = end = None
    for s, e in sorted(spans):
        if end is not None and s < end:
            end = max(end, e)
            continue
        if end is not None:
            out += [text[done:start], MASK]
            done = end
        start, end = s, e
    out += [text[done:start], MASK, text[end:]]
    return "".join(out)


SECRETS = SecretRegistry()


def redact(text: str) -> str:
    """`text` with every known secret and credential-shaped value masked."""
    return SECRETS.redact(text)


def follow_config(store, *extra: str) -> None:
    """Mask the secrets of `store`'s config, now and after every change, plus `extra` values.

    Only the top-level values that are not the very objects seen last time are searched (an
    edit swaps in new objects for what it changes and keeps the rest), so a write costs what
    it changed; the secrets of the others are already remembered.
    """
    seen: dict = {}

    def update(s) -> None:
        data = s.data
        changed = {k: v for k, v in data.items() if k not in seen or seen[k] is not v}
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
