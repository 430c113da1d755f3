"""The audit log: one line for every change of the config or an auth file, and every ban.

Lines go to the `cliproxy_mgmt.audit` logger and name what changed (top-level config keys,
file names; never a value) and who changed it: the client address of the request being
served (`acting_as`, set for every request), the storage backend's name for a change that
came from elsewhere (`ConfigBackend.outside_change`: "a hand edit of the file"), or "the
server" for changes made outside a request (start-up).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

log = logging.getLogger("cliproxy_mgmt.audit")

_actor: ContextVar[str | None] = ContextVar("cliproxy_mgmt_actor", default=None)


def acting_as(client: str | None) -> None:
    """Attribute the changes made by this thread from now on to `client` (None: the server)."""
    _actor.set(client)


def actor() -> str:
    client = _actor.get()
    return f"client {client}" if client else "the server"


def changed_keys(before: dict, after: dict) -> list[str]:
    """Top-level keys added, removed or given another value, in the new file's order."""
    keys = list(after) + [k for k in before if k not in after]
    return [k for k in keys if k not in before or k not in after or before[k] != after[k]]


def config_changed(path: str, before: dict, after: dict, *, outside: str | None = None) -> None:
    """`outside`: who made a change that did not come through this server (else `actor()`)."""
    keys = changed_keys(before, after)
    if keys:
        who = outside or actor()
        log.info("audit: config %s changed by %s: %s", path, who, ", ".join(keys))


def auth_file(action: str, name: str) -> None:
    """`action` is "written" or "deleted"."""
    log.info("audit: auth file %s %s by %s", name, action, actor())


def banned(address: str, failures: int, seconds: int) -> None:
    log.warning("audit: client %s banned for %ds after %d wrong management keys",
                address, seconds, failures)
