"""What every part of the Engine facade shares: roots, state, stores."""
from __future__ import annotations

import errno
import os
from functools import cached_property
from typing import TYPE_CHECKING

from .errors import NeedsRoot
from .paths import Paths
from .state import FileLock, StateError, Store

if TYPE_CHECKING:
    from .images.store import ImageStore


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
            NeedsRoot: the directories cannot be created for lack of rights.
            StateError: the root is not a usable directory (a file, a
                read-only or full disk, /proc...) or its database cannot be used.
        """
        self.paths = paths or Paths.from_env(root, run_dir)
        try:
            self.paths.ensure()
        except PermissionError as err:
            if err.errno == errno.EACCES:
                raise NeedsRoot(f"using {self.paths.root}") from err
            raise _unusable(self.paths, err) from err
        except OSError as err:
            raise _unusable(self.paths, err) from err
        self.db = Store(self.paths.db)

    @cached_property
    def image_store(self) -> ImageStore:
        from .images.store import ImageStore    # verbs that never touch images skip it
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


def _unusable(paths: Paths, err: OSError) -> StateError:
    where = err.filename or paths.root
    why = err.strerror or str(err)
    if err.errno in (errno.EEXIST, errno.ENOTDIR):
        why = "a file is in the way of a directory"
    hint = {
        errno.ENOSPC: f"free space on the disk holding {paths.root}, or use another --root",
        errno.EDQUOT: f"free space within your quota on {paths.root}, or use another --root",
        errno.EROFS: "the file system is read-only: use a --root on a writable one",
        errno.EPERM: f"check {where}'s attributes (lsattr -d; chattr -i), or use another --root",
    }.get(err.errno or 0, "give --root (or $PORTSIDE_ROOT) a directory portside can create and write")
    return StateError(f"cannot use {paths.root} as the state directory: {where}: {why}", hint=hint)
