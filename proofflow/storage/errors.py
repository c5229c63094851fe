"""The storage errors, in a module of their own so that every storage module (db, lease,
bulk) can raise them without importing db.py."""

from __future__ import annotations


class StorageError(RuntimeError):
    """A database or run-lease problem the user can act on: shown as one line, no traceback."""


class DatabaseLockedError(StorageError):
    """Another process holds the database file past our retry budget."""
