"""load/save: docker-archive (old and v25 layouts), oci-archive and OCI dirs, built here.

The builders at the top are also used by tests/integration/test_hostile_archives.py.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest
import zstandard

from engine import DigestMismatch, Engine, ImageFormatError, InvalidArgument, NoSuchImage, Progress
from engine.images.registry import host_platform
from tests.imagefactory import layer_tar

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES = {"": "application/vnd.oci.image.layer.v1.tar",
               "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
               "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}


# -- builders -------------------------------------------------------------------------

def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compress(raw: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(raw, mtime=0)
    if kind == "zstd":
        return zstandard.ZstdCompressor().compress(raw)
    return raw


@dataclass(frozen=True)
class Sym:
    """A symlink member in an archive tar."""

    target: str


Layout = dict[str, "bytes | Sym"]


@dataclass
class Image:
    """An image's pieces: raw layer tars, their blobs as shipped, the config."""

    raw_layers: list[bytes]
    blobs: list[bytes]
    kinds: list[str]
    config: bytes
    files: dict[str, bytes] = field(default_factory=dict)   # every file, merged

    @property
    def id(self) -> str:
        return digest(self.config)


def make_image(layers: list[dict[str, bytes]], kinds: list[str] | None = None, *,
               arch: str | None = None, cmd: str = "sh", diff_ids: list[str] | None = None) -> Image:
    kinds = kinds or ["gzip"] * len(layers)
    raws = [layer_tar(files) for files in layers]
    config = json.dumps({
        "created": "2024-01-02T03:04:05.123456789Z", "architecture": arch or host_platform()[1],
        "os": "linux", "config": {"Env": ["PATH=/bin"], "Cmd": [cmd]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids or [digest(r) for r in raws]},
        "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
    }).encode()
    merged: dict[str, bytes] = {}
    for files in layers:
        merged.update(files)
    return Image(raws, [compress(r, k) for r, k in zip(raws, kinds)], kinds, config, merged)


def docker_layout(images: list[tuple[Image, list[str]]], *, v25: bool = False,
                  link_duplicates: bool = False) -> Layout:
    """What ``docker save`` writes: the pre-v25 layout, or v25's blobs/ + OCI index."""
    out: Layout = {}
    manifest = []
    for img, tags in images:
        if v25:
            config_path = f"blobs/sha256/{img.id[7:]}"
            out[config_path] = img.config
            paths = []
            for blob in img.blobs:
                paths.append(f"blobs/sha256/{digest(blob)[7:]}")
                out[paths[-1]] = blob
        else:
            config_path = f"{img.id[7:]}.json"
            out[config_path] = img.config
            paths = []
            for raw, blob in zip(img.raw_layers, img.blobs):
                path = f"{digest(raw)[7:]}/layer.tar"
                if path in out and link_duplicates:
                    # Old docker saves a repeated layer as a symlink to the first copy.
                    path = f"dup{len(paths)}{digest(raw)[7:20]}/layer.tar"
                    out[path] = Sym(f"../{digest(raw)[7:]}/layer.tar")
                else:
                    out[path] = blob
                paths.append(path)
        manifest.append({"Config": config_path, "RepoTags": tags, "Layers": paths})
    out["manifest.json"] = json.dumps(manifest).encode()
    if v25:
        index: dict[str, Any] = {"schemaVersion": 2, "manifests": []}
        for img, tags in images:
            m = oci_manifest(img)
            out[f"blobs/sha256/{digest(m)[7:]}"] = m
            for t in tags:
                index["manifests"].append({
                    "mediaType": OCI_MANIFEST, "digest": digest(m), "size": len(m),
                    "annotations": {"io.containerd.image.name": f"docker.io/library/{t}",
                                    "org.opencontainers.image.ref.name": t.split(":")[1]}})
        out["index.json"] = json.dumps(index).encode()
        out["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    return out


def oci_manifest(img: Image, layer_types: list[str] | None = None) -> bytes:
    types = layer_types or [LAYER_TYPES[k] for k in img.kinds]
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": img.id, "size": len(img.config)},
        "layers": [{"mediaType": t, "digest": digest(b), "size": len(b)}
                   for t, b in zip(types, img.blobs)],
    }).encode()


def oci_layout(entries: list[dict[str, Any]], blobs: list[bytes]) -> Layout:
    """An OCI layout: ``entries`` are index.json descriptors, ``blobs`` everything they need."""
    out: Layout = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
    for b in blobs:
        out[f"blobs/sha256/{digest(b)[7:]}"] = b
    out["index.json"] = json.dumps({"schemaVersion": 2, "manifests": entries}).encode()
    return out


def oci_entry(img: Image, annotations: dict[str, str] | None = None,
              platform: dict[str, str] | None = None) -> tuple[dict[str, Any], list[bytes]]:
    """An index descriptor for ``img`` and the blobs it needs."""
    m = oci_manifest(img)
    desc: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": digest(m), "size": len(m)}
    if annotations:
        desc["annotations"] = annotations
    if platform:
        desc["platform"] = platform
    return desc, [m, img.config, *img.blobs]


def to_tar(layout: Layout, *, order: list[str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in order or sorted(layout):
            value = layout[name]
            info = tarfile.TarInfo(name)
            if isinstance(value, Sym):
                info.type, info.linkname = tarfile.SYMTYPE, value.target
                tf.addfile(info)
            else:
                info.size = len(value)
                tf.addfile(info, io.BytesIO(value))
    return buf.getvalue()


def to_dir(layout: Layout, d: Path) -> Path:
    for name, value in layout.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, Sym):
            p.symlink_to(value.target)
        else:
            p.write_bytes(value)
    return d


class NonSeekable(io.RawIOBase):
    """A pipe-like stream: stdin when a tar is piped in."""

    def __init__(self, data: bytes) -> None:
        self.inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        data = self.inner.read(min(len(b), 4096))
        b[:len(data)] = data
        return len(data)


def assert_files(engine: Engine, image_id: str, files: dict[str, bytes]) -> None:
    """Every file is in one of the image's layer dirs, the topmost copy wins."""
    lowers = engine.image_store.lower_dirs(image_id)
    for name, content in files.items():
        found = next((d / name for d in lowers if (d / name).exists()), None)
        assert found is not None, f"{name} missing from {image_id}"
        assert found.read_bytes() == content, name


def store_snapshot(root: Path) -> set[str]:
    """Every file and dir under the store's content dirs and tmp."""
    out = set()
    for sub in ("blobs", "layers", "tmp"):
        out |= {str(p.relative_to(root)) for p in (root / sub).rglob("*")}
    return out


# -- tests: formats -----------------------------------------------------------------------

BASE = {"etc/os-release": b"ID=test\n", "bin/tool": b"#!/bin/sh\necho tool\n"}
APP = {"app/main.py": b"print('hi')\n", "app/data/blob.bin": bytes(range(256)) * 64}


@pytest.mark.parametrize("v25", [False, True], ids=["pre-v25", "v25"])
def test_load_docker_archive(engine: Engine, tmp_path: Path, v25: bool) -> None:
    img = make_image([BASE, APP], ["", "gzip"])
    path = tmp_path / "img.tar"
    path.write_bytes(to_tar(docker_layout([(img, ["app:1.0"])], v25=v25)))
    [info] = engine.load(path)
    assert info.id == img.id
    assert info.repo_tags == ("app:1.0",)
    assert info.config.cmd == ("sh",)
    assert_files(engine, info.id, img.files)
    assert [r["action"] for r in engine.db.query("SELECT action FROM events")][-1] == "load"


def test_load_docker_archive_with_symlinked_duplicate_layer(engine: Engine, tmp_path: Path) -> None:
    # The same layer twice in one image (e.g. an empty layer repeated).
    img = make_image([BASE, APP, BASE], ["", "", ""])
    path = tmp_path / "img.tar"
    path.write_bytes(to_tar(docker_layout([(img, ["dup:1"])], link_duplicates=True)))
    [info] = engine.load(path)
    assert len(engine.image_store.layers_of(info.id)) == 3


@pytest.mark.parametrize("kinds", [["gzip", "zstd"], ["", "zstd"], ["zstd", "gzip"]])
def test_load_oci_archive_with_mixed_compression(engine: Engine, tmp_path: Path,
                                                 kinds: list[str]) -> None:
    img = make_image([BASE, APP], kinds)
    desc, blobs = oci_entry(img, {"org.opencontainers.image.ref.name": "example.com/team/app:v2"})
    path = tmp_path / "oci.tar"
    path.write_bytes(to_tar(oci_layout([desc], blobs)))
    [info] = engine.load(path)
    assert info.repo_tags == ("example.com/team/app:v2",)
    assert info.digest == desc["digest"]
    assert_files(engine, info.id, img.files)
    stored = engine.image_store.layers_of(info.id)
    assert [lay.media_type for lay in stored] == [LAYER_TYPES[k] for k in kinds]
    assert [lay.blob_digest for lay in stored] == [digest(b) for b in img.blobs]


def test_load_oci_layout_directory(engine: Engine, tmp_path: Path) -> None:
    img = make_image([BASE, APP])
    desc, blobs = oci_entry(img, {"io.containerd.image.name": "docker.io/library/app:latest",
                                  "org.opencontainers.image.ref.name": "latest"})
    d = to_dir(oci_layout([desc], blobs), tmp_path / "layout")
    [info] = engine.load(d)
    assert info.repo_tags == ("app:latest",)     # docker.io/library/ dropped, as Docker shows it
    assert_files(engine, info.id, img.files)


def test_bare_tag_ref_name_loads_untagged(engine: Engine, tmp_path: Path) -> None:
    img = make_image([BASE])
    desc, blobs = oci_entry(img, {"org.opencontainers.image.ref.name": "latest"})
    [info] = engine.load(to_dir(oci_layout([desc], blobs), tmp_path / "l"))
    assert info.repo_tags == ()
    assert engine.image(info.id[7:19]).id == img.id


def test_oci_index_picks_host_platform(engine: Engine, tmp_path: Path) -> None:
    arch = host_platform()[1]
    other = "arm64" if arch != "arm64" else "amd64"
    mine = make_image([{"arch": arch.encode()}], arch=arch)
    foreign = make_image([{"arch": other.encode()}], arch=other)
    d_mine, b_mine = oci_entry(mine, platform={"os": "linux", "architecture": arch})
    d_other, b_other = oci_entry(foreign, platform={"os": "linux", "architecture": other})
    nested = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                         "manifests": [d_other, d_mine]}).encode()
    top = {"mediaType": OCI_INDEX, "digest": digest(nested), "size": len(nested),
           "annotations": {"org.opencontainers.image.ref.name": "multi:v1"}}
    path = tmp_path / "multi.tar"
    path.write_bytes(to_tar(oci_layout([top], [nested, *b_mine, *b_other])))
    [info] = engine.load(path)
    assert info.id == mine.id and info.repo_tags == ("multi:v1",)
    assert info.architecture == arch


def test_oci_index_without_host_platform_is_refused(engine: Engine, tmp_path: Path) -> None:
    img = make_image([BASE], arch="s390x")
    d, blobs = oci_entry(img, platform={"os": "linux", "architecture": "s390x"})
    nested = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [d]}).encode()
    top = {"mediaType": OCI_INDEX, "digest": digest(nested), "size": len(nested)}
    with pytest.raises(ImageFormatError, match="no image for linux/.*it has: linux/s390x"):
        engine.load(to_dir(oci_layout([top], [nested, *blobs]), tmp_path / "l"))
    assert engine.images() == []


def test_one_image_under_several_entries_is_loaded_once(engine: Engine, tmp_path: Path) -> None:
    img = make_image([BASE])
    path = tmp_path / "twice.tar"
    path.write_bytes(to_tar(docker_layout([(img, ["one:1"]), (img, ["two:1"])])))
    [info] = engine.load(path)
    assert info.repo_tags == ("one:1", "two:1")
    desc, blobs = oci_entry(img, {"io.containerd.image.name": "three:1"})
    desc2 = {**desc, "annotations": {"io.containerd.image.name": "four:1"}}
    [info] = engine.load(to_dir(oci_layout([desc, desc2], blobs), tmp_path / "l"))
    assert info.repo_tags == ("four:1", "three:1")      # what this archive named
    assert engine.image(info.id).repo_tags == ("four:1", "one:1", "three:1", "two:1")


def test_archive_with_several_images_and_shared_layers(engine: Engine, tmp_path: Path) -> None:
    a = make_image([BASE, {"a": b"a"}], cmd="a")
    b = make_image([BASE, {"b": b"b"}], cmd="b")
    path = tmp_path / "two.tar"
    path.write_bytes(to_tar(docker_layout([(a, ["a:1", "a:latest"]), (b, ["b:1"])])))
    infos = engine.load(path)
    assert [i.repo_tags for i in infos] == [("a:1", "a:latest"), ("b:1",)]
    assert engine.image_store.lower_dirs(a.id)[1] == engine.image_store.lower_dirs(b.id)[1]


@pytest.mark.parametrize("whole", ["gzip", "zstd", "xz"])
def test_load_whole_compressed_archive(engine: Engine, tmp_path: Path, whole: str) -> None:
    import lzma
    img = make_image([BASE, APP])
    raw = to_tar(docker_layout([(img, ["z:1"])]))
    data = lzma.compress(raw) if whole == "xz" else compress(raw, whole)
    path = tmp_path / "img.tar.x"
    path.write_bytes(data)
    [info] = engine.load(path)
    assert info.id == img.id
    assert list((engine.paths.tmp).iterdir()) == []     # the spool is gone


def test_load_from_a_pipe(engine: Engine) -> None:
    img = make_image([BASE, APP], ["zstd", "gzip"])
    desc, blobs = oci_entry(img, {"io.containerd.image.name": "piped:1"})
    progress: list[Progress] = []
    pipe = cast(BinaryIO, NonSeekable(to_tar(oci_layout([desc], blobs))))
    [info] = engine.load(pipe, progress=progress.append)
    assert info.repo_tags == ("piped:1",)
    assert any(p.what.startswith("reading") for p in progress)
    layer_steps = [p for p in progress if p.layers]
    assert {p.layers for p in layer_steps} == {2}
    assert {p.layer for p in layer_steps} == {1, 2}
    last = [p for p in layer_steps if p.layer == 2][-1]
    assert last.done == last.total == len(img.blobs[1])
    assert list(engine.paths.tmp.iterdir()) == []


def test_load_metadata_last_in_the_tar(engine: Engine, tmp_path: Path) -> None:
    # docker save puts manifest.json at the end; order must not matter.
    img = make_image([BASE])
    layout = docker_layout([(img, ["late:1"])])
    order = [n for n in layout if n != "manifest.json"] + ["manifest.json"]
    path = tmp_path / "late.tar"
    path.write_bytes(to_tar(layout, order=order))
    assert engine.load(path)[0].repo_tags == ("late:1",)


def test_loading_twice_is_idempotent(engine: Engine, tmp_path: Path) -> None:
    img = make_image([BASE, APP])
    path = tmp_path / "img.tar"
    path.write_bytes(to_tar(docker_layout([(img, ["again:1"])])))
    engine.load(path)
    snap = store_snapshot(engine.paths.root)
    engine.load(path)
    assert store_snapshot(engine.paths.root) == snap
    assert len(engine.images()) == 1


@pytest.mark.parametrize("layout", ["pre-v25", "v25", "oci"])
def test_tampered_copy_of_a_known_layer_is_refused(engine: Engine, tmp_path: Path,
                                                    layout: str) -> None:
    img = make_image([BASE, APP], ["gzip", ""])
    good = tmp_path / "good.tar"
    good.write_bytes(to_tar(docker_layout([(img, ["app:1"])])))
    engine.load(good)
    snap = store_snapshot(engine.paths.root)
    # Same config (so the same diff ids and chain ids, already unpacked), but
    # the top layer's bytes replaced by other content of the same size under
    # the same name.
    evil_raw = layer_tar({**APP, "app/main.py": b"print('ho')\n"})
    assert len(evil_raw) == len(img.raw_layers[1]) and evil_raw != img.raw_layers[1]
    if layout == "oci":
        desc, blobs = oci_entry(img, {"io.containerd.image.name": "evil:1"})
        files = oci_layout([desc], blobs)
    else:
        files = docker_layout([(img, ["evil:1"])], v25=layout == "v25")
    top = next(n for n, v in files.items() if v == img.blobs[1])
    files[top] = evil_raw
    bad = tmp_path / "bad.tar"
    bad.write_bytes(to_tar(files))
    with pytest.raises(DigestMismatch, match="does not match"):
        engine.load(bad)
    assert store_snapshot(engine.paths.root) == snap
    assert [i.repo_tags for i in engine.images()] == [("app:1",)]
    assert_files(engine, img.id, img.files)


def test_not_an_archive(engine: Engine, tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello, not a tar" * 100)
    with pytest.raises(ImageFormatError, match="not a readable tar"):
        engine.load(junk)
    empty = tmp_path / "empty.tar"
    empty.write_bytes(to_tar({"README": b"hi"}))
    with pytest.raises(ImageFormatError, match="neither a docker-archive"):
        engine.load(empty)
    with pytest.raises(InvalidArgument, match="no such file"):
        engine.load(tmp_path / "missing.tar")


def test_truncated_archive_is_refused_and_leaves_nothing(engine: Engine, tmp_path: Path) -> None:
    img = make_image([BASE, APP], ["", ""])
    layout = docker_layout([(img, ["cut:1"])])
    order = ["manifest.json", f"{img.id[7:]}.json"] + sorted(n for n in layout if "layer.tar" in n)
    data = to_tar(layout, order=order)
    path = tmp_path / "cut.tar"
    path.write_bytes(data[:len(data) - 12000])
    before = store_snapshot(engine.paths.root)
    with pytest.raises(ImageFormatError):
        engine.load(path)
    assert engine.images() == []
    assert store_snapshot(engine.paths.root) == before


def test_second_image_failing_leaves_no_first_image(engine: Engine, tmp_path: Path) -> None:
    good = make_image([BASE, {"good": b"1"}])
    bad = make_image([BASE, {"bad": b"1"}], diff_ids=[digest(layer_tar(BASE)), digest(b"lie")])
    path = tmp_path / "two.tar"
    path.write_bytes(to_tar(docker_layout([(good, ["good:1"]), (bad, ["bad:1"])])))
    before = store_snapshot(engine.paths.root)
    with pytest.raises(DigestMismatch, match="diff id"):
        engine.load(path)
    assert engine.images() == []
    assert engine.db.query("SELECT * FROM layers") == []
    assert engine.db.query("SELECT * FROM events WHERE action='load'") == []
    assert store_snapshot(engine.paths.root) == before


# -- tests: save ---------------------------------------------------------------------------

@pytest.fixture
def loaded(engine: Engine, tmp_path: Path) -> Image:
    """An image with a plain, a gzip and a zstd layer, loaded as app:1 and app:latest."""
    img = make_image([BASE, APP, {"etc/motd": b"hello\n"}], ["", "gzip", "zstd"])
    desc, blobs = oci_entry(img, {"io.containerd.image.name": "app:1"})
    engine.load(to_dir(oci_layout([desc], blobs), tmp_path / "src"))
    engine.tag("app:1", "app:latest")
    return img


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf if m.isfile()}  # type: ignore[union-attr]


def test_save_docker_archive_layout(engine: Engine, loaded: Image, tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    engine.save(["app:1"], out)
    files = _members(out.read_bytes())
    [entry] = json.loads(files["manifest.json"])
    assert entry["RepoTags"] == ["app:1"]
    assert files[entry["Config"]] == loaded.config
    assert entry["Config"] == loaded.id[7:] + ".json"
    # Layers uncompressed, each hashing to its diff id.
    for path, raw in zip(entry["Layers"], loaded.raw_layers):
        assert path == f"{digest(raw)[7:]}/layer.tar"
        assert digest(files[path]) == digest(raw)
    assert json.loads(files["repositories"]) == {"app": {"1": digest(loaded.raw_layers[-1])[7:]}}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert [r["action"] for r in engine.db.query("SELECT action FROM events")][-1] == "save"


def test_save_oci_archive_layout(engine: Engine, loaded: Image, tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    engine.save(["app:1", "app:latest"], out, format="oci-archive")
    files = _members(out.read_bytes())
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert digest(data)[7:] == name.rsplit("/", 1)[1]
    index = json.loads(files["index.json"])
    names = [(m["annotations"]["io.containerd.image.name"],
              m["annotations"]["org.opencontainers.image.ref.name"]) for m in index["manifests"]]
    assert names == [("docker.io/library/app:1", "1"), ("docker.io/library/app:latest", "latest")]
    manifest = json.loads(files["blobs/sha256/" + index["manifests"][0]["digest"][7:]])
    assert manifest["config"] == {"mediaType": OCI_CONFIG, "digest": loaded.id,
                                  "size": len(loaded.config)}
    # Layer blobs go out as they came in, with their OCI media types.
    assert [(lay["mediaType"], lay["digest"]) for lay in manifest["layers"]] == \
        [(LAYER_TYPES[k], digest(b)) for k, b in zip(loaded.kinds, loaded.blobs)]


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_round_trip(engine: Engine, loaded: Image, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "rt.tar"
    engine.save(["app:1"], out, format=fmt)
    other = Engine(tmp_path / "other-root")
    try:
        [info] = other.load(out)
        assert info.id == loaded.id
        assert info.repo_tags == ("app:1",)
        assert_files(other, info.id, loaded.files)
    finally:
        other.close()


def test_save_to_stream(engine: Engine, loaded: Image) -> None:
    buf = io.BytesIO()
    engine.save(["app:latest"], buf, format="oci-archive")
    assert "index.json" in _members(buf.getvalue())


def test_save_by_id_is_untagged(engine: Engine, loaded: Image, tmp_path: Path) -> None:
    out = tmp_path / "id.tar"
    engine.save([loaded.id[7:19]], out)
    [entry] = json.loads(_members(out.read_bytes())["manifest.json"])
    assert entry["RepoTags"] is None


def test_save_docker_type_layer_becomes_oci_type(engine: Engine, tmp_path: Path) -> None:
    img = make_image([BASE])
    m = oci_manifest(img, ["application/vnd.docker.image.rootfs.diff.tar.gzip"])
    desc = {"mediaType": OCI_MANIFEST, "digest": digest(m), "size": len(m),
            "annotations": {"io.containerd.image.name": "dock:1"}}
    engine.load(to_dir(oci_layout([desc], [m, img.config, *img.blobs]), tmp_path / "l"))
    out = tmp_path / "o.tar"
    engine.save(["dock:1"], out, format="oci-archive")
    files = _members(out.read_bytes())
    index = json.loads(files["index.json"])
    manifest = json.loads(files["blobs/sha256/" + index["manifests"][0]["digest"][7:]])
    assert manifest["layers"][0]["mediaType"] == LAYER_TYPES["gzip"]


def test_failed_save_leaves_no_file(engine: Engine, loaded: Image, tmp_path: Path) -> None:
    out = tmp_path / "never.tar"
    with pytest.raises(NoSuchImage):
        engine.save(["app:1", "nope:1"], out)
    assert list(tmp_path.glob("*never*")) == [] and list(tmp_path.glob(".never*")) == []
    # A damaged store is caught, and the half-written temp file removed.
    lay = engine.image_store.layers_of(loaded.id)[1]
    engine.image_store.blobs.path(lay.blob_digest).write_bytes(gzip.compress(b"tampered"))
    with pytest.raises(ImageFormatError, match="not its diff id"):
        engine.save(["app:1"], out)
    assert [p.name for p in tmp_path.iterdir() if "never" in p.name] == []


def test_save_through_a_symlink_keeps_the_link(engine: Engine, loaded: Image, tmp_path: Path) -> None:
    target = tmp_path / "real.tar"
    target.write_bytes(b"old")
    target.chmod(0o640)
    link = tmp_path / "link.tar"
    link.symlink_to("real.tar")
    engine.save(["app:1"], link)
    assert link.is_symlink() and os.readlink(link) == "real.tar"
    assert "manifest.json" in _members(target.read_bytes())
    assert stat.S_IMODE(target.stat().st_mode) == 0o640      # an overwritten file keeps its mode
    # A dangling link creates its target.
    (tmp_path / "dangling.tar").symlink_to("made.tar")
    engine.save(["app:1"], tmp_path / "dangling.tar")
    assert (tmp_path / "dangling.tar").is_symlink() and (tmp_path / "made.tar").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_save_into_a_fifo_writes_through_it(engine: Engine, loaded: Image, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    # Hold both ends open so neither save's open nor the reader can block
    # forever, even if save wrongly replaced the FIFO with a file.
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(rfd, True)
    keep_open = os.open(fifo, os.O_WRONLY)
    got: list[bytes] = []

    def drain() -> None:
        with os.fdopen(rfd, "rb") as r:
            got.append(r.read())
    reader = threading.Thread(target=drain)
    reader.start()
    try:
        engine.save(["app:1"], fifo, format="oci-archive")
    finally:
        os.close(keep_open)
        reader.join()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)      # still a FIFO, not replaced by a file
    assert "index.json" in _members(got[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe", "root", "src"]


def test_save_unknown_format(engine: Engine, loaded: Image, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="unknown save format"):
        engine.save(["app:1"], tmp_path / "x.tar", format="zip")
