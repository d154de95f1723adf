"""The CLI's contract: help, exit codes, messages not tracebacks, no textual."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def portside(*args: str, root: Path | None = None, user: int | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = [sys.executable, "-m", "tui"] + ([f"--root={root}"] if root else []) + list(args)
    e = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    e.pop("PORTSIDE_ROOT", None)
    return subprocess.run(full, capture_output=True, text=True, cwd=REPO, env=e, user=user,
                          timeout=60)


def test_help_lists_verbs() -> None:
    r = portside("--help")
    assert r.returncode == 0
    for verb in ("images", "load", "save", "import", "tag", "rmi", "history", "image"):
        assert f"    {verb}" in r.stdout


def test_cli_path_never_imports_textual(tmp_path: Path) -> None:
    code = ("import sys; from tui.__main__ import main; "
            f"rc = main(['--root={tmp_path}', 'images']); "
            "assert 'textual' not in sys.modules, 'textual imported'; "
            "assert 'rich' not in sys.modules, 'rich imported'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stderr


def test_engine_error_is_a_message_and_exit_125(tmp_path: Path) -> None:
    r = portside("image", "inspect", "nope:latest", root=tmp_path)
    assert r.returncode == 125
    assert r.stderr.strip() == "Error: no such image: nope:latest (try: portside images)"
    assert "Traceback" not in r.stderr


def test_bad_flag_exits_125(tmp_path: Path) -> None:
    r = portside("images", "--bogus", root=tmp_path)
    assert r.returncode == 125
    assert "unrecognized arguments" in r.stderr


def test_bad_reference_is_explained(tmp_path: Path) -> None:
    r = portside("tag", "x", "UPPER:case", root=tmp_path)
    assert r.returncode == 125
    assert "Traceback" not in r.stderr


def test_unwritable_root_gets_needs_root(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    # A normal user on the default root: creating /var/lib/portside fails with
    # EACCES. As root in CI we cannot be refused, so the refusal is injected.
    from engine.paths import Paths
    from tui.cli import main

    def refuse(self: Paths) -> None:
        raise PermissionError(13, "Permission denied", str(self.root))

    monkeypatch.setattr(Paths, "ensure", refuse)
    assert main(["images"]) == 125
    err = capsys.readouterr().err
    assert "needs root" in err and "sudo" in err
