"""``portside``: no arguments opens the app; a verb runs the CLI.

The CLI path never imports textual, so verbs start fast and work on
machines with no usable terminal.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if _is_app_invocation(args):
            from .app import run_app       # textual is imported only here
            return run_app(args)
        from .cli import main as cli_main
        return cli_main(args)
    except KeyboardInterrupt:              # ^C while starting up: quiet, like a shell
        return 130


_APP_OPTIONS = {"--root", "--run-dir", "--runtime"}


def _is_app_invocation(args: list[str]) -> bool:
    """True when ``args`` hold only the global options the app also takes."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in _APP_OPTIONS:
            i += 2
        elif a.split("=", 1)[0] in _APP_OPTIONS:
            i += 1
        else:
            return False
    return True


if __name__ == "__main__":
    sys.exit(main())
