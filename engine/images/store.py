"""The content-addressed image store: blobs, unpacked layers, images, tags.

Like containerd's content store plus snapshots: every layer blob is kept as
it arrived (so ``save`` can write it back byte for byte, and diff ids stay
true), and unpacked once per chain id under ``layers/<chain>/diff`` for use
as an overlay lower dir. Images share layers; a layer goes away with the
last image that uses it.
"""
from __future__ import annotations

import builtins  # ImageStore.list shadows the builtin in annotations after it
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterable

from ..errors import (AmbiguousReference, DigestMismatch, ImageFormatError, InUse, InvalidArgument,
                      NoSuchImage)
from ..paths import Paths
from ..records import HistoryEntry, ImageConfig, ImageInfo, Progress
from ..state import FileLock, Store
from .reference import normalize_tag, parse_reference

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CHUNK = 1 << 20

MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

ProgressFn = Callable[[Progress], None]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_id(parent: str | None, diff_id: str) -> str:
    """OCI ChainID: the diff id for a base layer, else sha256(parent + ' ' + diff)."""
    if parent is None:
        return diff_id
    return sha256_digest(f"{parent} {diff_id}".encode())


def check_digest(digest: str) -> str:
    """Validate a ``sha256:<hex>`` digest; it names files, so be strict."""
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ImageFormatError(f"unsupported or malformed digest {digest!r}",
                               hint="only sha256 digests of 64 lowercase hex chars are accepted")
    return digest


class HashingReader(io.RawIOBase):
    """Wraps a stream, hashing and counting what is read through it."""

    def __init__(self, inner: BinaryIO, on_read: Callable[[int], None] | None = None) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.count = 0
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        data = self.inner.read(len(b))
        n = len(data)
        b[:n] = data
        if n:
            self.hash.update(data)
            self.count += n
            if self._on_read:
                self._on_read(n)
        return n

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def decompressed(f: BinaryIO) -> BinaryIO:
    """A stream of the tar inside ``f``, whether plain, gzip or zstd (by magic)."""
    buffered = f if isinstance(f, io.BufferedReader) else io.BufferedReader(f, CHUNK)  # type: ignore[arg-type, type-var]
    head = buffered.peek(4)[:4]
    if head[:2] == b"\x1f\x8b":
        import gzip       # only gzip layers need it
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if head == b"\x28\xb5\x2f\xfd":
        import zstandard  # imported lazily: only zstd layers need it
        # Across frames: zstd:chunked and pigz-like writers emit many frames.
        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_size=CHUNK,
                                                            read_across_frames=True)
        return io.BufferedReader(_ZstdErrorsAsOSError(reader), CHUNK)
    return buffered  # type: ignore[return-value]


class _ZstdErrorsAsOSError(io.RawIOBase):
    """zstandard raises its own ZstdError; callers handle corrupt data as OSError, as for gzip."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        import zstandard
        try:
            return self.inner.readinto(b)  # type: ignore[attr-defined, no-any-return]
        except zstandard.ZstdError as err:
            raise OSError(f"corrupt zstd data: {err}") from err


@dataclass(frozen=True)
class LayerSource:
    """A layer blob offered to the store: how to open it and what it should be."""

    open: Callable[[], BinaryIO]
    digest: str | None = None        # expected blob digest, verified if given
    size: int | None = None          # expected blob size, for progress
    media_type: str = MT_OCI_LAYER
    # The store's own blob, verified when it came in: not read and hashed
    # again. Anything from outside (an archive, a registry) leaves it False.
    trusted: bool = False


@dataclass(frozen=True)
class StoredLayer:
    """A layer as the store keeps it (for save and for overlay lower dirs)."""

    chain_id: str
    diff_id: str
    blob_digest: str
    media_type: str
    blob_size: int
    size: int


def _check_blob(digest: str, expected: str) -> None:
    if digest != expected:
        raise DigestMismatch(f"content does not match its digest: expected {expected}, got {digest}",
                             hint="the archive or download is corrupt or was tampered with")


class BlobStore:
    """Blobs named by sha256, verified on the way in, written atomically."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def path(self, digest: str) -> Path:
        return self.paths.blob(check_digest(digest))

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError as err:
            raise ImageFormatError(f"blob {digest} is missing from the store",
                                   hint="remove the image and load it again") from err

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def put_stream(self, src: BinaryIO, expected: str | None = None,
                   on_read: Callable[[int], None] | None = None) -> tuple[str, int]:
        """Copy ``src`` into the store; verify ``expected`` if given.

        Returns ``(digest, size)``. Nothing is left behind on a mismatch.
        """
        if expected is not None:
            check_digest(expected)
            if self.has(expected):
                # Already stored: no second copy, but what arrived is still
                # checked against the digest it claims.
                reader = HashingReader(src, on_read)
                reader.drain()
                _check_blob(reader.digest, expected)
                return expected, reader.count
        fd, tmp = tempfile.mkstemp(dir=self.paths.tmp, prefix="blob-")
        try:
            reader = HashingReader(src, on_read)
            with os.fdopen(fd, "wb") as out:
                while chunk := reader.read(CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = reader.digest
            if expected is not None:
                _check_blob(digest, expected)
            os.replace(tmp, self.path(digest))
            return digest, reader.count
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put_bytes(self, data: bytes, expected: str | None = None) -> str:
        return self.put_stream(io.BytesIO(data), expected)[0]

    def delete(self, digest: str) -> None:
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            pass


class ImageStore:
    """Images, their layers and tags, over one state database."""

    def __init__(self, store: Store, paths: Paths) -> None:
        self.db = store
        self.paths = paths
        self.blobs = BlobStore(paths)

    # -- adding -------------------------------------------------------------
    def add_layer(self, parent: str | None, src: LayerSource, expected_diff_id: str | None,
                  progress: ProgressFn | None = None, label: str = "layer",
                  index: int = 0, count: int = 0) -> StoredLayer:
        """Store a layer blob and unpack it once per chain id.

        Verifies the blob digest (if known) and the uncompressed diff id (if
        known). Safe against another process adding the same layer.
        """
        try:
            return self._add_layer(parent, src, expected_diff_id, progress, label, index, count)
        except OSError as err:
            from .extract import DISK_ERRNOS, disk_error
            if err.errno in DISK_ERRNOS:
                raise disk_error(err, self.paths.root, f"{label}: storing") from err
            raise

    def _add_layer(self, parent: str | None, src: LayerSource, expected_diff_id: str | None,
                   progress: ProgressFn | None, label: str, index: int, count: int) -> StoredLayer:
        from .extract import extract_layer  # the extractor is its own module

        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(Progress(what=label, done=done, total=src.size, layer=index, layers=count))

        if expected_diff_id is not None:
            check_digest(expected_diff_id)
            cid = chain_id(parent, expected_diff_id)
            existing = self.layer(cid)
            if existing is not None:
                # The layer row keeps its own blob (which save writes); storing
                # this copy too would leave a blob nothing refers to. What
                # arrived is still verified: a tampered copy of a known layer
                # is refused, not silently replaced by the good one.
                if src.trusted:
                    tick(src.size or existing.blob_size)
                else:
                    self._verify_layer(src, expected_diff_id, label, tick)
                return existing
        blob_digest, blob_size = self._put_layer_blob(src, tick)
        dest_parent = self.paths.layers
        with self.blobs.open(blob_digest) as f:
            reader = HashingReader(decompressed(f))  # type: ignore[arg-type]
            tmpdir = Path(tempfile.mkdtemp(dir=dest_parent, prefix="tmp-"))
            try:
                (tmpdir / "diff").mkdir()
                try:
                    size = extract_layer(reader, tmpdir / "diff", layer_name=label,  # type: ignore[arg-type]
                                         disk_root=self.paths.root)
                    reader.drain()
                except (OSError, EOFError, ValueError) as err:
                    raise ImageFormatError(f"{label}: cannot read layer: {err}",
                                           hint="the layer is truncated or not a tar archive") from err
                diff_id = reader.digest
                if expected_diff_id is not None and diff_id != expected_diff_id:
                    raise DigestMismatch(
                        f"{label}: uncompressed content {diff_id} does not match the config's "
                        f"diff id {expected_diff_id}", hint="the image is corrupt or was tampered with")
                cid = chain_id(parent, diff_id)
                with FileLock(self.paths.locks, "layer-" + cid.split(":")[1]):
                    existing = self.layer(cid)
                    if existing is not None:
                        return existing
                    final = self.paths.layer(cid)
                    if final.exists():       # unpacked by a crash-interrupted run, no row
                        shutil.rmtree(final)
                    os.rename(tmpdir, final)
                    with self.db.tx() as c:
                        c.execute("INSERT INTO layers(chain_id, diff_id, parent, size, blob_digest, "
                                  "media_type, blob_size) VALUES (?,?,?,?,?,?,?)",
                                  (cid, diff_id, parent, size, blob_digest, src.media_type, blob_size))
                return StoredLayer(cid, diff_id, blob_digest, src.media_type, blob_size, size)
            finally:
                if tmpdir.exists():
                    shutil.rmtree(tmpdir, ignore_errors=True)

    def _verify_layer(self, src: LayerSource, diff_id: str, label: str,
                      tick: Callable[[int], None]) -> None:
        """Hash a layer without storing it: its blob digest (if given) and its diff id."""
        with src.open() as f:
            raw = HashingReader(f, tick)
            try:
                tar = HashingReader(decompressed(raw))  # type: ignore[arg-type]
                tar.drain()
                raw.drain()
            except (OSError, EOFError, ValueError) as err:
                raise ImageFormatError(f"{label}: cannot read layer: {err}",
                                       hint="the layer is truncated or not a tar archive") from err
        if src.digest is not None:
            _check_blob(raw.digest, src.digest)
        if tar.digest != diff_id:
            raise DigestMismatch(
                f"{label}: uncompressed content {tar.digest} does not match the config's "
                f"diff id {diff_id}", hint="the image is corrupt or was tampered with")

    def _put_layer_blob(self, src: LayerSource, tick: Callable[[int], None]) -> tuple[str, int]:
        if src.trusted and src.digest is not None and self.blobs.has(src.digest):
            size = self.blobs.path(src.digest).stat().st_size
            tick(size)
            return src.digest, size
        with src.open() as f:
            return self.blobs.put_stream(f, src.digest, tick)

    def add_image(self, config_bytes: bytes, layers: list[LayerSource], tags: Iterable[str] = (),
                  manifest_digest: str = "", progress: ProgressFn | None = None,
                  event: str = "load") -> ImageInfo:
        """Store a whole image: its layers (verified), its config, its tags.

        The image row and its tags are written in one transaction after every
        layer is in place, so a failure leaves no half image.
        """
        try:
            config = json.loads(config_bytes)
        except ValueError as err:
            raise ImageFormatError(f"image config is not valid JSON: {err}") from err
        if not isinstance(config, dict):
            raise ImageFormatError("image config is not a JSON object")
        diff_ids = (config.get("rootfs") or {}).get("diff_ids")
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
            raise ImageFormatError(
                f"image config lists {len(diff_ids) if isinstance(diff_ids, list) else 'no'} "
                f"diff ids but the manifest has {len(layers)} layers")
        tag_names = [normalize_tag(t) for t in tags]
        stored: list[StoredLayer] = []
        parent: str | None = None
        for i, (src, diff_id) in enumerate(zip(layers, diff_ids), 1):
            if not isinstance(diff_id, str):
                raise ImageFormatError(f"diff id {diff_id!r} is not a string")
            lay = self.add_layer(parent, src, diff_id, progress,
                                 label=f"layer {i}/{len(layers)} {(src.digest or diff_id)[7:19]}",
                                 index=i, count=len(layers))
            stored.append(lay)
            parent = lay.chain_id
        image_id = self.blobs.put_bytes(config_bytes)
        created = _parse_time(config.get("created"))
        size = sum(lay.size for lay in stored)
        with self.db.tx() as c:
            c.execute("INSERT INTO images(id, config_json, manifest_digest, size, created_ns, added_ns) "
                      "VALUES (?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
                      "manifest_digest=CASE WHEN excluded.manifest_digest != '' "
                      "THEN excluded.manifest_digest ELSE manifest_digest END",
                      (image_id, config_bytes.decode(), manifest_digest, size,
                       int(created.timestamp() * 1e9) if created else 0, time.time_ns()))
            c.execute("DELETE FROM image_layers WHERE image_id=?", (image_id,))
            c.executemany("INSERT INTO image_layers(image_id, idx, chain_id) VALUES (?,?,?)",
                          [(image_id, i, lay.chain_id) for i, lay in enumerate(stored)])
            for name in tag_names:
                self._set_tag(c, name, image_id)
            self.db.add_event(c, "image", event, image_id,
                              {"name": tag_names[0] if tag_names else image_id})
        return self.get(image_id)

    def _set_tag(self, c, name: str, image_id: str) -> None:  # type: ignore[no-untyped-def]
        old = c.execute("SELECT image_id FROM tags WHERE name=?", (name,)).fetchone()
        if old and old["image_id"] == image_id:
            return
        c.execute("INSERT INTO tags(name, image_id) VALUES (?,?) "
                  "ON CONFLICT(name) DO UPDATE SET image_id=excluded.image_id", (name, image_id))
        if old:
            self.db.add_event(c, "image", "untag", old["image_id"], {"name": name})
        self.db.add_event(c, "image", "tag", image_id, {"name": name})

    def tag(self, source: str, target: str) -> None:
        """Point ``target`` (repo[:tag]) at the image ``source`` names."""
        image_id = self.resolve(source)
        name = normalize_tag(target)
        with self.db.tx() as c:
            self._set_tag(c, name, image_id)

    # -- reading ------------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """Image id for a tag, full id, or unique id prefix; ``NoSuchImage`` if none."""
        ref = ref.strip()
        hexpart = ref[7:] if ref.startswith("sha256:") else ref
        if hexpart and all(c in "0123456789abcdef" for c in hexpart) and 3 <= len(hexpart) <= 64:
            rows = self.db.query("SELECT id FROM images WHERE id LIKE ?", (f"sha256:{hexpart}%",))
            if len(rows) == 1:
                return rows[0]["id"]
            if len(rows) > 1:
                raise AmbiguousReference(f"image id prefix {ref!r} matches {len(rows)} images",
                                         hint="give more characters of the id")
        if ref.startswith("sha256:"):
            raise NoSuchImage(ref)
        try:
            parsed = parse_reference(ref)
        except InvalidArgument:
            raise NoSuchImage(ref) from None
        if parsed.digest:       # name@sha256:... : the image whose manifest has that digest
            rows = self.db.query("SELECT id FROM images WHERE manifest_digest=?", (parsed.digest,))
            if not rows:
                raise NoSuchImage(ref)
            return rows[0]["id"]
        name = normalize_tag(ref)
        row = self.db.one("SELECT image_id FROM tags WHERE name=?", (name,))
        if row is None:
            raise NoSuchImage(ref)
        return row["image_id"]

    def get(self, ref: str) -> ImageInfo:
        image_id = self.resolve(ref)
        row = self.db.one("SELECT * FROM images WHERE id=?", (image_id,))
        if row is None:
            raise NoSuchImage(ref)
        tags = [r["name"] for r in self.db.query("SELECT name FROM tags WHERE image_id=? ORDER BY name",
                                                 (image_id,))]
        return _image_info(row, tags)

    def list(self) -> list[ImageInfo]:
        tags: dict[str, list[str]] = {}
        for r in self.db.query("SELECT name, image_id FROM tags ORDER BY name"):
            tags.setdefault(r["image_id"], []).append(r["name"])
        rows = self.db.query("SELECT * FROM images ORDER BY created_ns DESC, added_ns DESC")
        return [_image_info(r, tags.get(r["id"], [])) for r in rows]

    def config_bytes(self, image_id: str) -> bytes:
        row = self.db.one("SELECT config_json FROM images WHERE id=?", (image_id,))
        if row is None:
            raise NoSuchImage(image_id)
        return row["config_json"].encode()

    def layers_of(self, image_id: str) -> builtins.list[StoredLayer]:
        """The image's layers, base first."""
        rows = self.db.query(
            "SELECT l.* FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id "
            "WHERE il.image_id=? ORDER BY il.idx", (image_id,))
        return [StoredLayer(r["chain_id"], r["diff_id"], r["blob_digest"], r["media_type"],
                            r["blob_size"], r["size"]) for r in rows]

    def layer(self, cid: str) -> StoredLayer | None:
        r = self.db.one("SELECT * FROM layers WHERE chain_id=?", (cid,))
        if r is None or not self.paths.layer(cid).is_dir():
            return None
        return StoredLayer(r["chain_id"], r["diff_id"], r["blob_digest"], r["media_type"],
                           r["blob_size"], r["size"])

    def lower_dirs(self, image_id: str) -> builtins.list[Path]:
        """Overlay lower dirs for the image, top layer first (overlayfs order)."""
        return [self.paths.layer(lay.chain_id) / "diff" for lay in reversed(self.layers_of(image_id))]

    # -- removing -----------------------------------------------------------
    def untag(self, name: str) -> str:
        """Remove one tag; returns the image id it pointed at."""
        tag = normalize_tag(name)
        with self.db.tx() as c:
            row = c.execute("SELECT image_id FROM tags WHERE name=?", (tag,)).fetchone()
            if row is None:
                raise NoSuchImage(name)
            c.execute("DELETE FROM tags WHERE name=?", (tag,))
            self.db.add_event(c, "image", "untag", row["image_id"], {"name": tag})
            return row["image_id"]

    def remove(self, ref: str, *, force: bool = False,
               users: Callable[[str], builtins.list[str]] = lambda _id: []) -> builtins.list[str]:
        """``rmi``: untag or delete, Docker's rules. Returns lines like Docker prints.

        ``users`` maps an image id to the names of containers using it. A tag
        reference on a multi-tagged image only untags. An image used by a
        container is refused unless ``force`` (then it is only untagged).
        """
        image_id = self.resolve(ref)
        tags = [r["name"] for r in self.db.query("SELECT name FROM tags WHERE image_id=?", (image_id,))]
        by_tag = not _looks_like_id(ref, image_id)
        out: list[str] = []
        if by_tag and len(tags) > 1:
            self.untag(ref)
            return [f"Untagged: {normalize_tag(ref)}"]
        used = users(image_id)
        if used:
            if not force:
                raise InUse(f"image {ref} is used by container(s) {', '.join(used)}",
                            hint="remove them first (portside rm), or use rmi -f to untag it")
            for t in tags:
                self.untag(t)
                out.append(f"Untagged: {t}")
            return out
        if tags and not by_tag and not force and len(tags) > 1:
            raise InUse(f"image {ref} is tagged in {len(tags)} repositories",
                        hint="remove the tags by name, or use rmi -f")
        for t in tags:
            out.append(f"Untagged: {t}")
        with self.db.tx() as c:
            c.execute("DELETE FROM images WHERE id=?", (image_id,))
            self.db.add_event(c, "image", "delete", image_id, {"name": tags[0] if tags else image_id})
        out.append(f"Deleted: {image_id}")
        self.blobs.delete(image_id)
        self.gc_layers()
        return out

    def gc_layers(self) -> int:
        """Delete layers (dirs, rows, blobs) no image refers to; returns bytes freed."""
        freed = 0
        with self.db.tx() as c:
            rows = c.execute("SELECT * FROM layers WHERE chain_id NOT IN "
                             "(SELECT chain_id FROM image_layers)").fetchall()
            dead = [r["chain_id"] for r in rows]
            # Children first: a parent row may be referenced by a dead child.
            c.execute("PRAGMA defer_foreign_keys=ON")
            c.executemany("DELETE FROM layers WHERE chain_id=?", [(d,) for d in dead])
            live_blobs = {r["blob_digest"] for r in c.execute("SELECT blob_digest FROM layers")}
        for r in rows:
            freed += r["size"]
            shutil.rmtree(self.paths.layer(r["chain_id"]), ignore_errors=True)
            if r["blob_digest"] not in live_blobs:
                self.blobs.delete(r["blob_digest"])
        return freed

    def dangling(self) -> builtins.list[str]:
        return [r["id"] for r in self.db.query(
            "SELECT id FROM images WHERE id NOT IN (SELECT image_id FROM tags)")]


def _looks_like_id(ref: str, image_id: str) -> bool:
    hexpart = ref[7:] if ref.startswith("sha256:") else ref
    return len(hexpart) >= 3 and image_id[7:].startswith(hexpart)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    s = value.strip().replace("Z", "+00:00")
    # Python's fromisoformat takes at most 6 fractional digits; Go writes 9.
    if "." in s:
        head, _, rest = s.partition(".")
        frac = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(frac):]
        s = f"{head}.{frac[:6]}{tz}"
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _tuple(v: object) -> tuple[str, ...]:
    return tuple(str(x) for x in v) if isinstance(v, list) else ()


def parse_config(config: dict) -> ImageConfig:  # type: ignore[type-arg]
    c = config.get("config") or {}
    return ImageConfig(
        env=_tuple(c.get("Env")),
        cmd=_tuple(c["Cmd"]) if isinstance(c.get("Cmd"), list) else None,
        entrypoint=_tuple(c["Entrypoint"]) if isinstance(c.get("Entrypoint"), list) else None,
        working_dir=str(c.get("WorkingDir") or ""),
        user=str(c.get("User") or ""),
        exposed_ports=tuple(sorted((c.get("ExposedPorts") or {}).keys())),
        volumes=tuple(sorted((c.get("Volumes") or {}).keys())),
        labels={str(k): str(v) for k, v in (c.get("Labels") or {}).items()},
        stop_signal=str(c.get("StopSignal") or ""),
    )


def _image_info(row, tags: list[str]) -> ImageInfo:  # type: ignore[no-untyped-def]
    config = json.loads(row["config_json"])
    hist = tuple(
        HistoryEntry(created=_parse_time(h.get("created")), created_by=str(h.get("created_by", "")),
                     size=0, comment=str(h.get("comment", "")), empty_layer=bool(h.get("empty_layer")))
        for h in config.get("history") or [] if isinstance(h, dict))
    return ImageInfo(
        id=row["id"], repo_tags=tuple(tags), created=_parse_time(config.get("created")),
        size=row["size"], layers=tuple((config.get("rootfs") or {}).get("diff_ids") or ()),
        config=parse_config(config), architecture=str(config.get("architecture", "")),
        os=str(config.get("os", "")), digest=row["manifest_digest"], history=hist,
        author=str(config.get("author", "")))

