"""Storage backends under the config store and the auth-dir store (see `base.py`)."""

from .base import (AuthBackend, AuthFileChanged, BackendFactory, ConfigBackend, Conflict, Storage,
                   StorageError, Unavailable, Version)

__all__ = ["AuthBackend", "AuthFileChanged", "BackendFactory", "ConfigBackend", "Conflict", "Storage",
           "StorageError", "Unavailable", "Version"]
