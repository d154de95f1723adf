"""Build small real images (OCI layouts) in tests, without any tool."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path


def layer_tar(files: dict[str, bytes], *, mode: int = 0o644) -> bytes:
    """An uncompressed layer tar holding ``files`` (parent dirs added)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        dirs: set[str] = set()
        for name in sorted(files):
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    ti = tarfile.TarInfo(d)
                    ti.type = tarfile.DIRTYPE
                    ti.mode = 0o755
                    ti.mtime = 1700000000
                    tf.addfile(ti)
            ti = tarfile.TarInfo(name)
            ti.size = len(files[name])
            ti.mode = mode
            ti.mtime = 1700000000
            tf.addfile(ti, io.BytesIO(files[name]))
    return buf.getvalue()


def _put(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return "sha256:" + digest


def oci_image(layout: Path, layers: list[dict[str, bytes]], *, arch: str = "amd64",
              cmd: list[str] | None = None) -> dict:  # type: ignore[type-arg]
    """Write one image's blobs into ``layout``; return its manifest descriptor."""
    diff_ids, descs = [], []
    for files in layers:
        raw = layer_tar(files)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        gz = gzip.compress(raw, mtime=0)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": _put(layout, gz), "size": len(gz)})
    config = json.dumps({
        "created": "2024-01-02T03:04:05.123456789Z", "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": cmd or ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _put(layout, config), "size": len(config)},
        "layers": descs}).encode()
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": _put(layout, manifest), "size": len(manifest),
            "platform": {"os": "linux", "architecture": arch}}


def oci_layout(layout: Path, images: list[dict], tag: str) -> Path:  # type: ignore[type-arg]
    """Finish an OCI layout whose index names ``images`` under ``tag``.

    Several images become one nested image index (a multi-arch image).
    """
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    if len(images) == 1:
        top = dict(images[0])
    else:
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": images}).encode()
        top = {"mediaType": "application/vnd.oci.image.index.v1+json",
               "digest": _put(layout, index), "size": len(index)}
    top.pop("platform", None)
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return layout
