"""The listing's entry encoder writes the same bytes as the plain sorted JSON encoder.

`listing._encode` writes the keys every entry has through a template and merges the others in
at their sorted places; any entry (plugin keys, odd value types, escapes) must come out
byte-identical to `json` with sorted keys, or fall back to it.
"""

import json
import random

import pytest

from cliproxy_mgmt.authfiles import listing

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


def an_entry(rng: random.Random) -> dict:
    entry = {"id": "x.json", "auth_index": "0123456789abcdef", "name": rng.choice(STRINGS) or "n",
             "path": "/auths/" + rng.choice(STRINGS), "source": "file", "size": rng.randrange(10**6),
             "modtime": "2026-01-01T00:00:00Z", "runtime_only": False, "unavailable": False,
             "status_message": rng.choice(STRINGS), "disabled": rng.choice([True, False]), "type": "claude",
             "provider": "claude", "status": "active", "label": rng.choice(STRINGS)}
    for _ in range(rng.randrange(6)):  # extra keys, and now and then a core key of another type
        entry[rng.choice(EXTRA_KEYS + list(listing._CORE))] = a_value(rng)
    return entry


@pytest.mark.parametrize("seed", range(4))
def test_entries_encode_as_sorted_json(seed):
    rng = random.Random(seed)
    for _ in range(2000):
        entry = an_entry(rng)
        assert listing._encode(entry) == plain(entry), entry


def test_an_entry_built_from_a_file_encodes_as_sorted_json(tmp_path):
    path = tmp_path / "codex-a.json"
    path.write_text('{"type": "codex", "email": "a@example.com", "prefix": "team", "headers": {"X": "1"}}')
    entry = listing.build_entry(path.name, str(path), path.stat(), json.loads(path.read_text()), {})
    assert listing._encode(entry) == plain(entry)
