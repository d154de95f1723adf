"""Every filesystem root the engine touches, in one injectable place.

Tests build a ``Paths`` under a temp dir so they never touch the host's
``/var/lib/portside``; the cgroup and proc roots are parameters so unit
tests can point them at fake trees.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("/var/lib/portside")
DEFAULT_RUN = Path("/run/portside")
DB_FILE = "state.db"


@dataclass(frozen=True)
class Paths:
    """Where the engine keeps its state, content and runtime files."""

    root: Path = DEFAULT_ROOT
    run: Path = DEFAULT_RUN
    cgroup_root: Path = Path("/sys/fs/cgroup")
    proc: Path = Path("/proc")

    @classmethod
    def from_env(cls, root: str | os.PathLike[str] | None = None,
                 run: str | os.PathLike[str] | None = None) -> "Paths":
        """Resolve roots from arguments, then ``PORTSIDE_ROOT``/``PORTSIDE_RUN``.

        When only the root is moved, the run dir moves with it (``<root>/run``)
        so two roots never share locks or exit files.
        """
        root = root or os.environ.get("PORTSIDE_ROOT")
        run = run or os.environ.get("PORTSIDE_RUN")
        r = Path(root).absolute() if root else DEFAULT_ROOT
        if run:
            rr = Path(run).absolute()
        elif root:
            rr = r / "run"
        else:
            rr = DEFAULT_RUN
        return cls(root=r, run=rr)

    @property
    def db(self) -> Path:
        return self.root / DB_FILE

    @property
    def blobs(self) -> Path:
        return self.root / "blobs" / "sha256"

    @property
    def layers(self) -> Path:
        return self.root / "layers"

    @property
    def containers(self) -> Path:
        return self.root / "containers"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def tmp(self) -> Path:
        """Scratch space on the same filesystem as the store (for renames)."""
        return self.root / "tmp"

    @property
    def locks(self) -> Path:
        return self.run / "locks"

    @property
    def exits(self) -> Path:
        return self.run / "exits"

    def blob(self, digest: str) -> Path:
        """Path of a blob named ``sha256:<hex>``."""
        return self.blobs / digest.split(":", 1)[1]

    def layer(self, chain_id: str) -> Path:
        return self.layers / chain_id.split(":", 1)[1]

    def container(self, cid: str) -> Path:
        return self.containers / cid

    def ensure(self) -> None:
        """Create the directory skeleton (idempotent)."""
        for d in (self.root, self.blobs, self.layers, self.containers,
                  self.volumes, self.tmp, self.run, self.locks, self.exits):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)
