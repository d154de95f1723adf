#!/usr/bin/env python3
"""Benchmark: load a ~200 MB five-layer image, beside ``tar -x`` and ``skopeo copy``.

Builds a deterministic image (each layer: many small compressible files plus
a few large incompressible ones, gzip layers), writes it as an OCI layout and
as a docker-archive (uncompressed ``layer.tar``, as ``docker save`` writes),
then times, in one run and on warm caches:

- ``portside load`` of the OCI layout and of the docker-archive (an
  in-process Engine on a fresh temp root each time: blobs copied into the
  store and fsynced, digests and diff ids verified, layers unpacked);
- ``tar -x`` of the same layers, uncompressed, each into its own dir (the
  floor: extraction only), and ``tar -xzf`` of the gzip layers;
- ``skopeo copy oci:... oci:...`` into a fresh OCI dir (copies and verifies
  blobs, extracts nothing).

Usage: ``python bench/load_image.py [--size-mb 200] [--layers 5] [--repeat 3]
[--workdir DIR] [--keep]`` (root is not needed). Prints a table with the
median seconds, MB/s and the ratio to ``tar -x``.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import Engine  # noqa: E402

WORDS = ("container layer image overlay digest manifest config runtime namespace cgroup "
         "volume network bridge veth route process signal exit status log line").split()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_layer(rng: random.Random, index: int, size: int) -> bytes:
    """One layer tar of about ``size`` bytes: ~40% small text files, ~60% random blobs."""
    buf = io.BytesIO()
    text_budget, blob_budget = int(size * 0.4), size - int(size * 0.4)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, data: bytes, *, directory: bool = False) -> None:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = 1700000000, 0o755 if directory else 0o644
            if directory:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        root = f"layer{index}"
        add(root, b"", directory=True)
        n = 0
        while text_budget > 0:
            d = f"{root}/pkg{n // 200:03d}"
            if n % 200 == 0:
                add(d, b"", directory=True)
            words = rng.choices(WORDS, k=rng.randint(100, 3000))
            data = " ".join(words).encode()
            add(f"{d}/file{n:05d}.txt", data)
            text_budget -= len(data)
            n += 1
        add(f"{root}/bin", b"", directory=True)
        m = 0
        while blob_budget > 0:
            chunk = min(blob_budget, rng.randint(2, 8) << 20)
            add(f"{root}/bin/blob{m:02d}.bin", rng.randbytes(chunk))
            blob_budget -= chunk
            m += 1
    return buf.getvalue()


def write_inputs(work: Path, size_mb: int, n_layers: int) -> tuple[Path, Path, list[Path], list[Path], int]:
    """Build the image; returns (oci dir, docker-archive, plain layers, gzip layers, raw bytes)."""
    rng = random.Random(42)
    oci = work / "oci"
    (oci / "blobs" / "sha256").mkdir(parents=True)
    plain_dir, gz_dir = work / "plain", work / "gz"
    plain_dir.mkdir()
    gz_dir.mkdir()
    raws: list[bytes] = []
    plain_paths, gz_paths, descs = [], [], []
    total = 0
    for i in range(n_layers):
        raw = build_layer(rng, i, (size_mb << 20) // n_layers)
        total += len(raw)
        gz = gzip.compress(raw, compresslevel=6, mtime=0)
        (plain_dir / f"layer{i}.tar").write_bytes(raw)
        (gz_dir / f"layer{i}.tar.gz").write_bytes(gz)
        (oci / "blobs" / "sha256" / _digest(gz)[7:]).write_bytes(gz)
        plain_paths.append(plain_dir / f"layer{i}.tar")
        gz_paths.append(gz_dir / f"layer{i}.tar.gz")
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": _digest(gz), "size": len(gz)})
        raws.append(raw)
    diff_ids = [_digest(r) for r in raws]
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                         "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    (oci / "blobs" / "sha256" / _digest(config)[7:]).write_bytes(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": _digest(config), "size": len(config)},
                           "layers": descs}).encode()
    (oci / "blobs" / "sha256" / _digest(manifest)[7:]).write_bytes(manifest)
    (oci / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (oci / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _digest(manifest),
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "bench/app:1"}}]}))
    archive = work / "docker-archive.tar"
    with tarfile.open(archive, "w") as tar:
        for raw_path, diff_id in zip(plain_paths, diff_ids):
            tar.add(raw_path, arcname=f"{diff_id[7:]}/layer.tar")
        info = tarfile.TarInfo(f"{_digest(config)[7:]}.json")
        info.size = len(config)
        tar.addfile(info, io.BytesIO(config))
        m = json.dumps([{"Config": f"{_digest(config)[7:]}.json", "RepoTags": ["bench/app:1"],
                         "Layers": [f"{d[7:]}/layer.tar" for d in diff_ids]}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(m)
        tar.addfile(info, io.BytesIO(m))
    return oci, archive, plain_paths, gz_paths, total


def timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def warm(paths: list[Path]) -> None:
    """Read inputs once so every contender starts from the page cache."""
    for p in paths:
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        for f in files:
            with open(f, "rb") as fh:
                while fh.read(1 << 20):
                    pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=200, help="uncompressed image size (default 200)")
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=None, help="where to build (default: a temp dir)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per contender; the median is shown")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    args = ap.parse_args()
    skopeo = shutil.which("skopeo")
    tar_exe = shutil.which("tar")
    if tar_exe is None:
        sys.exit("tar is not installed")

    work = Path(tempfile.mkdtemp(prefix="portside-bench-", dir=args.workdir))
    try:
        t_build = time.perf_counter()
        oci, archive, plain, gzs, raw_bytes = write_inputs(work, args.size_mb, args.layers)
        print(f"built {args.layers} layers, {raw_bytes / 1e6:.0f} MB uncompressed, "
              f"{sum(p.stat().st_size for p in gzs) / 1e6:.0f} MB gzip, in "
              f"{time.perf_counter() - t_build:.1f}s  ({work})", flush=True)
        warm([oci, archive, *plain, *gzs])

        def portside_load(source: Path, name: str) -> None:
            engine = Engine(work / name)
            try:
                [info] = engine.load(source)
                assert info.repo_tags == ("bench/app:1",), info.repo_tags
            finally:
                engine.close()

        def tar_x(inputs: list[Path], flags: str, name: str) -> None:
            for i, layer in enumerate(inputs):
                dest = work / f"{name}-{i}"
                dest.mkdir()
                subprocess.run([tar_exe, f"-x{flags}f", str(layer), "-C", str(dest)], check=True)

        def skopeo_copy(name: str) -> None:
            assert skopeo is not None
            subprocess.run([skopeo, "--insecure-policy", "copy", "--quiet", f"oci:{oci}:bench/app:1",
                            f"oci:{work / name}:bench/app:1"], check=True)

        contenders: list[tuple[str, Callable[[str], None]]] = [
            ("tar -x (uncompressed layers)", lambda n: tar_x(plain, "", n)),
            ("tar -xzf (gzip layers)", lambda n: tar_x(gzs, "z", n)),
            ("portside load (OCI dir, gzip)", lambda n: portside_load(oci, n)),
            ("portside load (docker-archive)", lambda n: portside_load(archive, n)),
        ]
        if skopeo:
            contenders.append(("skopeo copy oci: -> oci:", skopeo_copy))
        else:
            print("skopeo not installed: skipping (make setup installs it)", file=sys.stderr)
        # Interleaved rounds, so drift in the machine's load hits every contender alike.
        times: dict[str, list[float]] = {name: [] for name, _ in contenders}
        for r in range(args.repeat):
            for i, (name, fn) in enumerate(contenders):
                # Untimed: flush the previous run's dirty pages, so no contender
                # pays for another's writeback.
                os.sync()
                times[name].append(timed(lambda: fn(f"out-{r}-{i}")))
                for out in work.glob(f"out-{r}-{i}*"):
                    shutil.rmtree(out)
        results = [(name, statistics.median(ts)) for name, ts in times.items()]

        base = results[0][1]
        print(f"{'what':<34} {'seconds':>8} {'MB/s':>7} {'vs tar -x':>9}")
        for name, secs in results:
            print(f"{name:<34} {secs:>8.2f} {raw_bytes / 1e6 / secs:>7.0f} {secs / base:>8.2f}x")
        print(f"({raw_bytes / 1e6:.0f} MB in {args.layers} layers; median of {args.repeat} "
              "interleaved runs; warm page cache, sync before each run; portside fsyncs every blob "
              "it stores, tar and skopeo do not)")
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
