"""Interop with real tools: what skopeo and umoci write loads; what portside saves, they read."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from engine import Engine
from tests.conftest import REPO, need_tool
from tests.engine.images.test_archive import assert_files, make_image, oci_entry, oci_layout, to_dir

pytestmark = pytest.mark.integration


def run(*cmd: str) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{' '.join(cmd)}: {r.stderr}"
    return r.stdout


def skopeo(*args: str) -> str:
    return run(need_tool("skopeo"), "--insecure-policy", *args)


def umoci(*args: str) -> str:
    return run(need_tool("umoci"), *args)


def tree(root: Path) -> dict[str, bytes]:
    """Regular files under ``root`` (relative path -> content)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not p.is_symlink()}


@pytest.fixture(scope="module")
def umoci_layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """An OCI layout made by umoci: two repacked layers, the second deleting a file.

    Returns the layout and the files the final image must have.
    """
    d = tmp_path_factory.mktemp("umoci")
    layout, bundle = d / "layout", d / "bundle"
    umoci("init", "--layout", str(layout))
    umoci("new", "--image", f"{layout}:v1")
    umoci("unpack", "--image", f"{layout}:v1", str(bundle))
    rootfs = bundle / "rootfs"
    (rootfs / "app" / "sub").mkdir(parents=True)
    (rootfs / "etc").mkdir(exist_ok=True)
    data = os.urandom(70000)
    (rootfs / "app" / "hello").write_bytes(b"hello from umoci\n")
    (rootfs / "app" / "sub" / "data.bin").write_bytes(data)
    (rootfs / "etc" / "removeme").write_bytes(b"gone soon")
    (rootfs / "etc" / "keep").write_bytes(b"kept")
    umoci("repack", "--image", f"{layout}:v1", str(bundle))
    # Delete a file and add one: umoci writes a whiteout for the deletion.
    # A fresh unpack, since repack diffs against the state of the unpack.
    bundle = d / "bundle2"
    umoci("unpack", "--image", f"{layout}:v1", str(bundle))
    rootfs = bundle / "rootfs"
    (rootfs / "etc" / "removeme").unlink()
    (rootfs / "etc" / "added").write_bytes(b"added by repack")
    umoci("repack", "--image", f"{layout}:v1", str(bundle))
    umoci("config", "--image", f"{layout}:v1", "--config.cmd=/app/hello", "--config.env=A=1")
    want = {"app/hello": b"hello from umoci\n", "etc/keep": b"kept", "etc/added": b"added by repack",
            "app/sub/data.bin": data}
    return layout, want


def _merged_has_whiteout(engine: Engine, image_id: str, name: str) -> bool:
    top = engine.image_store.lower_dirs(image_id)[0] / name
    st = os.lstat(top)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def test_load_umoci_oci_dir(engine: Engine, umoci_layout: tuple[Path, dict[str, bytes]]) -> None:
    layout, want = umoci_layout
    [info] = engine.load(layout)
    # umoci's ref name is a bare tag ("v1"): no repository, so the image is untagged.
    assert info.repo_tags == ()
    assert info.config.cmd == ("/app/hello",) and "A=1" in info.config.env
    assert len(info.layers) == 2
    assert_files(engine, info.id, want)
    assert _merged_has_whiteout(engine, info.id, "etc/removeme")


# umoci 0.4.7 `insert` writes layer tars without the last member's padding
# and the end-of-archive footer (umoci#436); Go readers accept that, so we do.
def test_load_umoci_insert_layer(engine: Engine, tmp_path: Path) -> None:
    layout, src = tmp_path / "layout", tmp_path / "src"
    src.mkdir()
    (src / "data.bin").write_bytes(os.urandom(70000))     # not a multiple of 512
    umoci("init", "--layout", str(layout))
    umoci("new", "--image", f"{layout}:v1")
    umoci("insert", "--image", f"{layout}:v1", str(src), "/app")
    [info] = engine.load(layout)
    assert_files(engine, info.id, {"app/data.bin": (src / "data.bin").read_bytes()})


@pytest.mark.parametrize("dest, expect_tag", [
    ("docker-archive:{f}:team/app:v1", "team/app:v1"),
    ("oci-archive:{f}:example.com/app:v1", "example.com/app:v1"),
    ("oci-archive:{f}", None),
])
def test_load_what_skopeo_writes(engine: Engine, tmp_path: Path,
                                 umoci_layout: tuple[Path, dict[str, bytes]],
                                 dest: str, expect_tag: str | None) -> None:
    layout, want = umoci_layout
    f = tmp_path / "img.tar"
    skopeo("copy", "--quiet", f"oci:{layout}:v1", dest.format(f=f))
    [info] = engine.load(f)
    assert info.repo_tags == ((expect_tag,) if expect_tag else ())
    assert_files(engine, info.id, want)
    assert _merged_has_whiteout(engine, info.id, "etc/removeme")


def test_load_skopeo_zstd_oci_dir(engine: Engine, tmp_path: Path,
                                  umoci_layout: tuple[Path, dict[str, bytes]]) -> None:
    layout, want = umoci_layout
    dest = tmp_path / "zstd"
    skopeo("copy", "--quiet", "--dest-compress-format", "zstd", f"oci:{layout}:v1", f"oci:{dest}:v1")
    [info] = engine.load(dest)
    assert {lay.media_type for lay in engine.image_store.layers_of(info.id)} == \
        {"application/vnd.oci.image.layer.v1.tar+zstd"}
    assert_files(engine, info.id, want)


def test_load_via_cli_from_stdin(tmp_path: Path, umoci_layout: tuple[Path, dict[str, bytes]]) -> None:
    layout, _ = umoci_layout
    f = tmp_path / "img.tar"
    skopeo("copy", "--quiet", f"oci:{layout}:v1", f"docker-archive:{f}:cli/app:v1")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("PORTSIDE_ROOT", None)
    root = tmp_path / "root"
    with open(f, "rb") as stdin:
        r = subprocess.run([sys.executable, "-m", "tui", f"--root={root}", "load"], stdin=stdin,
                           capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Loaded image: cli/app:v1"
    r = subprocess.run([sys.executable, "-m", "tui", f"--root={root}", "save", "-o",
                        str(tmp_path / "out.tar"), "cli/app:v1"],
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    skopeo("inspect", f"docker-archive:{tmp_path / 'out.tar'}")


# -- what portside saves, skopeo and umoci read -----------------------------------------------

@pytest.fixture
def saved_images(engine: Engine, tmp_path: Path) -> list[str]:
    """busybox (bootstrapped) and a three-layer image with plain, gzip and zstd layers."""
    engine.bootstrap_busybox()
    img = make_image([{"etc/base": b"base"}, {"app/bin": os.urandom(5000)}, {"etc/motd": b"hi\n"}],
                     ["", "gzip", "zstd"])
    desc, blobs = oci_entry(img, {"io.containerd.image.name": "example.com/mixed:2"})
    engine.load(to_dir(oci_layout([desc], blobs), tmp_path / "mixed-src"))
    return ["busybox:latest", "example.com/mixed:2"]


def _oci_dir_manifest(d: Path) -> dict:  # type: ignore[type-arg]
    index = json.loads((d / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    return json.loads((d / "blobs" / "sha256" / digest[7:]).read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("ref", ["busybox:latest", "example.com/mixed:2"])
def test_saved_docker_archive_is_read_by_skopeo_and_umoci(engine: Engine, tmp_path: Path,
                                                           saved_images: list[str], ref: str) -> None:
    out = tmp_path / "saved.tar"
    engine.save(saved_images, out)
    info = engine.image(ref)
    inspected = json.loads(skopeo("inspect", f"docker-archive:{out}:{ref}"))
    assert inspected["Layers"] == list(info.layers)
    assert inspected["Architecture"] == info.architecture
    copy = tmp_path / "copy"
    # Keep uncompressed layers as they are, so the digests can be compared.
    skopeo("copy", "--quiet", "--dest-oci-accept-uncompressed-layers",
           f"docker-archive:{out}:{ref}", f"oci:{copy}:x")
    manifest = _oci_dir_manifest(copy)
    # docker-archive layers are uncompressed, so their digests are the diff ids.
    assert [lay["digest"] for lay in manifest["layers"]] == list(info.layers)
    # umoci 0.4.7 unpacks gzip layers only: let skopeo compress this copy.
    gz_copy, bundle = tmp_path / "gz-copy", tmp_path / "bundle"
    skopeo("copy", "--quiet", f"docker-archive:{out}:{ref}", f"oci:{gz_copy}:x")
    umoci("unpack", "--image", f"{gz_copy}:x", str(bundle))
    rootfs = bundle / "rootfs"
    for layer in reversed(engine.image_store.lower_dirs(info.id)):
        for name, content in tree(layer).items():
            assert (rootfs / name).read_bytes() == content, name


@pytest.mark.parametrize("ref, tag", [("busybox:latest", "latest"), ("example.com/mixed:2", "2")])
def test_saved_oci_archive_is_read_by_skopeo(engine: Engine, tmp_path: Path,
                                             saved_images: list[str], ref: str, tag: str) -> None:
    out = tmp_path / "saved-oci.tar"
    engine.save(saved_images, out, format="oci-archive")
    info = engine.image(ref)
    stored = engine.image_store.layers_of(info.id)
    # Docker >= 25's convention: the bare tag is the ref name skopeo selects by.
    inspected = json.loads(skopeo("inspect", f"oci-archive:{out}:{tag}"))
    assert inspected["Layers"] == [lay.blob_digest for lay in stored]
    copy = tmp_path / "copy"
    skopeo("copy", "--quiet", "--preserve-digests", f"oci-archive:{out}:{tag}", f"oci:{copy}:x")
    manifest = _oci_dir_manifest(copy)
    assert [lay["digest"] for lay in manifest["layers"]] == [lay.blob_digest for lay in stored]
    assert [lay["mediaType"] for lay in manifest["layers"]] == [lay.media_type for lay in stored]
    assert manifest["config"]["digest"] == info.id
    # And the copy loads back into a fresh store as the same image.
    other = Engine(tmp_path / "other")
    try:
        [again] = other.load(copy)
        assert again.id == info.id
    finally:
        other.close()


def test_single_image_oci_archive_needs_no_tag(engine: Engine, tmp_path: Path,
                                               saved_images: list[str]) -> None:
    out = tmp_path / "one.tar"
    engine.save(["busybox:latest"], out, format="oci-archive")
    inspected = json.loads(skopeo("inspect", f"oci-archive:{out}"))
    assert inspected["Env"] == list(engine.image("busybox").config.env)
