"""The Stats tab: CPU, memory, network, block I/O and PIDs, with sparklines.

Samples only while the tab is shown, once a second, for the one container
shown; a bounded history (the last five minutes) feeds the sparklines.
"""
from __future__ import annotations

import os
from collections import deque
from typing import Any, ClassVar, Deque

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.binding import BindingType
from textual.containers import Grid, Vertical
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Sparkline, Static

from engine import EngineError

from .format import BARS, bar_levels, cpu_top, human_size, level_top

HISTORY = 300          # samples (seconds) kept
SPARK = 120            # samples the sparklines show
INTERVAL = 1.0
CAP_EVERY = 10         # samples between reads of the CPU limit (``update --cpus`` changes it)


class ScaledSparkline(Sparkline):
    """A sparkline from 0 to ``top``, not from its data's own min to max.

    Textual's stretches whatever it is given to its full height, so a
    steady 0.3-0.6% CPU looked as busy as a core flat out.
    """

    top: reactive[float] = reactive(1.0)

    def render(self) -> RenderResult:
        _, base = self.background_colors
        low = base + self.get_component_styles("sparkline--min-color").color
        high = base + self.get_component_styles("sparkline--max-color").color
        text = Text(no_wrap=True)
        for level in bar_levels(list(self.data or []), self.size.width, self.top):
            text.append(BARS[level], Style(color=low.blend(high, level / 7).rich_color))
        return text


class Metric(Vertical):
    """A label with the current value over a sparkline of recent values, from 0."""

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(id=id, classes="metric")
        self.title = title

    def compose(self) -> ComposeResult:
        yield Static(self._line("-"), classes="metric-value")
        yield ScaledSparkline([0.0] * SPARK, classes="metric-spark")

    def _line(self, value: str) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(self.title + "  ", style="dim")
        t.append(value, style="bold")
        return t

    def set(self, value: str, history: list[float], top: float | None = None) -> None:
        """Show ``value`` and the last samples of ``history`` (``top``: the line's top)."""
        self.query_one(".metric-value", Static).update(self._line(value))
        # A fixed window, filled from the right, so a new sample is one step
        # to the right rather than a redraw of the whole line. Padded with 0,
        # not the first sample: on a scale from 0 that drew a container just
        # started as if it had run that way for two minutes.
        data = history[-SPARK:]
        line = self.query_one(ScaledSparkline)
        line.top = top if top is not None else level_top(data)
        line.data = [0.0] * (SPARK - len(data)) + data


class StatsView(Vertical, can_focus=True):
    """Live resource use of one container (focusable, so the pane keeps its keys)."""

    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.key: str | None = None
        self._timer: Timer | None = None
        self._prev: Any = None
        self._hist: dict[str, Deque[float]] = {}
        self._busy = False
        self._sampler: Any = None
        self._cap_key: str | None = None
        self._cap: tuple[float, str] | None = None
        self._cap_age = 0                # samples since the CPU limit was read

    def compose(self) -> ComposeResult:
        yield Static("", classes="stats-note", markup=False)
        with Grid(classes="stats-grid"):
            yield Metric("CPU", id="m-cpu")
            yield Metric("Memory", id="m-mem")
            yield Metric("Net rx / tx", id="m-net")
            yield Metric("Block read / write", id="m-blk")
            yield Metric("PIDs", id="m-pids")

    def show(self, kind: str, key: str | None, record: Any = None) -> None:
        if kind != "container" or key is None:
            self.pause()
            return
        if key != self.key:
            self.key = key
            self._prev = None
            self._hist = {k: deque(maxlen=HISTORY) for k in ("cpu", "mem", "net", "blk", "pids")}
            for m in self.query(Metric):
                m.set("-", [])
        status = getattr(record, "status", "running")
        if status != "running":
            self.query_one(".stats-note", Static).update(
                Text(f"{status}: no live numbers (start it with u)", style="dim"))
        else:
            self.query_one(".stats-note", Static).update("")
        if not hasattr(self.app.engine, "stats"):  # type: ignore[attr-defined]
            self.query_one(".stats-note", Static).update(
                Text("not available: this engine has no stats() yet", style="dim"))
            return
        if self._timer is None:
            self._timer = self.set_interval(INTERVAL, self._sample)
        self._sample()

    def pause(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def on_unmount(self) -> None:
        self.pause()

    def _sample(self) -> None:
        if self.key is None or self._busy:
            return
        self._busy = True
        key = self.key
        self.app.engine_call(self._fetch, key, done=self._got,  # type: ignore[attr-defined]
                             group=f"stats-{id(self)}", title="Reading stats")

    def _fetch(self, key: str) -> Any:
        engine: Any = self.app.engine  # type: ignore[attr-defined]
        try:
            if self._sampler is None and hasattr(engine, "stats_sampler"):
                # Our own sampler: CPU % is over our own interval.
                self._sampler = engine.stats_sampler()
            result = self._sampler.sample([key]) if self._sampler is not None \
                else engine.stats([key])
            # The container's CPU limit: again every CAP_EVERY samples, so
            # the pane follows an update, and here in the worker, not the UI.
            if self._cap_key != key or self._cap_age >= CAP_EVERY:
                cap = _cpu_cap(engine, key)
                self._cap_key, self._cap, self._cap_age = key, cap, 0
            self._cap_age += 1
        finally:
            self._busy = False
        if isinstance(result, (list, tuple)):
            return result[0] if result else None
        return result

    def _got(self, s: Any) -> None:
        if s is None or s.id != self.key:
            return
        prev, self._prev = self._prev, s
        h = self._hist
        h["cpu"].append(s.cpu_percent)
        h["mem"].append(float(s.memory_usage))
        h["pids"].append(float(s.pids))
        dt = (s.time - prev.time).total_seconds() if prev is not None else 0
        net_rate = blk_rate = 0.0
        if prev is not None and dt > 0:
            net_rate = max(0, (s.net_rx + s.net_tx) - (prev.net_rx + prev.net_tx)) / dt
            blk_rate = max(0, (s.block_read + s.block_write)
                           - (prev.block_read + prev.block_write)) / dt
        h["net"].append(net_rate)
        h["blk"].append(blk_rate)
        cap = self._cap if self._cap_key == s.id else None
        if cap is not None:
            cpus = f" of {cap[0]:g}% ({cap[1]})"
        else:
            cpus = f" of {s.online_cpus * 100}%" if s.online_cpus else ""
        cpu = list(h["cpu"])
        self.query_one("#m-cpu", Metric).set(f"{s.cpu_percent:.1f}%{cpus}", cpu,
                                             cpu_top(cpu[-SPARK:], cap[0] if cap else None))
        self.query_one("#m-mem", Metric).set(
            f"{human_size(s.memory_usage)} / {human_size(s.memory_limit)} "
            f"({s.memory_percent:.1f}%)", list(h["mem"]))
        self.query_one("#m-net", Metric).set(
            f"{human_size(s.net_rx)} / {human_size(s.net_tx)}  ({human_size(net_rate)}/s)",
            list(h["net"]))
        self.query_one("#m-blk", Metric).set(
            f"{human_size(s.block_read)} / {human_size(s.block_write)}  "
            f"({human_size(blk_rate)}/s)", list(h["blk"]))
        self.query_one("#m-pids", Metric).set(str(s.pids), list(h["pids"]))


def _cpuset_size(cpus: str) -> int:
    """CPUs in a cpuset list such as ``0-3,6``."""
    n = 0
    for part in cpus.split(","):
        lo, _, hi = part.strip().partition("-")
        if lo.isdigit():
            n += int(hi) - int(lo) + 1 if hi.isdigit() else 1
    return n


def _cpu_cap(engine: Any, key: str) -> tuple[float, str] | None:
    """The CPU % a container can reach and why ("--cpus limit", "cpuset"), or None.

    From the limits in force (``resource_limits``); None when there is no
    limit below the host's CPUs, or the engine cannot say.
    """
    limits = getattr(engine, "resource_limits", None)
    if limits is None:
        return None
    try:
        cpu = (limits(key) or {}).get("cpu") or {}
    except EngineError:
        return None
    quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
    if quota > 0 and period > 0:
        return quota / period * 100, "limit"
    n = _cpuset_size(str(cpu.get("cpus") or ""))
    online = os.cpu_count() or 0
    if 0 < n < online:
        return n * 100.0, "cpuset"
    return None
