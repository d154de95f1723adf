"""Engine: the one facade every front end calls.

The facade is assembled from one part per area (images, containers, ...),
each in its own module, so the recipe for each verb stays short and readable
while the work lives in the subpackages.
"""
from __future__ import annotations

from typing import Any

from .api_container_io import ContainerIOAPI
from .api_containers import ContainersAPI
from .api_images import ImagesAPI
from .api_networks import NetworksAPI
from .api_resources import ResourcesAPI
from .api_system import SystemAPI
from .api_volumes import VolumesAPI


class Engine(ImagesAPI, ContainersAPI, NetworksAPI, ContainerIOAPI, ResourcesAPI, VolumesAPI, SystemAPI):
    """The portside engine, in-process. Safe to use from several processes at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Open the engine (see :class:`EngineBase`); the first open after a reboot reconciles."""
        super().__init__(*args, **kwargs)
        self.refresh_after_reboot()


__all__ = ["Engine"]
