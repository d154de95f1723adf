"""Loading and saving image archives: docker-archive, oci-archive, OCI layout dirs.

Load reads an archive in place, never unpacking it to disk: a seekable tar
is indexed with ``tarfile`` and each member is streamed from where it lies;
a pipe, or a tar compressed as a whole, is first spooled (decompressed) to an
anonymous temp file under the store's tmp dir. Metadata (``manifest.json``,
``index.json``, ``oci-layout``, manifests, configs) is parsed as JSON and
every path or digest it names is checked before anything is stored: paths
must be plain relative paths inside the archive, digests must be sha256 and
the content must hash to them. Layers then go through the store, which
verifies blob digests and diff ids and unpacks with the safe extractor.

A load is all or nothing: every layer of every image is stored first, then
all image rows and tags are written in one transaction; on any failure the
layers and blobs this load added are removed again (:func:`rollback_on_error`).

Image names in OCI layouts: ``io.containerd.image.name`` (what Docker and
containerd write, e.g. ``docker.io/library/busybox:latest``) wins; else
``org.opencontainers.image.ref.name`` if it is a full reference
(``example.com/app:v1``). A ref name that is only a tag (``latest``, as
``skopeo copy ... oci:dir:latest`` writes) names no repository, so that image
is loaded untagged and reported by id, which is what ``docker load`` does
with an unnamed image. ``docker.io/library/`` is dropped from names, as
Docker shows them.

Save writes Docker's pre-v25 docker-archive layout (``manifest.json``,
``repositories``, ``<config hex>.json``, ``<diff id hex>/layer.tar``
uncompressed) or an oci-archive (``oci-layout``, ``index.json``,
``blobs/sha256/``) holding the stored layer blobs as they are under a
generated OCI manifest. Output paths are written to a temp file and renamed.
"""
from __future__ import annotations

import bz2
import io
import json
import lzma
import os
import posixpath
import stat
import tarfile
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Callable, Iterator, Protocol

from ..errors import DigestMismatch, ImageFormatError, InvalidArgument
from ..records import ImageInfo, Progress
from .reference import familiar_name, normalize_tag, parse_reference
from .registry import (MT_DOCKER_LIST, MT_DOCKER_MANIFEST, MT_OCI_INDEX, MT_OCI_MANIFEST,
                       host_platform)
from .store import (CHUNK, MT_DOCKER_LAYER, MT_OCI_LAYER, MT_OCI_LAYER_GZIP, MT_OCI_LAYER_ZSTD,
                    HashingReader, ImageStore, LayerSource, ProgressFn, StoredLayer, check_digest,
                    decompressed, sha256_digest)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["load_archive", "save_archive", "rollback_on_error", "layer_media_type",
           "compression_of", "sniff_stream", "decompressor", "FORMATS"]

FORMATS = ("docker-archive", "oci-archive")

MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
LAYER_TYPES = frozenset({MT_OCI_LAYER, MT_OCI_LAYER_GZIP, MT_OCI_LAYER_ZSTD, MT_DOCKER_LAYER,
                         MT_DOCKER_FOREIGN, _NONDIST, _NONDIST + "+gzip", _NONDIST + "+zstd"})
CONFIG_TYPES = frozenset({MT_OCI_CONFIG, MT_DOCKER_CONFIG})
INDEX_TYPES = frozenset({MT_OCI_INDEX, MT_DOCKER_LIST})
MANIFEST_TYPES = frozenset({MT_OCI_MANIFEST, MT_DOCKER_MANIFEST})

ANN_REF_NAME = "org.opencontainers.image.ref.name"
ANN_IMAGE_NAME = "io.containerd.image.name"

MAX_JSON = 16 << 20          # metadata, manifests and configs are small; refuse absurd ones
MAX_LINK_HOPS = 8            # symlinked members in docker save output chain at most once
MAX_INDEX_DEPTH = 4
TAR_MTIME = 0                # saved archives are byte-identical for the same images

_MAGIC = {"gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd", "bzip2": b"BZh",
          "xz": b"\xfd7zXZ\x00"}
_HINT = "the archive is corrupt or hostile; do not use it"


# -- shared helpers (also used by the importer) -------------------------------

def compression_of(head: bytes) -> str:
    """The compression a stream starts with: gzip, zstd, bzip2, xz, or "" (none)."""
    for name, magic in _MAGIC.items():
        if head.startswith(magic):
            return name
    return ""


def layer_media_type(compression: str) -> str:
    """The OCI layer media type for a layer blob with that compression.

    Raises:
        ImageFormatError: the compression has no OCI layer type (bzip2, xz).
    """
    types = {"": MT_OCI_LAYER, "gzip": MT_OCI_LAYER_GZIP, "zstd": MT_OCI_LAYER_ZSTD}
    if compression not in types:
        raise ImageFormatError(f"{compression} layers are not supported",
                               hint="layers must be plain, gzip or zstd tars")
    return types[compression]


@contextmanager
def rollback_on_error(store: ImageStore) -> Iterator[None]:
    """Undo what a failed image-adding job left in the store.

    Image rows are written last, in one transaction, so on failure only
    layers and blobs can be left over: unpacked layers no image refers to are
    garbage-collected, and blobs that appeared during the job and that no
    layer or image refers to are deleted. Callers hold the engine's
    ``images`` lock, so nothing else adds blobs meanwhile.
    """
    before = _blob_names(store)
    try:
        yield
    except BaseException:
        try:
            store.gc_layers()
            live = {r["blob_digest"] for r in store.db.query("SELECT blob_digest FROM layers")}
            live |= {r["id"] for r in store.db.query("SELECT id FROM images")}
            for name in _blob_names(store) - before:
                if "sha256:" + name not in live:
                    store.blobs.delete("sha256:" + name)
        except Exception:        # the original error is the one to report
            pass
        raise


def _blob_names(store: ImageStore) -> set[str]:
    try:
        return set(os.listdir(store.paths.blobs))
    except FileNotFoundError:
        return set()


# -- reading archives -----------------------------------------------------------

class ArchiveReader(Protocol):
    """Files of an archive, by plain relative path."""

    label: str

    def open(self, path: str) -> BinaryIO:
        """A stream of the regular file at ``path``.

        Raises:
            ImageFormatError: it is missing, not a regular file, or escapes the archive.
        """

    def size(self, path: str) -> int:
        """Size in bytes of the regular file at ``path`` (same errors as ``open``)."""

    def exists(self, path: str) -> bool:
        """Whether ``path`` names a file in the archive."""


def archive_path(value: object, what: str) -> str:
    """Check a path that archive metadata names; return it normalised.

    It must be a non-empty relative path with no ``..`` component (Docker's
    own archives never need one), so it cannot leave the archive.

    Raises:
        ImageFormatError: naming ``what`` and the path.
    """
    if not isinstance(value, str) or not value:
        raise ImageFormatError(f"{what}: expected a path, got {value!r}", hint=_HINT)
    if "\x00" in value or value.startswith("/") or "\\" in value:
        raise ImageFormatError(f"{what}: path {value!r} is not a plain relative path inside "
                               "the archive", hint=_HINT)
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ImageFormatError(f"{what}: path {value!r} points outside the archive", hint=_HINT)
    return "/".join(parts)


def _member_key(name: str) -> str | None:
    """The lookup key for a tar member name, or None for names we never use."""
    if "\x00" in name or name.startswith("/"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


class _MemberStream(io.RawIOBase):
    """A tar member's content; a truncated archive becomes an ImageFormatError."""

    def __init__(self, inner: IO[bytes], label: str) -> None:
        self.inner = inner
        self.label = label

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        view = memoryview(b).cast("B")
        try:
            data = self.inner.read(len(view))
        except tarfile.TarError as err:
            raise ImageFormatError(f"{self.label}: {err}",
                                   hint="the archive is truncated or corrupt") from err
        view[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self.inner.close()
        super().close()


class TarReader:
    """An archive tar read in place: members indexed once, streamed on demand.

    Only regular files, symlinks and hardlinks are indexed. Symlinks (old
    ``docker save`` links repeated layers as ``../<id>/layer.tar``) and
    hardlinks are followed inside the archive only. A name that occurs twice
    is refused when used: two readers could disagree on which one counts.
    """

    def __init__(self, fileobj: BinaryIO, label: str) -> None:
        self.label = label
        try:
            self._tar = tarfile.open(fileobj=fileobj, mode="r:", encoding="utf-8",
                                     errors="surrogateescape")
            self._members: dict[str, tarfile.TarInfo | None] = {}
            for m in self._tar:
                if not (m.isfile() or m.issym() or m.islnk()):
                    continue
                key = _member_key(m.name)
                if key is not None:
                    self._members[key] = None if key in self._members else m
        except (tarfile.TarError, EOFError) as err:
            raise ImageFormatError(f"{label}: not a readable tar archive: {err}",
                                   hint="it is truncated or corrupt, or not what load takes: a "
                                        "docker-archive or oci-archive tar, or an OCI layout "
                                        "directory") from err

    def _member(self, path: str) -> tarfile.TarInfo:
        name = path
        for _ in range(MAX_LINK_HOPS + 1):
            if name not in self._members:
                raise ImageFormatError(f"{self.label}: {path} is not in the archive",
                                       hint="the archive is incomplete")
            m = self._members[name]
            if m is None:
                raise ImageFormatError(f"{self.label}: {name} occurs more than once in the archive",
                                       hint=_HINT)
            if m.isfile():
                return m
            # Symlink targets are relative to the link's directory, hardlink
            # names to the archive root; either must stay inside.
            target = (posixpath.join(posixpath.dirname(name), m.linkname) if m.issym()
                      else m.linkname)
            norm = posixpath.normpath(target) if not target.startswith("/") else target
            if norm.startswith("/") or norm == ".." or norm.startswith("../"):
                raise ImageFormatError(f"{self.label}: {name} links to {m.linkname!r}, outside "
                                       "the archive", hint=_HINT)
            name = norm
        raise ImageFormatError(f"{self.label}: {path}: too many levels of links", hint=_HINT)

    def open(self, path: str) -> BinaryIO:
        f = self._tar.extractfile(self._member(path))
        assert f is not None            # _member returns regular files only
        return io.BufferedReader(_MemberStream(f, f"{self.label}: {path}"), CHUNK)

    def size(self, path: str) -> int:
        return self._member(path).size

    def exists(self, path: str) -> bool:
        return path in self._members


class DirReader:
    """An OCI layout (or unpacked docker save) directory, read without following symlinks.

    Every component is opened relative to the directory's fd with
    ``O_NOFOLLOW`` and the file must be a regular file, so a layout cannot
    make us read ``/etc/shadow`` or block on a FIFO.
    """

    def __init__(self, root: Path) -> None:
        self.label = str(root)
        self._root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self._root_fd)

    def _open_fd(self, path: str) -> int:
        parts = path.split("/")
        fd = os.dup(self._root_fd)
        try:
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | (
                    os.O_NONBLOCK if last else os.O_DIRECTORY)
                try:
                    child = os.open(part, flags, dir_fd=fd)
                except FileNotFoundError:
                    raise ImageFormatError(f"{self.label}: {path} is missing",
                                           hint="the layout is incomplete") from None
                except OSError as err:
                    raise ImageFormatError(f"{self.label}: {'/'.join(parts[:i + 1])} is a symlink "
                                           f"or not a directory ({err.strerror})", hint=_HINT) from None
                os.close(fd)
                fd = child
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ImageFormatError(f"{self.label}: {path} is not a regular file", hint=_HINT)
            return fd
        except BaseException:
            os.close(fd)
            raise

    def open(self, path: str) -> BinaryIO:
        return os.fdopen(self._open_fd(path), "rb", buffering=CHUNK)

    def size(self, path: str) -> int:
        fd = self._open_fd(path)
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def exists(self, path: str) -> bool:
        try:
            os.stat(path, dir_fd=self._root_fd, follow_symlinks=False)
        except OSError:
            return False
        return True


class PrefixedStream(io.RawIOBase):
    """A stream with the bytes already read from it (to sniff a magic number) put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head = head
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        view = memoryview(b).cast("B")
        if self.head:
            n = min(len(view), len(self.head))
            view[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.rest.read(len(view))
        view[:len(data)] = data
        return len(data)


def _read_head(f: BinaryIO, n: int) -> bytes:
    head = b""
    while len(head) < n:
        chunk = f.read(n - len(head))
        if not chunk:
            break
        head += chunk
    return head


def _seekable(f: BinaryIO) -> bool:
    try:
        if not f.seekable():
            return False
        f.tell()
        return True
    except (OSError, ValueError, AttributeError):
        return False


def sniff_stream(f: BinaryIO) -> tuple[str, BinaryIO]:
    """Peek at a (possibly non-seekable) stream's compression without losing bytes.

    Returns:
        ``(compression, stream)``: see :func:`compression_of`; the stream
        yields all of ``f`` from its current position.
    """
    head = _read_head(f, 6)
    return compression_of(head), io.BufferedReader(PrefixedStream(head, f), CHUNK)


def decompressor(kind: str, f: BinaryIO) -> BinaryIO:
    """A stream of ``f`` decompressed, ``kind`` being what :func:`compression_of` said."""
    if kind == "bzip2":
        return bz2.BZ2File(f)  # type: ignore[return-value]
    if kind == "xz":
        return lzma.LZMAFile(f)  # type: ignore[return-value]
    return decompressed(f)   # gzip and zstd: the store's own detection


@contextmanager
def open_archive(store: ImageStore, source: str | os.PathLike[str] | BinaryIO,
                 progress: ProgressFn | None = None) -> Iterator[ArchiveReader]:
    """Open a load source as an :class:`ArchiveReader`.

    A directory is read in place. A plain tar on a seekable file is indexed
    in place. A tar compressed as a whole (gzip, zstd, bzip2, xz, as
    ``docker save | gzip`` gives) or on a pipe is spooled, decompressed, to
    an anonymous temp file under the store's tmp dir, which vanishes on close
    even if we crash.

    Raises:
        InvalidArgument: the path does not exist.
        ImageFormatError: not a tar (or a directory).
    """
    with ExitStack() as stack:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if path.is_dir():
                reader = DirReader(path)
                stack.callback(reader.close)
                yield reader
                return
            try:
                f: BinaryIO = stack.enter_context(open(path, "rb"))
            except FileNotFoundError:
                raise InvalidArgument(f"no such file or directory: {path}",
                                      hint="give a docker-archive or oci-archive tar, or an "
                                           "OCI layout directory") from None
            except IsADirectoryError:
                raise InvalidArgument(f"cannot read {path}") from None
            label = path.name
        else:
            f, label = source, "archive"
        seekable = _seekable(f)
        if seekable:
            start = f.tell()
            head = _read_head(f, 6)
            f.seek(start)
            stream: BinaryIO = f
            kind = compression_of(head)
        else:
            kind, stream = sniff_stream(f)
        if seekable and not kind:
            yield TarReader(f, label)
            return
        store.paths.tmp.mkdir(parents=True, exist_ok=True)
        spool = stack.enter_context(tempfile.TemporaryFile(dir=store.paths.tmp, prefix="load-"))
        done = 0
        src = decompressor(kind, stream) if kind else stream
        try:
            while chunk := src.read(CHUNK):
                spool.write(chunk)
                done += len(chunk)
                if progress:
                    progress(Progress(what=f"reading {label}", done=done, total=None))
        except (OSError, EOFError, lzma.LZMAError, ValueError) as err:
            raise ImageFormatError(f"{label}: cannot decompress the archive: {err}",
                                   hint="the archive is truncated or corrupt") from err
        spool.seek(0)
        yield TarReader(spool, label)


# -- planning: every piece of metadata checked before anything is stored -----------

@dataclass
class _Plan:
    """One image found in an archive, checked and ready to store."""

    where: str                       # for error messages: "manifest.json entry 1", ...
    config: bytes
    diff_ids: list[str]
    layers: list[tuple[str, LayerSource]]   # (archive path, source)
    names: list[str] = field(default_factory=list)
    manifest_digest: str = ""

    @property
    def image_id(self) -> str:
        return sha256_digest(self.config)


def _read_limited(reader: ArchiveReader, path: str, what: str) -> bytes:
    size = reader.size(path)
    if size > MAX_JSON:
        named = path if what == path else f"{what} {path}"
        raise ImageFormatError(f"{reader.label}: {named} is {size} bytes, more than "
                               f"{MAX_JSON} allowed for metadata", hint=_HINT)
    with reader.open(path) as f:
        return f.read(MAX_JSON + 1)


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as err:
        raise ImageFormatError(f"{what} is not valid JSON: {err}", hint=_HINT) from None


def _blob_path(digest: object, what: str) -> str:
    try:
        d = check_digest(digest if isinstance(digest, str) else repr(digest))
    except ImageFormatError as err:
        raise ImageFormatError(f"{what}: {err.message}", hint=err.hint) from None
    return "blobs/sha256/" + d[7:]


def _read_blob(reader: ArchiveReader, digest: object, what: str,
               size: object = None) -> tuple[bytes, str]:
    """A metadata blob by digest, verified; returns ``(bytes, digest)``."""
    path = _blob_path(digest, what)
    data = _read_limited(reader, path, what)
    actual = sha256_digest(data)
    if actual != digest:
        raise DigestMismatch(f"{reader.label}: {what} {path} does not match its digest "
                             f"(content is {actual})", hint=_HINT)
    if isinstance(size, int) and size != len(data):
        raise ImageFormatError(f"{reader.label}: {what} {path} is {len(data)} bytes, its "
                               f"descriptor says {size}", hint=_HINT)
    return data, str(digest)


def _digest_named_by(path: str) -> str | None:
    """The digest a path's name claims: ``blobs/sha256/<hex>`` or ``<hex>.json``."""
    base = posixpath.basename(path)
    if path.startswith("blobs/sha256/") and posixpath.dirname(path) == "blobs/sha256":
        hexpart = base
    elif base.endswith(".json") and "/" not in path:
        hexpart = base[:-5]
    else:
        return None
    if len(hexpart) == 64 and all(c in "0123456789abcdef" for c in hexpart):
        return "sha256:" + hexpart
    return None


def _check_config(data: bytes, n_layers: int, what: str) -> list[str]:
    """Parse an image config enough to trust it; returns its diff ids."""
    cfg = _json(data, what)
    if not isinstance(cfg, dict):
        raise ImageFormatError(f"{what} is not a JSON object", hint=_HINT)
    rootfs = cfg.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != n_layers:
        have = len(diff_ids) if isinstance(diff_ids, list) else "no"
        raise ImageFormatError(f"{what} lists {have} diff ids but the image has {n_layers} layers",
                               hint=_HINT)
    for d in diff_ids:
        if not isinstance(d, str):
            raise ImageFormatError(f"{what}: diff id {d!r} is not a string", hint=_HINT)
        try:
            check_digest(d)
        except ImageFormatError as err:
            raise ImageFormatError(f"{what}: {err.message}", hint=err.hint) from None
    return list(diff_ids)


def _layer_source(reader: ArchiveReader, path: str, digest: str | None,
                  declared: str | None, what: str) -> LayerSource:
    size = reader.size(path)
    with reader.open(path) as f:
        head = f.read(6)
    try:
        sniffed = layer_media_type(compression_of(head))
    except ImageFormatError as err:
        raise ImageFormatError(f"{reader.label}: {what} {path}: {err.message}", hint=err.hint) from None
    # Trust the declared type only when it agrees with the bytes: save
    # writes this type back out, and a wrong one makes the archive unreadable.
    kind = {MT_OCI_LAYER: "", MT_OCI_LAYER_GZIP: "gzip", MT_OCI_LAYER_ZSTD: "zstd"}[sniffed]
    declared_kind = ("zstd" if declared and declared.endswith("zstd") else
                     "gzip" if declared and declared.endswith("gzip") else "")
    media_type = declared if declared and declared_kind == kind else sniffed
    return LayerSource(open=partial(reader.open, path), digest=digest, size=size,
                       media_type=media_type)


def _name(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ImageFormatError(f"{what}: image name {value!r} is not a string", hint=_HINT)
    try:
        return normalize_tag(value)
    except InvalidArgument as err:
        raise ImageFormatError(f"{what}: invalid image name {value!r}: {err.message}",
                               hint=_HINT) from None


def _merge(plans: list[_Plan]) -> list[_Plan]:
    """One plan per image: an archive may list one image under several entries."""
    by_id: dict[str, _Plan] = {}
    for plan in plans:
        first = by_id.setdefault(plan.image_id, plan)
        if first is not plan:
            first.names += [n for n in plan.names if n not in first.names]
    return list(by_id.values())


def _plan_docker(reader: ArchiveReader) -> list[_Plan]:
    doc = _json(_read_limited(reader, "manifest.json", "manifest.json"), "manifest.json")
    if not isinstance(doc, list) or not doc:
        raise ImageFormatError(f"{reader.label}: manifest.json is not a non-empty list of images",
                               hint=_HINT)
    plans: list[_Plan] = []
    for i, entry in enumerate(doc, 1):
        where = f"manifest.json entry {i}"
        if not isinstance(entry, dict):
            raise ImageFormatError(f"{where} is not a JSON object", hint=_HINT)
        config_path = archive_path(entry.get("Config"), f"{where} Config")
        config = _read_limited(reader, config_path, "config")
        claimed = _digest_named_by(config_path)
        if claimed is not None and sha256_digest(config) != claimed:
            raise DigestMismatch(f"{reader.label}: config {config_path} does not match the digest "
                                 f"its name claims (content is {sha256_digest(config)})", hint=_HINT)
        layer_paths = entry.get("Layers")
        if not isinstance(layer_paths, list):
            raise ImageFormatError(f"{where} has no Layers list", hint=_HINT)
        paths = [archive_path(p, f"{where} Layers[{j}]") for j, p in enumerate(layer_paths)]
        diff_ids = _check_config(config, len(paths), f"config {config_path}")
        layers = [(p, _layer_source(reader, p, _digest_named_by(p) if p.startswith("blobs/") else None,
                                    None, "layer")) for p in paths]
        tags = entry.get("RepoTags") or []
        if not isinstance(tags, list):
            raise ImageFormatError(f"{where} RepoTags is not a list", hint=_HINT)
        plans.append(_Plan(where, config, diff_ids, layers,
                           [_name(t, f"{where} RepoTags") for t in tags]))
    return plans


def _platform_of(desc: dict[str, Any]) -> tuple[str, str, str] | None:
    p = desc.get("platform")
    if not isinstance(p, dict):
        return None
    return str(p.get("os", "")), str(p.get("architecture", "")), str(p.get("variant") or "")


def _matches_host(plat: tuple[str, str, str]) -> bool:
    return plat[:2] == host_platform()


def _descriptor(desc: object, what: str) -> dict[str, Any]:
    if not isinstance(desc, dict):
        raise ImageFormatError(f"{what} is not a descriptor object", hint=_HINT)
    _blob_path(desc.get("digest"), what)     # validates the digest
    size = desc.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ImageFormatError(f"{what}: bad size {size!r}", hint=_HINT)
    return desc


def _manifest_of(reader: ArchiveReader, desc: dict[str, Any], what: str,
                 depth: int = 0) -> tuple[dict[str, Any], str]:
    """Follow a descriptor (through nested indexes, picking this host's platform)
    to an image manifest; returns ``(manifest, manifest digest)``."""
    data, digest = _read_blob(reader, desc["digest"], what, desc.get("size"))
    doc = _json(data, f"{what} {desc['digest']}")
    if not isinstance(doc, dict):
        raise ImageFormatError(f"{what} {desc['digest']} is not a JSON object", hint=_HINT)
    media_type = doc.get("mediaType") or desc.get("mediaType")
    if media_type in INDEX_TYPES or (media_type is None and "manifests" in doc):
        if depth >= MAX_INDEX_DEPTH:
            raise ImageFormatError(f"{what}: image indexes nested too deeply", hint=_HINT)
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ImageFormatError(f"{what} {desc['digest']}: index has no manifests list", hint=_HINT)
        descs = [_descriptor(d, f"{what} manifests[{j}]") for j, d in enumerate(entries)]
        want = host_platform()
        matching = [d for d in descs if (p := _platform_of(d)) is not None and _matches_host(p)]
        if not matching and len(descs) == 1 and _platform_of(descs[0]) is None:
            matching = descs
        if not matching:
            have = sorted({"/".join(x for x in p if x) for d in descs if (p := _platform_of(d))})
            raise ImageFormatError(f"{what} {desc['digest']} has no image for {want[0]}/{want[1]}",
                                   hint=f"it has: {', '.join(have) or 'no platforms'}")
        # Prefer no variant, then the plainest (arm64 images often say "v8").
        matching.sort(key=lambda d: (_platform_of(d) or ("", "", ""))[2])
        return _manifest_of(reader, matching[0], f"{what} -> {matching[0]['digest'][:19]}", depth + 1)
    if media_type not in MANIFEST_TYPES and "layers" not in doc:
        raise ImageFormatError(f"{what} {desc['digest']}: unsupported manifest type {media_type!r}",
                               hint="portside loads OCI and Docker schema 2 images")
    return doc, digest


def _oci_names(desc: dict[str, Any], what: str) -> list[str]:
    ann = desc.get("annotations")
    if not isinstance(ann, dict):
        return []
    full = ann.get(ANN_IMAGE_NAME)
    if full:
        return [_name(full, f"{what} annotation {ANN_IMAGE_NAME}")]
    ref = ann.get(ANN_REF_NAME)
    if isinstance(ref, str) and ("/" in ref or ":" in ref):
        return [_name(ref, f"{what} annotation {ANN_REF_NAME}")]
    return []     # a bare tag names no repository: the image loads untagged


def _plan_oci(reader: ArchiveReader) -> list[_Plan]:
    layout = _json(_read_limited(reader, "oci-layout", "oci-layout"), "oci-layout")
    version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
    if not isinstance(version, str) or not version.startswith("1."):
        raise ImageFormatError(f"{reader.label}: unsupported OCI layout version {version!r}",
                               hint="portside reads image layout 1.x")
    index = _json(_read_limited(reader, "index.json", "index.json"), "index.json")
    entries = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(entries, list):
        raise ImageFormatError(f"{reader.label}: index.json has no manifests list", hint=_HINT)
    plans: list[_Plan] = []
    skipped: list[str] = []
    for i, raw in enumerate(entries):
        what = f"index.json manifests[{i}]"
        desc = _descriptor(raw, what)
        plat = _platform_of(desc)
        if plat is not None and not _matches_host(plat) and desc.get("mediaType") not in INDEX_TYPES:
            skipped.append(f"{'/'.join(x for x in plat if x)}")
            continue
        manifest, manifest_digest = _manifest_of(reader, desc, what)
        config_desc = _descriptor(manifest.get("config"), f"{what} config")
        if config_desc.get("mediaType") not in CONFIG_TYPES:
            skipped.append(f"{config_desc.get('mediaType')} (not a container image)")
            continue
        config, _ = _read_blob(reader, config_desc["digest"], f"{what} config", config_desc.get("size"))
        layer_descs = manifest.get("layers")
        if not isinstance(layer_descs, list):
            raise ImageFormatError(f"{what}: manifest {manifest_digest} has no layers list", hint=_HINT)
        layers = []
        for j, ld in enumerate(layer_descs):
            lwhat = f"{what} layers[{j}]"
            ld = _descriptor(ld, lwhat)
            mt = ld.get("mediaType")
            if mt not in LAYER_TYPES:
                raise ImageFormatError(f"{lwhat}: unsupported layer media type {mt!r}",
                                       hint="layers must be plain, gzip or zstd tars")
            path = _blob_path(ld["digest"], lwhat)
            if isinstance(ld.get("size"), int) and reader.size(path) != ld["size"]:
                raise ImageFormatError(f"{reader.label}: {path} is {reader.size(path)} bytes, "
                                       f"its descriptor says {ld['size']}", hint=_HINT)
            layers.append((path, _layer_source(reader, path, ld["digest"], mt, "layer")))
        diff_ids = _check_config(config, len(layers), f"config {config_desc['digest']}")
        # Several tags of one image are several index entries; _merge joins them.
        plans.append(_Plan(what, config, diff_ids, layers, _oci_names(desc, what), manifest_digest))
    if not plans:
        raise ImageFormatError(f"{reader.label}: no image for {'/'.join(host_platform())} in "
                               "index.json", hint=f"it has: {', '.join(skipped) or 'nothing'}")
    return plans


def _plan(reader: ArchiveReader) -> list[_Plan]:
    # Docker >= 25 writes both manifest.json and an OCI layout; its
    # manifest.json is what docker load reads, so it wins here too.
    if reader.exists("manifest.json"):
        return _merge(_plan_docker(reader))
    if reader.exists("index.json") or reader.exists("oci-layout"):
        return _merge(_plan_oci(reader))
    if reader.exists("repositories"):
        raise ImageFormatError(f"{reader.label}: a pre-1.10 docker save archive (no manifest.json)",
                               hint="re-save it with a newer docker, skopeo or podman")
    raise ImageFormatError(f"{reader.label}: neither a docker-archive (manifest.json) nor an OCI "
                           "layout (oci-layout, index.json)",
                           hint="load takes what docker save, podman save or skopeo copy write")


# -- loading ---------------------------------------------------------------------

def load_archive(store: ImageStore, source: str | os.PathLike[str] | BinaryIO, *,
                 progress: ProgressFn | None = None) -> list[ImageInfo]:
    """Load every image in a docker-archive, oci-archive, or OCI layout directory.

    Args:
        store: the image store to add to.
        source: a tar path (plain, or compressed as a whole with gzip, zstd,
            bzip2 or xz), an OCI layout directory, or a binary stream (stdin).
        progress: called with byte and layer counts while layers are stored.

    Returns:
        The loaded images, in archive order; ``repo_tags`` holds only the
        names the archive gave each (not older tags of the same image).

    Raises:
        InvalidArgument: ``source`` does not exist.
        ImageFormatError: the archive is malformed or hostile; the message
            names the bad entry. Nothing is left in the store.
        DigestMismatch: content does not hash to the digest naming it.
    """
    with open_archive(store, source, progress) as reader:
        plans = _plan(reader)
        return _store_plans(store, plans, progress)


def _store_plans(store: ImageStore, plans: list[_Plan], progress: ProgressFn | None) -> list[ImageInfo]:
    total = sum(len(p.layers) for p in plans)
    with rollback_on_error(store):
        # Phase 1, the slow part: every layer verified and unpacked, outside
        # any transaction (another process may read the state meanwhile).
        stored_sources: list[list[LayerSource]] = []
        n = 0
        for plan in plans:
            parent: str | None = None
            sources: list[LayerSource] = []
            for (path, src), diff_id in zip(plan.layers, plan.diff_ids):
                n += 1
                short = f"layer {n}/{total} {(src.digest or diff_id)[7:19]}"
                tick = (lambda p, s=short: progress(replace(p, what=s))) if progress else None
                try:
                    lay = store.add_layer(parent, src, diff_id, tick, label=f"layer {path}",
                                          index=n, count=total)
                except DigestMismatch as err:
                    if path in err.message:
                        raise
                    raise DigestMismatch(f"layer {path}: {err.message}", hint=err.hint) from err
                parent = lay.chain_id
                sources.append(_stored_source(store, lay))
            stored_sources.append(sources)
        # Phase 2: all image rows and tags in one transaction, so either every
        # image of the archive appears or none does.
        with store.db.tx():
            infos = [store.add_image(plan.config, sources, plan.names,
                                     manifest_digest=plan.manifest_digest, event="load")
                     for plan, sources in zip(plans, stored_sources)]
    # Report the names this archive gave, not older tags of the same image.
    return [replace(info, repo_tags=tuple(t for t in info.repo_tags if t in plan.names))
            for info, plan in zip(infos, plans)]


def _stored_source(store: ImageStore, lay: StoredLayer) -> LayerSource:
    """A source for a layer already in the store (add_image finds it by chain id)."""
    return LayerSource(open=partial(store.blobs.open, lay.blob_digest), digest=lay.blob_digest,
                       size=lay.blob_size, media_type=lay.media_type, trusted=True)


# -- saving ----------------------------------------------------------------------

def save_archive(store: ImageStore, refs: list[str], output: str | os.PathLike[str] | BinaryIO, *,
                 format: str = "docker-archive") -> None:
    """Write images to a docker-archive or oci-archive tar.

    Args:
        store: the image store to read from.
        refs: image references (tags, ids or id prefixes). An image named by
            tag is saved with that tag; one named by id is saved untagged,
            as ``docker save`` does.
        output: a file path (a regular file is written to a temp file, then
            renamed, so a failure leaves no half archive; a symlink is
            followed; a FIFO or device is written in place) or a binary stream.
        format: ``docker-archive`` or ``oci-archive``.

    Raises:
        NoSuchImage: a reference matches nothing (before anything is written).
        InvalidArgument: unknown format, or an output path that cannot be written.
        ImageFormatError: a stored layer no longer matches its diff id.
    """
    if format not in FORMATS:
        raise InvalidArgument(f"unknown save format {format!r}", hint="use docker-archive or oci-archive")
    images = _collect(store, refs)
    writer = _write_docker if format == "docker-archive" else _write_oci

    def write(f: BinaryIO, mode: str) -> None:
        with tarfile.open(fileobj=f, mode=mode, format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            writer(store, images, tar)

    if isinstance(output, (str, os.PathLike)):
        _write_to_path(Path(output), write)
    else:
        write(output, "w|")
        if hasattr(output, "flush"):
            output.flush()
    with store.db.tx() as c:
        for image_id, tags in images:
            store.db.add_event(c, "image", "save", image_id, {"name": tags[0] if tags else image_id})


def _collect(store: ImageStore, refs: list[str]) -> list[tuple[str, list[str]]]:
    """``(image id, tags to write)`` per image, in the order first named."""
    out: dict[str, list[str]] = {}
    for ref in refs:
        info = store.get(ref)
        tags = out.setdefault(info.id, [])
        try:
            tag = familiar_name(ref)
        except InvalidArgument:
            continue
        stored = {familiar_name(t): t for t in info.repo_tags}
        if tag in stored and tag not in tags:
            tags.append(tag)
    return list(out.items())


def _write_to_path(path: Path, write: Callable[[BinaryIO, str], None]) -> None:
    """Write an archive to ``path`` as ``docker save -o`` does.

    A symlink is followed (the link stays, its target gets the archive). A
    missing or regular file is written to a temp file beside it, fsynced and
    renamed over it, so a failure leaves no half archive. Anything else (a
    FIFO, a character device, /dev/stdout) is opened and written in place:
    renaming over it would replace the device with a plain file.
    """
    try:
        st: os.stat_result | None = os.stat(path)      # follows symlinks
    except FileNotFoundError:
        st = None
    except OSError as err:
        raise InvalidArgument(f"cannot write {path}: {err.strerror}",
                              hint="check that the directory exists and is writable") from err
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InvalidArgument(f"{path} is a directory", hint="give a file name for the archive")
    if st is not None and not stat.S_ISREG(st.st_mode):
        try:
            f = open(path, "wb")
        except OSError as err:
            raise InvalidArgument(f"cannot write {path}: {err.strerror}",
                                  hint="check the file's permissions") from err
        with f:
            write(f, "w|")                       # a pipe cannot tell() or seek()
        return
    _write_atomically(Path(os.path.realpath(path)), write, st)


def _write_atomically(path: Path, write: Callable[[BinaryIO, str], None],
                      old: os.stat_result | None) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as err:
        raise InvalidArgument(f"cannot write {path}: {err.strerror}",
                              hint="check that the directory exists and is writable") from err
    try:
        with os.fdopen(fd, "wb") as f:
            write(f, "w")
            f.flush()
            os.fsync(f.fileno())
        if old is not None:
            mode = stat.S_IMODE(old.st_mode)     # an overwritten file keeps its mode
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask                # mkstemp's 0600 is not what a user expects
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _tarinfo(name: str, size: int = 0, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = TAR_MTIME
    info.mode = 0o755 if directory else 0o644
    if directory:
        info.type = tarfile.DIRTYPE
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))


def _blob_kind(store: ImageStore, digest: str) -> str:
    with store.blobs.open(digest) as f:
        return compression_of(f.read(6))


def _layers_checked(store: ImageStore, image_id: str) -> list[StoredLayer]:
    layers: list[StoredLayer] = list(store.layers_of(image_id))
    diff_ids = (json.loads(store.config_bytes(image_id)).get("rootfs") or {}).get("diff_ids") or []
    if [lay.diff_id for lay in layers] != diff_ids:
        raise ImageFormatError(f"image {image_id} is incomplete in the store",
                               hint="remove it (portside rmi) and load or pull it again")
    return layers


def _write_docker(store: ImageStore, images: list[tuple[str, list[str]]], tar: tarfile.TarFile) -> None:
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    for image_id, tags in images:
        config_name = image_id[7:] + ".json"
        if config_name not in written:
            _add_bytes(tar, config_name, store.config_bytes(image_id))
            written.add(config_name)
        paths = []
        layers = _layers_checked(store, image_id)
        for lay in layers:
            layer_dir = lay.diff_id[7:]
            path = f"{layer_dir}/layer.tar"
            if path not in written:
                tar.addfile(_tarinfo(layer_dir, directory=True))
                _add_uncompressed_layer(store, tar, lay, path)
                written.add(path)
            paths.append(path)
        manifest.append({"Config": config_name, "RepoTags": tags or None, "Layers": paths})
        for t in tags:
            repo, _, tag = t.rpartition(":")
            if layers:
                repositories.setdefault(repo, {})[tag] = layers[-1].diff_id[7:]
    _add_bytes(tar, "manifest.json", json.dumps(manifest, separators=(",", ":")).encode())
    if repositories:
        _add_bytes(tar, "repositories", json.dumps(repositories, separators=(",", ":")).encode())


def _add_uncompressed_layer(store: ImageStore, tar: tarfile.TarFile, lay: StoredLayer, name: str) -> None:
    """Write a layer as an uncompressed ``layer.tar`` whose sha256 is its diff id.

    The tar header needs the size first, so a compressed blob is read twice:
    once to count (and verify the diff id, so a damaged store never yields
    a wrong archive), once to write. That costs CPU but no scratch space.
    """
    if _blob_kind(store, lay.blob_digest) == "":
        # A plain tar blob is its own diff (the store checked that on the way in).
        with store.blobs.open(lay.blob_digest) as f:
            tar.addfile(_tarinfo(name, os.fstat(f.fileno()).st_size), f)
        return
    with store.blobs.open(lay.blob_digest) as f:
        reader = HashingReader(decompressed(f))
        reader.drain()
    if reader.digest != lay.diff_id:
        raise ImageFormatError(f"stored layer {lay.blob_digest} decompresses to {reader.digest}, "
                               f"not its diff id {lay.diff_id}",
                               hint="the store is damaged: remove the image and load it again")
    with store.blobs.open(lay.blob_digest) as f:
        tar.addfile(_tarinfo(name, reader.count), decompressed(f))


def _oci_layer_type(store: ImageStore, lay: StoredLayer) -> str:
    """The OCI media type for a stored layer: the stored one mapped to OCI, unless the
    bytes say otherwise (a Docker ``tar.gzip`` type on gzip bytes maps to ``tar+gzip``)."""
    kind = _blob_kind(store, lay.blob_digest)
    mt = lay.media_type
    if mt == MT_DOCKER_LAYER or mt == MT_DOCKER_FOREIGN:
        mt = MT_OCI_LAYER_GZIP
    want = layer_media_type(kind)
    if mt in (MT_OCI_LAYER, MT_OCI_LAYER_GZIP, MT_OCI_LAYER_ZSTD) and mt == want:
        return mt
    if mt.startswith(_NONDIST) and mt == _NONDIST + ("+" + kind if kind else ""):
        return mt
    return want


def _write_oci(store: ImageStore, images: list[tuple[str, list[str]]], tar: tarfile.TarFile) -> None:
    _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    tar.addfile(_tarinfo("blobs", directory=True))
    tar.addfile(_tarinfo("blobs/sha256", directory=True))
    written: set[str] = set()

    def put(digest: str, data: bytes | None = None) -> None:
        if digest in written:
            return
        written.add(digest)
        name = "blobs/sha256/" + digest[7:]
        if data is not None:
            _add_bytes(tar, name, data)
            return
        with store.blobs.open(digest) as f:
            tar.addfile(_tarinfo(name, os.fstat(f.fileno()).st_size), f)

    index: list[dict[str, Any]] = []
    for image_id, tags in images:
        config = store.config_bytes(image_id)
        put(image_id, config)
        layer_descs = []
        for lay in _layers_checked(store, image_id):
            put(lay.blob_digest)
            layer_descs.append({"mediaType": _oci_layer_type(store, lay), "digest": lay.blob_digest,
                                "size": store.blobs.path(lay.blob_digest).stat().st_size})
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
            "config": {"mediaType": MT_OCI_CONFIG, "digest": image_id, "size": len(config)},
            "layers": layer_descs,
        }, separators=(",", ":")).encode()
        digest = sha256_digest(manifest)
        put(digest, manifest)
        desc = {"mediaType": MT_OCI_MANIFEST, "digest": digest, "size": len(manifest)}
        if not tags:
            index.append(desc)
        for t in tags:
            # Docker >= 25 writes both: the full name for containerd and
            # docker load, the bare tag for skopeo's oci-archive:FILE:TAG.
            full = _qualified(t)
            index.append({**desc, "annotations": {ANN_IMAGE_NAME: full,
                                                  ANN_REF_NAME: t.rpartition(":")[2]}})
    _add_bytes(tar, "index.json", json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX,
                                              "manifests": index}, separators=(",", ":")).encode())


def _qualified(tag: str) -> str:
    """``busybox:latest`` -> ``docker.io/library/busybox:latest`` (Docker's full form)."""
    r = parse_reference(tag)
    if r.domain:
        return str(r)
    path = r.path if "/" in r.path else "library/" + r.path
    return f"docker.io/{path}:{r.tag}"
