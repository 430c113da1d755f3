"""Choosing the storage backend at start-up.

The built-in backends are the local files (the default) and PostgreSQL (selected by
PGSTORE_DSN, upstream's variable); plugins add theirs through the `register_storage_backends`
hook. `CLIPROXY_MGMT_STORAGE=<name>` picks one by name; otherwise the first backend whose
`selected(environ)` is true wins (plugins' before the built-in PostgreSQL), else the files.
"""

from __future__ import annotations

from .base import BackendFactory, Storage, StorageError, env_value
from .files import FileStorage

SELECT_ENV = "CLIPROXY_MGMT_STORAGE"


def _open_postgres(config_path: str, environ: dict) -> Storage:
    from .postgres import open_postgres  # psycopg is an extra: imported only when asked for

    return open_postgres(config_path, environ)


def builtin_backends() -> list[BackendFactory]:
    return [
        BackendFactory("postgres", lambda env: bool(env_value(env, "PGSTORE_DSN").strip()), _open_postgres),
        BackendFactory("files", lambda env: False, lambda path, env: FileStorage()),
    ]


def open_storage(pm, config_path: str, environ: dict) -> Storage:
    """The `Storage` the environment asks for; StorageError (one clear line) when it cannot start."""
    factories: list[BackendFactory] = []
    for found in pm.hook.register_storage_backends() if pm is not None else []:
        factories.extend(found or [])
    factories.extend(builtin_backends())
    names = [f.name for f in factories]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise StorageError(f"storage backend name(s) registered twice: {', '.join(twice)}")
    wanted = environ.get(SELECT_ENV, "").strip()
    if wanted:
        chosen = next((f for f in factories if f.name == wanted), None)
        if chosen is None:
            raise StorageError(f"{SELECT_ENV}={wanted}: no such storage backend "
                               f"(known: {', '.join(f.name for f in factories)})")
    else:
        chosen = next((f for f in factories if f.selected(environ)), None)
    if chosen is None:
        return FileStorage()
    return chosen.open(config_path, environ)
