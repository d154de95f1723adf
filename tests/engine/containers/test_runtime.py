"""The runtime adapter against a recording fake runtime, and the probe's choice."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from engine.containers import runtime as rtmod
from engine.containers.runtime import Runtime, runtime_error_text
from engine.errors import RuntimeFailure
from engine.paths import Paths
from engine.state import Store


def fake_runtime(tmp_path: Path, script: str) -> Runtime:
    exe = tmp_path / "fakerun"
    exe.write_text("#!/bin/sh\necho \"$@\" >> " + str(tmp_path / "calls") + "\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return Runtime("fakerun", str(exe), tmp_path / "state")


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls").read_text().splitlines()


def test_every_call_carries_the_root(tmp_path: Path) -> None:
    rt = fake_runtime(tmp_path, "exit 0\n")
    rt.start("c1")
    rt.kill("c1", "TERM", all=True)
    rt.delete("c1", force=True)
    rt.create("c1", tmp_path / "b", tmp_path / "pid")
    root = f"--root {tmp_path / 'state'}"
    assert calls(tmp_path) == [f"{root} start c1", f"{root} kill --all c1 TERM",
                               f"{root} delete --force c1",
                               f"{root} create --bundle {tmp_path / 'b'} --pid-file {tmp_path / 'pid'} c1"]


def test_gone_containers_are_not_errors(tmp_path: Path) -> None:
    rt = fake_runtime(tmp_path, 'echo \'time="x" level=error msg="container does not exist"\' >&2\nexit 1\n')
    assert rt.kill("c1", "KILL") is False
    rt.delete("c1")
    assert rt.state("c1") is None


def test_other_errors_are_raised_with_the_runtime_message(tmp_path: Path) -> None:
    rt = fake_runtime(tmp_path, 'echo \'time="x" level=error msg="permission \\"denied\\""\' >&2\nexit 1\n')
    with pytest.raises(RuntimeFailure, match='permission "denied"'):
        rt.start("c1")


def test_state_and_ps_parse_json(tmp_path: Path) -> None:
    rt = fake_runtime(tmp_path, 'case "$3" in state) echo \'{"status":"running","pid":42}\';; '
                                'ps) echo "[42,43]";; esac\n')
    assert rt.state("c1") == {"status": "running", "pid": 42}
    assert rt.ps("c1") == [42, 43]


def test_error_text_forms() -> None:
    assert runtime_error_text('time="t" level=error msg="a \\"b\\""\n') == 'a "b"'
    assert runtime_error_text(json.dumps({"level": "error", "msg": "j"})) == "j"
    assert runtime_error_text("plain\n\n") == "plain"


def test_env_override_and_remembered_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = Paths(root=tmp_path / "root", run=tmp_path / "run")
    paths.ensure()
    db = Store(paths.db)
    rt = fake_runtime(tmp_path, "exit 0\n")
    assert rtmod.select(db, paths, env={"PORTSIDE_RUNTIME": rt.path}).path == rt.path
    with pytest.raises(RuntimeFailure, match="not found"):
        rtmod.select(db, paths, env={"PORTSIDE_RUNTIME": "no-such-runtime-xyz"})
    db.set_setting("runtime", rt.path)
    chosen = rtmod.select(db, paths, env={})
    assert chosen.path == rt.path and chosen.root == paths.run / "runtime-fakerun"


def test_probe_prefers_crun_only_if_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = Paths(root=tmp_path / "root", run=tmp_path / "run")
    paths.ensure()
    db = Store(paths.db)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, code in (("crun", 1), ("runc", 0)):
        exe = bindir / name
        exe.write_text(f"#!/bin/sh\n[ \"$3\" = run ] && echo 'msg=\"hybrid not supported\"' >&2 && exit {code}\nexit 0\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    chosen = rtmod.select(db, paths, env={})
    assert chosen.name == "runc"
    assert db.get_setting("runtime") == str(bindir / "runc")


def test_delete_in_the_background(tmp_path: Path) -> None:
    rt = fake_runtime(tmp_path, "sleep 0.2; echo 'msg=\"container does not exist\"' >&2; exit 1\n")
    finish = rt.delete_begin("c1", force=True)
    finish()                                     # a gone container is fine
    assert calls(tmp_path) == [f"--root {tmp_path / 'state'} delete --force c1"]
    bad = fake_runtime(tmp_path, "echo 'msg=\"device busy\"' >&2; exit 1\n")
    with pytest.raises(RuntimeFailure, match="device busy"):
        bad.delete_begin("c2")()
