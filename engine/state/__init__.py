"""Engine state: the SQLite store and per-object locks."""
from .db import Store
from .locks import FileLock

__all__ = ["Store", "FileLock"]
