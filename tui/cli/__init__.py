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
from typing import TYPE_CHECKING, Callable

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


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="portside", description="A daemonless container engine. "
                "Run without arguments to open the full-screen app.")
    p.add_argument("--root", help="state directory (default $PORTSIDE_ROOT or /var/lib/portside)")
    p.add_argument("--run-dir", help="runtime directory (default /run/portside, or <root>/run)")
    p.add_argument("--runtime", help="OCI runtime to use (runc or crun; default: probed)")
    p.add_argument("-v", "--version", action="version", version=f"portside {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND", parser_class=_Parser)
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
