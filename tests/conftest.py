"""Shared fixtures: an engine on a private temp root, root/tool checks."""
from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
from pathlib import Path
from typing import Callable, Iterator

import pytest

from engine import ContainerSpec, Engine, EngineError
from engine.paths import Paths

REPO = Path(__file__).resolve().parent.parent


# -- bridges -------------------------------------------------------------------------
# A network's bridge stays up while the network exists (docker0's way), so a
# test root's bridges would outlive its test. Closing an engine in a test
# deletes the idle bridges of its root; at the end of the session each
# worker does the same for every root it opened or that a CLI run made
# under its temp dir. Only this worker's roots: the other worker's bridges
# may be in use.

_ROOTS: dict[Path, Paths] = {}         # state.db -> paths, of every root this process opened
_OPEN: dict[Path, int] = {}            # engines open on each root (a test may open two)


def idle_bridges(db: Path) -> list[str]:
    """Bridges of the root whose state database is ``db`` that no container uses."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return []
    try:
        return [r[0] for r in conn.execute(
            "SELECT bridge FROM networks WHERE id NOT IN (SELECT network_id FROM network_endpoints)")]
    except sqlite3.Error:
        return []              # no network table yet
    finally:
        conn.close()


def drop_idle_bridges(paths: Paths) -> list[str]:
    """Delete the idle bridges of one root, under its network lock; returns their names.

    Best effort, never raising: a process still using the root (an exit
    hook, a CLI) takes the same lock, and a bridge it needs again is made again.
    """
    from engine.network import netlink
    from engine.state import FileLock
    gone: list[str] = []
    if not paths.locks.is_dir():
        return gone            # the run dir is gone (system reset): so are its bridges
    lock = FileLock(paths.locks, "network")
    lock.acquire()
    try:
        for b in idle_bridges(paths.db):
            if os.path.exists(f"/sys/class/net/{b}"):
                try:
                    netlink.delete_link(b)
                    gone.append(b)
                except EngineError:
                    pass
    finally:
        lock.release()
    return gone


_engine_init = Engine.__init__
_engine_close = Engine.close


def _recording_init(self: Engine, *args: object, **kwargs: object) -> None:
    _engine_init(self, *args, **kwargs)  # type: ignore[arg-type]
    _ROOTS[self.paths.db] = self.paths
    _OPEN[self.paths.db] = _OPEN.get(self.paths.db, 0) + 1
    self._test_open = True  # type: ignore[attr-defined]


def _close_dropping_bridges(self: Engine) -> None:
    _engine_close(self)
    if not getattr(self, "_test_open", False):
        return                         # closed before (close is idempotent)
    self._test_open = False  # type: ignore[attr-defined]
    db = self.paths.db
    _OPEN[db] -= 1
    if _OPEN[db] == 0 and os.geteuid() == 0:
        drop_idle_bridges(self.paths)  # the last engine on the root is done with it


Engine.__init__ = _recording_init            # type: ignore[method-assign]
Engine.close = _close_dropping_bridges       # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session) -> None:
    if os.geteuid() != 0:
        return
    roots = dict(_ROOTS)
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        try:
            for db in factory.getbasetemp().rglob("state.db"):
                roots.setdefault(db, Paths(root=db.parent, run=db.parent / "run"))  # a CLI run's
        except OSError:
            pass
    for paths in roots.values():
        drop_idle_bridges(paths)


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
