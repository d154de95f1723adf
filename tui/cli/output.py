"""Plain-text output for the CLI: tables, human sizes and ages, JSON."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence, TextIO

import humanize


def human_size(n: int | float) -> str:
    """Docker's style: ``4.26MB`` (decimal units, no space)."""
    return humanize.naturalsize(n, format="%.3g").replace(" ", "")


def human_ago(t: datetime | None, now: datetime | None = None) -> str:
    """``3 minutes ago``; ``N/A`` for an unknown time."""
    if t is None:
        return "N/A"
    now = now or datetime.now(timezone.utc)
    return humanize.naturaltime(now - t)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], out: TextIO | None = None) -> None:
    """Print left-aligned columns separated by three spaces, like Docker."""
    out = out or sys.stdout
    rows = [list(map(str, r)) for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))
    for r in [list(headers)] + rows:
        line = "   ".join(c.ljust(widths[i]) for i, c in enumerate(r[:-1]))
        out.write((line + "   " + r[-1] if len(r) > 1 else r[0]).rstrip() + "\n")


def print_json(value: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    json.dump(value, out, indent=4, default=str)
    out.write("\n")
