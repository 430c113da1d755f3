"""The listing's entry writer writes the same bytes as the plain sorted JSON encoder.

`listing.entry_json` writes the keys every entry has through a template and merges the others
in at their sorted places; any entry (plugin keys, odd value types, escapes, a plugin that
overrides a core key) must come out byte-identical to `json` with sorted keys of the entry's
dict (`listing._entry`).
"""

import json
import random

import pytest

from cliproxy_mgmt.authfiles import listing
from cliproxy_mgmt.records import AuthFileType

STRINGS = ["", "a", "é\u2028x", 'q"\\\n\x01', "\U0001f600", "user@example.com"]
EXTRA_KEYS = ["account", "account_type", "email", "last_refresh", "prefix", "proxy_url", "note", "headers",
              "excluded_models", "id_token", "websockets", "weight", "using_api", "zzz", "AAA", "", "é",
              "statu", "status_messagf"]


def plain(entry: dict) -> bytes:
    return json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def a_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8)
    if kind == 1:
        return rng.choice([True, False, None])
    if kind == 2:
        return rng.randrange(-10**20, 10**20)
    if kind == 3:
        return rng.choice([0.1, 1e300, -0.0, 3.0])
    if kind == 4 and depth < 3:
        return [a_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    if kind == 5 and depth < 3:
        return {rng.choice(["b", "a", "é"]): a_value(rng, depth + 1) for _ in range(rng.randrange(3))}
    return rng.choice(STRINGS)


class Stat:
    def __init__(self, size: int, mtime_ns: int):
        self.st_size, self.st_mtime_ns = size, mtime_ns


def a_file(rng: random.Random) -> tuple:
    """(name, path, stat, parsed data or the reason it is unusable) of a random auth file."""
    name = (rng.choice(STRINGS) or "n") + ".json"
    st = Stat(rng.randrange(10**6), rng.randrange(-10**18, 10**19))
    if rng.random() < 0.1:
        return name, "/auths/" + name, st, rng.choice(STRINGS)
    data = {"type": rng.choice(["claude", "codex", "Gemini ", "", 7, "plugin-kind", *STRINGS])}
    for _ in range(rng.randrange(8)):
        data[rng.choice(["email", "disabled", "last_refresh", "prefix", "proxy_url", "note", "headers",
                         "excluded_models", "websockets", "weight", "using_api", "project_id"])] = a_value(rng)
    if rng.random() < 0.3:
        data["last_refresh"] = rng.choice(["2026-01-15T07:08:24+08:00", "2026-01-15 07:08:24", 1768432104.5])
    if rng.random() < 0.3:
        data["email"] = rng.choice(STRINGS)
    return name, "/auths/" + rng.choice(STRINGS) + name, st, data


def a_kind(core_share: float) -> AuthFileType:
    """An auth-file type whose describe() adds keys drawn from the file (the same for the same
    file), now and then a core key."""
    def describe(data, email):
        rng = random.Random(repr(data) + email)
        keys = EXTRA_KEYS + ["account"] + (list(listing._CORE) if rng.random() < core_share else [])
        return {rng.choice(keys): a_value(rng) for _ in range(rng.randrange(4))}
    return AuthFileType(type="plugin-kind", provider="plugin-kind", describe=describe)


def expected(name, path, st, data, types) -> bytes:
    index = listing.auth_index(name)
    return plain(listing._entry(name, path, st, index, listing._facts(name, data, types)))


@pytest.mark.parametrize("seed", range(4))
def test_entries_encode_as_sorted_json(seed):
    rng = random.Random(seed)
    types = {"plugin-kind": a_kind(core_share=0.2)}
    for _ in range(2000):
        name, path, st, data = a_file(rng)
        written = listing.entry_json(name, path, st, data, types, listing.auth_index(name))
        assert written == expected(name, path, st, data, types), (name, data)


def test_an_entry_built_from_a_file_encodes_as_sorted_json(tmp_path):
    path = tmp_path / "codex-a.json"
    path.write_text('{"type": "codex", "email": "a@example.com", "prefix": "team", "headers": {"X": "1"}}')
    data = json.loads(path.read_text())
    written = listing.entry_json(path.name, str(path), path.stat(), data, {}, listing.auth_index(path.name))
    assert written == expected(path.name, str(path), path.stat(), data, {})
    assert json.loads(written)["headers"] == {"X": "1"} and json.loads(written)["label"] == "a@example.com"


def test_a_describe_that_overrides_core_keys_wins_and_stays_sorted():
    kind = AuthFileType(type="plugin-kind", provider="plugin-kind",
                        describe=lambda data, email: {"label": "Shown Label", "status": "custom", "size": "big"})

    class St:
        st_size, st_mtime_ns = 12, 0

    written = listing.entry_json("a.json", "/auths/a.json", St, {"type": "plugin-kind", "email": "a@x"},
                                 {"plugin-kind": kind}, "0123456789abcdef")
    entry = json.loads(written)
    assert (entry["label"], entry["status"], entry["size"], entry["email"]) == ("Shown Label", "custom", "big", "a@x")
    assert list(entry) == sorted(entry) and b" " not in written.replace(b"Shown Label", b"")
