"""portside's in-process container engine (no daemon).

Everything a front end needs is re-exported here. The errors and records
are plain and load at once; ``Engine`` and the names that live with the
container I/O code (attach, exec, copy, diff) load on first use (PEP 562),
so ``import engine`` stays cheap for a front end that only needs a record
or an error, or prints its version.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (AmbiguousReference, CommandNotExecutable, CommandNotFound, DigestMismatch,
                     EngineError, ImageFormatError, InUse, InvalidArgument, InvalidState,
                     NameConflict, NeedsRoot, NetworkError, NoSuchContainer, NoSuchImage,
                     NoSuchNetwork, NoSuchVolume, RegistryError, ResourceError, RuntimeFailure)
from .records import (ContainerInfo, ContainerSpec, ContainerState, Event, HistoryEntry,
                      ImageConfig, ImageInfo, LogLine, Mount, Progress, SystemInfo, VolumeInfo)
from .records import (ContainerStats, ContainerUsage, DiskUsage, ImageUsage, ProcessInfo,
                      PruneReport, UsageSummary, VolumeUsage)

if TYPE_CHECKING:
    from .api import Engine
    from .containers.attach import AttachIO
    from .containers.changes import FileChange
    from .containers.copy import CopyError
    from .containers.exec import ExecFailed, ExecResult

__version__ = "0.1.0"

# Public name -> the module that defines it, imported on first access.
_LAZY = {
    "Engine": ".api",
    "AttachIO": ".containers.attach",
    "FileChange": ".containers.changes",
    "CopyError": ".containers.copy",
    "ExecFailed": ".containers.exec",
    "ExecResult": ".containers.exec",
}


def __getattr__(name: str) -> Any:
    """Load ``Engine`` and the container I/O names when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value          # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Engine", "EngineError", "AmbiguousReference", "CommandNotExecutable", "CommandNotFound",
    "DigestMismatch", "ImageFormatError", "InUse", "InvalidArgument", "InvalidState",
    "NameConflict", "NeedsRoot", "NetworkError", "NoSuchContainer", "NoSuchImage",
    "NoSuchNetwork", "NoSuchVolume", "RegistryError", "ResourceError", "RuntimeFailure",
    "ContainerInfo", "ContainerSpec", "ContainerState", "Event", "HistoryEntry", "ImageConfig",
    "ImageInfo", "LogLine", "Mount", "Progress", "SystemInfo", "VolumeInfo", "__version__",
    "AttachIO", "CopyError", "ExecFailed", "ExecResult", "FileChange",
    "ContainerStats", "ContainerUsage", "DiskUsage", "ImageUsage", "ProcessInfo", "PruneReport",
    "UsageSummary", "VolumeUsage",
]
