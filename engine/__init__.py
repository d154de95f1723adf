"""portside's in-process container engine (no daemon).

Everything a front end needs is re-exported here.
"""
from .api import Engine
from .errors import (AmbiguousReference, CommandNotExecutable, CommandNotFound, DigestMismatch,
                     EngineError, ImageFormatError, InUse, InvalidArgument, InvalidState,
                     NameConflict, NeedsRoot, NetworkError, NoSuchContainer, NoSuchImage,
                     NoSuchNetwork, NoSuchVolume, RegistryError, ResourceError, RuntimeFailure)
from .records import (ContainerInfo, ContainerSpec, ContainerState, Event, HistoryEntry,
                      ImageConfig, ImageInfo, LogLine, Mount, Progress, SystemInfo, VolumeInfo)

from .containers.attach import AttachIO
from .containers.changes import FileChange
from .containers.copy import CopyError
from .containers.exec import ExecFailed, ExecResult
from .records import (ContainerStats, ContainerUsage, DiskUsage, ImageUsage, ProcessInfo,
                      PruneReport, UsageSummary, VolumeUsage)

__version__ = "0.1.0"

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
