"""Image references: ``[registry/]repo[:tag][@digest]``, Docker's grammar."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidArgument

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)"
_NAME_RE = re.compile(rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")

DEFAULT_REGISTRY = "docker.io"


@dataclass(frozen=True)
class Reference:
    """A parsed image reference."""

    domain: str          # "" when the user gave none
    path: str            # "library/busybox" style path as written ("busybox")
    tag: str             # "latest" unless given
    digest: str = ""

    @property
    def name(self) -> str:
        """The repository as shown in ``images`` (no default registry)."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        s = f"{self.name}:{self.tag}" if self.tag else self.name
        return f"{s}@{self.digest}" if self.digest else s

    @property
    def registry(self) -> str:
        return self.domain or DEFAULT_REGISTRY

    @property
    def remote_path(self) -> str:
        """The repository path on the registry (Docker Hub adds ``library/``)."""
        if not self.domain and "/" not in self.path:
            return f"library/{self.path}"
        return self.path


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    # Docker's rule: the first component is a registry if it has '.', ':' or is localhost.
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        return first, rest
    return "", name


def parse_reference(ref: str, *, default_tag: str = "latest") -> Reference:
    """Parse a reference, raising ``InvalidArgument`` with the reason if malformed."""
    s = ref.strip()
    if not s:
        raise InvalidArgument("empty image reference", hint="give a name like busybox:latest")
    digest = ""
    if "@" in s:
        s, digest = s.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise InvalidArgument(f"invalid digest in reference {ref!r}",
                                  hint="digests look like sha256:<64 hex chars>")
    tag = ""
    slash = s.rfind("/")
    colon = s.rfind(":")
    if colon > slash:
        s, tag = s[:colon], s[colon + 1:]
        if not _TAG_RE.match(tag):
            raise InvalidArgument(f"invalid tag in reference {ref!r}",
                                  hint="tags use letters, digits, '_', '.', '-' (max 128)")
    if s != s.lower() and not _split_domain(s)[0]:
        raise InvalidArgument(f"invalid reference {ref!r}: repository names must be lowercase")
    m = _NAME_RE.match(s)
    if not m:
        raise InvalidArgument(f"invalid reference format: {ref!r}",
                              hint="use [registry/]name[:tag], lowercase")
    domain, path = _split_domain(s)
    if not tag and not digest:
        tag = default_tag
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


_HUB_DOMAINS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def familiar_repository(r: Reference) -> str:
    """Docker's familiar repository name: ``docker.io/library/busybox`` -> ``busybox``.

    Docker Hub's domains and its ``library/`` prefix are dropped, so every
    spelling of a Hub name is stored and found under one key; other
    registries keep their domain.
    """
    domain, path = r.domain, r.path
    if domain in _HUB_DOMAINS:
        domain = ""
    if not domain and path.startswith("library/") and path.count("/") == 1:
        path = path[len("library/"):]
    return f"{domain}/{path}" if domain else path


def familiar_name(ref: str) -> str:
    """``docker.io/library/busybox:latest`` -> ``busybox:latest``; ``busybox`` stays ``busybox:latest``.

    A digest, if any, is kept (``busybox@sha256:...``).

    Raises:
        InvalidArgument: not a valid reference.
    """
    r = parse_reference(ref)
    name = familiar_repository(r)
    if r.tag:
        name = f"{name}:{r.tag}"
    return f"{name}@{r.digest}" if r.digest else name


def normalize_tag(ref: str) -> str:
    """The key a tag is stored under: ``docker.io/library/busybox`` -> ``busybox:latest``.

    Raises:
        InvalidArgument: a malformed reference, or one with a digest
            (``name@sha256:...`` names content, it cannot be a tag).
    """
    r = parse_reference(ref)
    if r.digest:
        raise InvalidArgument(f"refusing to create a tag with a digest reference: {ref!r}",
                              hint="a tag is name[:tag], e.g. busybox:mine")
    return f"{familiar_repository(r)}:{r.tag}"
