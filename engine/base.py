"""What every part of the Engine facade shares: roots, state, stores."""
from __future__ import annotations

import os
from functools import cached_property

from .errors import NeedsRoot
from .images.store import ImageStore
from .paths import Paths
from .state import FileLock, Store


class EngineBase:
    """Opens the root and the state database; parts of the facade build on it."""

    def __init__(self, root: str | os.PathLike[str] | None = None,
                 run_dir: str | os.PathLike[str] | None = None, *,
                 paths: Paths | None = None) -> None:
        """Open (creating if needed) the engine state under ``root``.

        Args:
            root: state directory; default ``$PORTSIDE_ROOT`` or /var/lib/portside.
            run_dir: runtime directory; default ``$PORTSIDE_RUN``, ``<root>/run``
                when only the root is moved, else /run/portside.
            paths: a complete ``Paths`` (tests use this to move cgroup/proc roots).

        Raises:
            NeedsRoot: the directories cannot be created or written.
        """
        self.paths = paths or Paths.from_env(root, run_dir)
        try:
            self.paths.ensure()
        except PermissionError as err:
            raise NeedsRoot(f"using {self.paths.root}") from err
        self.db = Store(self.paths.db)

    @cached_property
    def image_store(self) -> ImageStore:
        return ImageStore(self.db, self.paths)

    def lock(self, name: str) -> FileLock:
        """A cross-process lock on ``name`` (a container id, 'names', ...)."""
        return FileLock(self.paths.locks, name)

    def close(self) -> None:
        """Close this thread's database connection."""
        self.db.close()

    @staticmethod
    def is_root() -> bool:
        return os.geteuid() == 0
