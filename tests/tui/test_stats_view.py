"""The Stats tab on a fake engine: what the sparklines are padded with, the CPU cap."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from textual.app import ComposeResult
from textual.screen import Screen

from engine.records import ContainerStats
from tests.tui.fixtures import run, wait_for
from tui.app import PortsideApp
from tui.config import Config
from tui.widgets import stats_view
from tui.widgets.stats_view import SPARK, Metric, ScaledSparkline, StatsView

T0 = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


class StatsApp(PortsideApp):
    def get_default_screen(self) -> Screen[Any]:
        return Screen()

    def compose(self) -> ComposeResult:
        yield StatsView(id="stats")


def sample(n: int) -> ContainerStats:
    return ContainerStats(id="c1", name="web", time=T0 + timedelta(seconds=n), cpu_percent=20.0,
                          memory_usage=700_000, memory_limit=1 << 30, memory_percent=0.1,
                          net_rx=0, net_tx=0, block_read=0, block_write=0, pids=4,
                          online_cpus=4)


def test_a_short_history_is_padded_with_zero() -> None:
    """A container just started has no history: it is not drawn as steady at its first value."""
    async def go() -> None:
        app = StatsApp(FakeEngine(), Config())   # type: ignore[arg-type]
        async with app.run_test(size=(80, 24)) as pilot:
            metric = app.query_one("#m-mem", Metric)
            metric.set("700kB", [700_000.0] * 3)
            await pilot.pause()
            data = list(app.query_one("#m-mem ScaledSparkline", ScaledSparkline).data or [])
            assert data == [0.0] * (SPARK - 3) + [700_000.0] * 3
    run(go)


class FakeSampler:
    def __init__(self) -> None:
        self.n = 0

    def sample(self, keys: list[str]) -> list[ContainerStats]:
        self.n += 1
        return [sample(self.n)]


class FakeEngine:
    """Stats and limits of one container; ``cpus`` is what ``update --cpus`` last set."""

    def __init__(self) -> None:
        self.cpus = 0.5
        self.limit_reads: list[bool] = []        # on the UI thread?

    def stats(self, keys: list[str]) -> list[ContainerStats]:
        return [sample(0)]

    def stats_sampler(self) -> FakeSampler:
        return FakeSampler()

    def resource_limits(self, key: str) -> dict[str, Any]:
        self.limit_reads.append(threading.current_thread() is threading.main_thread())
        return {"cpu": {"quota": int(self.cpus * 100_000), "period": 100_000}}


def test_the_cpu_cap_follows_an_update(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats_view, "INTERVAL", 0.02)
    engine = FakeEngine()

    async def go() -> None:
        app = StatsApp(engine, Config())          # type: ignore[arg-type]
        async with app.run_test(size=(80, 24)) as pilot:
            view = app.query_one(StatsView)
            view.show("container", "c1")
            cpu = view.query_one("#m-cpu", Metric)

            def text() -> str:
                return str(cpu.query_one(".metric-value").render())

            await wait_for(pilot, lambda: "of 50% (limit)" in text())
            engine.cpus = 1.5                     # portside update --cpus 1.5
            await wait_for(pilot, lambda: "of 150% (limit)" in text())
            view.pause()
    run(go)
    assert engine.limit_reads and not any(engine.limit_reads)    # all in the worker
    assert len(engine.limit_reads) < 10          # not once a sample
