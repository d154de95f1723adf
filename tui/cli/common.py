"""Small pieces every verb module uses: confirmation, group help."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable


def confirm(prompt: str) -> bool:
    """Ask on the terminal; with no terminal, refuse and say to use -f."""
    if not sys.stdin.isatty():
        sys.stderr.write(prompt + "\nno terminal to confirm on: use -f to skip the question\n")
        return False
    return input(prompt).strip().lower() in ("y", "yes")


def group_help(parser: argparse.ArgumentParser) -> Callable[..., int]:
    """A handler for a bare group verb (``portside image``): print its help."""

    def show(_engine: Any, _args: argparse.Namespace) -> int:
        parser.print_help()
        return 0

    show.needs_engine = False  # type: ignore[attr-defined]
    return show
