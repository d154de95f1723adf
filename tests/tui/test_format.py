"""How the app writes sizes: Docker's short form, the same as the CLI."""
from __future__ import annotations

import pytest

from tui.cli import output
from tui.widgets.format import human_size


@pytest.mark.parametrize("n, text", [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (1500, "1.5kB"), (4_260_000, "4.26MB"),
    (2**30, "1.07GB"), (10**13, "10TB"),
])
def test_sizes_read_like_docker(n: int, text: str) -> None:
    assert human_size(n) == text
    assert "Bytes" not in human_size(n) and " " not in human_size(n)


def test_the_app_and_the_cli_share_one_function() -> None:
    assert human_size is output.human_size


def test_cpu_sparklines_scale_from_zero_to_a_floor_a_limit_or_the_peak() -> None:
    from tui.widgets.format import CPU_FLOOR, bar_levels, cpu_top
    idle = [0.3, 0.6, 0.4, 0.5]
    assert cpu_top(idle) == CPU_FLOOR == 5.0           # not 0.6: idle must look idle
    assert max(bar_levels(idle, 4, cpu_top(idle))) == 0
    assert cpu_top(idle, limit=50.0) == 50.0           # a --cpus 0.5 container: a share of it
    assert cpu_top([80.0, 120.0], limit=50.0) == 120.0  # a peak above either is the top
    assert cpu_top([], limit=None) == CPU_FLOOR
    assert cpu_top(idle, limit=0.0) == CPU_FLOOR
    assert bar_levels([0.0, 2.5, 5.0], 3, 5.0) == [0, 3, 7]
    busy = [100.0, 50.0, 100.0]
    assert bar_levels(busy, 3, cpu_top(busy)) == [7, 3, 7]


def test_bar_levels_fit_any_number_of_samples_into_the_width() -> None:
    from tui.widgets.format import bar_levels
    assert bar_levels([1.0, 7.0, 2.0, 3.0], 2, 7.0) == [7, 3]      # each cell: its share's max
    assert bar_levels([7.0, 0.0], 4, 7.0) == [7, 7, 0, 0]          # stretched
    assert bar_levels([], 3, 5.0) == [0, 0, 0]
    assert bar_levels([5.0], 0, 5.0) == []


def test_a_steady_level_draws_flat_below_the_top() -> None:
    from tui.widgets.format import bar_levels, level_top
    steady = [512_000.0, 515_000.0, 510_000.0, 514_000.0]       # memory wobbling by 1%
    levels = bar_levels(steady, 4, level_top(steady))
    assert len(set(levels)) == 1 and 0 < levels[0] < 7
    assert level_top([0.0, 0.0]) == 1.0 and bar_levels([0.0, 0.0], 2, 1.0) == [0, 0]
    spike = [0.0, 0.0, 8.0, 0.0]
    assert bar_levels(spike, 4, level_top(spike))[2] > 4
