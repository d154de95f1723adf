"""The volume part of the Engine facade: create, list, inspect, remove, prune."""
from __future__ import annotations

from datetime import timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .base import EngineBase
from .records import VolumeInfo

if TYPE_CHECKING:
    from .volumes import VolumeStore


class VolumesAPI(EngineBase):
    """Named volumes (``docker volume ...``); part of :class:`engine.Engine`.

    Each change records its ``volume`` event (``create``/``destroy``) in the
    same transaction as the change itself.
    """

    @cached_property
    def volume_store(self) -> VolumeStore:
        from .volumes import VolumeStore    # only the verbs that use volumes load it
        return VolumeStore(self.db, self.paths)

    def volume_create(self, name: str | None = None, *, labels: Mapping[str, str] | None = None,
                      driver: str = "local",
                      options: Mapping[str, str] | None = None) -> VolumeInfo:
        """Create a named volume; an existing one of that name is returned unchanged.

        Args:
            name: the name (None: a random 64-hex name, marked anonymous).
            labels: metadata labels.
            driver: only ``local``.
            options: driver options (the local driver here takes none).

        Raises:
            InvalidArgument: a bad name, another driver, or options.
            NameConflict: the name belongs to a volume of another driver.
        """
        return self.volume_store.create(name, labels=labels, driver=driver, options=options)

    def volumes(self, *, filters: Iterable[str] = ()) -> list[VolumeInfo]:
        """Volumes sorted by name (``docker volume ls``).

        Args:
            filters: ``dangling=true|false``, ``name=<regex>``,
                ``label=<key>[=<value>]``, ``driver=local``.

        Raises:
            InvalidArgument: an unknown or malformed filter.
        """
        return self.volume_store.list(filters)

    def volume(self, name: str) -> VolumeInfo:
        """One volume.

        Raises:
            NoSuchVolume: no volume has that name.
        """
        return self.volume_store.get(name)

    def volume_users(self, name: str) -> list[str]:
        """Names of the containers using the volume (empty when unused).

        Raises:
            NoSuchVolume: no volume has that name.
        """
        self.volume_store.get(name)
        return self.volume_store.users(name)

    def volume_inspect(self, name: str) -> dict[str, Any]:
        """Docker-shaped ``volume inspect`` JSON for one volume.

        Raises:
            NoSuchVolume: no volume has that name.
        """
        v = self.volume_store.get(name)
        created = v.created.astimezone(timezone.utc).isoformat(timespec="seconds")
        return {
            "CreatedAt": created.replace("+00:00", "Z"),
            "Driver": v.driver,
            "Labels": dict(v.labels),
            "Mountpoint": v.mountpoint,
            "Name": v.name,
            "Options": {},
            "Scope": "local",
        }

    def volume_rm(self, name: str, *, force: bool = False) -> bool:
        """Remove a volume and its data (``docker volume rm``).

        Args:
            force: do not fail on a missing volume (a volume in use is still kept).

        Returns:
            True if a volume was removed.

        Raises:
            NoSuchVolume: no such volume and not ``force``.
            InUse: containers use it; the message names them.
        """
        return self.volume_store.remove(name, force=force)

    def volume_prune(self, *, all: bool = False,
                     filters: Iterable[str] = ()) -> tuple[list[str], int]:
        """Remove unused volumes: anonymous ones, or with ``all`` every unused one.

        Args:
            all: also named volumes (Docker's ``volume prune -a``).
            filters: ``label=...`` and ``label!=...``.

        Returns:
            The removed names and the bytes freed.

        Raises:
            InvalidArgument: an unknown or malformed filter.
        """
        return self.volume_store.prune(all=all, filters=filters)
