"""How records read in the app: sizes, ages, container status."""
from __future__ import annotations

from datetime import datetime, timezone

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
