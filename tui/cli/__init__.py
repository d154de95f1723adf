"""The Docker-compatible command line: ``portside run|ps|images|...``.

Each verb module registers its subcommands; a handler gets the engine and
the parsed args and returns the exit code. Engine errors are printed as
their message and exit 125 (or the error's own code), never a traceback.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Sequence

from engine import EngineError, __version__

if TYPE_CHECKING:
    from engine import Engine

# Verb modules, in the order their verbs appear in --help. Each has
# ``register(subparsers)``.
VERB_MODULES = ("containers", "container_io", "images", "volumes", "network", "system",
                "stats")


def _modules() -> list[ModuleType]:
    mods = []
    for name in VERB_MODULES:
        try:
            mods.append(importlib.import_module(f"{__name__}.{name}"))
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
    return mods


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # Docker exits 125 on bad flags too.
        self.print_usage(sys.stderr)
        sys.stderr.write(f"portside: error: {message}\nSee 'portside --help'.\n")
        sys.exit(125)


class _Unbuilt:
    """Stands in for the parser of a verb this command line does not run.

    The verb modules register every verb; the calls for the others
    (``add_argument``, ``set_defaults``, ``add_subparsers``...) land here and
    build nothing. It has no options and no subcommands, and its
    ``add_parser`` records more stand-ins, so a module that looks a verb up
    in ``choices`` (to join a group another module made) finds it as before.
    """

    _actions: tuple[argparse.Action, ...] = ()
    _option_string_actions: dict[str, argparse.Action] = {}

    def __init__(self) -> None:
        self.choices: dict[str, _Unbuilt] = {}

    def add_parser(self, name: str, **kwargs: Any) -> _Unbuilt:
        stand_in = _Unbuilt()
        for n in (name, *kwargs.get("aliases", ())):
            self.choices[n] = stand_in
        return stand_in

    def __getattr__(self, name: str) -> Callable[..., _Unbuilt]:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._ignore

    def _ignore(self, *_args: Any, **_kwargs: Any) -> _Unbuilt:
        return self


class _AllVerbsNeeded(Exception):
    """The verb ``_verb_of`` guessed is not the one argparse found: build them all."""


class _Verbs(argparse._SubParsersAction):  # type: ignore[type-arg]
    """The top-level verbs; with ``only`` set, the other verbs' parsers are not built.

    Building all ~90 verb parsers costs argparse ~20 ms (a gettext lookup per
    parser, a formatter per option), a tenth of a short command's run, so a
    command line builds only its own verb; the others are listed in
    ``choices`` (for argparse's "invalid choice" message) as stand-ins.
    """

    only: str | None = None

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        names = (name, *kwargs.get("aliases", ()))
        if self.only is None or self.only in names:
            return super().add_parser(name, **kwargs)
        stand_in = _Unbuilt()
        for n in names:
            self._name_parser_map[n] = stand_in
        return stand_in

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if isinstance(self._name_parser_map.get(values[0]), _Unbuilt):
            raise _AllVerbsNeeded(values[0])
        super().__call__(parser, namespace, values, option_string)


_VALUE_OPTIONS = ("--root", "--run-dir", "--runtime")


def _verb_of(argv: Sequence[str]) -> str | None:
    """The verb of a command line ("" for ``--version``), or None when every verb is needed.

    A guess from the global options portside has; argparse has the last
    word (``_Verbs`` raises ``_AllVerbsNeeded`` if the guess was wrong).
    """
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help", "--"):
            return None
        if a in ("-v", "--version"):
            return ""
        if not a.startswith("-"):
            return a
        i += 2 if a in _VALUE_OPTIONS else 1
    return None                # no verb: the help lists them all


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``portside`` parser: with ``argv``, only the parser of its verb is built."""
    p = _Parser(prog="portside", description="A daemonless container engine. "
                "Run without arguments to open the full-screen app.")
    p.add_argument("--root", help="state directory (default $PORTSIDE_ROOT or /var/lib/portside)")
    p.add_argument("--run-dir", help="runtime directory (default /run/portside, or <root>/run)")
    p.add_argument("--runtime", help="OCI runtime to use (runc or crun; default: probed)")
    p.add_argument("-v", "--version", action="version", version=f"portside {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND", parser_class=_Parser, action=_Verbs)
    sub.only = None if argv is None else _verb_of(argv)
    for m in _modules():
        m.register(sub)
    return p


def make_engine(args: argparse.Namespace) -> Engine:
    if getattr(args, "runtime", None):
        # The engine reads its runtime choice from the environment, so the
        # monitor's exit hook (a separate portside process) sees it too.
        os.environ["PORTSIDE_RUNTIME"] = args.runtime
    from engine import Engine     # the whole engine, only for a verb that uses it
    return Engine(args.root, args.run_dir)


def main(argv: list[str]) -> int:
    """Run one verb; return its exit code. Errors are one line on stderr.

    Engine errors exit 125 (or their own code), ^C exits 130 with no
    traceback, a closed stdout (``| head``) exits 0. Anything unexpected is
    a bug: one line saying so, and with ``PORTSIDE_DEBUG=1`` the traceback.
    """
    try:
        return _run(argv)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0


def _run(argv: list[str]) -> int:
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except _AllVerbsNeeded:             # e.g. an abbreviated global option: --ro DIR ps
        parser = build_parser()
        args = parser.parse_args(argv)
    func: Callable[..., int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        engine = make_engine(args) if getattr(func, "needs_engine", True) else None
        return func(engine, args) or 0
    except EngineError as err:
        _debug_traceback()
        sys.stderr.write(f"Error: {err}\n")
        return err.exit_code
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except OSError as err:
        # The world failed under us (a disk filled, a file vanished); the
        # engine names the ones it expects, this is the net under the rest.
        _debug_traceback()
        where = f": {err.filename}" if err.filename else ""
        sys.stderr.write(f"Error: {err.strerror or err}{where}{_os_hint(err)}\n")
        return 125
    except Exception as err:    # a bug: say so in one line, keep the traceback one step away
        _debug_traceback()
        sys.stderr.write(f"Error: unexpected {type(err).__name__}: {err} (a portside bug: "
                         "rerun with PORTSIDE_DEBUG=1 for the traceback, and report it)\n")
        return 125


def _os_hint(err: OSError) -> str:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return " (free some space, or use another --root)"
    if err.errno == errno.EROFS:
        return " (the file system is read-only: use a --root on a writable one)"
    return ""


def _debug_traceback() -> None:
    if os.environ.get("PORTSIDE_DEBUG", "") not in ("", "0"):
        import traceback
        traceback.print_exc()


def _silence_stdout() -> None:
    # The reader went away: point stdout at /dev/null so the flush at exit
    # does not raise a second BrokenPipeError.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
