"""Named volumes: directories under ``<root>/volumes/<name>/_data`` that outlive containers.

Docker's ``local`` driver without options, which is a plain directory the
container gets bind-mounted. The ``volumes`` table holds what a volume is;
``container_volumes`` holds which containers use it, so a volume in use is
never removed. Every create and removal records its ``volume`` event in the
same transaction, and a file lock (``volumes``) orders them between
processes.

As in Docker, a volume created without a name gets a random 64-hex name and
the ``com.docker.volume.anonymous`` label; ``prune`` removes only those
unless asked for all unused volumes.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

from .errors import InUse, InvalidArgument, NameConflict, NoSuchVolume
from .paths import Paths
from .records import VolumeInfo
from .state import FileLock, Store

DRIVER = "local"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
# Docker's rule for local volume names (moby daemon/names: RestrictedNamePattern).
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
LIST_FILTERS = ("dangling", "driver", "label", "name")
PRUNE_FILTERS = ("label", "label!")


def check_name(name: str) -> str:
    """Validate a volume name by Docker's rule.

    Raises:
        InvalidArgument: too short, or characters a local volume name cannot have.
    """
    if len(name) < 2:
        raise InvalidArgument(f"volume name {name!r} is too short",
                              hint="names need at least two characters: letters, digits, _ . -")
    if not _NAME.fullmatch(name):
        raise InvalidArgument(
            f"{name!r} includes invalid characters for a local volume name, only "
            "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed",
            hint="to mount a host directory, give an absolute path: -v /host/dir:/path")
    return name


def parse_filters(filters: Iterable[str], allowed: tuple[str, ...]) -> dict[str, list[str]]:
    """``["label=a", "label=b=c", "dangling=true"]`` -> ``{"label": ["a", "b=c"], ...}``.

    Raises:
        InvalidArgument: not ``key=value``, or a key not in ``allowed``.
    """
    out: dict[str, list[str]] = {}
    for f in filters:
        key, sep, value = f.partition("=")       # "label!=x" gives the key "label!"
        if not sep:
            raise InvalidArgument(f"bad filter {f!r}", hint="filters look like key=value")
        if key not in allowed:
            shown = ", ".join(k.replace("!", "!=") if k.endswith("!") else k + "=" for k in allowed)
            raise InvalidArgument(f"unknown volume filter {key!r}", hint=f"use {shown}")
        out.setdefault(key, []).append(value)
    return out


def _label_matches(labels: Mapping[str, str], spec: str) -> bool:
    k, sep, v = spec.partition("=")
    return k in labels and (not sep or labels[k] == v)


def _bool(value: str, key: str) -> bool:
    v = value.lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise InvalidArgument(f"bad {key} filter {value!r}", hint=f"use {key}=true or {key}=false")


def dir_size(path: Path) -> int:
    """Apparent bytes of the files under ``path``; hard links once, symlinks not followed."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(Path(entry.path))
            elif st.st_nlink < 2 or (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


class VolumeStore:
    """Named volumes in the state database and under ``<root>/volumes``."""

    def __init__(self, db: Store, paths: Paths) -> None:
        self.db = db
        self.paths = paths

    def _lock(self) -> FileLock:
        # The same lock file as EngineBase.lock("volumes"), so a facade
        # holding it and this store never interleave.
        return FileLock(self.paths.locks, "volumes")

    def dir(self, name: str) -> Path:
        """``<root>/volumes/<name>``; the data is in its ``_data``."""
        return self.paths.volumes / name

    def data_dir(self, name: str) -> Path:
        """Where a volume's content lives (what containers mount)."""
        return self.dir(name) / "_data"

    # -- reading ---------------------------------------------------------------------
    def _info(self, row: Mapping[str, object]) -> VolumeInfo:
        name = str(row["name"])
        return VolumeInfo(
            name=name, driver=str(row["driver"]), mountpoint=str(self.data_dir(name)),
            created=datetime.fromtimestamp(int(row["created_ns"]) / 1e9, timezone.utc),  # type: ignore[call-overload]
            labels=json.loads(str(row["labels_json"])))

    def get(self, name: str) -> VolumeInfo:
        """One volume by name.

        Raises:
            NoSuchVolume: no volume has that name.
        """
        row = self.db.one("SELECT * FROM volumes WHERE name=?", (name,))
        if row is None:
            raise NoSuchVolume(name)
        return self._info(row)

    def exists(self, name: str) -> bool:
        return self.db.one("SELECT 1 FROM volumes WHERE name=?", (name,)) is not None

    def users(self, name: str) -> list[str]:
        """Names of the containers that use the volume, sorted."""
        return [r["name"] for r in self.db.query(
            "SELECT c.name FROM container_volumes cv JOIN containers c ON c.id = cv.container_id "
            "WHERE cv.volume=? ORDER BY c.name", (name,))]

    def list(self, filters: Iterable[str] = ()) -> list[VolumeInfo]:
        """Volumes sorted by name, filtered as ``docker volume ls --filter``.

        Args:
            filters: ``dangling=true|false`` (used by no container), ``name=<regex>``,
                ``label=<key>[=<value>]``, ``driver=<name>``. Several values of
                one key match any of them; different keys must all match.

        Raises:
            InvalidArgument: an unknown or malformed filter.
        """
        by_key = parse_filters(filters, LIST_FILTERS)
        for v in by_key.get("dangling", ()):
            _bool(v, "dangling")
        used = {r["volume"] for r in self.db.query("SELECT DISTINCT volume FROM container_volumes")}
        out = []
        for row in self.db.query("SELECT * FROM volumes ORDER BY name"):
            info = self._info(row)
            if all(_matches(info, key, values, used) for key, values in by_key.items()):
                out.append(info)
        return out

    # -- creating ----------------------------------------------------------------------
    def create(self, name: str | None = None, *, labels: Mapping[str, str] | None = None,
               driver: str = DRIVER, options: Mapping[str, str] | None = None) -> VolumeInfo:
        """Create a volume (``docker volume create``); an existing name is returned as is.

        Args:
            name: the name; None picks a random 64-hex one and marks the
                volume anonymous.
            labels: metadata labels.
            driver: only ``local``.
            options: driver options; the local driver here takes none.

        Returns:
            The volume (the existing one if ``name`` is taken by a local volume,
            as Docker does).

        Raises:
            InvalidArgument: a bad name, another driver, or driver options.
            NameConflict: the name is taken by a volume of another driver.
        """
        if driver != DRIVER:
            raise InvalidArgument(f"volume driver {driver!r} is not available",
                                  hint="portside has the local driver only: --driver local")
        if options:
            raise InvalidArgument(
                f"volume option {next(iter(options))!r} is not supported",
                hint="local volumes here are plain directories; for tmpfs use --tmpfs on run")
        labels = dict(labels or {})
        if name is None:
            name = secrets.token_hex(32)
            labels.setdefault(ANONYMOUS_LABEL, "")
        check_name(name)
        with self._lock():
            row = self.db.one("SELECT * FROM volumes WHERE name=?", (name,))
            if row is not None:
                if row["driver"] != driver:
                    raise NameConflict(f"a volume named {name} already exists with the "
                                       f"{row['driver']} driver",
                                       hint="choose another name or remove that volume")
                self.data_dir(name).mkdir(parents=True, exist_ok=True)
                return self._info(row)
            self._make_dirs(name)
            with self.db.tx() as c:
                c.execute("INSERT INTO volumes(name, driver, labels_json, created_ns) "
                          "VALUES (?,?,?,?)", (name, driver, json.dumps(labels), time.time_ns()))
                self.db.add_event(c, "volume", "create", name, {"driver": driver})
            return self.get(name)

    def _make_dirs(self, name: str) -> None:
        d = self.dir(name)
        # The volume dir is only traversable, as Docker makes it: other host
        # users must not list volumes' contents through it.
        d.mkdir(mode=0o701, parents=True, exist_ok=True)
        os.chmod(d, 0o701)
        self.data_dir(name).mkdir(mode=0o755, exist_ok=True)

    def ensure(self, name: str) -> Path:
        """The data dir of volume ``name``, creating the volume if needed (``run -v name:/path``).

        Raises:
            InvalidArgument: a bad name.
        """
        check_name(name)
        with self._lock():
            if self.exists(name):
                d = self.data_dir(name)
                d.mkdir(parents=True, exist_ok=True)   # recreate if removed by hand
                return d
            return Path(self.create(name).mountpoint)

    # -- removing --------------------------------------------------------------------------
    def remove(self, name: str, *, force: bool = False) -> bool:
        """Remove a volume and its data (``docker volume rm``).

        Args:
            force: a missing volume is not an error (as ``docker volume rm -f``).
                It does not remove a volume in use.

        Returns:
            True if a volume was removed.

        Raises:
            NoSuchVolume: no such volume (without ``force``).
            InUse: a container uses it; the message names the containers.
        """
        with self._lock():
            if not self.exists(name):
                if force:
                    return False
                raise NoSuchVolume(name)
            self._remove_unused(name)
            return True

    def _remove_unused(self, name: str) -> bool:
        # The data goes to a trash dir first (a rename, atomic), so a failed
        # transaction can put it back and a crash leaves no half-deleted volume.
        src = self.dir(name)
        trash = self.paths.tmp / f"volume-rm-{uuid.uuid4().hex}"
        moved = False
        try:
            with self.db.tx() as c:
                users = self.users(name)
                if users:
                    raise InUse(f"volume {name} is in use by container {', '.join(users)}",
                                hint="remove the container first (portside rm), then the volume")
                if c.execute("DELETE FROM volumes WHERE name=?", (name,)).rowcount == 0:
                    return False
                if src.exists():
                    self.paths.tmp.mkdir(parents=True, exist_ok=True)
                    os.rename(src, trash)
                    moved = True
                self.db.add_event(c, "volume", "destroy", name, {"driver": DRIVER})
        except BaseException:
            if moved:
                os.rename(trash, src)
            raise
        if moved:
            shutil.rmtree(trash, ignore_errors=True)
        return True

    def prune(self, *, all: bool = False, filters: Iterable[str] = ()) -> tuple[list[str], int]:
        """Remove volumes no container uses (``docker volume prune``).

        Args:
            all: every unused volume; by default only anonymous ones (Docker 23+).
            filters: ``label=<key>[=<value>]`` and ``label!=<key>[=<value>]``.

        Returns:
            The removed names (sorted) and the bytes their data held.

        Raises:
            InvalidArgument: an unknown or malformed filter.
        """
        by_key = parse_filters(filters, PRUNE_FILTERS)
        removed: list[str] = []
        freed = 0
        with self._lock():
            for info in self.list(["dangling=true"]):
                if not all and ANONYMOUS_LABEL not in info.labels:
                    continue
                if not _all_match(info.labels, by_key.get("label", ()), True):
                    continue
                if not _all_match(info.labels, by_key.get("label!", ()), False):
                    continue
                size = dir_size(self.data_dir(info.name))
                try:
                    gone = self._remove_unused(info.name)
                except InUse:
                    continue          # a container took it meanwhile
                if gone:
                    removed.append(info.name)
                    freed += size
        return removed, freed


def _all_match(labels: Mapping[str, str], specs: Iterable[str], want: bool) -> bool:
    """Every ``label`` spec matches (``want``) or none does (``label!=``)."""
    return all(_label_matches(labels, s) == want for s in specs)


def _matches(info: VolumeInfo, key: str, values: list[str], used: set[str]) -> bool:
    if key == "dangling":
        return any(_bool(v, key) == (info.name not in used) for v in values)
    if key == "driver":
        return info.driver in values
    if key == "label":
        return any(_label_matches(info.labels, v) for v in values)
    # name: Docker matches a regular expression anywhere in the name.
    for v in values:
        try:
            if re.search(v, info.name):
                return True
        except re.error:
            if v in info.name:
                return True
    return False
