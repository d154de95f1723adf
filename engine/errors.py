"""The one error tree every engine failure belongs to.

Front ends print ``str(err)`` and exit with ``err.exit_code``; the message
always says what the user can do next.
"""
from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    exit_code: int = 125

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class NeedsRoot(EngineError):
    """The operation needs root (mounts, namespaces, cgroups)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} needs root", hint="run portside as root, e.g. with sudo")


class NoSuchImage(EngineError):
    """No image matches the reference."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"no such image: {ref}", hint="try: portside images")


class NoSuchContainer(EngineError):
    """No container matches the id or name."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"no such container: {ref}", hint="try: portside ps -a")


class NoSuchVolume(EngineError):
    """No volume has that name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no such volume: {name}", hint="try: portside volume ls")


class NoSuchNetwork(EngineError):
    """No network has that name or id."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no such network: {name}", hint="try: portside network ls")


class AmbiguousReference(EngineError):
    """A short id prefix matches more than one object."""


class NameConflict(EngineError):
    """A name is already taken by another object."""


class InvalidState(EngineError):
    """The object is in a state that does not allow the operation."""


class InUse(EngineError):
    """The object is used by another one (an image by a container, ...)."""


class InvalidArgument(EngineError):
    """Bad user input: a malformed reference, flag or spec."""


class ImageFormatError(EngineError):
    """An archive, layer, manifest or config is malformed or hostile."""


class DigestMismatch(ImageFormatError):
    """Content does not hash to the digest that names it."""


class NoSpace(EngineError):
    """The disk under the root is full, over quota, or read-only."""


class RegistryError(EngineError):
    """A registry refused or failed a request."""


class RuntimeFailure(EngineError):
    """The OCI runtime or the monitor failed."""


class CommandNotExecutable(RuntimeFailure):
    """The container's command exists but cannot be executed (exit 126)."""

    exit_code = 126


class CommandNotFound(RuntimeFailure):
    """The container's command does not exist (exit 127)."""

    exit_code = 127


class NetworkError(EngineError):
    """Network setup or teardown failed."""


class ResourceError(EngineError):
    """A cgroup limit could not be applied or read."""
