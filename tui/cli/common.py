"""Small pieces every verb module uses: confirmation, group help."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable


def confirm(prompt: str) -> bool:
    """Ask ``prompt`` and read the answer, as Docker does.

    The answer is a line from the terminal, or from stdin when it is not
    one (``echo y | portside image prune``); then the prompt goes to stderr,
    so stdout holds only the verb's output. No answer at all (end of
    input, or no stdin) is a no, with a hint to use -f.
    """
    tty = _isatty(sys.stdin)
    out = sys.stdout if tty else sys.stderr
    out.write(prompt)
    out.flush()
    try:
        line = sys.stdin.readline() if sys.stdin is not None else ""
    except (OSError, ValueError):        # stdin closed or not readable
        line = ""
    if not line:
        out.write("\n")
        sys.stderr.write("no answer on stdin: use -f to skip the question\n")
        return False
    return line.strip().lower() in ("y", "yes")


def _isatty(f: Any) -> bool:
    try:
        return bool(f is not None and f.isatty())
    except (OSError, ValueError):
        return False


def group_help(parser: argparse.ArgumentParser) -> Callable[..., int]:
    """A handler for a bare group verb (``portside image``): print its help."""

    def show(_engine: Any, _args: argparse.Namespace) -> int:
        parser.print_help()
        return 0

    show.needs_engine = False  # type: ignore[attr-defined]
    return show
