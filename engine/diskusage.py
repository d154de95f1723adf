"""Disk usage of images, containers and volumes (``system df``).

Image sizes come from the layer table (a layer shared by several images is
counted once in the totals, and as "shared" per image); container and
volume sizes are measured on disk, as Docker does, by walking the
container's writable layer and the volume's ``_data`` directory.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone

from .containers.model import StoredConfig
from .images.store import ImageStore
from .paths import Paths
from .records import (ContainerUsage, DiskUsage, ImageUsage, UsageSummary, VolumeUsage)
from .state import Store
from .volumes import dir_size

ACTIVE_STATUSES = ("running", "paused", "restarting")


def _time(ns: int) -> datetime | None:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc) if ns else None


def image_usage(db: Store, images: ImageStore) -> tuple[list[ImageUsage], UsageSummary]:
    """Per-image sizes and the Images row of ``system df``."""
    layers_of: dict[str, list[tuple[str, int]]] = defaultdict(list)
    users_of_layer: dict[str, int] = defaultdict(int)
    for row in db.query("SELECT il.image_id, l.chain_id, l.size FROM image_layers il "
                        "JOIN layers l ON l.chain_id = il.chain_id"):
        layers_of[row["image_id"]].append((row["chain_id"], row["size"]))
        users_of_layer[row["chain_id"]] += 1
    containers_of = {r["image_id"]: r["n"] for r in db.query(
        "SELECT image_id, COUNT(*) AS n FROM containers GROUP BY image_id")}
    out: list[ImageUsage] = []
    layer_size: dict[str, int] = {}
    active_layers: set[str] = set()
    for info in images.list():
        own = layers_of.get(info.id, [])
        shared = sum(size for chain, size in own if users_of_layer[chain] > 1)
        total = sum(size for _, size in own)
        n = containers_of.get(info.id, 0)
        for chain, size in own:
            layer_size[chain] = size
            if n:
                active_layers.add(chain)
        out.append(ImageUsage(id=info.id, repo_tags=info.repo_tags, created=info.created,
                              size=total, shared_size=shared, unique_size=total - shared,
                              containers=n))
    size = sum(layer_size.values())
    reclaimable = size - sum(layer_size[c] for c in active_layers)
    summary = UsageSummary("Images", total=len(out), active=sum(1 for i in out if i.containers),
                           size=size, reclaimable=reclaimable)
    return out, summary


def container_usage(db: Store, paths: Paths) -> tuple[list[ContainerUsage], UsageSummary]:
    """Per-container writable-layer sizes and the Containers row."""
    volumes_of = {r["container_id"]: r["n"] for r in db.query(
        "SELECT container_id, COUNT(*) AS n FROM container_volumes GROUP BY container_id")}
    out: list[ContainerUsage] = []
    for row in db.query("SELECT id, name, status, image_id, config_json, created_ns "
                        "FROM containers ORDER BY created_ns DESC"):
        cfg = StoredConfig.from_json(row["config_json"])
        upper = paths.container(row["id"]) / "upper"
        out.append(ContainerUsage(
            id=row["id"], name=row["name"], image=cfg.image_ref or row["image_id"],
            command=" ".join(cfg.argv),
            created=_time(row["created_ns"]), status=row["status"], size=dir_size(upper),
            local_volumes=volumes_of.get(row["id"], 0)))
    active = [c for c in out if c.status in ACTIVE_STATUSES]
    size = sum(c.size for c in out)
    summary = UsageSummary("Containers", total=len(out), active=len(active), size=size,
                           reclaimable=size - sum(c.size for c in active))
    return out, summary


def volume_usage(db: Store, paths: Paths) -> tuple[list[VolumeUsage], UsageSummary]:
    """Per-volume sizes and users, and the Local Volumes row."""
    links = {r["volume"]: r["n"] for r in db.query(
        "SELECT volume, COUNT(*) AS n FROM container_volumes GROUP BY volume")}
    out = [VolumeUsage(name=r["name"], links=links.get(r["name"], 0),
                       size=dir_size(paths.volumes / r["name"] / "_data"))
           for r in db.query("SELECT name FROM volumes ORDER BY name")]
    size = sum(v.size for v in out)
    summary = UsageSummary("Local Volumes", total=len(out), active=sum(1 for v in out if v.links),
                           size=size, reclaimable=sum(v.size for v in out if not v.links))
    return out, summary


def disk_usage(db: Store, paths: Paths, images: ImageStore) -> DiskUsage:
    """Everything ``system df`` (and ``-v``) shows. portside keeps no build cache."""
    imgs, isum = image_usage(db, images)
    ctrs, csum = container_usage(db, paths)
    vols, vsum = volume_usage(db, paths)
    build = UsageSummary("Build Cache", total=0, active=0, size=0, reclaimable=0)
    return DiskUsage(summary=(isum, csum, vsum, build), images=tuple(imgs),
                     containers=tuple(ctrs), volumes=tuple(vols))
