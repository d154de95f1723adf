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
