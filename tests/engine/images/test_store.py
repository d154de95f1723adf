"""ImageStore: adding, tags, resolving references, rmi rules, layer sharing and gc."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from functools import partial
from pathlib import Path

import pytest

from engine import (AmbiguousReference, DigestMismatch, Engine, ImageFormatError, InUse, InvalidArgument,
                    NoSuchImage)
from engine.images.store import (MT_OCI_LAYER_GZIP, ImageStore, LayerSource, chain_id,
                                 decompressed)
from tests.imagefactory import layer_tar


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _config(layers: list[bytes], n: int = 0, cmd: str = "sh") -> bytes:
    return json.dumps({
        "created": f"2024-01-0{1 + n % 9}T00:00:00Z", "architecture": "amd64", "os": "linux",
        "config": {"Cmd": [cmd], "Env": [f"N={n}"]},
        "rootfs": {"type": "layers", "diff_ids": [_digest(raw) for raw in layers]},
    }).encode()


def _sources(layers: list[bytes], *, gz: bool = True) -> list[LayerSource]:
    out = []
    for raw in layers:
        blob = gzip.compress(raw, mtime=0) if gz else raw
        out.append(LayerSource(open=partial(io.BytesIO, blob), digest=_digest(blob),
                               size=len(blob), media_type=MT_OCI_LAYER_GZIP))
    return out


BASE = layer_tar({"etc/os-release": b"base\n", "bin/tool": b"tool"})
APP_A = layer_tar({"app/a": b"A"})
APP_B = layer_tar({"app/b": b"B"})


def add(store: ImageStore, layers: list[bytes], tags: list[str], n: int = 0) -> str:
    return store.add_image(_config(layers, n), _sources(layers), tags).id


@pytest.fixture
def store(engine: Engine) -> ImageStore:
    return engine.image_store


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_add_image_unpacks_layers_and_records_config(store: ImageStore) -> None:
    image_id = add(store, [BASE, APP_A], ["app:1"])
    info = store.get("app:1")
    assert info.id == image_id == _digest(_config([BASE, APP_A]))
    assert info.repo_tags == ("app:1",)
    assert info.config.cmd == ("sh",) and info.config.env == ("N=0",)
    assert info.layers == (_digest(BASE), _digest(APP_A))
    top, base = store.lower_dirs(image_id)
    assert (top / "app" / "a").read_bytes() == b"A"
    assert (base / "bin" / "tool").read_bytes() == b"tool"
    layers = store.layers_of(image_id)
    assert layers[0].chain_id == _digest(BASE)
    assert layers[1].chain_id == chain_id(_digest(BASE), _digest(APP_A))
    # The blob is kept as it came (gzip), so save can write it back unchanged.
    with store.blobs.open(layers[1].blob_digest) as f:
        assert decompressed(f).read() == APP_A


def test_tags_are_normalised_and_move_between_images(store: ImageStore) -> None:
    one = add(store, [BASE], ["web"], n=1)
    two = add(store, [BASE, APP_A], [], n=2)
    assert store.get("web:latest").id == one
    store.tag(two, "web")
    assert store.get("web").id == two
    assert store.get(one).repo_tags == ()
    actions = [r["action"] for r in store.db.query(
        "SELECT action FROM events WHERE type='image' ORDER BY seq")]
    assert actions[-2:] == ["untag", "tag"]
    assert store.untag("web") == two
    with pytest.raises(NoSuchImage):
        store.untag("web")


def test_resolve_by_id_prefix_and_tag(store: ImageStore) -> None:
    image_id = add(store, [BASE], ["x:1"])
    hexpart = image_id[7:]
    assert store.resolve(image_id) == image_id
    assert store.resolve(hexpart[:12]) == image_id
    assert store.resolve("sha256:" + hexpart[:5]) == image_id
    assert store.resolve("x:1") == image_id
    with pytest.raises(NoSuchImage):
        store.resolve("x:2")
    with pytest.raises(NoSuchImage):
        store.resolve("sha256:" + "0" * 64)
    with pytest.raises(NoSuchImage):
        store.resolve(hexpart[:2])      # too short to be a prefix, and no such tag


def test_ambiguous_prefix(store: ImageStore) -> None:
    # Find two configs whose ids share 3 hex digits (a birthday search, ~100 tries).
    seen: dict[str, int] = {}
    for n in range(10000):
        prefix = _digest(_config([BASE], n))[7:10]
        if prefix in seen:
            first, second = seen[prefix], n
            break
        seen[prefix] = n
    a = store.add_image(_config([BASE], first), _sources([BASE]), []).id
    b = store.add_image(_config([BASE], second), _sources([BASE]), []).id
    with pytest.raises(AmbiguousReference, match="matches 2 images"):
        store.resolve(prefix)
    # More characters make it unique again.
    common = os.path.commonprefix([a[7:], b[7:]])
    assert store.resolve(a[7:len(common) + 8]) == a


def test_rmi_of_one_tag_on_a_multi_tagged_image_only_untags(store: ImageStore) -> None:
    image_id = add(store, [BASE], ["a:1", "b:1"])
    assert store.remove("a:1") == ["Untagged: a:1"]
    assert store.get(image_id).repo_tags == ("b:1",)
    out = store.remove("b:1")
    assert out == ["Untagged: b:1", f"Deleted: {image_id}"]
    with pytest.raises(NoSuchImage):
        store.get(image_id)


def test_rmi_by_id_of_multi_tagged_image_needs_force(store: ImageStore) -> None:
    image_id = add(store, [BASE], ["a:1", "b:1"])
    with pytest.raises(InUse, match="tagged in 2 repositories"):
        store.remove(image_id[7:19])
    out = store.remove(image_id[7:19], force=True)
    assert out[-1] == f"Deleted: {image_id}"
    assert store.list() == []


def test_rmi_of_image_used_by_a_container(store: ImageStore) -> None:
    image_id = add(store, [BASE], ["a:1"])
    users = lambda i: ["web"] if i == image_id else []  # noqa: E731
    with pytest.raises(InUse, match="web"):
        store.remove("a:1", users=users)
    # -f only untags: the container still needs the layers.
    assert store.remove("a:1", force=True, users=users) == ["Untagged: a:1"]
    assert store.get(image_id).repo_tags == ()
    assert store.lower_dirs(image_id)[0].is_dir()


def test_removing_one_image_keeps_shared_base_layer(store: ImageStore, root_dir: Path) -> None:
    a = add(store, [BASE, APP_A], ["a"], n=1)
    b = add(store, [BASE, APP_B], ["b"], n=2)
    base_dir = store.lower_dirs(a)[1]
    assert base_dir == store.lower_dirs(b)[1]       # unpacked once, shared
    a_top = store.lower_dirs(a)[0]
    assert len(list((root_dir / "layers").iterdir())) == 3

    store.remove("a")
    assert not a_top.exists()
    assert (base_dir / "bin" / "tool").read_bytes() == b"tool"
    assert store.get("b").id == b
    assert (store.lower_dirs(b)[0] / "app" / "b").read_bytes() == b"B"
    # a's config and its top layer blob are gone; b's blobs and the base remain.
    blobs = {p.name for p in (root_dir / "blobs" / "sha256").iterdir()}
    assert a[7:] not in blobs and b[7:] in blobs
    assert {lay.blob_digest[7:] for lay in store.layers_of(b)} <= blobs

    store.remove("b")
    assert list((root_dir / "layers").iterdir()) == []
    assert list((root_dir / "blobs" / "sha256").iterdir()) == []
    assert store.db.query("SELECT * FROM layers") == []


def test_blob_digest_mismatch_leaves_nothing(store: ImageStore, root_dir: Path) -> None:
    before = _files(root_dir / "blobs") | _files(root_dir / "layers")
    blob = gzip.compress(BASE, mtime=0)
    wrong = LayerSource(open=lambda: io.BytesIO(blob), digest=_digest(b"something else"),
                        size=len(blob))
    with pytest.raises(DigestMismatch, match="does not match"):
        store.add_image(_config([BASE]), [wrong], ["bad"])
    assert store.list() == []
    assert _files(root_dir / "blobs") | _files(root_dir / "layers") == before
    assert list((root_dir / "tmp").iterdir()) == []


def test_diff_id_mismatch_is_refused(store: ImageStore, root_dir: Path) -> None:
    config = _config([APP_A])       # claims APP_A, the blob holds BASE
    with pytest.raises(DigestMismatch, match="diff id"):
        store.add_image(config, _sources([BASE]), ["bad"])
    assert store.list() == []
    assert store.db.query("SELECT * FROM layers") == []
    assert list((root_dir / "layers").iterdir()) == []


def test_config_must_match_layer_count(store: ImageStore) -> None:
    with pytest.raises(ImageFormatError, match="1 diff ids but the manifest has 2 layers"):
        store.add_image(_config([BASE]), _sources([BASE, APP_A]), [])


def test_adding_an_existing_layer_does_not_store_another_blob(store: ImageStore, root_dir: Path) -> None:
    add(store, [BASE], ["gz"], n=1)                 # gzip blob
    blobs = _files(root_dir / "blobs")
    plain = store.add_image(_config([BASE], 2), _sources([BASE], gz=False), ["plain"]).id
    # Same diff id: the layer is reused and only the new config blob appears.
    assert _files(root_dir / "blobs") - blobs == {f"sha256/{plain[7:]}"}


def test_gc_removes_unreferenced_layers(store: ImageStore) -> None:
    src = _sources([BASE])[0]
    lay = store.add_layer(None, src, _digest(BASE))
    assert store.paths.layer(lay.chain_id).is_dir()
    assert store.gc_layers() > 0
    assert not store.paths.layer(lay.chain_id).exists()
    assert not store.blobs.has(lay.blob_digest)


def test_zstd_corruption_is_an_image_format_error(store: ImageStore) -> None:
    import zstandard
    blob = zstandard.ZstdCompressor().compress(BASE)
    bad = blob[:12] + bytes(40) + blob[52:]
    src = LayerSource(open=lambda: io.BytesIO(bad), size=len(bad))
    with pytest.raises(ImageFormatError):
        store.add_layer(None, src, None)


def test_multi_frame_zstd_layer_is_read_whole(store: ImageStore) -> None:
    import zstandard
    cctx = zstandard.ZstdCompressor()
    blob = cctx.compress(BASE[:4096]) + cctx.compress(BASE[4096:])   # two frames, like zstd:chunked
    lay = store.add_layer(None, LayerSource(open=lambda: io.BytesIO(blob)), _digest(BASE))
    assert lay.diff_id == _digest(BASE)


def test_tag_with_a_digest_is_refused(store: ImageStore) -> None:
    image_id = add(store, [BASE], ["busybox"])
    with pytest.raises(InvalidArgument, match="digest"):
        store.tag("busybox", "x@sha256:" + "0" * 64)
    assert store.get(image_id).repo_tags == ("busybox:latest",)
    assert store.db.query("SELECT name FROM tags WHERE name LIKE 'x%'") == []


def test_docker_hub_spellings_find_and_make_the_same_tag(store: ImageStore) -> None:
    image_id = add(store, [BASE], ["docker.io/library/busybox:latest"])
    assert store.get(image_id).repo_tags == ("busybox:latest",)
    for ref in ("busybox", "docker.io/library/busybox:latest", "docker.io/busybox",
                "index.docker.io/library/busybox"):
        assert store.resolve(ref) == image_id, ref
    store.tag("docker.io/library/busybox", "docker.io/library/foo:1")
    store.tag("busybox", "docker.io/me/bar")
    assert store.get(image_id).repo_tags == ("busybox:latest", "foo:1", "me/bar:latest")
    store.remove("docker.io/library/foo:1")
    assert store.get(image_id).repo_tags == ("busybox:latest", "me/bar:latest")


def test_resolve_by_manifest_digest(store: ImageStore) -> None:
    manifest = "sha256:" + "ab" * 32
    image_id = store.add_image(_config([BASE]), _sources([BASE]), ["web:1"],
                               manifest_digest=manifest).id
    assert store.resolve(f"web@{manifest}") == image_id
    with pytest.raises(NoSuchImage):
        store.resolve("web@sha256:" + "cd" * 32)


def test_tampered_copy_of_a_stored_layer_is_refused(store: ImageStore) -> None:
    add(store, [BASE], ["good"])
    evil = layer_tar({"etc/os-release": b"evil\n", "bin/tool": b"tool"})
    blob = gzip.compress(evil, mtime=0)
    # Claims BASE's diff id (already unpacked), carries other content.
    src = LayerSource(open=partial(io.BytesIO, blob), size=len(blob))
    with pytest.raises(DigestMismatch, match="diff id"):
        store.add_image(_config([BASE], 5), [src], ["evil"])
    # Claims a stored blob's digest, carries other bytes.
    good_blob = gzip.compress(BASE, mtime=0)
    src = LayerSource(open=partial(io.BytesIO, blob), digest=_digest(good_blob), size=len(blob))
    with pytest.raises(DigestMismatch, match="does not match its digest"):
        store.add_image(_config([BASE], 6), [src], ["evil"])
    assert [i.repo_tags for i in store.list()] == [("good:latest",)]
