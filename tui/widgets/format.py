"""How records read in the app: sizes, ages, container status."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable, Sequence

# Sizes read as the CLI prints them (Docker's short form: 0B, 999B, 4.26MB):
# one function for both (tui.cli.output is plain Python, no textual).
from ..cli.output import human_size as human_size


def current_time() -> datetime:
    """Now, in UTC (one place, so snapshot tests can pin it)."""
    return datetime.now(timezone.utc)


def short_ago(t: datetime | None, now: datetime | None = None) -> str:
    """``5s``, ``3m``, ``2h``, ``4d``, ``7w``, ``2y``: fits narrow columns."""
    if t is None:
        return "-"
    now = now or current_time()
    s = max(0, int((now - t).total_seconds()))
    for unit, size in (("y", 31536000), ("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def timestamp(t: datetime | None) -> float:
    return t.timestamp() if t is not None else 0.0


STATUS_STYLE = {
    "running": "green",
    "paused": "cyan",
    "created": "yellow",
    "restarting": "yellow",
    "removing": "magenta",
    "exited": "red",
    "dead": "red",
}

# Running first when sorting by status, then what needs attention.
STATUS_ORDER = {"running": 0, "restarting": 1, "paused": 2, "created": 3,
                "exited": 4, "dead": 5, "removing": 6}


def status_text(status: str, exit_code: int, since: datetime | None,
                now: datetime | None = None) -> tuple[str, str]:
    """Text and style for a container status: ``running 5m``, ``exited(1) 2h``."""
    style = STATUS_STYLE.get(status, "")
    if status == "exited":
        if exit_code == 0:
            style = "dim"
        text = f"exited({exit_code})"
    else:
        text = status
    if since is not None:
        text += " " + short_ago(since, now)
    return text, style


CPU_FLOOR = 5.0        # % of one core: the least a CPU sparkline's top can be


def cpu_top(values: Iterable[float], limit: float | None = None) -> float:
    """The top of a CPU sparkline's scale (its bottom is 0).

    The highest sample, but never below the container's CPU limit (its
    bars are then a share of what it may use) or, without one, below
    ``CPU_FLOOR``: scaled to their own min and max, 0.3-0.6% drew as a
    busy line; from 0 to 5% they lie flat, as idle should.
    """
    peak = max(values, default=0.0)
    return max(peak, limit if limit and limit > 0 else CPU_FLOOR)


def level_top(values: Iterable[float]) -> float:
    """The top of a sparkline of levels or rates (memory, I/O, PIDs; bottom 0).

    A quarter above the highest sample, so a steady value draws as a flat
    line below the top instead of a min-to-max wobble; 1 when all are 0.
    """
    peak = max(values, default=0.0)
    return peak * 1.25 if peak > 0 else 1.0


BARS = "▁▂▃▄▅▆▇█"


def bar_levels(data: Sequence[float], width: int, top: float) -> list[int]:
    """One bar height (0-7) per cell for ``data`` drawn in ``width`` cells from 0 to ``top``.

    More samples than cells: each cell shows the highest of its share of
    them. Fewer: samples stretch over several cells.
    """
    n = len(data)
    if n == 0 or width <= 0:
        return [0] * max(width, 0)
    out = []
    for i in range(width):
        start = i * n // width
        end = max(start + 1, (i + 1) * n // width)
        value = max(data[start:end])
        out.append(min(7, max(0, int(value / top * 7.99))) if top > 0 else 0)
    return out
