"""The image half of the Engine facade: list, inspect, load, save, tag, remove."""
from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Iterable

from .base import EngineBase
from .errors import InvalidArgument, NoSuchImage
from .records import HistoryEntry, ImageInfo

if TYPE_CHECKING:
    from .images.store import ProgressFn


class ImagesAPI(EngineBase):
    """Image operations; part of :class:`engine.Engine`."""

    # -- listing and reading ----------------------------------------------
    def images(self, *, all: bool = False, filters: Iterable[str] = ()) -> list[ImageInfo]:
        """Images in the store, newest first (``docker images``).

        Args:
            all: also list untagged (dangling) images. Untagged images are
                shown by default too, as Docker shows ``<none>`` images; ``all``
                exists for Docker compatibility (portside keeps no
                intermediate build images).
            filters: ``reference=<glob>``, ``dangling=true|false``,
                ``label=<key>[=<value>]``, ``before=<image>``, ``since=<image>``.
                Several ``reference`` filters match any of them, and the
                images they match list only the matching tags (as Docker's
                do); other filters must all match.

        Raises:
            InvalidArgument: an unknown or malformed filter.
        """
        result = self.image_store.list()
        by_key: dict[str, list[str]] = {}
        for f in filters:
            key, sep, value = f.partition("=")
            if not sep:
                raise InvalidArgument(f"bad filter {f!r}", hint="filters look like key=value")
            by_key.setdefault(key, []).append(value)
        for key, values in by_key.items():
            result = _filter_images(self, result, key, values)
        return result

    def image(self, ref: str) -> ImageInfo:
        """One image by tag, id or id prefix.

        Raises:
            NoSuchImage: nothing matches.
            AmbiguousReference: an id prefix matches several images.
        """
        return self.image_store.get(ref)

    def image_inspect(self, ref: str) -> dict[str, Any]:
        """Docker-shaped ``image inspect`` JSON for one image.

        Raises:
            NoSuchImage: nothing matches.
        """
        info = self.image_store.get(ref)
        config = json.loads(self.image_store.config_bytes(info.id))
        c = config.get("config") or {}
        repo_digests = []
        if info.digest:
            repo_digests = sorted({t.rsplit(":", 1)[0] + "@" + info.digest for t in info.repo_tags})
        return {
            "Id": info.id,
            "RepoTags": list(info.repo_tags),
            "RepoDigests": repo_digests,
            "Parent": "",
            "Comment": next((h.comment for h in reversed(info.history) if h.comment), ""),
            "Created": config.get("created", ""),
            "DockerVersion": config.get("docker_version", ""),
            "Author": info.author,
            "Config": {
                "Hostname": "", "Domainname": "", "User": c.get("User", ""),
                "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
                "ExposedPorts": c.get("ExposedPorts"), "Tty": False, "OpenStdin": False,
                "StdinOnce": False, "Env": c.get("Env"), "Cmd": c.get("Cmd"),
                "Image": "", "Volumes": c.get("Volumes"), "WorkingDir": c.get("WorkingDir", ""),
                "Entrypoint": c.get("Entrypoint"), "OnBuild": None, "Labels": c.get("Labels"),
                "StopSignal": c.get("StopSignal"),
            },
            "Architecture": info.architecture,
            "Variant": config.get("variant", ""),
            "Os": info.os,
            "Size": info.size,
            "GraphDriver": {
                "Name": "overlay",
                "Data": {"LowerDir": ":".join(str(p) for p in self.image_store.lower_dirs(info.id))},
            },
            "RootFS": {"Type": "layers", "Layers": list(info.layers)},
            "Metadata": {"LastTagTime": self._last_tag_time(info.id)},
        }

    def _last_tag_time(self, image_id: str) -> str:
        """When a tag was last put on the image, RFC 3339; Go's zero time if never."""
        row = self.db.one("SELECT max(time_ns) AS t FROM events WHERE type='image' AND action='tag' "
                          "AND actor_id=?", (image_id,))
        if row is None or not row["t"]:
            return "0001-01-01T00:00:00Z"
        t = datetime.fromtimestamp(row["t"] // 1_000_000_000, timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{row['t'] % 1_000_000_000:09d}Z"

    def history(self, ref: str) -> list[HistoryEntry]:
        """The image's history, newest first, with each step's layer size.

        Raises:
            NoSuchImage: nothing matches.
        """
        info = self.image_store.get(ref)
        sizes = [lay.size for lay in self.image_store.layers_of(info.id)]
        entries: list[HistoryEntry] = []
        if info.history:
            layer_sizes = iter(sizes)
            for h in info.history:
                size = 0 if h.empty_layer else next(layer_sizes, 0)
                entries.append(HistoryEntry(h.created, h.created_by, size, h.comment, h.empty_layer))
        else:   # images without history: one row per layer, like Docker
            entries = [HistoryEntry(info.created, "", s) for s in sizes]
        return list(reversed(entries))

    # -- changing ------------------------------------------------------------
    def tag(self, source: str, target: str) -> None:
        """Give the image ``source`` the extra name ``target`` (``docker tag``).

        Raises:
            NoSuchImage: ``source`` matches nothing.
            InvalidArgument: ``target`` is not a valid reference.
        """
        self.image_store.tag(source, target)

    def rmi(self, ref: str, *, force: bool = False) -> list[str]:
        """Remove an image or one of its tags (``docker rmi``).

        Returns the ``Untagged: ...``/``Deleted: ...`` lines Docker prints.

        Raises:
            NoSuchImage: nothing matches.
            InUse: a container uses the image and ``force`` is not set.
        """
        with self.lock("images"):
            return self.image_store.remove(ref, force=force, users=self._image_users)

    def image_prune(self, *, all: bool = False) -> tuple[list[str], int]:
        """Remove dangling images (with ``all``: every image no container uses).

        Returns the removed image ids and the bytes freed.
        """
        removed: list[str] = []
        freed = 0
        with self.lock("images"):
            candidates = ([i.id for i in self.image_store.list()] if all
                          else self.image_store.dangling())
            for image_id in candidates:
                if self._image_users(image_id):
                    continue
                size = self.image_store.get(image_id).size
                self.image_store.remove(image_id, force=True)
                removed.append(image_id)
                freed += size
        return removed, freed

    def _image_users(self, image_id: str) -> list[str]:
        return [r["name"] for r in self.db.query(
            "SELECT name FROM containers WHERE image_id=? ORDER BY name", (image_id,))]

    # -- moving images in and out --------------------------------------------
    def load(self, source: str | os.PathLike[str] | BinaryIO, *,
             progress: ProgressFn | None = None) -> list[ImageInfo]:
        """Load images from a docker-archive or oci-archive tar, or an OCI layout dir.

        Layers may be plain, gzip or zstd. Every digest is verified and every
        path checked; a refused archive leaves nothing behind.

        Raises:
            ImageFormatError: the archive is malformed or hostile (the message names the entry).
            DigestMismatch: content does not match its digest.
        """
        from .images.archive import load_archive
        with self.lock("images"):
            return load_archive(self.image_store, source, progress=progress)

    def pull(self, ref: str, *, progress: ProgressFn | None = None) -> ImageInfo:
        """Pull an image from a registry (OCI distribution API, token auth).

        Registries on 127.0.0.0/8 and localhost, and those listed in
        ``PORTSIDE_INSECURE_REGISTRIES``, are spoken to over plain HTTP.

        Raises:
            RegistryError: unreachable registry, unknown image, access denied.
            ImageFormatError: the registry sent malformed or mismatching content.
        """
        from .images.registry import pull
        with self.lock("images"):
            return pull(self.image_store, ref, progress=progress)

    def save(self, refs: list[str], output: str | os.PathLike[str] | BinaryIO, *,
             format: str = "docker-archive") -> None:
        """Write images to a tar: ``docker-archive`` (default) or ``oci-archive``.

        Raises:
            NoSuchImage: a reference matches nothing.
            InvalidArgument: unknown format.
        """
        from .images.archive import save_archive
        if format not in ("docker-archive", "oci-archive"):
            raise InvalidArgument(f"unknown save format {format!r}",
                                  hint="use docker-archive or oci-archive")
        if not refs:
            raise InvalidArgument("save needs at least one image")
        save_archive(self.image_store, refs, output, format=format)

    def import_image(self, source: str | os.PathLike[str] | BinaryIO, ref: str | None = None, *,
                     changes: Iterable[str] = (), message: str = "",
                     progress: ProgressFn | None = None) -> ImageInfo:
        """Make a one-layer image from a rootfs tar (``docker import``).

        Args:
            source: a tar path (plain/gzip/zstd) or a binary stream.
            ref: name to tag the image with.
            changes: Dockerfile-style ``CMD``, ``ENTRYPOINT``, ``ENV``, ``WORKDIR``,
                ``USER``, ``EXPOSE``, ``LABEL``, ``VOLUME`` lines.

        Raises:
            InvalidArgument: a bad ``--change`` line or reference.
            ImageFormatError: the tar is not a valid rootfs.
        """
        from .images.importer import import_rootfs
        with self.lock("images"):
            return import_rootfs(self.image_store, source, ref, changes=list(changes),
                                 message=message, progress=progress)

    def bootstrap_busybox(self, ref: str = "busybox:latest", *,
                          busybox: str | os.PathLike[str] | None = None) -> ImageInfo:
        """Build the built-in busybox image from the host's static busybox.

        Raises:
            EngineError: no static busybox on the host (install busybox-static).
        """
        from .images.bootstrap import build_busybox
        with self.lock("images"):
            return build_busybox(self.image_store, ref, busybox=Path(busybox) if busybox else None)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Go's path.Match, as Docker's reference filter uses: ``*`` and ``?`` stop at ``/``."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _familiar_pattern(pattern: str) -> str:
    """``docker.io/library/busy*`` -> ``busy*``: tags are stored by their familiar names."""
    for hub in ("docker.io/", "index.docker.io/"):
        if pattern.startswith(hub):
            pattern = pattern[len(hub):]
            break
    if pattern.startswith("library/") and pattern.count("/") == 1:
        pattern = pattern[len("library/"):]
    return pattern


def _reference_matches(patterns: list[re.Pattern[str]], tag: str) -> bool:
    # Docker's FamiliarMatch: the pattern may match "name:tag" or just "name".
    name = tag.rpartition(":")[0]
    return any(p.match(tag) or p.match(name) for p in patterns)


def _filter_images(api: ImagesAPI, images: list[ImageInfo], key: str,
                   values: list[str]) -> list[ImageInfo]:
    if key == "reference":
        patterns = [_glob_regex(_familiar_pattern(v)) for v in values]
        out = []
        for i in images:
            tags = tuple(t for t in i.repo_tags if _reference_matches(patterns, t))
            if tags:
                out.append(replace(i, repo_tags=tags))
        return out
    for value in values:
        images = _filter_one(api, images, key, value)
    return images


def _filter_one(api: ImagesAPI, images: list[ImageInfo], key: str, value: str) -> list[ImageInfo]:
    if key == "dangling":
        if value not in ("true", "false"):
            raise InvalidArgument(f"bad dangling filter {value!r}", hint="use dangling=true or false")
        want = value == "true"
        return [i for i in images if (not i.repo_tags) == want]
    if key == "label":
        k, sep, v = value.partition("=")
        return [i for i in images if k in i.config.labels and (not sep or i.config.labels[k] == v)]
    if key in ("before", "since"):
        pivot = api.image(value)
        t0 = pivot.created or datetime.min.replace(tzinfo=timezone.utc)
        if key == "before":
            return [i for i in images if i.created and i.created < t0]
        return [i for i in images if i.created and i.created > t0]
    raise InvalidArgument(f"unknown image filter {key!r}",
                          hint="use reference=, dangling=, label=, before= or since=")
