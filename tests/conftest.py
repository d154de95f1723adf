"""Shared fixtures: an engine on a private temp root, root/tool checks."""
from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest

from engine import ContainerSpec, Engine, EngineError

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Integration tests need root; as non-root they are reported as skipped
    # (never silently passed). CI runs as root, so there they always run.
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="integration test: needs root")
        for item in items:
            if "integration" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def root_dir(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def engine(root_dir: Path) -> Iterator[Engine]:
    e = Engine(root_dir)
    yield e
    e.close()


def need_tool(name: str) -> str:
    """Path of a host tool the test needs; a clear failure if `make setup` was skipped."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make setup`")
    return path


def busybox_engine(root: Path, *tools: str) -> Engine:
    """An engine on ``root`` with the built-in busybox image (runc, conmon and ``tools`` checked)."""
    for tool in ("runc", "conmon", *tools):
        need_tool(tool)
    e = Engine(root)
    e.bootstrap_busybox()
    return e


def remove_containers(engine: Engine) -> None:
    """``rm -f`` every container of ``engine``, best effort (the caller's checks report leftovers)."""
    for c in engine.containers(all=True):
        try:
            engine.rm(c.id, force=True)
        except Exception:      # noqa: BLE001 - the next one may still go
            pass


def container_maker(engine: Engine, prefix: str,
                    default: tuple[str, ...] = ("sleep", "300")) -> Iterator[Callable[..., str]]:
    """For fixtures (``yield from``): run or create busybox containers, removed afterwards.

    The maker takes ``*command`` (``default`` for busybox when empty; another
    image runs its own CMD), ``start=False`` to only create, ``image=`` and any
    ``ContainerSpec`` field; it returns the id. Names are ``<prefix><random>``.
    """
    made: list[str] = []

    def make(*command: str, image: str = "busybox", start: bool = True, **kw: object) -> str:
        kw.setdefault("name", f"{prefix}{secrets.token_hex(4)}")
        cmd = command or (default if image == "busybox" else None)
        spec = ContainerSpec(image=image, command=cmd, **kw)  # type: ignore[arg-type]
        info = engine.run(spec) if start else engine.create(spec)
        made.append(info.id)
        return info.id

    yield make
    for cid in made:
        try:
            engine.rm(cid, force=True)
        except EngineError:
            pass               # gone already (--rm, a test removed it)
