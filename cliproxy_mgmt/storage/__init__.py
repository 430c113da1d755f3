"""Storage backends under the config store and the auth-dir store (see `base.py`)."""

from .base import (AuthBackend, BackendFactory, ConfigBackend, Conflict, Storage, StorageError,
                   Unavailable, Version)

__all__ = ["AuthBackend", "BackendFactory", "ConfigBackend", "Conflict", "Storage", "StorageError",
           "Unavailable", "Version"]
