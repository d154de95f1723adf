"""system reset on a real root: asks first, then nothing of the root is left on the host."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine import ContainerSpec, Engine
from engine.network.bridge import nft_table
from tests.conftest import REPO, need_tool

pytestmark = pytest.mark.integration


def cli(root: Path, run: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui", "--root", str(root), "--run-dir", str(run),
                           *args], capture_output=True, text=True, timeout=120, cwd=REPO, input=input)


def test_reset_asks_then_removes_everything_the_root_made(tmp_path: Path) -> None:
    for tool in ("runc", "conmon", "nft"):
        need_tool(tool)
    e = Engine(tmp_path / "root", tmp_path / "run")
    e.bootstrap_busybox()
    e.network_create("resetnet")
    e.volume_create("keepme")
    a = e.run(ContainerSpec(image="busybox", command=("sleep", "300"), network="resetnet"))
    b = e.run(ContainerSpec(image="busybox", command=("sleep", "300")))
    bridges = {n.bridge for n in e.networks()}
    conmons = [e.db.one("SELECT state_json FROM containers WHERE id=?", (c.id,))[0] for c in (a, b)]
    table = nft_table(e.paths)
    e.close()
    try:
        _ask_then_reset(e, a.id, b.id)
    finally:
        if e.paths.root.exists():          # a failed check must not leave containers running
            Engine(e.paths.root, e.paths.run).system_reset()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not any(f" {br}:" in links or f" {br}@" in links for br in bridges)
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert table not in tables
    import json
    for st in conmons:                       # gone, or a zombie waiting for init to reap it
        stat = Path(f"/proc/{json.loads(st)['conmon_pid']}/stat")
        assert not stat.exists() or stat.read_text().rsplit(") ", 1)[1].startswith("Z")


def _ask_then_reset(e: Engine, *ids: str) -> None:
    no = cli(e.paths.root, e.paths.run, "system", "reset", input="n\n")
    assert no.returncode == 0, no.stderr
    listed = Engine(e.paths.root, e.paths.run)
    assert {c.id for c in listed.containers()} == set(ids)
    listed.close()
    yes = cli(e.paths.root, e.paths.run, "system", "reset", input="y\n")
    assert yes.returncode == 0, yes.stderr
    assert not e.paths.root.exists() and not e.paths.run.exists()
    assert str(e.paths.root.parent) not in Path("/proc/self/mountinfo").read_text()
