"""Engine state: the SQLite store and per-object locks."""
from .db import StateError, Store, state_error
from .locks import FileLock

__all__ = ["Store", "FileLock", "StateError", "state_error"]
