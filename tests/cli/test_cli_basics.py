"""The CLI's contract: help, exit codes, messages not tracebacks, no textual."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tui.cli import build_parser


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


# Code no listing verb runs: the front end, the kernel and archive libraries,
# and the engine's code for other verbs (cp, exec, diff, commit, load/save/pull,
# stats, events, df). Each verb imports these itself when it needs them.
_NEVER_FOR_LISTING = (
    "textual", "rich", "pyroute2", "zstandard", "tarfile", "gzip",
    "engine.containers.copy", "engine.containers.exec", "engine.containers.pty",
    "engine.containers.attach", "engine.containers.changes", "engine.containers.commit",
    "engine.containers.logs", "engine.images.archive", "engine.images.registry",
    "engine.images.importer", "engine.images.extract", "engine.images.bootstrap",
    "engine.cgroups", "engine.cgroups.stats", "engine.events", "engine.diskusage",
)
# --version and --help need no engine at all: no database, no containers code.
_NEVER_FOR_VERSION = _NEVER_FOR_LISTING + (
    "engine.api", "engine.base", "engine.state", "sqlite3", "engine.containers",
    "engine.images", "engine.network", "engine.volumes", "humanize",
)


def _modules_after(args: list[str]) -> tuple[int, set[str]]:
    """Run the CLI on ``args`` in a fresh interpreter; its exit code and the modules it imported."""
    code = ("import json, sys; from tui.__main__ import main\n"
            "try:\n    rc = main(json.loads(sys.argv[1]))\n"
            "except SystemExit as e:\n    rc = e.code\n"
            "sys.stderr.write(json.dumps(sorted(sys.modules)))\nsys.exit(rc)")
    import json
    r = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True,
                       text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    return r.returncode, set(json.loads(r.stderr.splitlines()[-1]))


def test_version_and_help_load_no_engine_code() -> None:
    for args in (["--version"], ["--help"], ["ps", "--help"]):
        rc, mods = _modules_after(args)
        assert rc == 0, args
        assert "engine.records" in mods          # the check itself sees imports
        assert not mods & set(_NEVER_FOR_VERSION), (args, sorted(mods & set(_NEVER_FOR_VERSION)))


def test_listing_verbs_load_only_what_they_use(tmp_path: Path) -> None:
    for args in (["ps", "-a"], ["images"], ["volume", "ls"]):
        rc, mods = _modules_after([f"--root={tmp_path}", *args])
        assert rc == 0, args
        assert "engine.api" in mods
        assert not mods & set(_NEVER_FOR_LISTING), (args, sorted(mods & set(_NEVER_FOR_LISTING)))
    rc, mods = _modules_after([f"--root={tmp_path}", "ps"])
    assert "engine.images.store" not in mods and "engine.volumes" not in mods


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _helps(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """The help of ``parser`` and of every subcommand under it, by command path."""
    out = {path: parser.format_help()}
    for name, sub in _verbs(parser).items():
        out.update(_helps(sub, path + (name,)))
    return out


def test_a_command_line_builds_only_its_own_verb_and_the_same_parser() -> None:
    full = _verbs(build_parser())
    assert len(full) > 30
    for name, parser in full.items():
        verbs = _verbs(build_parser(["--root=/nonexistent", name, "--some-flag"]))
        assert list(verbs) == list(full)          # argparse's "invalid choice" lists them all
        built = {n for n, p in verbs.items() if isinstance(p, argparse.ArgumentParser)}
        assert built == {n for n, p in full.items() if p is parser}, name   # the verb and its aliases
        assert _helps(verbs[name]) == _helps(parser), name


def test_any_command_line_parses_as_with_every_verb() -> None:
    # The verb is a guess from the global options; argparse's own reading wins.
    for argv in (["--ro", "/x", "ps", "-a"], ["--root", "ps", "ps"], ["--runtime=runc", "images", "-q"],
                 ["--root=/x", "container", "ls", "-a"], ["--run-dir", "/r", "system", "df"]):
        want = vars(build_parser().parse_args(argv))
        try:
            got = vars(build_parser(argv).parse_args(argv))
        except Exception as err:                 # a wrong guess: main then builds every verb
            assert type(err).__name__ == "_AllVerbsNeeded", argv
            assert argv[0] == "--ro"
            continue
        assert got.pop("func").__qualname__ == want.pop("func").__qualname__, argv
        assert got == want, argv


def test_an_abbreviated_global_option_still_finds_the_verb(tmp_path: Path) -> None:
    r = portside("--ro", str(tmp_path), "ps", "-aq")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    r = portside("--version")
    assert r.returncode == 0 and r.stdout.startswith("portside ")


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


# -- Go templates (--format), shared by every verb ------------------------------------

INSPECTED = {"Id": "sha256:ab", "RepoTags": ["a:1", "b:2"], "Size": 123, "Os": "linux",
             "Config": {"Env": ["A=1", "B=2"], "Cmd": ["sh"], "Labels": {"x": "1", "y": "2"},
                        "Entrypoint": None}}


def test_template_fields_functions_and_blocks() -> None:
    from tui.cli.output import render_template as r
    d = INSPECTED
    assert r("{{.Id}} {{ .Os }}", d) == "sha256:ab linux"
    assert r("{{.Config.Env}}", d) == "[A=1 B=2]"
    assert r("{{.Config.Labels}}", d) == "map[x:1 y:2]"
    assert r("{{json .Config.Cmd}}", d) == '["sh"]'
    assert r("{{.Config.Cmd | json}}", d) == '["sh"]'
    assert r('{{join .RepoTags ", "}}', d) == "a:1, b:2"
    assert r("{{index .RepoTags 1}}", d) == "b:2"
    assert r('{{index .Config.Labels "y"}}', d) == "2"
    assert r("{{(index .RepoTags 0) | upper}}", d) == "A:1"
    assert r("{{len .RepoTags}}", d) == "2"
    assert r('{{printf "%s=%d" .Os .Size}}', d) == "linux=123"
    assert r("{{range .RepoTags}}[{{.}}]{{end}}", d) == "[a:1][b:2]"
    assert r("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", d) == "x=1;y=2;"
    assert r("{{range .Config.Entrypoint}}x{{else}}none{{end}}", d, strict=False) == "none"
    assert r("{{if .Config.Entrypoint}}yes{{else}}no{{end}}", d) == "no"
    assert r('{{if eq .Os "windows"}}W{{else if .Size}}S{{end}}', d) == "S"
    assert r("{{with .Config}}{{.Cmd}}{{end}}", d) == "[sh]"
    assert r("{{with $c := .Config}}{{$.Os}}:{{$c.Cmd}}{{end}}", d) == "linux:[sh]"
    assert r("a  {{- .Os -}}  b{{/* note */}}", d) == "alinuxb"
    assert r("{{.Config.Entrypoint}}", d) == "<no value>"
    assert r("{{.Missing}}", d, strict=False) == "<no value>"
    assert r("{{json .}}", {"A": 1, "B": "<x>"}) == '{"A":1,"B":"<x>"}'


def test_template_errors_are_invalid_argument() -> None:
    import pytest

    from engine import InvalidArgument
    from tui.cli.output import render_template as r
    for bad, why in (("{{.Os", "unclosed"), ("{{end}}", "unexpected"),
                     ("{{if .Os}}x", "no {{end}}"), ("{{nosuch .Os}}", "not defined"),
                     ("{{.Missing}}", "unknown field 'Missing'"),
                     ("{{.Config.Nope}}", "unknown field 'Nope'")):
        with pytest.raises(InvalidArgument, match="bad --format template") as info:
            r(bad, INSPECTED)
        assert why in str(info.value), (bad, str(info.value))


def test_format_records_table_json_and_plain() -> None:
    import io

    from tui.cli.output import format_records
    rows = [{"A": "x", "B": "yy"}, {"A": "a longer value", "B": "z"}]
    out = io.StringIO()
    format_records("table {{.A}}\\t{{.B}}", rows, {"A": "COL A"}, out)
    assert out.getvalue().splitlines() == ["COL A            B", "x                yy",
                                           "a longer value   z"]
    out = io.StringIO()
    format_records("json", rows, out=out)
    assert out.getvalue().splitlines()[0] == '{"A":"x","B":"yy"}'
    out = io.StringIO()
    format_records("{{.B}}-{{.A}}", rows, out=out)
    assert out.getvalue() == "yy-x\nz-a longer value\n"


# -- exit codes for what goes wrong around the engine ------------------------------------

def test_a_root_that_is_not_a_directory_is_one_line_and_125() -> None:
    for root in ("/dev/null", "/proc/portside-no-such-dir", "/dev/null/sub"):
        r = subprocess.run([sys.executable, "-m", "tui", "--root", root, "images"],
                           capture_output=True, text=True, cwd=REPO, timeout=60,
                           env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert r.returncode == 125, (root, r.stderr)
        assert "Traceback" not in r.stderr
        assert r.stderr.startswith(f"Error: cannot use {root} as the state directory"), r.stderr
        assert r.stderr.count("\n") == 1


def test_sqlite_failure_is_a_state_error_with_a_hint(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from engine.state import Store
    from tui.cli import main
    assert main([f"--root={tmp_path}", "images"]) == 0
    monkeypatch.setattr(Store, "_connect", lambda self: (_ for _ in ()).throw(
        sqlite3.OperationalError("attempt to write a readonly database")))
    capsys.readouterr()
    assert main([f"--root={tmp_path}", "images"]) == 125
    err = capsys.readouterr().err
    assert "attempt to write a readonly database" in err and "chattr -i" in err
    assert "Traceback" not in err


def test_readonly_state_db_in_a_transaction(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    from engine.state import StateError, Store
    store = Store(tmp_path / "state.db")
    with pytest.raises(StateError, match="disk is full") as info:
        with store.tx() as c:
            c.execute("SELECT 1")
            raise sqlite3.OperationalError("database or disk is full")
    assert "free space" in (info.value.hint or "")
    with pytest.raises(sqlite3.IntegrityError):       # our own SQL's errors stay as they are
        with store.tx() as c:
            c.execute("INSERT INTO tags(name, image_id) VALUES ('a', 'no-such-image')")
    store.close()


def test_unexpected_error_is_one_line_and_the_traceback_is_one_switch_away(
        tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from tui.cli import images, main

    def broken(_engine, _args):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("boom")
    monkeypatch.setattr(images, "cmd_images", broken)
    monkeypatch.delenv("PORTSIDE_DEBUG", raising=False)
    assert main([f"--root={tmp_path}", "images"]) == 125
    err = capsys.readouterr().err
    assert err == ("Error: unexpected ZeroDivisionError: boom (a portside bug: rerun with "
                   "PORTSIDE_DEBUG=1 for the traceback, and report it)\n")
    monkeypatch.setenv("PORTSIDE_DEBUG", "1")
    assert main([f"--root={tmp_path}", "images"]) == 125
    assert "Traceback" in capsys.readouterr().err


def _blocked_reading_stdin(pid: int) -> bool:
    read_nr = {"x86_64": "0", "aarch64": "63"}[os.uname().machine]
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return len(fields) > 1 and fields[0] == read_nr and int(fields[1], 16) == 0


def test_ctrl_c_exits_130_quietly(tmp_path: Path) -> None:
    import signal
    import time
    p = subprocess.Popen([sys.executable, "-m", "tui", f"--root={tmp_path}", "load"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        for _ in range(600):            # until it waits for the archive on stdin
            if _blocked_reading_stdin(p.pid):
                break
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if p.stdin:
            p.stdin.close()
    assert p.returncode == 130, err
    assert err == b"" and out == b""
