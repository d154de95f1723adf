"""`portside volume ...`: Docker's flags, columns and messages."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tui.cli import main


def run(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str, str]:
    code = main([f"--root={root}", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_create_ls_inspect_rm_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, tmp_path, "volume", "create", "data", "--label", "app=web") == (0, "data\n", "")
    code, out, _ = run(capsys, tmp_path, "volume", "create")
    anon = out.strip()
    assert code == 0 and re.fullmatch(r"[0-9a-f]{64}", anon)
    assert run(capsys, tmp_path, "volume", "create", "--name", "other")[0] == 0

    code, out, _ = run(capsys, tmp_path, "volume", "ls")
    lines = out.splitlines()
    assert code == 0 and lines[0].split("   ")[0].strip() == "DRIVER" and "VOLUME NAME" in lines[0]
    assert [ln.split()[1] for ln in lines[1:]] == sorted([anon, "data", "other"])
    assert all(ln.split()[0] == "local" for ln in lines[1:])

    assert run(capsys, tmp_path, "volume", "ls", "-q", "--filter", "label=app=web")[1] == "data\n"
    code, out, _ = run(capsys, tmp_path, "volume", "list", "--format", "json", "-f", "name=oth")
    assert json.loads(out)["Name"] == "other"

    code, out, _ = run(capsys, tmp_path, "volume", "inspect", "data")
    doc = json.loads(out)
    assert code == 0 and doc[0]["Name"] == "data" and doc[0]["Labels"] == {"app": "web"}
    assert doc[0]["Mountpoint"] == str(tmp_path / "volumes" / "data" / "_data")

    assert run(capsys, tmp_path, "volume", "rm", "data", "other") == (0, "data\nother\n", "")
    assert run(capsys, tmp_path, "volume", "ls", "-q")[1] == anon + "\n"


def test_errors_are_messages_with_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, tmp_path, "volume", "create", "bad/name")
    assert code == 125 and "invalid characters" in err and "Traceback" not in err
    code, out, err = run(capsys, tmp_path, "volume", "ls", "--filter", "colour=red")
    assert code == 125 and "unknown volume filter" in err

    run(capsys, tmp_path, "volume", "create", "keep")
    code, out, err = run(capsys, tmp_path, "volume", "inspect", "keep", "nope")
    assert code == 1 and json.loads(out)[0]["Name"] == "keep"
    assert err == "Error: no such volume: nope (try: portside volume ls)\n"

    code, out, err = run(capsys, tmp_path, "volume", "rm", "nope", "keep")
    assert code == 1 and out == "keep\n" and "no such volume: nope" in err
    assert run(capsys, tmp_path, "volume", "rm", "-f", "nope")[0] == 0


def test_rm_of_a_volume_in_use_names_the_container(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from engine import Engine
    run(capsys, tmp_path, "volume", "create", "data")
    e = Engine(tmp_path)
    with e.db.tx() as c:
        c.execute("INSERT INTO containers(id, name, image_id, status, config_json, state_json, "
                  "created_ns) VALUES ('c1', 'web', 'sha256:x', 'exited', '{}', '{}', 0)")
        c.execute("INSERT INTO container_volumes(container_id, volume) VALUES ('c1', 'data')")
    e.close()
    code, out, err = run(capsys, tmp_path, "volume", "rm", "data")
    assert code == 1 and out == ""
    assert "volume data is in use by container web" in err


def test_prune_asks_first_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    run(capsys, tmp_path, "volume", "create", "named")
    anon = run(capsys, tmp_path, "volume", "create")[1].strip()
    (tmp_path / "volumes" / anon / "_data" / "f").write_bytes(b"x" * 2000)

    # No terminal to ask on: refuses and says how to skip the question.
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, out, err = run(capsys, tmp_path, "volume", "prune")
    assert code == 0 and "anonymous local volumes" in err and "-f" in err
    assert len(run(capsys, tmp_path, "volume", "ls", "-q")[1].split()) == 2

    # Answered "n" on a terminal: nothing removed.
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    run(capsys, tmp_path, "volume", "prune")
    assert len(run(capsys, tmp_path, "volume", "ls", "-q")[1].split()) == 2

    code, out, _ = run(capsys, tmp_path, "volume", "prune", "-f")
    assert code == 0
    assert out == f"Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 2kB\n"
    code, out, _ = run(capsys, tmp_path, "volume", "prune", "-a", "-f")
    assert out.startswith("Deleted Volumes:\nnamed\n")
    assert run(capsys, tmp_path, "volume", "ls", "-q")[1] == ""
