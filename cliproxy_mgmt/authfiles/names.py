"""Auth-file names: a plain file name ending in `.json`, nothing else (docs/decisions.md).

No `/`, `\\`, NUL or other control characters, no leading `.`, no `..`, at most 255 bytes.
Names keep their exact spelling (`claude-user+tag@example.com.json` is valid): we never
rewrite a name the way `secure_filename` does, we refuse it.
"""

from __future__ import annotations

import re

from ..conventions import go_trim_space
from ..errors import ApiError

MAX_NAME_BYTES = 255


# A separator or a control character. (A leading dot and `..` are two plain string tests:
# together a third of one alternation regex's time, and a listing checks 5,000 names.)
_REFUSED = re.compile(r"[/\\\x00-\x1f\x7f]")


def trimmed(name: str) -> str:
    """Text a client names a file or field by, without the white space around it, as
    upstream reads it (strings.TrimSpace): a name, an `auth_index`, a part of a field path."""
    return go_trim_space(name)


def is_plain_name(name: str) -> bool:
    """True for a name that can only mean a file directly inside auth-dir.

    A name must be UTF-8 text: a file whose name is other bytes (seen here as lone
    surrogates) could be neither listed as JSON nor named in a request.
    """
    if not name or name[0] == "." or ".." in name or _REFUSED.search(name):
        return False
    if name.isascii():  # (then also no lone surrogates, and a byte per character)
        return len(name) <= MAX_NAME_BYTES
    try:
        return len(name.encode("utf-8")) <= MAX_NAME_BYTES
    except UnicodeEncodeError:
        return False


def has_json_suffix(name: str) -> bool:
    return name.endswith(".json") or name.lower().endswith(".json")


def is_auth_file_name(name: str) -> bool:
    return is_plain_name(name) and has_json_suffix(name)


def check_name(name: str | None, *, suffix_error: str = "name must end with .json") -> str:
    """Return `name` when it is a valid auth-file name; else 400 with upstream's texts."""
    if not name or not is_plain_name(name):
        raise ApiError(400, "invalid name")
    if not has_json_suffix(name):
        raise ApiError(400, suffix_error)
    return name
