"""Pulling from a real docker-registry on 127.0.0.1, images pushed by skopeo."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine import Engine, RegistryError
from tests.imagefactory import oci_image, oci_layout
from tests.integration.conftest import push

pytestmark = pytest.mark.integration


def _layout(tmp_path: Path, archs: list[str]) -> Path:
    d = tmp_path / "layout"
    imgs = [oci_image(d, [{"etc/base": b"base"}, {"app/arch": arch.encode()}], arch=arch)
            for arch in archs]
    return oci_layout(d, imgs, "v1")


@pytest.mark.parametrize("fmt", [None, "v2s2"], ids=["oci", "docker-v2s2"])
def test_pull_single_image(engine: Engine, registry: str, tmp_path: Path, fmt: str | None) -> None:
    layout = _layout(tmp_path, ["amd64"])
    name = f"{registry}/test/app-{fmt or 'oci'}:v1"
    push(f"oci:{layout}:v1", name, fmt=fmt)
    info = engine.pull(name)
    assert info.repo_tags == (name,)
    assert info.digest.startswith("sha256:")
    lowers = engine.image_store.lower_dirs(info.id)
    assert (lowers[0] / "app" / "arch").read_bytes() == b"amd64"
    assert (lowers[1] / "etc" / "base").read_bytes() == b"base"
    events = engine.db.query("SELECT action FROM events WHERE type='image'")
    assert "pull" in [e["action"] for e in events]
    # A second pull is served from the store: same id, nothing duplicated.
    assert engine.pull(name).id == info.id
    assert len(engine.images()) == 1


def test_pull_picks_host_platform_from_index(engine: Engine, registry: str, tmp_path: Path) -> None:
    from engine.images.registry import host_platform
    arch = host_platform()[1]
    other = "arm64" if arch != "arm64" else "amd64"
    layout = _layout(tmp_path, [other, arch])
    name = f"{registry}/test/multi:v1"
    push(f"oci:{layout}:v1", name, all_images=True)
    info = engine.pull(name)
    assert info.architecture == arch
    assert (engine.image_store.lower_dirs(info.id)[0] / "app" / "arch").read_bytes() == arch.encode()


def test_pull_unknown_tag_is_a_clear_error(engine: Engine, registry: str) -> None:
    with pytest.raises(RegistryError, match="not found"):
        engine.pull(f"{registry}/test/missing:nope")
    assert engine.images() == []


def test_pull_unreachable_registry(engine: Engine) -> None:
    with pytest.raises(RegistryError, match="cannot reach registry"):
        engine.pull("127.0.0.1:1/x:y")


def test_failed_pull_leaves_nothing(engine: Engine, registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    layout = _layout(tmp_path, ["amd64"])
    name = f"{registry}/test/broken:v1"
    push(f"oci:{layout}:v1", name)
    # Take the top layer's blob away from the registry: the pull fetches the
    # base layer, then fails on the second one.
    import json
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    top = manifest["layers"][1]["digest"][7:]
    blob = registry.data / "docker/registry/v2/blobs/sha256" / top[:2] / top / "data"
    blob.unlink()
    with pytest.raises(RegistryError):
        engine.pull(name)
    assert engine.images() == []
    assert list(engine.paths.blobs.iterdir()) == []
    assert [p for p in engine.paths.layers.iterdir()] == []
