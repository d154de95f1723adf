"""Hostile archives: each is refused with an error naming the bad entry, and leaves nothing.

Every case runs against a store that already holds a good image, so the
checks also prove that a refused load removes only what it added: image rows,
layers, blobs and tmp files are exactly as before, the image still works,
and nothing appeared outside the root (a sentinel dir next to it stays as it
was, and no file named like the payload exists anywhere around).
"""
from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from engine import DigestMismatch, Engine, ImageFormatError
from tests.engine.images.test_archive import (Image, Layout, Sym, assert_files, digest,
                                              docker_layout, make_image, oci_entry, oci_layout,
                                              oci_manifest, store_snapshot, to_dir, to_tar)

pytestmark = pytest.mark.integration

PAYLOAD = "pwned-by-portside-test"


@dataclass
class Env:
    """Where a case runs: the temp dir, the sentinel dir outside the root, the engine."""

    tmp: Path
    outside: Path
    engine: Engine


Case = Callable[[Env], tuple["Path", type[Exception], str]]


def _good() -> Image:
    return make_image([{"etc/good": b"good"}, {"app/good": b"good app"}], ["gzip", "zstd"])


def _tar(env: Env, layout: Layout, name: str = "evil.tar") -> Path:
    path = env.tmp / name
    path.write_bytes(to_tar(layout))
    return path


def _docker_with(env: Env, edit: Callable[[list[dict]], None]) -> Path:  # type: ignore[type-arg]
    img = make_image([{"etc/x": b"x"}])
    layout = docker_layout([(img, ["evil:1"])])
    manifest = json.loads(layout["manifest.json"])  # type: ignore[arg-type]
    edit(manifest)
    layout["manifest.json"] = json.dumps(manifest).encode()
    return _tar(env, layout)


def _raw_layer(members: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            if isinstance(m, tuple):
                tf.addfile(m[0], io.BytesIO(m[1]))
            else:
                tf.addfile(m)
    return buf.getvalue()


def _file(name: str, data: bytes = PAYLOAD.encode()) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _layer_image(env: Env, raw: bytes) -> Path:
    """A docker-archive whose second layer is ``raw`` (a valid base layer comes first)."""
    base = make_image([{"etc/base": b"base"}], [""])
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [digest(base.raw_layers[0]), digest(raw)]}}).encode()
    img = Image([base.raw_layers[0], raw], [base.raw_layers[0], raw], ["", ""], config)
    return _tar(env, docker_layout([(img, ["evil:1"])]))


# -- the cases -----------------------------------------------------------------------------
# Each returns (archive, exception type, a fragment the message must contain).

def manifest_parent_layer_path(env: Env) -> tuple[Path, type[Exception], str]:
    def edit(m: list[dict]) -> None:  # type: ignore[type-arg]
        m[0]["Layers"] = ["../../outside/layer.tar"]
    return _docker_with(env, edit), ImageFormatError, "'../../outside/layer.tar'"


def manifest_absolute_layer_path(env: Env) -> tuple[Path, type[Exception], str]:
    def edit(m: list[dict]) -> None:  # type: ignore[type-arg]
        m[0]["Layers"] = [str(env.outside / "secret")]
    return _docker_with(env, edit), ImageFormatError, str(env.outside / "secret")


def manifest_config_traversal(env: Env) -> tuple[Path, type[Exception], str]:
    def edit(m: list[dict]) -> None:  # type: ignore[type-arg]
        m[0]["Config"] = "blobs/../../../etc/passwd"
    return _docker_with(env, edit), ImageFormatError, "blobs/../../../etc/passwd"


def manifest_layer_not_a_string(env: Env) -> tuple[Path, type[Exception], str]:
    def edit(m: list[dict]) -> None:  # type: ignore[type-arg]
        m[0]["Layers"] = [{"path": "x"}]
    return _docker_with(env, edit), ImageFormatError, "Layers[0]"


def docker_config_digest_mismatch(env: Env) -> tuple[Path, type[Exception], str]:
    img = make_image([{"etc/x": b"x"}])
    layout = docker_layout([(img, ["evil:1"])])
    name = f"{img.id[7:]}.json"
    cfg = json.loads(layout[name])  # type: ignore[arg-type]
    cfg["config"]["Cmd"] = ["/bin/evil"]        # changed after the name was computed
    layout[name] = json.dumps(cfg).encode()
    return _tar(env, layout), DigestMismatch, name


def docker_layer_symlink_out_of_archive(env: Env) -> tuple[Path, type[Exception], str]:
    img = make_image([{"etc/x": b"x"}])
    layout = docker_layout([(img, ["evil:1"])])
    path = f"{digest(img.raw_layers[0])[7:]}/layer.tar"
    layout[path] = Sym("../../../../etc/shadow")
    return _tar(env, layout), ImageFormatError, "../../../../etc/shadow"


def docker_layer_absolute_symlink(env: Env) -> tuple[Path, type[Exception], str]:
    img = make_image([{"etc/x": b"x"}])
    layout = docker_layout([(img, ["evil:1"])])
    layout[f"{digest(img.raw_layers[0])[7:]}/layer.tar"] = Sym(str(env.outside / "secret"))
    return _tar(env, layout), ImageFormatError, str(env.outside / "secret")


def docker_layer_hardlink_out_of_archive(env: Env) -> tuple[Path, type[Exception], str]:
    img = make_image([{"etc/x": b"x"}])
    layout = docker_layout([(img, ["evil:1"])])
    path = f"{digest(img.raw_layers[0])[7:]}/layer.tar"
    del layout[path]
    buf = io.BytesIO(to_tar(layout))
    with tarfile.open(fileobj=buf, mode="a") as tf:
        tf.addfile(_link(path, "../outside/secret", tarfile.LNKTYPE))
    archive = env.tmp / "evil.tar"
    archive.write_bytes(buf.getvalue())
    return archive, ImageFormatError, "../outside/secret"


def duplicate_manifest(env: Env) -> tuple[Path, type[Exception], str]:
    img = make_image([{"etc/x": b"x"}])
    layout = docker_layout([(img, ["evil:1"])])
    data = to_tar(layout)
    buf = io.BytesIO(data)
    with tarfile.open(fileobj=buf, mode="a") as tf:
        info, payload = _file("manifest.json", b"[]")
        tf.addfile(info, io.BytesIO(payload))
    archive = env.tmp / "evil.tar"
    archive.write_bytes(buf.getvalue())
    return archive, ImageFormatError, "manifest.json occurs more than once"


def index_digest_traversal(env: Env) -> tuple[Path, type[Exception], str]:
    layout = oci_layout([{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "digest": "sha256:../../../../etc/passwd", "size": 10}], [])
    return _tar(env, layout), ImageFormatError, "sha256:../../../../etc/passwd"


def index_unsupported_digest(env: Env) -> tuple[Path, type[Exception], str]:
    layout = oci_layout([{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "digest": "md5:" + "0" * 32, "size": 10}], [])
    return _tar(env, layout), ImageFormatError, "md5:"


def layer_digest_traversal(env: Env) -> tuple[Path, type[Exception], str]:
    img = make_image([{"etc/x": b"x"}])
    m = json.loads(oci_manifest(img))
    m["layers"][0]["digest"] = "sha256:" + "../" * 10 + "etc/shadow"
    mb = json.dumps(m).encode()
    layout = oci_layout([{"mediaType": m["mediaType"], "digest": digest(mb), "size": len(mb)}],
                        [mb, img.config])
    return _tar(env, layout), ImageFormatError, "etc/shadow"


def oci_layer_blob_mismatch(env: Env) -> tuple[Path, type[Exception], str]:
    img = make_image([{"etc/x": b"x"}])
    desc, blobs = oci_entry(img)
    layout = oci_layout([desc], blobs)
    name = f"blobs/sha256/{digest(img.blobs[0])[7:]}"
    layout[name] = img.blobs[0][:-8] + b"tampered"      # same size, other content
    return _tar(env, layout), DigestMismatch, name


def oci_manifest_blob_mismatch(env: Env) -> tuple[Path, type[Exception], str]:
    img = make_image([{"etc/x": b"x"}])
    desc, blobs = oci_entry(img)
    layout = oci_layout([desc], blobs)
    name = f"blobs/sha256/{desc['digest'][7:]}"
    m = json.loads(layout[name])  # type: ignore[arg-type]
    m["annotations"] = {"evil": "yes"}
    layout[name] = json.dumps(m).encode()
    return _tar(env, layout), DigestMismatch, name


def oci_config_digest_mismatch(env: Env) -> tuple[Path, type[Exception], str]:
    img = make_image([{"etc/x": b"x"}])
    desc, blobs = oci_entry(img)
    layout = oci_layout([desc], blobs)
    name = f"blobs/sha256/{img.id[7:]}"
    layout[name] = img.config.replace(b'"sh"', b'"ev"')
    return _tar(env, layout), DigestMismatch, name


def oci_diff_id_mismatch(env: Env) -> tuple[Path, type[Exception], str]:
    img = make_image([{"etc/x": b"x"}], diff_ids=[digest(b"not this layer")])
    desc, blobs = oci_entry(img)
    return (_tar(env, oci_layout([desc], blobs)), DigestMismatch,
            f"blobs/sha256/{digest(img.blobs[0])[7:]}")


def oci_dir_blob_symlink_outside(env: Env) -> tuple[Path, type[Exception], str]:
    # The symlink's name is the digest of the file it points at, so only
    # refusing to follow it keeps us from reading outside the layout.
    secret = (env.outside / "secret").read_bytes()
    img = make_image([{"etc/x": b"x"}])
    desc, blobs = oci_entry(img)
    d = to_dir(oci_layout([desc], blobs), env.tmp / "evil-dir")
    m = json.loads((d / "blobs" / "sha256" / desc["digest"][7:]).read_bytes())
    m["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": digest(secret), "size": len(secret)})
    mb = json.dumps(m).encode()
    (d / "blobs" / "sha256" / digest(mb)[7:]).write_bytes(mb)
    (d / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": m["mediaType"], "digest": digest(mb), "size": len(mb)}]}))
    (d / "blobs" / "sha256" / digest(secret)[7:]).symlink_to(env.outside / "secret")
    return d, ImageFormatError, digest(secret)[7:]


def oci_dir_blobs_dir_symlink(env: Env) -> tuple[Path, type[Exception], str]:
    img = make_image([{"etc/x": b"x"}])
    desc, blobs = oci_entry(img)
    real = to_dir(oci_layout([desc], blobs), env.outside / "real-layout")
    d = env.tmp / "evil-dir"
    d.mkdir()
    for name in ("oci-layout", "index.json"):
        (d / name).write_bytes((real / name).read_bytes())
    (d / "blobs").symlink_to(real / "blobs")
    return d, ImageFormatError, "blobs is a symlink"


def oci_dir_fifo_blob(env: Env) -> tuple[Path, type[Exception], str]:
    img = make_image([{"etc/x": b"x"}])
    desc, blobs = oci_entry(img)
    d = to_dir(oci_layout([desc], blobs), env.tmp / "evil-dir")
    blob = d / "blobs" / "sha256" / digest(img.blobs[0])[7:]
    blob.unlink()
    os.mkfifo(blob)              # reading it would block forever
    return d, ImageFormatError, "not a regular file"


def oci_dir_huge_index(env: Env) -> tuple[Path, type[Exception], str]:
    d = env.tmp / "evil-dir"
    d.mkdir()
    (d / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    with open(d / "index.json", "wb") as f:
        f.truncate(1 << 30)      # sparse: a 1 GiB "index" we must not read
    return d, ImageFormatError, "index.json"


def deeply_nested_index(env: Env) -> tuple[Path, type[Exception], str]:
    img = make_image([{"etc/x": b"x"}])
    desc, blobs = oci_entry(img)
    for _ in range(6):
        idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                          "manifests": [{**desc, "platform": {"os": "linux", "architecture": "amd64"}}]
                          }).encode()
        blobs.append(idx)
        desc = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest(idx),
                "size": len(idx)}
    return _tar(env, oci_layout([desc], blobs)), ImageFormatError, "nested too deeply"


def unsupported_layer_media_type(env: Env) -> tuple[Path, type[Exception], str]:
    img = make_image([{"etc/x": b"x"}])
    m = oci_manifest(img, ["application/vnd.oci.image.layer.v1.tar+gzip+encrypted"])
    layout = oci_layout([{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "digest": digest(m), "size": len(m)}], [m, img.config, *img.blobs])
    return _tar(env, layout), ImageFormatError, "+encrypted"


def layer_parent_traversal(env: Env) -> tuple[Path, type[Exception], str]:
    raw = _raw_layer([_file(f"../../../../outside/{PAYLOAD}")])
    return _layer_image(env, raw), ImageFormatError, f"../../../../outside/{PAYLOAD}"


def layer_write_through_relative_symlink(env: Env) -> tuple[Path, type[Exception], str]:
    raw = _raw_layer([_link("esc", "../../../../outside"), _file(f"esc/{PAYLOAD}")])
    return _layer_image(env, raw), ImageFormatError, f"esc/{PAYLOAD}"


def layer_write_through_absolute_symlink(env: Env) -> tuple[Path, type[Exception], str]:
    raw = _raw_layer([_link("abs", str(env.outside)), _file(f"abs/{PAYLOAD}")])
    return _layer_image(env, raw), ImageFormatError, f"abs/{PAYLOAD}"


def layer_hardlink_outside(env: Env) -> tuple[Path, type[Exception], str]:
    raw = _raw_layer([_link("stolen", "../../../../outside/secret", tarfile.LNKTYPE)])
    return _layer_image(env, raw), ImageFormatError, "stolen"


def layer_hardlink_absolute(env: Env) -> tuple[Path, type[Exception], str]:
    raw = _raw_layer([_link("stolen", str(env.outside / "secret"), tarfile.LNKTYPE)])
    return _layer_image(env, raw), ImageFormatError, "stolen"


def layer_hardlink_through_symlink(env: Env) -> tuple[Path, type[Exception], str]:
    raw = _raw_layer([_link("esc", str(env.outside)), _link("stolen", "esc/secret", tarfile.LNKTYPE)])
    return _layer_image(env, raw), ImageFormatError, "stolen"


def layer_bare_whiteout(env: Env) -> tuple[Path, type[Exception], str]:
    raw = _raw_layer([_file("etc/.wh.", b"")])
    return _layer_image(env, raw), ImageFormatError, "etc/.wh."


def layer_whiteout_through_symlink(env: Env) -> tuple[Path, type[Exception], str]:
    raw = _raw_layer([_link("esc", str(env.outside)), _file("esc/.wh.secret", b"")])
    return _layer_image(env, raw), ImageFormatError, "esc/.wh.secret"


CASES: list[Case] = [
    manifest_parent_layer_path, manifest_absolute_layer_path, manifest_config_traversal,
    manifest_layer_not_a_string, docker_config_digest_mismatch, docker_layer_symlink_out_of_archive,
    docker_layer_absolute_symlink, docker_layer_hardlink_out_of_archive, duplicate_manifest,
    index_digest_traversal, index_unsupported_digest, layer_digest_traversal,
    oci_layer_blob_mismatch, oci_manifest_blob_mismatch, oci_config_digest_mismatch,
    oci_diff_id_mismatch, oci_dir_blob_symlink_outside, oci_dir_blobs_dir_symlink,
    oci_dir_fifo_blob, oci_dir_huge_index, deeply_nested_index, unsupported_layer_media_type,
    layer_parent_traversal, layer_write_through_relative_symlink,
    layer_write_through_absolute_symlink, layer_hardlink_outside, layer_hardlink_absolute,
    layer_hardlink_through_symlink, layer_bare_whiteout, layer_whiteout_through_symlink,
]


def _outside_state(outside: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(outside)): (p.lstat().st_mode, p.read_bytes() if p.is_file() else b"")
            for p in outside.rglob("*")}


@pytest.mark.timeout(60)      # a FIFO blob or a huge index must not hang the load
@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_hostile_archive_is_refused_and_leaves_nothing(tmp_path: Path, case: Case) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"host secret\n")
    engine = Engine(tmp_path / "root")
    try:
        good = _good()
        desc, blobs = oci_entry(good, {"io.containerd.image.name": "good:1"})
        engine.load(to_dir(oci_layout([desc], blobs), tmp_path / "good"))
        env = Env(tmp_path, outside, engine)
        source, exc_type, fragment = case(env)

        before_store = store_snapshot(engine.paths.root)
        before_outside = _outside_state(outside)
        before_rows = {t: engine.db.query(f"SELECT * FROM {t}") for t in
                       ("images", "layers", "image_layers", "tags")}
        before_events = len(engine.db.query("SELECT * FROM events"))

        with pytest.raises(exc_type) as err:
            engine.load(source)
        assert fragment in str(err.value), str(err.value)

        assert {t: engine.db.query(f"SELECT * FROM {t}") for t in before_rows} == before_rows
        assert len(engine.db.query("SELECT * FROM events")) == before_events
        assert store_snapshot(engine.paths.root) == before_store
        assert _outside_state(outside) == before_outside
        assert not list(tmp_path.rglob(f"*{PAYLOAD}*"))
        assert not Path("/", PAYLOAD).exists() and not Path("/tmp", PAYLOAD).exists()
        # The image that was there before is untouched.
        assert [i.repo_tags for i in engine.images()] == [("good:1",)]
        assert_files(engine, good.id, good.files)
    finally:
        engine.close()


def test_absolute_entry_names_stay_inside_the_layer(engine: Engine, tmp_path: Path) -> None:
    """Absolute names are not an escape: like Docker, the leading / is dropped."""
    name = f"/tmp/{PAYLOAD}-abs"
    raw = _raw_layer([_file(name)])
    env = Env(tmp_path, tmp_path, engine)
    [info] = engine.load(_layer_image(env, raw))
    assert (engine.image_store.lower_dirs(info.id)[0] / name.lstrip("/")).read_bytes() == \
        PAYLOAD.encode()
    assert not Path(name).exists()
