"""The one-line header: host facts and counts."""
from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual.widgets import Static


_VERSION = re.compile(r"\d+\.\d+(\.\d+)?")


class HostBar(Static):
    """``portside  runc 1.1 · cgroup v2 · 3 running, 5 stopped · 4 images · 2 volumes``."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.info: Any = None
        self.counts: dict[str, int] = {}
        self.root = ""

    def set_info(self, info: Any) -> None:
        self.info = info
        self._draw()

    def set_counts(self, **counts: int) -> None:
        self.counts.update(counts)
        self._draw()

    def _draw(self) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" portside ", style="bold reverse")
        facts: list[tuple[str, str]] = []
        info = self.info
        if info is not None:
            runtime = getattr(info, "runtime", "").split(" ", 1)[0]
            version = _VERSION.search(getattr(info, "runtime_version", "") or "")
            if runtime:
                facts.append((f"{runtime} {version.group(0) if version else ''}".strip(), ""))
            cg = (getattr(info, "cgroup_version", "") or "").split(" ", 1)[0]
            if cg:
                facts.append((f"cgroup {cg if cg.startswith('v') else 'v' + cg}", ""))
        c = self.counts
        if "running" in c:
            facts.append((f"{c['running']} running", "green" if c["running"] else "dim"))
            if c.get("paused"):                      # as `docker info` counts them apart
                facts.append((f"{c['paused']} paused", "cyan"))
            facts.append((f"{c.get('stopped', 0)} stopped", "dim"))
        for what in ("images", "volumes"):
            if what in c:
                n = c[what]
                facts.append((f"{n} {what if n != 1 else what[:-1]}", ""))
        for i, (text, style) in enumerate(facts):
            t.append(" · " if i else " ", style="dim")
            t.append(text, style=style)
        if self.root:
            t.append(f"  {self.root}", style="dim")
        self.update(t)
